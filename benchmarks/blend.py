"""Two models' refined chroma averaged with weights: the gain over gray per source, next to model A alone.

    python benchmarks/blend.py --models colorize_tf/models/general runs/all_model_sem \
        --input runs/all_model_sem/validation.txt --data ../shared/data [--weights 0,0.2,0.3,0.5,1]

For each weight w of model B (0 = model A alone, 1 = model B alone) and each source (the images' top folder
under ``--data``, as the release recipe groups them): mean RGB PSNR gain over gray with a paired bootstrap
95 % interval, the paired difference against model A alone, and the colourfulness of the outputs relative to
the true photos'. Each model predicts and refines its chroma as `colorize` would (its own refinement, whole
image), then ``(1 - w) * uv_A + w * uv_B`` is recombined with the exact luminance. A probe of whether two
families' errors are independent enough for an ensemble to pay; nothing ships from it.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.quality import list_images  # noqa: E402
from colorize_tf.color import recombine  # noqa: E402
from colorize_tf.colorize import refine_uv  # noqa: E402
from colorize_tf.files import write_json  # noqa: E402
from colorize_tf.imageio import load_image  # noqa: E402
from colorize_tf.metrics import bootstrap_interval, colourfulness, gray_baseline, has_colour, psnr  # noqa: E402
from colorize_tf.registry import ColorizeSettings, load_colorizer  # noqa: E402
from colorize_tf.release import by_source  # noqa: E402
from pipelines.options import job_parser, non_negative_int, number_list, unit_float  # noqa: E402


def build_parser():
    p = job_parser(__doc__, "python benchmarks/blend.py", beam=False)
    p.add_argument("--models", nargs=2, required=True, metavar=("A", "B"), help="Two model directories.")
    p.add_argument("--input", required=True, help="List file, folder or glob of colour images.")
    p.add_argument("--list_root", default=None, help="Base folder for relative list-file entries.")
    p.add_argument("--data", default="", help="Folder whose top-level folders name the sources (../shared/data).")
    p.add_argument(
        "--weights",
        type=number_list(unit_float),
        default=[0.0, 0.2, 0.3, 0.5, 1.0],
        help="Comma-separated weights of model B, each from 0 to 1.",
    )
    p.add_argument("--limit", type=non_negative_int, default=0, help="Score at most this many images (0 = all).")
    p.add_argument("--output", default=None, help="Also write the per-image scores to this JSON file.")
    return p


def blend_scores(col_a, col_b, paths, weights):
    """Per-image scores of every blend weight: list of dict (``path``, ``psnr_gray``, ``cf_truth``,
    ``psnr`` and ``cf`` as lists aligned with ``weights``); images without colour are left out and returned."""
    rows, skipped = [], []
    for path in paths:
        pic = load_image(path)
        if pic.rgb is None or not has_colour(pic.rgb):
            skipped.append(path)
            continue
        uv_a = refine_uv(pic.gray, col_a.chroma(pic.gray).uv, col_a.refine, tile=0)
        uv_b = refine_uv(pic.gray, col_b.chroma(pic.gray).uv, col_b.refine, tile=0)
        row = {"path": path, "psnr_gray": psnr(gray_baseline(pic.rgb), pic.rgb), "cf_truth": colourfulness(pic.rgb)}
        row["psnr"], row["cf"] = [], []
        for w in weights:
            rgb = recombine(pic.gray, (1 - w) * uv_a + w * uv_b)
            row["psnr"].append(psnr(rgb, pic.rgb))
            row["cf"].append(colourfulness(rgb))
        rows.append(row)
    return rows, skipped


def main(argv=None):
    args = build_parser().parse_args(argv)
    weights = [0.0] + [w for w in args.weights if w != 0.0]  # model A alone is what every blend is paired with
    paths = list_images(args.input, args.list_root)
    if args.limit:
        paths = paths[: args.limit]
    cols = [load_colorizer(m, ColorizeSettings(tile=0)) for m in args.models]
    rows, skipped = blend_scores(cols[0], cols[1], paths, weights)
    by_path = {r["path"]: r for r in rows}
    groups = by_source(list(by_path), args.data)
    print(f"A = {args.models[0]}, B = {args.models[1]}; {len(rows)} images, {len(skipped)} without colour")
    summary = {}
    for i, w in enumerate(weights):
        per_source, line = {}, []
        for source, members in groups.items():
            rs = [by_path[p] for p in members]
            gain = bootstrap_interval([r["psnr"][i] - r["psnr_gray"] for r in rs])
            diff = bootstrap_interval([r["psnr"][i] - r["psnr"][0] for r in rs])
            ratio = float(np.mean([r["cf"][i] for r in rs]) / max(np.mean([r["cf_truth"] for r in rs]), 1e-9))
            per_source[source] = {"images": len(rs), "gain": gain, "vs_a": diff, "colourfulness_ratio": ratio}
            line.append(
                f"{source} {gain[0]:+.2f} [{gain[1]:+.2f}, {gain[2]:+.2f}] vs A {diff[0]:+.2f} "
                f"[{diff[1]:+.2f}, {diff[2]:+.2f}] cf {ratio:.2f}"
            )
        macro = float(np.mean([s["gain"][0] for s in per_source.values()]))
        summary[f"{w:g}"] = {"mean_over_sources": macro, "per_source": per_source}
        print(f"w_B {w:g}: mean gain over sources {macro:+.2f} | " + " | ".join(line))
    if args.output:
        write_json(args.output, {"models": args.models, "weights": weights, "summary": summary, "images": rows})
    print(json.dumps({w: s["mean_over_sources"] for w, s in summary.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
