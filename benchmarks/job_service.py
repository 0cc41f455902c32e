"""Beam's local job service with N workers per job.

The stock ``apache_beam.runners.portability.local_job_service_main`` executes every job on a single SDK
worker; Flink or Dataflow give a job many. This wrapper sets the number of workers its embedded runner
uses, so the portable path (job service + EXTERNAL worker pool, separate worker processes) can show
fan-out and worker scaling on one machine:

    python -m benchmarks.job_service --workers 2 --port 8099 &
    python -m apache_beam.runners.worker.worker_pool_main --service_port 50000 &
    python -m pipelines.extract_features ... --runner=PortableRunner --job_endpoint=localhost:8099 \\
        --environment_type=EXTERNAL --environment_config=localhost:50000
"""

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time

from apache_beam.runners.portability import local_job_service_main
from apache_beam.runners.portability.fn_api_runner import fn_runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not open")


@contextlib.contextmanager
def portable_services(workers, log_dir):
    """Start a job service (Beam's own for 1 worker, this wrapper for more) and an EXTERNAL worker pool;
    yields the pipeline arguments that submit to them; stops both on exit."""
    env = dict(os.environ)
    # the worker pool starts workers with plain `python`: make it this interpreter
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    job_port, pool_port = free_port(), free_port()
    if workers == 1:
        job_service = ["apache_beam.runners.portability.local_job_service_main"]
    else:
        job_service = ["benchmarks.job_service", f"--workers={workers}"]
    os.makedirs(log_dir, exist_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", *job_service, "--port", str(job_port)],
            cwd=ROOT,
            env=env,
            stdout=open(os.path.join(log_dir, "job.log"), "w"),
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", "--service_port", str(pool_port)],
            cwd=ROOT,
            env=env,
            stdout=open(os.path.join(log_dir, "pool.log"), "w"),
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        wait_port(job_port)
        wait_port(pool_port)
        yield [
            "--runner=PortableRunner",
            f"--job_endpoint=localhost:{job_port}",
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{pool_port}",
        ]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main(argv=None):
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--workers", type=int, default=1)
    args, rest = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    init = fn_runner.FnApiRunner.__init__

    def with_workers(self, *a, **k):
        init(self, *a, **k)
        self._num_workers = args.workers

    fn_runner.FnApiRunner.__init__ = with_workers
    local_job_service_main.run(rest)


if __name__ == "__main__":
    main()
