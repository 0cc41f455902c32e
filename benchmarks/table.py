"""One Markdown table from several ``benchmarks/quality.py --output`` files (the README's and notes' tables).

    python benchmarks/table.py "regressor=runs/test_single.json" "fusion l2=runs/test_fusion_l2.json" \
        [--train_minutes "regressor=54"]

Columns: mean RGB PSNR, the gain over gray with its paired bootstrap 95 % interval, L_UV, colourfulness
ratio (outputs / true photos), seconds per 256x256 image (``seconds_256`` of the quality run) and training
minutes (``training.seconds`` of the model directory unless given). The first line is the gray image of the
first file (every file must cover the same images).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _pair(text):
    name, sep, value = text.rpartition("=")  # names may hold "=" (k=1, T=0.38), paths rarely
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, value


def training_minutes(model_path):
    """Minutes the model directory's own training took (``model.json`` ``training.seconds``), or None."""
    try:
        with open(os.path.join(model_path, "model.json")) as fh:
            seconds = json.load(fh).get("training", {}).get("seconds")
    except (OSError, ValueError):
        return None
    return None if seconds is None else seconds / 60.0


def rows(entries, minutes=None):
    """Table lines for ``[(name, summary)]``; ``minutes`` maps names to training minutes."""
    minutes = minutes or {}
    first = entries[0][1]
    out = [
        "| system | PSNR (dB) | gain over gray [95 % CI] | L_UV | colourfulness ratio | s / 256² | training min |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| gray (U = V = 0) | {first['gray']['mean_psnr']:.2f} | – | {first['gray']['mean_l_uv']:.5f} | 0 | – | – |",
    ]
    for name, s in entries:
        if s["images"] != first["images"] or abs(s["gray"]["mean_psnr"] - first["gray"]["mean_psnr"]) > 1e-6:
            raise ValueError(f"{name}: scored other images than {entries[0][0]} (gray PSNR differs)")
        m = s["model"]
        lo, hi = m["gain"]["ci95"]
        mins = minutes.get(name, training_minutes(s.get("model_dir", "")))
        speed = s.get("seconds_256")
        out.append(
            f"| {name} | {m['mean_psnr']:.2f} | {m['gain']['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] | "
            f"{m['mean_l_uv']:.5f} | {m['colourfulness_ratio']:.2f} | "
            f"{'–' if speed is None else f'{speed:.3f}'} | {'–' if mins is None else f'{float(mins):.0f}'} |"
        )
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("entries", nargs="+", type=_pair, help="NAME=QUALITY_JSON, in table order (split at the last =).")
    p.add_argument("--train_minutes", type=_pair, action="append", default=[], help="NAME=MINUTES override.")
    args = p.parse_args(argv)
    entries = []
    for name, path in args.entries:
        with open(path) as fh:
            summary = json.load(fh)["summary"]
        entries.append((name, summary))
    print("\n".join(rows(entries, dict(args.train_minutes))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
