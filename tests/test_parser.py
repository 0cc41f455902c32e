"""Scene parser: datasets, training, semantic block, and the jobs with --parser."""

import json
import os

import numpy as np
import pytest
from conftest import SHARED, synthetic_scene
from PIL import Image

from colorize_tf import datasets
from colorize_tf import parser as P

CLASSES = ["sky", "ground", "disc"]


def scene_with_labels(seed, h=64, w=64):
    """A synthetic scene and its labels (sky / ground / disc), with an unlabeled band."""
    rgb = synthetic_scene(h, w, seed=seed)
    lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    label = np.where(rgb[..., 2] > 0.7, 0, 1).astype(np.uint8)
    label[(rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.3)] = 2
    label[:, :3] = 255  # unlabeled strip
    return rgb, lum, label


def write_generic(root, n=12, seed0=0):
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    with open(os.path.join(root, "classes.txt"), "w") as fh:
        fh.write("\n".join(CLASSES) + "\n")
    names = []
    for i in range(n):
        rgb, _, label = scene_with_labels(seed0 + i)
        name = f"s{i:02d}"
        Image.fromarray((rgb * 255).astype(np.uint8)).save(os.path.join(root, "images", name + ".png"))
        Image.fromarray(label).save(os.path.join(root, "masks", name + ".png"))
        names.append(name)
    with open(os.path.join(root, "train.txt"), "w") as fh:
        fh.write("\n".join(names[: n - 3]) + "\n")
    with open(os.path.join(root, "test.txt"), "w") as fh:
        fh.write("\n".join(names[n - 3 :]) + "\n")
    return names


def test_class_weights_and_histogram():
    w = P.class_weights([100, 10, 1, 0])
    assert w[3] == 0 and w[0] < w[1] < w[2]
    probs = np.zeros((4, 5, 3), np.float32)
    probs[..., 0] = 1
    probs[:2, :, 0] = 0
    probs[:2, :, 2] = 1
    h = P.semantic_histogram(probs)
    assert np.isclose(h.sum(), 1) and np.allclose(h, [0.5, 0, 0.5])


def test_smoothing_keeps_distributions_and_respects_edges():
    gray = np.zeros((40, 40), np.float32)
    gray[:, 20:] = 1.0  # a strong edge
    probs = np.zeros((40, 40, 2), np.float32)
    probs[:, :22, 0] = 1  # parser boundary 2 px off the true edge
    probs[:, 22:, 1] = 1
    out = P.smooth_probabilities(gray, probs, sigma_spatial=10, sigma_color=0.05)
    assert np.allclose(out.sum(-1), 1, atol=1e-5)
    assert out[:, 5, 0].min() > 0.99  # far from boundaries unchanged
    # the 2 mislabelled columns right of the image edge take the label of their own side...
    assert out[:, 20:22, 1].min() > 0.5
    # ...and nothing leaks across the edge: the dark side keeps class 0
    assert out[:, 17:20, 0].min() > 0.99
    plain = P.smooth_probabilities(np.zeros_like(gray), probs, sigma_spatial=10, sigma_color=0.05)
    assert plain[:, 17:20, 0].min() < 0.9  # without an edge in the guide the same boundary blurs both ways


def test_generic_dataset_maps_ignore(tmp_path):
    root = str(tmp_path / "d")
    write_generic(root, n=5)
    ds = datasets.open_dataset(root)
    assert ds.layout == "generic" and ds.classes == CLASSES
    assert len(ds.splits["train"]) == 2 and len(ds.splits["test"]) == 3
    raw = np.array([[0, 1, 2, 255, 7]], np.uint8)
    assert ds.map_mask(raw).tolist() == [[0, 1, 2, 255, 255]]


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "siftflow")), reason="../shared data absent")
def test_shared_dataset_layouts():
    sf = datasets.open_dataset(os.path.join(SHARED, "siftflow"))
    assert sf.layout == "siftflow" and len(sf.classes) == 33 and sf.classes[0] == "awning"
    assert len(sf.splits["train"]) == 2488 and len(sf.splits["test"]) == 200
    assert sf.map_mask(np.array([0, 1, 33], np.uint8)).tolist() == [255, 0, 32]
    sb = datasets.open_dataset(os.path.join(SHARED, "stanford_background"))
    assert sb.layout == "stanford" and sb.classes[0] == "sky" and len(sb.classes) == 8
    assert len(sb.splits["train"]) == 572 and len(sb.splits["test"]) == 143


def train_small_parser(data, out, *extra):
    """pipelines.train_parser on a write_generic folder: a small, fast parser (its metrics)."""
    from pipelines import train_parser

    return train_parser.run(
        [
            f"--data={data}",
            f"--output={out}",
            "--epochs=40",
            "--base_channels=8",
            "--crop=64",
            "--batch_size=4",
            "--work_size=64",
            "--learning_rate=5e-3",
            *extra,
            "--runner=FnApiRunner",
        ]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("parser")
    data = str(root / "data")
    write_generic(data, n=14)
    out = str(root / "parser")
    return root, data, out, train_small_parser(data, out)


def test_parser_trains_beats_chance_and_ignores_unlabeled(trained):
    root, data, out, metrics = trained
    meta = P.read_parser_meta(out)
    assert meta["classes"] == CLASSES
    # 3 classes: chance is 1/3 mean class accuracy; the majority class alone would give ~0.5 pixel accuracy
    assert metrics["smoothed"]["pixel_accuracy"] > 0.75
    assert metrics["smoothed"]["mean_class_accuracy"] > 0.5
    assert meta["metrics"]["raw"]["images"] == 3
    assert meta["training"]["class_pixels"][0] > 0 and len(meta["training"]["class_weights"]) == 3
    parser = P.SceneParser.load(out)
    _, lum, label = scene_with_labels(99)
    probs = parser.probabilities(lum)
    assert probs.shape == (64, 64, 3) and np.allclose(probs.sum(-1), 1, atol=1e-4)
    # the semantic block on a whole image, for sampled pixels, without precomputed state
    from colorize_tf.features import Descriptor, sample_pixels

    desc = Descriptor.from_config([P.semantic_block_config(out)], parser=parser)
    coords = sample_pixels(lum, 50, seed=1)
    assert np.allclose(desc.compute(lum, coords), desc.compute(lum)[coords[:, 0] * 64 + coords[:, 1]], atol=1e-6)


def test_parser_trains_in_bfloat16_and_is_saved_computing_in_float32(trained, tmp_path):
    _, data, _, _ = trained
    out = str(tmp_path / "parser_bf16")
    metrics = train_small_parser(data, out, "--precision=bfloat16")
    meta = P.read_parser_meta(out)
    assert meta["training"]["precision"] == "bfloat16"
    losses = meta["training"]["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert metrics["smoothed"]["pixel_accuracy"] > 0.75  # as the float32 parser's check
    parser = P.SceneParser.load(out)
    assert {layer.compute_dtype for layer in parser.model.layers if layer.weights} == {"float32"}
    probs = parser.probabilities(scene_with_labels(99)[1])
    assert probs.dtype == np.float32 and np.allclose(probs.sum(-1), 1, atol=1e-4)


def test_resolve_precision_reads_the_cpu_flags(tmp_path):
    from colorize_tf.fusion import resolve_precision

    with_bf16, without = tmp_path / "a", tmp_path / "b"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert resolve_precision("auto", str(with_bf16)) == "bfloat16"
    assert resolve_precision("auto", str(without)) == "float32"
    assert resolve_precision("auto", str(tmp_path / "missing")) == "float32"
    assert resolve_precision("float32", str(with_bf16)) == "float32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("float16")


def test_parser_tamper_detected(trained, tmp_path):
    import shutil

    _, _, out, _ = trained
    copy = str(tmp_path / "p")
    shutil.copytree(out, copy)
    with open(os.path.join(copy, P.PARSER_FILE), "ab") as fh:
        fh.write(b"!")
    with pytest.raises(ValueError, match="checksum"):
        P.SceneParser.load(copy)


def test_semantic_block_in_feature_job_training_and_colorization(trained):
    import pyarrow.parquet as pq

    from colorize_tf import records
    from colorize_tf.registry import ColorizeSettings, load_colorizer
    from pipelines import extract_features, train

    root, data, parser_dir, _ = trained
    feats = str(root / "features")
    extract_features.run(
        [
            f"--input={data}/images",
            f"--output={feats}",
            f"--parser={parser_dir}",
            "--samples_per_image=300",
            "--runner=FnApiRunner",
        ]
    )
    cfg = json.load(open(os.path.join(feats, "config.json")))
    assert [b["name"] for b in cfg["descriptor"]] == ["patch", "daisy", "semantic"]
    assert cfg["dim"] == 49 + 32 + len(CLASSES)
    ex = next(records.image_dataset(records.list_shards(feats)).as_numpy_iterator())
    assert ex["x"].shape == (300, 84)
    sem = ex["x"][:, 81:]
    assert np.allclose(sem.sum(1), 1, atol=1e-4)  # probabilities
    rows = pq.read_table(os.path.join(feats, "images")).to_pylist()
    for r in rows:
        assert len(r["semantic_hist"]) == 3 and np.isclose(sum(r["semantic_hist"]), 1, atol=1e-5)

    model = str(root / "model")
    train.run([f"--features={feats}", f"--output={model}", "--epochs=3", "--refine=9,0.1,4", "--runner=FnApiRunner"])
    assert os.path.exists(os.path.join(model, "parser", P.PARSER_FILE))  # self-contained
    _, lum, _ = scene_with_labels(50, 150, 170)
    whole = load_colorizer(model, ColorizeSettings(tile=0)).colorize(lum).uv
    tiled = load_colorizer(model, ColorizeSettings(tile=64)).colorize(lum).uv
    assert whole.shape == (150, 170, 2)
    assert np.abs(whole - tiled).max() < 2e-3  # the domain transform's tail beyond the margin
    with pytest.raises(ValueError, match="semantic"):
        from colorize_tf.features import Descriptor
        from colorize_tf.regressor import read_metadata

        Descriptor.from_config(read_metadata(model)["descriptor"], parser=None)


def test_upsampling_matches_resize_and_crops_consistently():
    import cv2

    from colorize_tf.parser import upsample_probabilities

    rng = np.random.default_rng(3)
    raw = rng.random((16, 24, 6)).astype(np.float32)
    full = upsample_probabilities(raw, (64, 96))
    ref = np.concatenate(
        [cv2.resize(raw[..., c : c + 3], (96, 64), interpolation=cv2.INTER_LINEAR) for c in (0, 3)], axis=-1
    )
    assert full.shape == (64, 96, 6) and np.abs(full - ref).max() < 1e-2  # OpenCV's 1/32-pixel grid
    crop = upsample_probabilities(raw, (64, 96), (10, 20, 30, 40))
    np.testing.assert_array_equal(crop, full[10:40, 20:60])
    # same grid (image at the parser's working size): values pass through unchanged
    same = upsample_probabilities(raw, (16, 24), (2, 3, 10, 12))
    np.testing.assert_array_equal(same, raw[2:12, 3:15])
    assert same.dtype == np.float32 and not np.shares_memory(same, raw)


def test_threaded_smoothing_equals_sequential():
    import cv2

    from colorize_tf.parser import smooth_probabilities

    rng = np.random.default_rng(5)
    probs = rng.random((48, 64, 11)).astype(np.float32)
    probs /= probs.sum(-1, keepdims=True)
    gray = rng.random((48, 64)).astype(np.float32)
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        sequential = smooth_probabilities(gray, probs)
        cv2.setNumThreads(4)
        threaded = smooth_probabilities(gray, probs)
    finally:
        cv2.setNumThreads(before)
    np.testing.assert_array_equal(threaded, sequential)
    np.testing.assert_allclose(threaded.sum(-1), 1.0, atol=1e-5)
