"""What the working resolution costs in quality: large colour images colorized at several working sides
against full-resolution prediction, paired per image.

    python benchmarks/work_side.py --model shipped:general --input runs/release/stage_c/validation.txt \
        --limit 120 --upscale 4 --sides 0,512,768,1024

The shared colour sets are small photos (256-384 px), so large ones are made from them: each validation
photo is enlarged ``--upscale`` times (bicubic) and treated as a scan. For every side, every image is
colorized through `colorize_tf.colorize.colorize_image` (side 0 = full resolution, the reference) and scored
against the enlarged true photo. Printed per side: mean RGB PSNR, its difference from full resolution with a
paired bootstrap 95 % interval, colourfulness ratio, seconds per image (on a busy machine only indicative).
The images are a stratified sample over the list's sources (`colorize_tf.splits.stratified_sample`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.quality import list_images  # noqa: E402
from colorize_tf.color import luminance  # noqa: E402
from colorize_tf.colorize import colorize_image  # noqa: E402
from colorize_tf.files import write_json  # noqa: E402
from colorize_tf.imageio import load_image  # noqa: E402
from colorize_tf.metrics import bootstrap_interval, colourfulness, psnr  # noqa: E402
from colorize_tf.registry import ColorizeSettings, load_colorizer  # noqa: E402
from colorize_tf.splits import stratified_sample  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shipped:general")
    p.add_argument("--input", required=True, help="List file, folder or glob of colour images.")
    p.add_argument("--list_root", default=None)
    p.add_argument("--limit", type=int, default=120, help="Images (a stratified sample); 0 = all.")
    p.add_argument("--upscale", type=float, default=4.0, help="Enlargement of each photo (its 'scan').")
    p.add_argument("--sides", default="0,512,768,1024", help="Working sides; 0 = full resolution (reference).")
    p.add_argument("--mode", default=None, help="Colorization mode (faithful / vivid).")
    p.add_argument("--output", default=None, help="Also write the per-image scores to this JSON file.")
    args = p.parse_args(argv)
    paths = list_images(args.input, args.list_root)
    if args.limit:
        paths = stratified_sample(sorted(paths), args.limit)
    sides = [int(s) for s in args.sides.split(",")]
    if 0 not in sides:
        sides = [0] + sides
    col = load_colorizer(args.model, ColorizeSettings(mode=args.mode))
    print(f"model {args.model}: {col.describe()}; {len(paths)} images enlarged {args.upscale:g}x")
    scores = {s: [] for s in sides}
    cf = {s: [] for s in sides}
    secs = {s: [] for s in sides}
    truth_cf = []
    for path in paths:
        rgb = load_image(path).rgb
        h, w = rgb.shape[:2]
        big = cv2.resize(rgb, (round(w * args.upscale), round(h * args.upscale)), interpolation=cv2.INTER_CUBIC)
        big = np.clip(big, 0.0, 1.0)
        gray = luminance(big)
        truth_cf.append(colourfulness(big))
        for s in sides:
            t0 = time.perf_counter()
            out = colorize_image(col, gray, s).rgb
            secs[s].append(time.perf_counter() - t0)
            scores[s].append(psnr(out, big))
            cf[s].append(colourfulness(out))
    ref = np.array(scores[0])
    print(f"{'side':>6} {'PSNR':>7} {'minus full [95% CI]':>26} {'colourfulness':>13} {'s/image':>8}")
    summary = {}
    for s in sides:
        x = np.array(scores[s])
        _, lo, hi = bootstrap_interval(x - ref) if s else (0.0, 0.0, 0.0)
        ratio = float(np.mean(cf[s]) / np.mean(truth_cf))
        print(
            f"{s or 'full':>6} {x.mean():7.3f} {float((x - ref).mean()):+9.4f} [{lo:+.4f}, {hi:+.4f}] "
            f"{ratio:13.3f} {np.median(secs[s]):8.3f}"
        )
        summary[str(s)] = {
            "psnr": float(x.mean()),
            "minus_full": float((x - ref).mean()),
            "ci": [float(lo), float(hi)],
            "colourfulness_ratio": ratio,
            "median_seconds": float(np.median(secs[s])),
            "per_image": x.tolist(),
        }
    if args.output:
        write_json(args.output, {"model": args.model, "images": paths, "upscale": args.upscale, "sides": summary})


if __name__ == "__main__":
    main()
