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
import sys

from apache_beam.runners.portability import local_job_service_main
from apache_beam.runners.portability.fn_api_runner import fn_runner


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
