"""Seconds per image for colorization, split by stage, with peak memory (median of several runs).

    python benchmarks/speed.py [--model shipped:general] [--sizes 256,512,1024,2048,6000x4000] [--runs 7]

Each size runs in a fresh process (so its peak RSS is its own): scikit-image's astronaut photo resized to the
size, gray array in -> 8-bit colour array out through `colorize_tf.colorize.colorize_image` at the model's
default working side (``--work_side 0``: full resolution). Columns: total wall time, then the stages (the
reduction to the working side, parser + cluster selection, descriptors, network, refinement, guided
upsampling + recombination at full resolution), and the process's peak RSS. Model loading is printed
once, apart. The paper's Matlab times (Table II) are 6.780 / 17.413 / 63.142 s for 256 / 512 / 1024.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorize_tf.color import luminance  # noqa: E402
from colorize_tf.features import sample_pixels  # noqa: E402
from colorize_tf.registry import ColorizeSettings, load_colorizer  # noqa: E402
from pipelines.options import refine_arg  # noqa: E402

STAGES = ("reduce", "parser", "features", "inference", "refinement", "recombine")


def parse_size(text):
    """'1024' -> (1024, 1024); '6000x4000' -> (4000, 6000) as (height, width)."""
    w, _, h = text.partition("x")
    return int(h or w), int(w)


def one_size(args, size):
    """Measure one size in this process: a dict of median seconds per stage, total, load, peak RSS MB."""
    from skimage import data

    from colorize_tf.colorize import colorize_image

    t0 = time.perf_counter()
    col = load_colorizer(
        args.model,
        ColorizeSettings(refine=args.refine, tile=args.tile, stride=args.stride, runtime=args.runtime),
    )
    load = time.perf_counter() - t0
    h, w = parse_size(size)
    small = luminance(data.astronaut() / 255.0).astype(np.float32)  # (the input made without a large float copy)
    gray = np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    colorize_image(col, gray, args.work_side, dtype=np.uint8)  # warm-up (graph tracing, caches)
    runs = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = colorize_image(col, gray, args.work_side, dtype=np.uint8)
        wall = time.perf_counter() - t0
        t = out.timing
        stages = {k: getattr(t, k) for k in STAGES[1:]}
        stages["reduce"] = max(0.0, wall - t.total)
        runs.append(dict(stages, total=wall))
    med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    med["load"] = load
    med["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    med["describe"] = col.describe()
    return med


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shipped:general")
    p.add_argument("--sizes", default="256,512,1024,2048,6000x4000")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--refine", type=refine_arg, default=None, help="Override the model's refinement 'D,SC,SS[,SCALE]'.")
    p.add_argument("--stride", type=int, default=None, help="Prediction stride (default: the colorizer's).")
    p.add_argument("--work_side", type=int, default=None, help="Working side (default: the family's; 0 = full).")
    p.add_argument("--runtime", choices=["keras", "numpy"], default="keras")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(one_size(args, args.one)))
        return 0
    rest = ["--model", args.model, "--runs", str(args.runs), "--tile", str(args.tile), "--runtime", args.runtime]
    for flag, value in (("--stride", args.stride), ("--work_side", args.work_side)):
        rest += [flag, str(value)] if value is not None else []
    if args.refine is not None:
        r = args.refine
        rest += ["--refine", f"{r.diameter},{r.sigma_color},{r.sigma_space},{r.scale}"]
    print(f"{'size':>10} {'total':>7} " + " ".join(f"{k:>10}" for k in STAGES) + f" {'peak RSS MB':>11}")
    col = None
    for size in args.sizes.split(","):
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), *rest, "--one", size], capture_output=True, text=True
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{size:>10} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(line[7:])
        if col is None:
            col = r["describe"]
            print(f"# model {args.model}: {col}; load {r['load']:.2f} s (first process)")
        print(f"{size:>10} {r['total']:7.3f} " + " ".join(f"{r[k]:10.3f}" for k in STAGES) + f" {r['rss_mb']:11.0f}")
    col = load_colorizer(args.model, ColorizeSettings(refine=args.refine, tile=args.tile, stride=args.stride))
    photo = __import__("skimage.data", fromlist=["astronaut"]).astronaut()
    if not hasattr(col, "descriptor"):  # image-level families have no per-pixel descriptor
        return 0
    # training-side descriptor throughput (library level, one core)
    gray = luminance(cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA) / 255.0)
    t0 = time.perf_counter()
    n = 20
    for i in range(n):
        col.descriptor.compute(gray, sample_pixels(gray, 2048, seed=i))
    print(f"training descriptors (2048 samples, 256x256): {n / (time.perf_counter() - t0):.1f} images/s per core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
