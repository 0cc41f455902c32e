"""Archive-job throughput for 1 and 2 workers, and peak memory on a large scan.

    python benchmarks/archive_throughput.py --model runs/sf_model [--input ../shared/data/archive_bw] \
        [--synthetic 40] [--big 6000x4000]

* throughput: images/s of ``pipelines.colorize_archive`` (FnApiRunner, multi_threading) on `--input`
  and on `--synthetic` generated 256x256 images, with 1 and 2 workers (fresh output folder each time;
  the time includes job start-up, the figure a user sees);
* peak RSS: the archive job on one generated `--big` image in a child process (ru_maxrss).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def job(args, inp, out, workers, extra=()):
    cmd = [
        sys.executable,
        "-m",
        "pipelines.colorize_archive",
        f"--input={inp}",
        f"--model={args.model}",
        f"--output={out}",
        "--runner=FnApiRunner",
        "--direct_running_mode=multi_threading",
        f"--direct_num_workers={workers}",
        *extra,
    ]
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.time() - t0


def count_done(out):
    import glob
    import json

    summ = sorted(glob.glob(os.path.join(out, "_manifest", "summary-*.json")))
    return json.load(open(summ[-1]))["done"]


def synthetic_folder(path, n, side=256):
    from PIL import Image
    from skimage import data

    os.makedirs(path, exist_ok=True)
    photo = data.astronaut().mean(-1)
    rng = np.random.default_rng(0)
    for i in range(n):
        y, x = rng.integers(0, photo.shape[0] - side, 2)
        Image.fromarray(photo[y : y + side, x : x + side].astype(np.uint8)).save(os.path.join(path, f"s{i:04d}.png"))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--input", default=None)
    p.add_argument("--synthetic", type=int, default=200)
    p.add_argument("--big", default="6000x4000")
    p.add_argument("--chroma_max_side", type=int, default=0)
    args = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="archive_bench_")
    extra = [f"--chroma_max_side={args.chroma_max_side}"] if args.chroma_max_side else []
    sets = []
    if args.input:
        sets.append((args.input, args.input))
    if args.synthetic:
        syn = os.path.join(tmp, "synthetic")
        synthetic_folder(syn, args.synthetic)
        sets.append((f"{args.synthetic} x 256x256", syn))
    print(f"{'input':<40} {'workers':>7} {'images':>7} {'seconds':>8} {'images/s':>9}")
    for label, inp in sets:
        rates = {}
        for workers in (1, 2):
            out = os.path.join(tmp, f"out_{workers}")
            shutil.rmtree(out, ignore_errors=True)
            sec = job(args, inp, out, workers, extra)
            n = count_done(out)
            rates[workers] = n / sec
            print(f"{label[-40:]:<40} {workers:>7} {n:>7} {sec:>8.1f} {rates[workers]:>9.2f}")
        print(f"{'':<40} 2-worker / 1-worker throughput ratio: {rates[2] / rates[1]:.2f}")
    if args.big:
        from PIL import Image

        w, h = (int(v) for v in args.big.split("x"))
        big = os.path.join(tmp, "big")
        os.makedirs(big)
        yy, xx = np.mgrid[0:h, 0:w]
        img = (127 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 40 * (yy / h)).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(big, "scan.png"))
        # a fresh wrapper process whose only child is the job: its children's ru_maxrss is the job's peak
        cmd = [
            sys.executable,
            "-m",
            "pipelines.colorize_archive",
            f"--input={big}",
            f"--model={args.model}",
            f"--output={os.path.join(tmp, 'out_big')}",
            "--runner=FnApiRunner",
            *extra,
        ]
        probe = (
            "import resource, subprocess, sys, time; t = time.time(); "
            f"subprocess.run({cmd!r}, check=True, capture_output=True); "
            "print(time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True)
        sec, peak_kb = res.stdout.split()
        print(f"{w}x{h} scan: {float(sec):.1f} s, peak RSS {int(peak_kb) / 1024:.0f} MB")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
