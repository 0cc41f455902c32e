"""Jobs on remote-style paths: features, models, inputs and outputs on an object-store-like Beam filesystem
(``fakeremote://``, see remote_fs.py). Models are read through FileSystems and cached per worker process."""

import json
import os

import numpy as np
from conftest import clustering_args, synthetic_scene, write_png
from remote_fs import remote


def test_fs_helpers_copy_and_cache(tmp_path):
    from transforms.fs import cache_root, copy_tree, list_tree, local_copy, read_json, write_json

    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "model.json").write_text("{}")
    (src / "a" / "b" / "w.bin").write_bytes(b"\x00\x01" * 1000)
    dst = remote(tmp_path / "bucket" / "m")
    assert copy_tree(str(src), dst) == 2
    assert list_tree(dst) == ["a/b/w.bin", "model.json"] == list_tree(str(src))
    write_json(dst + "/extra.json", {"x": 1})
    assert read_json(dst + "/extra.json") == {"x": 1}
    local = local_copy(dst)
    assert local.startswith(cache_root()) and sorted(os.listdir(local)) == ["a", "extra.json", "model.json"]
    assert open(os.path.join(local, "a", "b", "w.bin"), "rb").read() == b"\x00\x01" * 1000
    assert local_copy(dst) == local  # once per process
    single = local_copy(dst + "/extra.json")
    assert json.load(open(single)) == {"x": 1}
    assert local_copy(str(src)) == str(src)  # local paths are used in place


def test_train_archive_and_evaluate_on_remote_paths(features_dir, tmp_path):
    from colorize_tf.regressor import read_metadata
    from pipelines import colorize_archive, evaluate, train
    from transforms.fs import copy_tree, local_copy

    bucket = tmp_path / "bucket"
    feats = remote(bucket / "features")
    copy_tree(str(features_dir), feats)
    model = remote(bucket / "model")
    train.run([f"--features={feats}", f"--output={model}", "--epochs=2", "--tune_images=2", "--runner=FnApiRunner"])
    meta = read_metadata(str(bucket / "model"))
    assert meta["input_dim"] == 81 and (bucket / "model" / "regressor.keras").exists()
    summary_rows = [json.loads(x) for x in open(bucket / "model" / "training_summary.jsonl")]
    assert summary_rows[0]["model_dir"] == model and ":" in summary_rows[0]["worker"]

    scans = bucket / "scans"
    scans.mkdir()
    for i in range(2):
        write_png(str(scans / f"p{i}.png"), synthetic_scene(40, 56, seed=700 + i))
    (scans / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = remote(bucket / "out")
    summary = colorize_archive.run(
        [
            f"--input={remote(scans)}",
            f"--model={model}",
            f"--output={out}",
            "--max_failed_fraction=0.5",
            "--runner=FnApiRunner",
        ]
    )
    assert (summary["inputs"], summary["done"], summary["failed"]) == (3, 2, 1)
    assert sorted(p.name for p in (bucket / "out").glob("*.png")) == ["p0.png", "p1.png"]
    # no temporary or lock object left (the test store keeps empty local folders; object stores have none)
    assert not [
        p
        for p in (bucket / "out").rglob("*")
        if p.is_file() and (".partial" in p.name or "/tmp-" in str(p) or p.name.startswith("lock"))
    ]

    report = evaluate.run(
        [
            f"--input={remote(scans)}",
            f"--model={model}",
            f"--output={remote(bucket / 'report')}",
            "--no_pictures",
            "--runner=FnApiRunner",
        ]
    )
    assert report["images"] == 2 and np.isfinite(report["mean_psnr"])
    assert json.load(open(bucket / "report" / "report.json"))["images"] == 2
    # the worker read the model through its local cache, byte for byte
    cached = local_copy(model)
    assert (
        open(os.path.join(cached, "regressor.keras"), "rb").read()
        == (bucket / "model" / "regressor.keras").read_bytes()
    )


def test_clustered_training_writes_bundle_remotely(features_dir, model_dir, tmp_path):
    from colorize_tf.bundle import read_bundle
    from pipelines import train

    bucket = tmp_path / "bucket"
    out = remote(bucket / "bundle")
    train.run(clustering_args(features_dir, out, val_fraction=0.2, root_model=model_dir) + ["--runner=FnApiRunner"])
    meta, clusters = read_bundle(str(bucket / "bundle"))  # every checksum verified against the remote files
    assert len(clusters) >= 1 and "root/model.json" in meta["files"]
    assert all(f"clusters/{c.cluster_id}/model.json" in meta["files"] for c in clusters)


def test_archive_temporaries_of_a_killed_run_are_removed_on_an_object_store(model_dir, tmp_path):
    from pipelines import colorize_archive
    from transforms.fs import write_atomically

    bucket = tmp_path / "bucket"
    scans = bucket / "scans"
    scans.mkdir(parents=True)
    write_png(str(scans / "p0.png"), synthetic_scene(40, 56, seed=710))
    out = remote(bucket / "out")
    # what a killed run leaves: objects under its temporary prefix (object stores have no folders)
    write_atomically(f"{out}/_manifest/tmp-20200101T000000000000-dead00/a/b.png", b"half an output")
    write_atomically(f"{out}/wedding.partial-1950.png", b"a user's file")
    summary = colorize_archive.run(
        [f"--input={remote(scans)}", f"--model={model_dir}", f"--output={out}", "--runner=FnApiRunner"]
    )
    assert summary["done"] == 1
    assert not list((bucket / "out" / "_manifest").rglob("tmp-*/**/*.png"))
    assert (bucket / "out" / "wedding.partial-1950.png").read_bytes() == b"a user's file"
