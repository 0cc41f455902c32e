"""Image-level records for the convolutional families: shapes, round trip, and the Beam job."""

import json

import numpy as np
import pytest
from conftest import synthetic_scene, write_png


def test_working_shape_never_upsamples_and_keeps_multiples_of_8():
    from colorize_tf.image_records import image_shape

    assert image_shape(480, 640, 256) == (192, 256)
    assert image_shape(100, 50, 256) == (96, 48)  # small images stay small (rounded to multiples of 8)
    assert image_shape(3000, 20, 256) == (256, 8)


def test_example_round_trip_keeps_luminance_and_chroma():
    from colorize_tf.color import rgb_to_yuv
    from colorize_tf.image_records import encode, parse, prepare

    rgb = synthetic_scene(120, 160, seed=3)
    gray, uv = prepare(rgb, side=80)
    assert gray.shape == (64, 80) and gray.dtype == np.uint8 and uv.shape == (64, 80, 2)
    import cv2

    small = rgb_to_yuv(cv2.resize(rgb, (80, 64), interpolation=cv2.INTER_AREA))
    assert np.abs(gray / 255.0 - small[..., 0]).max() <= 0.5 / 255 + 1e-6
    np.testing.assert_allclose(uv.astype(np.float32), small[..., 1:], atol=1e-3)  # float16 storage
    ex = parse(encode("sub/coast_x1", gray, uv))
    assert ex["image_id"].numpy() == b"sub/coast_x1" and ex["scene"].numpy() == b"sub/coast"
    np.testing.assert_allclose(ex["gray"].numpy()[..., 0], gray / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ex["uv"].numpy(), uv.astype(np.float32))
    with pytest.raises(ValueError, match="does not match"):
        encode("x", gray, uv[:10])


@pytest.mark.slow
def test_image_record_job_accounts_for_every_input(tmp_path):
    import tensorflow as tf

    from colorize_tf.image_records import parse
    from pipelines import extract_images
    from pipelines.options import JobFailed

    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        write_png(str(src / f"street_{i}.png"), synthetic_scene(90, 120, seed=i))
    write_png(str(src / "gray.png"), np.repeat(synthetic_scene(40, 40).mean(-1, keepdims=True), 3, -1))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff nope")
    out = tmp_path / "records"
    extract_images.run([f"--input={src}", f"--output={out}", "--side=64", "--runner=FnApiRunner"])
    shards = sorted(str(p) for p in (out / "examples").glob("*.tfrecord.gz"))
    examples = [parse(s) for s in tf.data.TFRecordDataset(shards, compression_type="GZIP")]
    assert sorted(e["image_id"].numpy().decode() for e in examples) == ["street_0", "street_1", "street_2"]
    assert all(e["gray"].shape == (48, 64, 1) and e["scene"].numpy() == b"street" for e in examples)
    dead = [json.loads(line) for f in (out / "dead_letters").glob("*.jsonl") for line in open(f) if line.strip()]
    assert sorted((d["path"].rsplit("/", 1)[-1], d["stage"]) for d in dead) == [
        ("broken.jpg", "decode"),
        ("gray.png", "images"),
    ]
    assert json.loads((out / "config.json").read_text())["side"] == 64
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"junk")
    with pytest.raises(JobFailed, match="no usable image"):
        extract_images.run([f"--input={only_bad}", f"--output={tmp_path / 'r2'}", "--runner=FnApiRunner"])


def test_dataset_crops_and_flips_gray_and_chroma_together(tmp_path):
    import tensorflow as tf

    from colorize_tf.image_records import dataset, encode

    rng = np.random.default_rng(0)
    path = str(tmp_path / "examples-00000.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for i, (h, wd) in enumerate([(40, 56), (24, 32), (48, 48)]):
            gray = rng.integers(0, 256, (h, wd), dtype=np.uint8)
            uv = np.stack([gray / 255.0 - 0.5, np.full_like(gray, i, dtype=np.float64) / 10], -1).astype(np.float16)
            w.write(encode(f"scene_{i}", gray, uv))
    batches = list(dataset([path], crop=32, batch_size=8, augment=True, seed=1))
    ((gray, uv),) = batches
    assert gray.shape == (3, 32, 32, 1) and uv.shape == (3, 32, 32, 2)
    # crops and flips moved gray and chroma together: U was built as gray - 0.5 (float16 storage)
    np.testing.assert_allclose(uv.numpy()[..., 0], gray.numpy()[..., 0] - 0.5, atol=2e-3)
    only = list(dataset([path], crop=32, image_ids={"scene_2"}))
    assert only[0][0].shape[0] == 1 and np.allclose(only[0][1].numpy()[..., 1], 0.2, atol=1e-3)
    # 24x32, under the crop: enlarged to 32x43 (never padded: no mid-gray rows), gray and chroma together
    small = list(dataset([path], crop=32, image_ids={"scene_1"}))[0]
    sg, suv = small[0].numpy()[0, ..., 0], small[1].numpy()[0]
    assert sg.shape == (32, 32) and not np.isclose(sg, 0.5, atol=1e-3).all(axis=1).any()
    np.testing.assert_allclose(suv[..., 0], sg - 0.5, atol=2e-3)
    np.testing.assert_allclose(suv[..., 1], 0.1, atol=1e-3)
    jittered = list(dataset([path], crop=32, batch_size=8, augment=True, jitter=True, seed=1))[0]
    assert not np.allclose(jittered[1].numpy()[..., 0], jittered[0].numpy()[..., 0] - 0.5, atol=2e-3)
    assert jittered[0].numpy().min() >= 0 and jittered[0].numpy().max() <= 1
    # the same seed gives the same augmented batches (stateless draws), another seed other crops;
    # a second pass over one dataset (the next epoch) draws new crops
    again = list(dataset([path], crop=32, batch_size=8, augment=True, jitter=True, seed=1))[0]
    np.testing.assert_array_equal(again[0].numpy(), jittered[0].numpy())
    other = list(dataset([path], crop=32, batch_size=8, augment=True, jitter=True, seed=2))[0]
    assert not np.array_equal(other[0].numpy(), jittered[0].numpy())
    ds = dataset([path], crop=32, batch_size=8, augment=True, jitter=True, seed=1)
    first, second = next(iter(ds))[0].numpy(), next(iter(ds))[0].numpy()
    assert not np.array_equal(first, second)
    with_scene = list(dataset([path], crop=32, batch_size=8, extras=("scene", "labels")))[0]
    assert [s.decode() for s in with_scene[2]["scene"].numpy()] == ["scene", "scene", "scene"]
    assert (with_scene[2]["labels"].numpy() == 255).all()  # written without labels
    # repeats: scene_0 three times, scene_2 left out by the split, each copy cropped and flipped anew
    rep = list(
        dataset([path], crop=16, batch_size=8, augment=True, image_ids={"scene_0", "scene_1"}, repeats={"scene_0": 3})
    )
    ((rg, ruv),) = rep
    assert rg.shape[0] == 4 and np.isclose(ruv.numpy()[..., 1].mean(axis=(1, 2)), 0.0, atol=1e-3).sum() == 3
    copies = [g for g, u in zip(rg.numpy(), ruv.numpy()) if np.isclose(u[..., 1].mean(), 0.0, atol=1e-3)]
    assert not np.array_equal(copies[0], copies[1]) or not np.array_equal(copies[1], copies[2])


def test_whole_photos_at_the_networks_shape_batch_by_shape(tmp_path):
    import tensorflow as tf

    from colorize_tf.image_records import dataset, encode, image_shape

    rng = np.random.default_rng(3)
    path = str(tmp_path / "examples-00000.tfrecord.gz")
    sizes = [(64, 43), (64, 43), (48, 64), (64, 43), (64, 64), (48, 64)]  # 43 -> 48 (the nearest multiple)
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for i, (h, wd) in enumerate(sizes):
            gray = rng.integers(0, 256, (h, wd), dtype=np.uint8)
            uv = np.stack([gray / 255.0 - 0.5, np.full_like(gray, i, dtype=np.float64) / 10], -1).astype(np.float16)
            w.write(encode(f"img_{i}", gray, uv))
    batches = list(dataset([path], batch_size=2, augment=True, shuffle=6, seed=0, multiple=16))
    shapes = sorted(tuple(g.shape[1:3]) for g, _ in batches for _ in range(g.shape[0]))
    assert shapes == sorted(image_shape(h, wd, 64, 16) for h, wd in sizes)  # every photo, as colorization sees it
    assert shapes.count((64, 48)) == 3 and shapes.count((48, 64)) == 2
    for g, uv in batches:
        assert g.shape[0] <= 2 and g.shape[1:3] == uv.shape[1:3]  # one shape per batch
        np.testing.assert_allclose(uv.numpy()[..., 0], g.numpy()[..., 0] - 0.5, atol=0.02)  # resized together
    ids = sorted(round(float(u[..., 1].mean()) * 10) for _, uv in batches for u in uv.numpy())
    assert ids == list(range(6))


def test_labels_travel_with_crops_and_flips(tmp_path):
    import tensorflow as tf

    from colorize_tf.image_records import dataset, encode, prepare_labels

    lut = np.full(256, 255, np.uint8)
    lut[1:4] = [0, 1, 2]  # raw 1..3 -> classes 0..2, 0 = unlabeled
    mask = np.zeros((40, 60), np.uint8)
    mask[:, 30:] = 3
    mask[:20, :30] = 1
    labels = prepare_labels(mask, lut, (20, 30))  # nearest neighbour at half size
    assert labels.shape == (20, 30) and set(np.unique(labels)) == {0, 2, 255}
    assert (labels[:, 15:] == 2).all() and (labels[:10, :15] == 0).all() and (labels[10:, :15] == 255).all()
    with pytest.raises(ValueError, match="one channel"):
        prepare_labels(np.zeros((4, 4, 3), np.uint8), lut, (2, 2))
    gray = np.tile(np.arange(30, dtype=np.uint8) * 8, (20, 1))  # a ramp: left dark, right bright
    uv = np.zeros((20, 30, 2), np.float16)
    path = str(tmp_path / "examples-00000.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        w.write(encode("a_1", gray, uv, labels=labels))
    with pytest.raises(ValueError, match="labels shape"):
        encode("a_1", gray, uv, labels=labels[:5])
    for seed in range(6):  # random crops and flips: the right half (class 2) stays with the bright pixels
        g, _, extra = next(iter(dataset([path], crop=24, augment=True, seed=seed, extras=("labels",))))
        g, lab = g.numpy()[0, ..., 0], extra["labels"].numpy()[0]
        # 20x30 under the 24 crop: enlarged to 24x36 (labels by nearest neighbour), no padding
        assert g.shape == (24, 24) and (lab != 255).any()
        bright, dark = g >= 16 * 8 / 255, g < 14 * 8 / 255  # away from the class edge (bilinear vs nearest)
        assert (lab[bright] == 2).all() and (lab[dark] != 2).all()


@pytest.mark.slow
def test_image_record_job_adds_labels_where_a_mask_exists(tmp_path):
    import tensorflow as tf
    from PIL import Image

    from colorize_tf.image_records import parse
    from pipelines import extract_images
    from pipelines.options import UsageError

    root = tmp_path / "labelled"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("sky\nground\n")
    for i in range(3):
        write_png(str(root / "images" / f"street_{i}.png"), synthetic_scene(64, 96, seed=i))
    mask = np.zeros((64, 96), np.uint8)
    mask[32:] = 1
    mask[:, :8] = 255  # unlabeled strip
    Image.fromarray(mask).save(root / "masks" / "street_0.png")
    Image.fromarray(mask[:40]).save(root / "masks" / "street_1.png")  # does not match its image
    out = tmp_path / "records"
    args = [f"--input={root / 'images'}", f"--output={out}", "--side=48", "--runner=FnApiRunner"]
    extract_images.run(args + [f"--labels={root}"])
    assert json.loads((out / "config.json").read_text())["label_classes"] == ["sky", "ground"]
    shards = sorted(str(p) for p in (out / "examples").glob("*.tfrecord.gz"))
    labels = {
        e["image_id"].numpy().decode(): e["labels"].numpy()[..., 0]
        for e in map(parse, tf.data.TFRecordDataset(shards, compression_type="GZIP"))
    }
    assert sorted(labels) == ["street_0", "street_2"]  # street_1's mask is wrong: a dead letter
    assert labels["street_0"].shape == (32, 48)
    assert (labels["street_0"][:15, 5:] == 0).all() and (labels["street_0"][17:, 5:] == 1).all()
    assert (labels["street_0"][:, :3] == 255).all()
    assert (labels["street_2"] == 255).all()  # no mask: kept, without labels
    dead = [json.loads(line) for f in (out / "dead_letters").glob("*.jsonl") for line in open(f) if line.strip()]
    assert [(d["path"].rsplit("/", 1)[-1], d["stage"]) for d in dead] == [("street_1.png", "labels")]
    assert "(40, 96)" in dead[0]["reason"]
    with pytest.raises(UsageError, match="layout"):
        extract_images.run(args + [f"--labels={tmp_path}"])


def test_source_repeats_balance_epoch_shares():
    from colorize_tf.splits import source, source_repeats

    assert source("people/images/0001") == "people" and source("coast_arnat59") == ""
    ids = [f"big/{i}" for i in range(400)] + [f"small/{i}" for i in range(100)]
    as_listed = source_repeats(ids, 1.0)
    assert set(as_listed.values()) == {1}
    equal = source_repeats(ids, 0.0)
    assert sum(equal[i] for i in ids if i.startswith("small")) == 400  # the same share as the big source
    half = source_repeats(ids, 0.5)  # shares in proportion to sqrt(n): 20 : 10, so small is seen 2x per image
    assert sum(half[i] for i in ids if i.startswith("big")) == 400
    assert sum(half[i] for i in ids if i.startswith("small")) == 200
    odd = source_repeats(ids[:400] + ids[400:430], 0.5)  # rate sqrt(400 / 30) = 3.65: 3 or 4 per image
    assert set(odd[i] for i in ids[400:430]) == {3, 4} and sum(odd[i] for i in ids[400:430]) == round(30 * 3.6515)
    assert odd == source_repeats(ids[:400] + ids[400:430], 0.5)  # reproducible
    with pytest.raises(ValueError, match="power"):
        source_repeats(ids, 1.5)


def test_training_order_mixes_records_written_in_listing_order(tmp_path):
    import tensorflow as tf

    from colorize_tf.image_records import dataset, encode

    path = str(tmp_path / "examples-00000.tfrecord.gz")
    gray = np.zeros((8, 8), np.uint8)
    with tf.io.TFRecordWriter(path, options="GZIP") as w:  # one source after the other, as a job writes them
        for src in ("a", "b", "c", "d"):
            for i in range(25):
                uv = np.full((8, 8, 2), ord(src) / 1000.0, np.float16)
                w.write(encode(f"{src}/img_{i}", gray, uv))
    (batch,) = list(dataset([path], crop=8, batch_size=100, shuffle=100, seed=3))
    sources = [chr(int(round(v * 1000))) for v in batch[1].numpy()[:, 0, 0, 0]]
    assert sorted(sources) == sorted("abcd" * 25)
    first = sources[:20]  # a full buffer: the first batch of 20 already holds every source
    assert set(first) == set("abcd"), first
    again = list(dataset([path], crop=8, batch_size=100, shuffle=100, seed=3))[0][1].numpy()
    np.testing.assert_array_equal(again, batch[1].numpy())  # reproducible
