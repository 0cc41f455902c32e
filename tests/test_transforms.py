"""Beam steps in TestPipeline with assert_that (fast tier: small in-memory pipelines, no jobs)."""

import os
import zipfile

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline as BeamPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import synthetic_scene, write_png


def _images(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    write_png(str(root / "a.png"), synthetic_scene(40, 50, seed=1))
    write_png(str(root / "sub" / "b.png"), synthetic_scene(40, 50, seed=2))
    (root / "notes.txt").write_text("not an image")
    return root


def test_list_file_entries_resolve_and_missing_ones_are_dead_letters(tmp_path):
    from transforms.io import DEAD, ReadImages

    root = _images(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_text("a\nsub/b.png\n\nmissing_one\n")  # entries without extension match ENTRY.*
    with BeamPipeline() as p:
        read = p | ReadImages(str(listing), str(root))
        assert_that(
            read["files"] | beam.Map(lambda f: (f.image_id, len(f.data) > 100)),
            equal_to([("a", True), ("sub/b", True)]),
            label="files",
        )
        assert_that(
            read[DEAD] | beam.Map(lambda d: "missing_one" in d["reason"] or "missing_one" in d["path"]),
            equal_to([True]),
            label="dead",
        )


def test_zip_input_yields_its_members(tmp_path):
    from transforms.io import DEAD, ReadImages

    root = _images(tmp_path)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(root / "a.png", "x/a.png")
        zf.write(root / "sub" / "b.png", "b.png")
        zf.writestr("readme.txt", "hello")
    with BeamPipeline() as p:
        read = p | ReadImages(str(archive), None)
        # members are read with ids under the archive's stem; a non-image member is read too and becomes
        # a decode dead letter downstream (every member accounted for)
        assert_that(
            read["files"] | beam.Map(lambda f: (f.image_id, f.data[:4])),
            equal_to([("photos/x/a", b"\x89PNG"), ("photos/b", b"\x89PNG"), ("photos/readme", b"hell")]),
            label="files",
        )
        assert_that(read[DEAD] | beam.Map(lambda d: d["reason"].split(":")[0]), equal_to([]), label="dead")


def test_extract_features_dofn_samples_true_chroma_and_dead_letters(tmp_path):
    from colorize_tf.color import rgb_to_yuv
    from colorize_tf.features import DEFAULT_BLOCKS, Descriptor
    from colorize_tf.records import parse_example
    from transforms.features import IMAGES, ExtractFeaturesDoFn
    from transforms.io import DEAD, ImageFile

    truth = synthetic_scene(40, 50, seed=3)
    write_png(str(tmp_path / "c.png"), truth)
    good = ImageFile(str(tmp_path / "c.png"), "c.png", (tmp_path / "c.png").read_bytes())
    bad = ImageFile("broken.jpg", "broken.jpg", b"\xff\xd8\xff garbage")
    config = Descriptor.from_names(list(DEFAULT_BLOCKS)).config()

    def check_samples(examples):
        (ex,) = [parse_example(e) for e in examples]
        yx = ex["yx"]
        expected = rgb_to_yuv(np.round(truth * 255)[yx[:, 0], yx[:, 1]] / 255.0)[:, 1:]
        assert ex["x"].shape == (64, 81) and np.allclose(ex["uv"], expected, atol=1e-5)

    with BeamPipeline() as p:
        out = (
            p
            | beam.Create([good.path, bad.path])
            | beam.Map(lambda path: good if path == good.path else bad)
            | beam.ParDo(ExtractFeaturesDoFn(config, 64, gist_size=32)).with_outputs(IMAGES, DEAD, main="x")
        )
        assert_that(out.x, check_samples, label="samples")
        assert_that(
            out[IMAGES] | beam.Map(lambda r: (r["image_id"], r["n_samples"], len(r["gist"]))),
            equal_to([("c", 64, 512)]),
            label="rows",
        )
        assert_that(
            out[DEAD] | beam.Map(lambda d: (d["path"], d["stage"])), equal_to([("broken.jpg", "decode")]), label="dead"
        )


def test_key_by_cluster_keeps_members_only():
    from colorize_tf.records import encode_example
    from transforms.training import KeyByClusterDoFn

    examples = [encode_example(i, [[0.0]], [[0.0, 0.0]], [[0, 0]], 1, 1) for i in ("a", "b", "c")]
    with BeamPipeline() as p:
        keyed = (
            p
            | beam.Create(examples)
            | beam.ParDo(KeyByClusterDoFn({"a": "L0C00", "c": "L0C01"}))
            | beam.Map(lambda kv: (kv[0], len(kv[1]) > 0))
        )
        assert_that(keyed, equal_to([("L0C00", True), ("L0C01", True)]))


def test_write_jsonl_and_read_back(tmp_path):
    from transforms.io import read_jsonl, write_jsonl

    with BeamPipeline() as p:
        write_jsonl(p | beam.Create([{"b": 2, "a": 1}, {"a": 3}]), str(tmp_path / "rows"), "Rows")
    rows = read_jsonl(str(tmp_path / "rows-*.jsonl"))
    assert sorted(r["a"] for r in rows) == [1, 3]
    assert os.listdir(tmp_path) and all(".partial" not in n for n in os.listdir(tmp_path))


def test_gray_content_in_a_colour_file_cannot_be_scored(tmp_path):
    from colorize_tf.metrics import has_colour
    from transforms.io import decode_colour

    gray_rgb = np.repeat((synthetic_scene(30, 40, seed=4).mean(-1, keepdims=True) * 255).astype(np.uint8), 3, -1)
    write_png(str(tmp_path / "g.png"), gray_rgb / 255.0)
    write_png(str(tmp_path / "c.png"), synthetic_scene(30, 40, seed=4))
    assert not has_colour(gray_rgb) and has_colour(synthetic_scene(30, 40, seed=4))
    pic, dead = decode_colour((tmp_path / "g.png").read_bytes(), "g.png", "evaluate")
    assert pic is None and dead["stage"] == "evaluate" and "no colour ground truth" in dead["reason"]
    pic, dead = decode_colour((tmp_path / "c.png").read_bytes(), "c.png", "evaluate")
    assert dead is None and pic.rgb.shape == (30, 40, 3)
