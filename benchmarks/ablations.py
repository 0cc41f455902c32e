"""Ablations by configuration: train and score variants of the model on one split, print one table.

    python benchmarks/ablations.py --features runs/sf_features_sem --output runs/ablations \
        --input ../shared/data/siftflow/test.txt --list_root ../shared/data/siftflow/images [--bundle runs/sf_bundle]

Variants: all blocks; without patch; without DAISY; without semantic (each retrained on the stored
descriptors with ``pipelines.train --use_blocks``); without refinement (the full model, refinement off);
and, given ``--bundle``, with adaptive clustering.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import quality  # noqa: E402
from pipelines import train  # noqa: E402


def score(model, args, extra=()):
    out = os.path.join(args.output, f"q_{os.path.basename(model)}{'_' + '_'.join(extra) if extra else ''}.json")
    argv = ["--model", model, "--input", args.input, "--list_root", args.list_root, "--output", out]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    for e in extra:
        argv += ["--refine", e]
    quality.main(argv)
    return json.load(open(out))["summary"]


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--features", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--list_root", required=True)
    p.add_argument("--bundle", default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--limit", type=int, default=0)
    args = p.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    blocks = [b["name"] for b in json.load(open(os.path.join(args.features, "config.json")))["descriptor"]]
    variants = {"all blocks": blocks}
    for b in blocks:
        variants[f"without {b}"] = [x for x in blocks if x != b]
    rows = []
    full_dir = None
    for name, use in variants.items():
        model = os.path.join(args.output, "model_" + "_".join(use))
        if not os.path.exists(os.path.join(model, "model.json")):
            train.run(
                [
                    f"--features={args.features}",
                    f"--output={model}",
                    f"--use_blocks={','.join(use)}",
                    f"--epochs={args.epochs}",
                    "--runner=FnApiRunner",
                ]
            )
        s = score(model, args, ("0,0,0",) if name == "all blocks" else ())
        rows.append((name, s["model"]["mean_psnr"], s["model"]["mean_l_uv"]))
        if name == "all blocks":
            full_dir = model
            rows.append(("without refinement", s["0,0,0"]["mean_psnr"], s["0,0,0"]["mean_l_uv"]))
            rows.insert(0, ("gray (U=V=0)", s["gray"]["mean_psnr"], s["gray"]["mean_l_uv"]))
    if args.bundle:
        s = score(args.bundle, args)
        rows.append(("with adaptive clustering", s["model"]["mean_psnr"], s["model"]["mean_l_uv"]))
    print(f"\n{'variant':<28} {'mean PSNR':>10} {'mean L_UV':>10}   (full model: {full_dir})")
    for name, ps, luv in rows:
        print(f"{name:<28} {ps:>10.2f} {luv:>10.5f}")


if __name__ == "__main__":
    main()
