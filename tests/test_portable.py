"""The jobs on Beam's portable runner: a local job service and an EXTERNAL worker pool in separate processes
(real pickling of DoFns and artifact staging, as on Flink / Dataflow), no network needed."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open")


@pytest.fixture(scope="module")
def portable(tmp_path_factory):
    env = dict(os.environ)
    # the worker pool starts workers with plain `python`: make it this interpreter
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    job_port, pool_port = _free_port(), _free_port()
    logs = tmp_path_factory.mktemp("portable")
    procs = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          "--port", str(job_port)], cwd=ROOT, env=env,
                         stdout=open(logs / "job.log", "w"), stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          "--service_port", str(pool_port)], cwd=ROOT, env=env,
                         stdout=open(logs / "pool.log", "w"), stderr=subprocess.STDOUT),
    ]
    try:
        _wait_port(job_port)
        _wait_port(pool_port)
        yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
               f"--environment_config=localhost:{pool_port}"]
    finally:
        for p in procs:
            p.kill()
            p.wait()


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
    summary = colorize_archive.run([f"--input={imgs}", f"--model={model_dir}", f"--output={out}"] + portable)
    assert summary["inputs"] == 4 and summary["done"] == 3 and summary["failed"] == 1
    assert sorted(p.name for p in out.glob("*.png")) == ["p0.png", "p1.png", "p2.png"]
