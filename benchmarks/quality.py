"""Mean PSNR / L_UV of a model on colour images, next to the gray baseline.

    python benchmarks/quality.py --model runs/sf_model \
        --input ../shared/data/siftflow/test.txt --list_root ../shared/data/siftflow/images [--refine 0,0,0]

Prints one line per setting (mean RGB PSNR, its gain over gray with a paired bootstrap 95 % interval, L_UV,
colourfulness and its ratio to the true photos') and a JSON summary (the full evaluation job with HTML
report is ``pipelines.evaluate``).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorize_tf.color import recombine  # noqa: E402
from colorize_tf.colorize import Timing, refine_uv, seconds_per_image  # noqa: E402
from colorize_tf.files import write_json  # noqa: E402
from colorize_tf.imageio import load_image  # noqa: E402
from colorize_tf.metrics import (  # noqa: E402
    bootstrap_interval,
    colourfulness,
    gray_baseline,
    has_colour,
    l_uv,
    psnr,
    uv_of,
)
from colorize_tf.refine import RefineParams  # noqa: E402
from colorize_tf.registry import ColorizeSettings, load_colorizer  # noqa: E402
from pipelines.options import add_selection, job_parser, positive_float, refine_arg  # noqa: E402


def list_images(list_file, root):
    """Image paths of a list file, resolved as the jobs resolve them (transforms.io.expand_spec)."""
    from transforms.io import expand_spec

    files, missing = expand_spec(list_file, root)
    if missing:
        raise FileNotFoundError(f"{len(missing)} list entries match no image, e.g. {missing[0]['reason']}")
    return [path for path, _ in files]


def build_parser():
    p = job_parser(__doc__, "python benchmarks/quality.py", beam=False)
    p.add_argument("--model", required=True, help="Model directory or bundle.")
    p.add_argument("--input", required=True, help="List file, folder or glob of colour images.")
    p.add_argument("--list_root", default=None, help="Base folder for relative list-file entries.")
    p.add_argument(
        "--refine",
        type=refine_arg,
        action="append",
        default=None,
        help="Extra refinement settings 'D,SC,SS[,SCALE]' to score besides the model's own (repeatable).",
    )
    p.add_argument("--limit", type=int, default=0, help="Score at most this many images (0 = all).")
    p.add_argument(
        "--stride",
        type=int,
        default=None,
        help="Prediction stride (default: the colorizer's, 2 with a reduced-resolution refinement).",
    )
    add_selection(p)
    p.add_argument(
        "--temperature", type=positive_float, default=None, help="Classification models: annealed-mean temperature."
    )
    p.add_argument(
        "--chroma_gain",
        type=positive_float,
        default=None,
        help="Classification / vivid heads: multiply the decoded chroma by this (default: the model's).",
    )
    p.add_argument("--output", default=None, help="Also write the summary and per-image scores to this JSON file.")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    paths = list_images(args.input, args.list_root)
    if args.limit:
        paths = paths[: args.limit]
    col = load_colorizer(
        args.model,
        ColorizeSettings(
            tile=0,
            selection_k=args.selection_k,
            selection_layers=args.selection_layers,
            stride=args.stride,
            temperature=args.temperature,
            chroma_gain=args.chroma_gain,
        ),
    )
    print(col.describe())
    settings = [("model", col.refine), ("raw", RefineParams(0, 0.1, 1.0))]
    for params in args.refine or []:
        settings.append(
            (",".join(str(v) for v in (params.diameter, params.sigma_color, params.sigma_space, params.scale)), params)
        )
    scores = {name: {"psnr": [], "l_uv": [], "colourfulness": []} for name, _ in settings}
    gray_psnr, gray_luv, truth_cf, clusters = [], [], [], []
    timing = Timing()
    t0 = time.perf_counter()
    skipped = []
    for path in paths:
        pic = load_image(path)
        if pic.rgb is None or not has_colour(pic.rgb):  # nothing to score against (gray PSNR would be inf)
            skipped.append(path)
            continue
        truth = pic.rgb
        true_uv = uv_of(truth)
        raw = col.chroma(pic.gray)
        clusters.append(raw.cluster)
        for stage in ("parser", "features", "inference"):
            setattr(timing, stage, getattr(timing, stage) + getattr(raw.timing, stage))
        for name, params in settings:
            uv = refine_uv(pic.gray, raw.uv, params, tile=0)
            rgb = recombine(pic.gray, uv)
            scores[name]["psnr"].append(psnr(rgb, truth))
            scores[name]["l_uv"].append(l_uv(uv, true_uv))
            scores[name]["colourfulness"].append(colourfulness(rgb))
        gray_psnr.append(psnr(gray_baseline(truth), truth))
        gray_luv.append(l_uv(np.zeros_like(true_uv), true_uv))
        truth_cf.append(colourfulness(truth))
    summary = {
        "model_dir": args.model,  # "model" is the scores of the model's own setting
        "images": len(paths) - len(skipped),
        "skipped_without_colour": skipped,
        "colorizer": col.describe(),
        "gray": {"mean_psnr": float(np.mean(gray_psnr)), "mean_l_uv": float(np.mean(gray_luv))},
        "truth_colourfulness": float(np.mean(truth_cf)),
        "seconds": round(time.perf_counter() - t0, 1),
        "seconds_256": seconds_per_image(col),
        "temperature": args.temperature,
        "chroma_gain": args.chroma_gain,
    }
    print(f"{'setting':<26} {'mean PSNR':>10} {'gain [95% CI]':>22} {'mean L_UV':>10} {'colourfulness':>14}")
    print(
        f"{'gray (U=V=0)':<26} {summary['gray']['mean_psnr']:>10.2f} {'':>22} {summary['gray']['mean_l_uv']:>10.5f}"
        f" {0.0:>14.2f}"
    )
    for name, params in settings:
        gain = bootstrap_interval(np.subtract(scores[name]["psnr"], gray_psnr))
        cf = float(np.mean(scores[name]["colourfulness"]))
        s = {
            "mean_psnr": float(np.mean(scores[name]["psnr"])),
            "mean_l_uv": float(np.mean(scores[name]["l_uv"])),
            "gain": {"mean": gain[0], "ci95": [gain[1], gain[2]]},
            "colourfulness": cf,
            "colourfulness_ratio": cf / max(summary["truth_colourfulness"], 1e-9),
            "refine": [params.diameter, params.sigma_color, params.sigma_space, params.scale],
        }
        summary[name] = s
        ci = f"{gain[0]:+.2f} [{gain[1]:+.2f}, {gain[2]:+.2f}]"
        print(
            f"{name:<26} {s['mean_psnr']:>10.2f} {ci:>22} {s['mean_l_uv']:>10.5f} "
            f"{cf:>7.2f} ({s['colourfulness_ratio']:.2f})"
        )
    if skipped:
        print(f"skipped {len(skipped)} images without colour, e.g. {skipped[0]}")
    print(f"true photos' colourfulness {summary['truth_colourfulness']:.2f}")
    print(f"colorize 256x256: {summary['seconds_256']:.3f} s (median of 7)")
    print(json.dumps(summary))
    if args.output:
        per_image = [
            {"path": p, "cluster": c, "psnr_gray": g, **{n: scores[n]["psnr"][i] for n, _ in settings}}
            for i, (p, c, g) in enumerate(zip([p for p in paths if p not in skipped], clusters, gray_psnr))
        ]
        write_json(args.output, {"summary": summary, "images": per_image})
    return 0


if __name__ == "__main__":
    sys.exit(main())
