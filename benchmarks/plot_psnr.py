"""PSNR distribution of several models on the same images (the paper's Fig. 8), as a PNG.

    python benchmarks/plot_psnr.py --output fig8.png "single=runs/q_single.json" "clustered=runs/q_bundle.json"

Each JSON is written by ``benchmarks/quality.py --output``; the ``model`` setting
(the model's own refinement) is plotted, plus the gray baseline of the first file.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorize_tf.plots import histogram_png  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="LABEL=quality.json")
    p.add_argument("--output", required=True)
    p.add_argument("--setting", default="model")
    args = p.parse_args(argv)
    series = {}
    for i, spec in enumerate(args.runs):
        label, path = spec.rsplit("=", 1)
        data = json.load(open(path))
        if i == 0:
            series["gray"] = [im["psnr_gray"] for im in data["images"]]
        series[label] = [im[args.setting] for im in data["images"]]
    histogram_png(series, args.output, title=f"PSNR distribution, {len(series['gray'])} images")
    print(args.output)


if __name__ == "__main__":
    main()
