"""Mean PSNR / L_UV of a model on colour images, next to the gray baseline.

    python benchmarks/quality.py --model runs/sf_model \
        --list ../shared/data/siftflow/test.txt --root ../shared/data/siftflow/images [--refine 0,0,0]

Prints one line per setting and a JSON summary (the full evaluation job with
HTML report is ``pipelines.evaluate``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorize_tf.imageio import load_image  # noqa: E402
from colorize_tf.colorize import Timing, load_colorizer, refine_uv  # noqa: E402
from colorize_tf.color import recombine  # noqa: E402
from colorize_tf.metrics import gray_baseline, l_uv, psnr, uv_of  # noqa: E402
from colorize_tf.refine import RefineParams  # noqa: E402


def list_images(list_file, root):
    """Image paths of a list file, resolved as the jobs resolve them (transforms.io.expand_spec)."""
    from transforms.io import expand_spec

    files, missing = expand_spec(list_file, root)
    if missing:
        raise FileNotFoundError(f"{len(missing)} list entries match no image, e.g. {missing[0]['reason']}")
    return [path for path, _ in files]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--list", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--refine", action="append", default=None,
                   help="Extra refinement settings 'D,SC,SS' to score besides the model's own (repeatable).")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--stride", type=int, default=None,
                   help="Prediction stride (default: the colorizer's, 2 with a reduced-resolution refinement).")
    p.add_argument("--selection_k", type=int, default=None, help="Bundles: top-k for cluster selection.")
    p.add_argument("--json", default=None, help="Also write per-image scores here.")
    p.add_argument("--selection_layers", default=None,
                   help="Bundles: candidate layers, e.g. '0' or 'all' (default: the bundle's setting).")
    args = p.parse_args(argv)
    paths = list_images(args.list, args.root)
    if args.limit:
        paths = paths[: args.limit]
    layers = None
    if args.selection_layers == "all":
        layers = list(range(1000))
    elif args.selection_layers is not None:
        layers = [int(v) for v in args.selection_layers.split(",")]
    col = load_colorizer(args.model, tile=0, k=args.selection_k, layers=layers, stride=args.stride)
    print(f"prediction stride {col.stride}")
    settings = [("model", col.refine), ("raw", RefineParams(0, 0.1, 1.0))]
    for text in args.refine or []:
        settings.append((text, RefineParams.parse(text)))
    scores = {name: {"psnr": [], "l_uv": []} for name, _ in settings}
    gray_psnr, gray_luv, clusters = [], [], []
    timing = Timing()
    t0 = time.perf_counter()
    for path in paths:
        pic = load_image(path)
        truth = pic.rgb
        true_uv = uv_of(truth)
        info = {}
        raw = col.raw_uv(pic.gray, timing=timing, info=info)
        clusters.append(info.get("cluster"))
        for name, params in settings:
            uv = refine_uv(pic.gray, raw, params, tile=0)
            scores[name]["psnr"].append(psnr(recombine(pic.gray, uv), truth))
            scores[name]["l_uv"].append(l_uv(uv, true_uv))
        gray_psnr.append(psnr(gray_baseline(truth), truth))
        gray_luv.append(l_uv(np.zeros_like(true_uv), true_uv))
    summary = {
        "model": args.model,
        "images": len(paths),
        "stride": col.stride,
        "gray": {"mean_psnr": float(np.mean(gray_psnr)), "mean_l_uv": float(np.mean(gray_luv))},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"{'setting':<22} {'mean PSNR':>10} {'mean L_UV':>10}")
    print(f"{'gray (U=V=0)':<22} {summary['gray']['mean_psnr']:>10.2f} {summary['gray']['mean_l_uv']:>10.5f}")
    for name, params in settings:
        s = {"mean_psnr": float(np.mean(scores[name]["psnr"])), "mean_l_uv": float(np.mean(scores[name]["l_uv"])),
             "refine": [params.diameter, params.sigma_color, params.sigma_space, params.scale]}
        summary[name] = s
        print(f"{name + ' ' + str(s['refine']):<22} {s['mean_psnr']:>10.2f} {s['mean_l_uv']:>10.5f}")
    print(json.dumps(summary))
    if args.json:
        per_image = [{"path": p, "cluster": c, "psnr_gray": g, **{n: scores[n]["psnr"][i] for n, _ in settings}}
                     for i, (p, c, g) in enumerate(zip(paths, clusters, gray_psnr))]
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "images": per_image}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
