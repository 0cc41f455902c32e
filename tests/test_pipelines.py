"""End-to-end: feature job -> training job -> colorization, on generated images."""

import glob
import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import N_IMAGES, SAMPLES, clustering_args, synthetic_scene
from PIL import Image


def test_feature_job_outputs(features_dir):
    import tensorflow as tf

    from colorize_tf import records

    shards = records.list_shards(str(features_dir))
    exs = list(records.image_dataset(shards).as_numpy_iterator())
    assert len(exs) == N_IMAGES
    ex = exs[0]
    assert ex["x"].shape == (SAMPLES, 81) and ex["uv"].shape == (SAMPLES, 2) and ex["yx"].shape == (SAMPLES, 2)
    assert (ex["height"], ex["width"]) == (64, 80)
    # the stored targets are the image's true chroma at the stored pixels
    from colorize_tf.color import rgb_to_yuv
    from colorize_tf.imageio import decode_image

    iid = ex["image_id"].decode()
    pic = decode_image((features_dir.parent / "images" / f"{iid}.png").read_bytes())
    yx = ex["yx"]
    assert np.allclose(ex["uv"], rgb_to_yuv(pic.rgb[yx[:, 0], yx[:, 1]])[:, 1:], atol=1e-6)
    assert np.allclose(ex["x"][:, 24], pic.gray[yx[:, 0], yx[:, 1]], atol=1e-6)  # patch centre = luminance
    # the same records read as plain TFRecords by tf.data
    n = sum(1 for _ in tf.data.TFRecordDataset(shards, compression_type="GZIP"))
    assert n == N_IMAGES

    rows = pq.read_table(str(features_dir / "images")).to_pylist()
    assert sorted(r["image_id"] for r in rows) == sorted(
        [f"scene{i:02d}" if i % 2 == 0 else f"sub/scene{i:02d}" for i in range(N_IMAGES)]
    )
    assert all(r["n_samples"] == SAMPLES and r["height"] == 64 for r in rows)
    assert all(len(r["gist"]) == 512 and r["semantic_hist"] is None for r in rows)

    dead = [
        json.loads(line)
        for f in glob.glob(str(features_dir / "dead_letters" / "*.jsonl"))
        for line in open(f)
        if line.strip()
    ]
    by_name = {os.path.basename(d["path"]): d for d in dead}
    assert set(by_name) == {"corrupt.jpg", "truncated.png", "gray.png", "notes.txt"}
    assert any(w in by_name["corrupt.jpg"]["reason"] for w in ("not an image", "corrupt", "truncated"))
    assert "truncated" in by_name["truncated.png"]["reason"]
    assert "no colour" in by_name["gray.png"]["reason"]
    # every input accounted for: images + dead letters = files in the folder
    assert len(rows) + len(dead) == N_IMAGES + 4

    cfg = json.loads((features_dir / "config.json").read_text())
    assert cfg["dim"] == 81 and [b["name"] for b in cfg["descriptor"]] == ["patch", "daisy"]


def test_training_lowers_loss_and_writes_model(model_dir):
    meta = json.loads((model_dir / "model.json").read_text())
    hist = meta["training"]["history"]["loss"]
    assert hist[-1] < 0.7 * hist[0]
    assert meta["input_dim"] == 81 and "normalization" not in meta  # the Keras layer is the only copy
    tuning = meta["training"]["refine_tuning"]
    assert tuning["images"] == 2 and len(tuning["grid"]) == 25  # --tune_images 2, every grid point scored
    best = max(row["mean_psnr"] for row in tuning["grid"])
    chosen = next(r for r in tuning["grid"] if all(r[k] == meta["refine"][k] for k in meta["refine"]))
    assert chosen["mean_psnr"] >= best - 0.02  # within the tolerance of the best, the cheapest
    assert set(meta["refine"]) == {"diameter", "sigma_color", "sigma_space", "scale"}
    assert "regressor.keras" in meta["files"]
    summary = [json.loads(line) for line in open(model_dir / "training_summary.jsonl")]
    assert summary[0]["cluster_id"] == "all" and summary[0]["samples"] > 0


def test_model_beats_gray_on_training_like_scene(model_dir):
    from colorize_tf.metrics import gray_baseline, psnr
    from colorize_tf.registry import load_colorizer

    col = load_colorizer(str(model_dir))
    truth = synthetic_scene(64, 80, seed=123)
    from colorize_tf.color import luminance

    out = col.colorize(luminance(truth))
    assert out.cluster is None and out.timing.total > 0
    assert psnr(out.rgb, truth) > psnr(gray_baseline(truth), truth) + 1.0


def test_tampered_model_is_refused(model_dir, tmp_path):
    import shutil

    from colorize_tf.regressor import Regressor

    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    with open(copy / "regressor.keras", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ValueError, match="checksum"):
        Regressor.load(str(copy))


def test_colorize_cli_keeps_size_and_luminance(model_dir, tmp_path):
    from pipelines import colorize

    src = tmp_path / "in"
    src.mkdir()
    gray = (synthetic_scene(150, 170, seed=5).mean(-1) * 255).astype(np.uint8)
    Image.fromarray(gray).save(src / "old.png")
    rgba = np.dstack([np.stack([gray] * 3, -1), np.full(gray.shape, 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    (src / "bad.jpg").write_bytes(b"nope")
    out = tmp_path / "out"
    rc = colorize.main(
        [
            str(src / "old.png"),
            str(src / "alpha.png"),
            str(src / "bad.jpg"),
            "--model",
            str(model_dir),
            "--output",
            str(out),
            "--tile",
            "64",
        ]
    )
    assert rc == 1  # one input failed, the others were written
    res = np.asarray(Image.open(out / "old.png"))
    assert res.shape == (150, 170, 3)
    from colorize_tf.color import luminance

    assert np.abs(luminance(res / 255.0) * 255 - gray).max() <= 0.51
    assert np.abs(res[..., 0].astype(int) - res[..., 2]).mean() > 0.5  # it has colour
    alpha = np.asarray(Image.open(out / "alpha.png"))
    assert alpha.shape == (150, 170, 4) and (alpha[..., 3] == 200).all()
    assert not list(out.glob("*.partial"))
    import hashlib

    from colorize_tf.provenance import read_back

    made = read_back((out / "old.png").read_bytes())  # which model, which checksum, which software
    assert made["Model"] == model_dir.name == "model"
    assert made["ModelSHA256"] == hashlib.sha256((model_dir / "model.json").read_bytes()).hexdigest()
    assert made["software"].startswith("colorize-tf ") and made["digital_source_type"].endswith("AlgorithmicMedia")


def test_tiled_equals_whole_image(model_dir):
    from colorize_tf.color import luminance
    from colorize_tf.registry import ColorizeSettings, load_colorizer

    gray = luminance(synthetic_scene(200, 230, seed=9))
    whole = load_colorizer(str(model_dir), ColorizeSettings(tile=0)).colorize(gray).uv
    tiled = load_colorizer(str(model_dir), ColorizeSettings(tile=64)).colorize(gray).uv
    assert np.abs(whole - tiled).max() < 1e-4
    for stride in (2, 3):  # odd tile offsets and image sides: every grid point predicted once, same values
        a = load_colorizer(str(model_dir), ColorizeSettings(tile=0, stride=stride)).chroma(gray).uv
        b = load_colorizer(str(model_dir), ColorizeSettings(tile=64, stride=stride)).chroma(gray).uv
        assert a.shape == (200, 230, 2) and np.abs(a - b).max() < 1e-4


def test_prediction_stride_interpolates_the_full_prediction(model_dir):
    from colorize_tf.color import luminance
    from colorize_tf.colorize import default_stride, upsample_grid
    from colorize_tf.refine import RefineParams
    from colorize_tf.registry import ColorizeSettings, load_colorizer

    gray = luminance(synthetic_scene(120, 150, seed=11))
    full = load_colorizer(str(model_dir), ColorizeSettings(tile=0, stride=1)).chroma(gray).uv
    half = load_colorizer(str(model_dir), ColorizeSettings(tile=0, stride=2)).chroma(gray).uv
    np.testing.assert_allclose(half[::2, ::2], full[::2, ::2], atol=1e-5)  # same values on the grid
    assert np.abs(half - full).mean() < 0.2 * np.abs(full - full.mean((0, 1))).mean()  # close in between
    small = np.arange(12, dtype=np.float32).reshape(3, 4, 1).repeat(2, -1)
    up = upsample_grid(small, (6, 8), 2)
    np.testing.assert_array_equal(up[::2, ::2], small)
    np.testing.assert_allclose(up[1, 1], (small[0, 0] + small[0, 1] + small[1, 0] + small[1, 1]) / 4)
    assert default_stride(RefineParams(121, 0.05, 80, 0.25)) == 2
    assert default_stride(RefineParams(61, 0.05, 40, 1.0)) == 1 and default_stride(RefineParams(0, 0, 0)) == 1


@pytest.fixture(scope="module")
def bundle_dir(features_dir):
    from pipelines import train

    out = features_dir.parent / "bundle"
    train.run(
        clustering_args(features_dir, out, max_layers=3, epochs=4, val_fraction=0.2, refine="9,0.1,4")
        + ["--runner=FnApiRunner"]
    )
    return out


def test_clustered_training_writes_verified_bundle(bundle_dir):
    from colorize_tf.bundle import read_bundle

    meta, clusters = read_bundle(str(bundle_dir))
    layers = meta["layers"]
    # epsilon -60 dB: no image reaches 60 dB, so layer 0 prunes nothing and the loop stops
    validation = json.loads((bundle_dir / "split.json").read_text())["validation"]
    assert len(validation) == 2  # 20 % of 10: they stop clusters' training early and never join a cluster
    assert len(layers) == 1 and layers[0]["images"] == N_IMAGES - 2 and layers[0]["removed"] == 0
    members = [m for c in clusters for m in c.members]
    assert 1 <= len(clusters) <= 2 and len(members) == N_IMAGES - 2 and not set(validation) & set(members)
    for c in clusters:
        assert (bundle_dir / "clusters" / c.cluster_id / "regressor.keras").exists()
        assert c.centre.shape == (512,)
    assert meta["params"]["mu"] == 3 and meta["params"]["selection_k"] == 1
    psnr_rows = [json.loads(line) for f in glob.glob(str(bundle_dir / "layers" / "psnrL0-*.jsonl")) for line in open(f)]
    assert sorted(r["image_id"] for r in psnr_rows) == sorted(c for cl in clusters for c in cl.members)
    # each member was measured with its own cluster's model
    owner = {m: c.cluster_id for c in clusters for m in c.members}
    assert all(owner[r["image_id"]] == r["cluster_id"] for r in psnr_rows)
    assert layers[0]["mean_psnr"] == pytest.approx(np.mean([r["psnr"] for r in psnr_rows]), abs=1e-6)


def test_algorithm3_prunes_and_trains_a_second_layer(bundle_dir, features_dir, tmp_path):
    """With epsilon between the layer-0 PSNRs, the best images leave and the rest form layer 1."""
    from colorize_tf.bundle import read_bundle
    from pipelines import train

    first = sorted(
        json.loads(line)["psnr"] for f in glob.glob(str(bundle_dir / "layers" / "psnrL0-*.jsonl")) for line in open(f)
    )
    threshold = (first[-3] + first[-4]) / 2  # 3 of the 8 clustered images reach it
    out = tmp_path / "bundle2"
    train.run(
        clustering_args(
            features_dir,
            out,
            epsilon=-threshold,
            max_layers=2,
            epochs=4,
            val_fraction=0.2,
            root_model=bundle_dir / "root",
        )
        + ["--runner=FnApiRunner"]
    )
    meta, clusters = read_bundle(str(out))
    layers = meta["layers"]
    assert len(layers) == 2 and layers[0]["removed"] >= 1, layers
    assert layers[1]["images"] == layers[0]["images"] - layers[0]["removed"] >= 3
    second = [c for c in clusters if c.layer == 1]
    assert second and sum(len(c.members) for c in second) == layers[1]["images"]
    for c in second:
        assert (out / "clusters" / c.cluster_id / "regressor.keras").exists()
    measured = [json.loads(line) for f in glob.glob(str(out / "layers" / "psnrL1-*.jsonl")) for line in open(f)]
    assert len(measured) == layers[1]["images"]


def test_bundle_colorizes_and_detects_tampering(bundle_dir, tmp_path):
    import shutil

    from colorize_tf.bundle import read_bundle
    from colorize_tf.color import luminance
    from colorize_tf.colorize import ClusteredColorizer
    from colorize_tf.registry import load_colorizer

    col = load_colorizer(str(bundle_dir))
    assert isinstance(col, ClusteredColorizer)
    out = col.colorize(luminance(synthetic_scene(70, 90, seed=77)))
    assert out.rgb.shape == (70, 90, 3)
    assert out.cluster in {c.cluster_id for c in col.clusters}
    copy = tmp_path / "b"
    shutil.copytree(bundle_dir, copy)
    victim = next((copy / "clusters").iterdir()) / "model.json"
    original = victim.read_text()
    victim.write_text(original.replace('"format_version": 1', '"format_version": 1 '))
    with pytest.raises(ValueError, match="altered"):
        read_bundle(str(copy))
    victim.write_text(original)
    read_bundle(str(copy))  # restored: verifies again
    (copy / "root" / "regressor.keras").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        read_bundle(str(copy))


def test_block_ablation_by_configuration(features_dir, tmp_path):
    from colorize_tf.color import luminance
    from colorize_tf.registry import load_colorizer
    from pipelines import train

    out = tmp_path / "daisy_only"
    train.run(
        [
            f"--features={features_dir}",
            f"--output={out}",
            "--use_blocks=daisy",
            "--epochs=2",
            "--refine=0,0,0",
            "--runner=FnApiRunner",
        ]
    )
    meta = json.loads((out / "model.json").read_text())
    assert meta["input_dim"] == 32 and [b["name"] for b in meta["descriptor"]] == ["daisy"]
    col = load_colorizer(str(out))
    assert col.descriptor.names == ["daisy"]
    assert col.colorize(luminance(synthetic_scene(40, 50, seed=1))).rgb.shape == (40, 50, 3)


def test_cluster_regressor_fine_tunes_the_root_and_never_ends_worse(model_dir):
    from colorize_tf.regressor import Regressor, train_regressor

    root = Regressor.load(str(model_dir)).model
    rng = np.random.default_rng(0)
    dim = root.input_shape[-1]
    x = rng.normal(size=(3000, dim)).astype(np.float32)
    uv = (0.05 * np.tanh(x[:, :2])).astype(np.float32)
    val = (x[:500], uv[:500])
    model, rec = train_regressor(x[500:], uv[500:], val=val, epochs=3, init_model=root, learning_rate=1e-3)
    start = rec["warm_start"]["start_val_loss"]
    history = rec["history"]["val_loss"]
    # the kept weights are the better of the start and the best epoch
    assert rec["best_val_loss"] == pytest.approx(min([start] + history), rel=1e-6)
    assert rec["warm_start"]["kept_start"] == (min(history) >= start)
    # the fine-tuned network standardises with the root's statistics, not this data's
    tuned, base = model.get_layer("standardise"), root.get_layer("standardise")
    np.testing.assert_allclose(np.ravel(tuned.mean), np.ravel(base.mean), atol=1e-6)
    np.testing.assert_allclose(np.ravel(tuned.variance), np.ravel(base.variance), rtol=1e-5)
    assert model is not root and np.allclose(
        root.get_weights()[0], Regressor.load(str(model_dir)).model.get_weights()[0]
    )
    # a learning rate of 0 cannot improve: the starting (root) weights are kept
    same, rec0 = train_regressor(x[500:], uv[500:], val=val, epochs=1, init_model=root, learning_rate=0.0)
    assert rec0["warm_start"]["kept_start"]
    for a, b in zip(same.get_weights(), root.get_weights()):
        np.testing.assert_array_equal(a, b)
