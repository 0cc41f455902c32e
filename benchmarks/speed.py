"""Seconds per image for colorization, split by stage (median of several runs).

    python benchmarks/speed.py --model runs/sf_model [--sizes 256,512,1024] [--runs 5]

Uses scikit-image's astronaut photo resized to each size. The paper's Matlab
times (Table II) are 6.780 / 17.413 / 63.142 s for 256 / 512 / 1024.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorize_tf.color import luminance  # noqa: E402
from colorize_tf.features import sample_pixels  # noqa: E402
from colorize_tf.registry import ColorizeSettings, load_colorizer  # noqa: E402
from pipelines.options import refine_arg  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--refine", type=refine_arg, default=None, help="Override the model's refinement 'D,SC,SS[,SCALE]'.")
    p.add_argument("--stride", type=int, default=None, help="Prediction stride (default: the colorizer's).")
    args = p.parse_args(argv)
    from skimage import data

    photo = data.astronaut()
    col = load_colorizer(args.model, ColorizeSettings(refine=args.refine, tile=args.tile, stride=args.stride))
    print(f"model {args.model}: {col.describe()}")
    print(
        f"{'size':>10} {'total':>8} {'parser+sel':>10} {'features':>9} {'inference':>10} {'refine':>8} "
        f"{'recombine':>10}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        gray = luminance(cv2.resize(photo, (size, size), interpolation=cv2.INTER_AREA) / 255.0)
        col.colorize(gray)  # warm-up (graph tracing, caches)
        runs = []
        for _ in range(args.runs):
            runs.append(col.colorize(gray).timing)
        med = {
            k: float(np.median([getattr(r, k) for r in runs]))
            for k in ("total", "parser", "features", "inference", "refinement", "recombine")
        }
        print(
            f"{size}x{size:<5} {med['total']:>8.3f} {med['parser']:>10.3f} {med['features']:>9.3f} "
            f"{med['inference']:>10.3f} {med['refinement']:>8.3f} {med['recombine']:>10.3f}"
        )
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
