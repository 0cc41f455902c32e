"""Demo: the shipped model colorizes gray photos that installed packages ship (no download, no training).

    python -m pipelines.demo --output demo_out

1. writes scikit-image's gray photos (``camera``, ``moon``, ``coins``, ...) and gray versions of the
   colour photos scikit-image and scikit-learn ship to ``OUT/inputs/gray`` (the colour originals to
   ``OUT/inputs/truth``);
2. runs the archive job (Beam) on them with the shipped model (``shipped:general``, or ``--model``), once
   per mode, into ``OUT/faithful`` and ``OUT/vivid`` (each with its manifest and review page);
3. writes ``OUT/index.html``: gray input, both modes and, where one exists, the true colour photo, with
   PSNR against it (and the gray image's) and colourfulness.

The demo that trains a model on shipped photos first is ``pipelines.demo_train``.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np
from PIL import Image

from colorize_tf.color import to_uint
from colorize_tf.files import write_json
from colorize_tf.metrics import colourfulness, gray_baseline, psnr
from colorize_tf.registry import SHIPPED_MODEL
from colorize_tf.report import columns_html
from colorize_tf.samples import COLOUR_PHOTOS, GRAY_PHOTOS, shipped_image
from pipelines.options import UsageError, job_parser, setup_logging

log = logging.getLogger("demo")
MODES = ("faithful", "vivid")


def write_inputs(out):
    """Gray inputs (and colour originals); returns {name: has a colour original}."""
    gray_dir, truth_dir = os.path.join(out, "inputs", "gray"), os.path.join(out, "inputs", "truth")
    os.makedirs(gray_dir, exist_ok=True)
    os.makedirs(truth_dir, exist_ok=True)
    names = {}
    for name in GRAY_PHOTOS:
        Image.fromarray(shipped_image(name)).save(os.path.join(gray_dir, f"{name}.png"))
        names[name] = False
    for name in COLOUR_PHOTOS:
        rgb = shipped_image(name)
        Image.fromarray(rgb).save(os.path.join(truth_dir, f"{name}.png"))
        Image.fromarray(to_uint(gray_baseline(rgb)[..., 0])).save(os.path.join(gray_dir, f"{name}.png"))
        names[name] = True
    return names


def main(argv=None):
    setup_logging()
    p = job_parser(__doc__, "python -m pipelines.demo", beam=False)
    p.add_argument("--output", default="demo_out", help="Folder for inputs, outputs and index.html.")
    p.add_argument("--model", default=SHIPPED_MODEL, help="Model to demonstrate (default: the shipped one).")
    try:
        return run(p.parse_args(argv))
    except UsageError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2


def run(args):
    from pipelines import colorize_archive

    out = os.path.abspath(args.output)
    t0 = time.time()
    names = write_inputs(out)
    log.info("1/3 wrote %d gray photos to %s", len(names), os.path.join(out, "inputs", "gray"))
    reviews = {}
    for k, mode in enumerate(MODES, 2):
        log.info("%d/3 archive job, mode %s", k, mode)
        try:
            summary = colorize_archive.run(
                [
                    f"--input={os.path.join(out, 'inputs', 'gray')}",
                    f"--output={os.path.join(out, mode)}",
                    f"--model={args.model}",
                    f"--mode={mode}",
                    "--overwrite",
                    "--runner=FnApiRunner",
                ]
            )
        except UsageError as exc:
            if "mode" not in str(exc):
                raise
            log.warning("%s: no %s mode (%s)", args.model, mode, exc)
            continue
        reviews[mode] = summary.get("review")
    if not reviews:
        raise UsageError(f"--model {args.model}: offers neither mode")
    modes = list(reviews)
    rows, results = [], []
    for name, has_truth in names.items():
        row = {"name": name, "gray": {"src": f"inputs/gray/{name}.png", "caption": "input"}}
        truth = np.asarray(Image.open(os.path.join(out, "inputs", "truth", f"{name}.png"))) if has_truth else None
        result = {"name": name}
        for mode in modes:
            rgb = np.asarray(Image.open(os.path.join(out, mode, f"{name}.png")).convert("RGB"))
            cf = colourfulness(rgb / 255.0)
            caption = f"colourfulness {cf:.1f}"
            result[f"colourfulness_{mode}"] = cf
            if truth is not None:
                result[f"psnr_{mode}"] = psnr(rgb / 255.0, truth / 255.0)
                caption = f"PSNR {result[f'psnr_{mode}']:.2f} dB, " + caption
            row[mode] = {"src": f"{mode}/{name}.png", "caption": caption}
        if truth is not None:
            result["psnr_gray"] = psnr(gray_baseline(truth / 255.0), truth / 255.0)
            result["colourfulness_truth"] = colourfulness(truth / 255.0)
            row["truth"] = {
                "src": f"inputs/truth/{name}.png",
                "caption": f"gray image: PSNR {result['psnr_gray']:.2f} dB; colourfulness "
                f"{result['colourfulness_truth']:.1f}",
            }
        rows.append(row)
        results.append(result)
    page = columns_html(
        rows,
        [("gray", "gray input")] + [(m, f"{m} mode") for m in modes] + [("truth", "true colour")],
        os.path.join(out, "index.html"),
        "colorize-tf: the shipped model on photos that installed packages ship",
        f"Model {args.model}. PSNR against the true colour photo where one exists (higher is closer); the gray "
        "image's PSNR is the baseline to beat. Review pages of the archive runs: "
        + ", ".join(f"{m}: {os.path.relpath(p, out)}" for m, p in reviews.items() if p),
    )
    write_json(os.path.join(out, "results.json"), results)
    log.info("done in %.0f s: open %s", time.time() - t0, page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
