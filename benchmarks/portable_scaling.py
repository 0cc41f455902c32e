"""Worker scaling on the portable runner: the feature job and the archive job with 1 and 2 workers.

    python benchmarks/portable_scaling.py --model runs/sf_model_sem --input ../shared/data/siftflow/test.txt \
        --list_root ../shared/data/siftflow/images

Each run gets a fresh job service (``benchmarks/job_service.py``: N workers per job) and an EXTERNAL
worker pool, i.e. separate worker processes with real pickling and artifact staging, as on Flink. Times
are wall clock from submission to completion (worker start-up included); the ratio is
throughput(2 workers) / throughput(1 worker). Without ``--input``, 200 256x256 crops of a scikit-image
photo are generated.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.archive_throughput import synthetic_folder  # noqa: E402
from benchmarks.job_service import portable_services  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="Model for the archive job (its descriptor is used for features).")
    p.add_argument("--input", default=None)
    p.add_argument("--list_root", default=None)
    p.add_argument("--synthetic", type=int, default=200)
    p.add_argument("--workers", default="1,2")
    args = p.parse_args(argv)
    from pipelines import colorize_archive, extract_features

    tmp = tempfile.mkdtemp(prefix="portable_scaling_")
    inp = args.input
    if not inp:
        inp = os.path.join(tmp, "images")
        synthetic_folder(inp, args.synthetic)
    common = [f"--input={inp}"] + ([f"--list_root={args.list_root}"] if args.list_root else [])
    meta = json.load(open(os.path.join(args.model, "model.json")))
    names = [b["name"] for b in meta["descriptor"]]
    feature_args = [f"--blocks={','.join(names)}"]
    if "semantic" in names:  # the model carries its parser
        feature_args.append(f"--parser={os.path.join(args.model, 'parser')}")
    results = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        with portable_services(workers, os.path.join(tmp, f"logs{workers}")) as runner:
            t0 = time.time()
            extract_features.run(
                common + [f"--output={os.path.join(tmp, f'feat{workers}')}", "--num_shards=4"] + feature_args + runner
            )
            t_feat = time.time() - t0
            feats = json.load(open(os.path.join(tmp, f"feat{workers}", "config.json")))
            t0 = time.time()
            summary = colorize_archive.run(
                common + [f"--model={args.model}", f"--output={os.path.join(tmp, f'out{workers}')}"] + runner
            )
            t_arch = time.time() - t0
        results[workers] = (summary["done"], t_feat, t_arch)
        print(
            f"workers {workers}: features {summary['inputs']} images in {t_feat:.1f} s "
            f"({summary['inputs'] / t_feat:.2f} images/s, {feats['dim']}-d); archive {summary['done']} images in "
            f"{t_arch:.1f} s ({summary['done'] / t_arch:.2f} images/s)",
            flush=True,
        )
    if 1 in results and 2 in results:
        (_, f1, a1), (_, f2, a2) = results[1], results[2]
        print(f"2-worker / 1-worker throughput ratio: feature job {f1 / f2:.2f}, archive job {a1 / a2:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
