"""The jobs on Beam's portable runner: a local job service and an EXTERNAL worker pool in separate processes
(real pickling of DoFns and artifact staging, as on Flink / Dataflow), no network needed."""

import json
import os

import pytest
from conftest import clustering_args

from benchmarks.job_service import portable_services


@pytest.fixture(scope="module")
def portable(tmp_path_factory):
    """Beam's job service (one worker per job, as local_job_service_main) and an EXTERNAL worker pool."""
    with portable_services(1, str(tmp_path_factory.mktemp("portable"))) as args:
        yield args


@pytest.fixture(scope="module")
def portable2(tmp_path_factory):
    """The same with two workers per job (benchmarks/job_service.py), like a two-slot Flink cluster."""
    with portable_services(2, str(tmp_path_factory.mktemp("portable2"))) as args:
        yield args


def test_feature_and_archive_jobs_on_portable_runner(portable, model_dir, tmp_path):
    from conftest import synthetic_scene, write_png

    from pipelines import colorize_archive, extract_features

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        write_png(str(imgs / f"p{i}.png"), synthetic_scene(48, 64, seed=500 + i))
    (imgs / "bad.png").write_bytes(b"nope")
    feats = tmp_path / "feats"
    extract_features.run([f"--input={imgs}", f"--output={feats}", "--samples_per_image=100"] + portable)
    cfg = json.loads((feats / "config.json").read_text())
    assert cfg["dim"] == 81 and list((feats / "samples").glob("samples-*.tfrecord.gz"))
    out = tmp_path / "out"
    summary = colorize_archive.run(
        [f"--input={imgs}", f"--model={model_dir}", f"--output={out}", "--max_failed_fraction=0.5"] + portable
    )
    assert summary["inputs"] == 4 and summary["done"] == 3 and summary["failed"] == 1
    assert sorted(p.name for p in out.glob("*.png")) == ["p0.png", "p1.png", "p2.png"]


def test_training_evaluation_and_parser_jobs_on_portable_runner(portable, features_dir, model_dir, tmp_path):
    from test_parser import write_generic

    from colorize_tf.bundle import read_bundle
    from pipelines import evaluate, train, train_parser

    model = tmp_path / "model"
    train.run([f"--features={features_dir}", f"--output={model}", "--epochs=2", "--tune_images=2"] + portable)
    assert json.loads((model / "model.json").read_text())["input_dim"] == 81
    bundle = tmp_path / "bundle"
    train.run(clustering_args(features_dir, bundle, root_model=model) + portable)
    _, clusters = read_bundle(str(bundle))
    assert sum(len(c.members) for c in clusters) >= 6
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    from conftest import synthetic_scene, write_png

    write_png(str(imgs / "a.png"), synthetic_scene(40, 56, seed=801))
    report = evaluate.run([f"--input={imgs}", f"--model={bundle}", f"--output={tmp_path / 'report'}"] + portable)
    assert report["images"] == 1 and report["per_image"][0]["cluster"]
    data = tmp_path / "labelled"
    write_generic(str(data), n=8)
    metrics = train_parser.run(
        [
            f"--data={data}",
            f"--output={tmp_path / 'parser'}",
            "--epochs=1",
            "--base_channels=8",
            "--crop=64",
            "--batch_size=4",
            "--work_size=64",
        ]
        + portable
    )
    saved = json.loads((tmp_path / "parser" / "parser.json").read_text())
    # the examples prepared on the portable workers reached training and the held-out scoring
    assert saved["metrics"]["raw"]["images"] == metrics["raw"]["images"] > 0
    assert saved["training"]["epochs"] == 1 and sum(saved["training"]["class_pixels"]) > 0


@pytest.mark.parametrize("runner", ["portable", "multi_processing"])
def test_cluster_training_fans_out_over_worker_processes(runner, request, features_dir, model_dir, tmp_path):
    """Four clusters, two workers: the per-cluster training step runs in more than one worker process."""
    from colorize_tf.bundle import read_bundle
    from pipelines import train

    extra = (
        request.getfixturevalue("portable2")
        if runner == "portable"
        else ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )
    bundle = tmp_path / "bundle"
    train.run(
        [
            f"--features={features_dir}",
            f"--output={bundle}",
            "--adaptive_clustering",
            "--n0=4",
            "--mu=1",
            "--epsilon=-60",
            "--max_layers=1",
            "--epochs=1",
            f"--root_model={model_dir}",
        ]
        + extra
    )
    _, clusters = read_bundle(str(bundle))
    rows = [json.loads(line) for line in (bundle / "layers" / "training_summaryL0.jsonl").read_text().splitlines()]
    assert len(rows) == len(clusters) >= 3
    workers = {r["worker"] for r in rows}
    assert len(workers) >= 2, workers
    assert str(os.getpid()) not in {w.split(":")[1] for w in workers}  # never in the launching process
