"""End-to-end demo on images that installed packages ship (no download).

    python -m pipelines.demo_train --output demo_train_out

1. writes colour photos shipped with scikit-image and scikit-learn to
   ``OUT/inputs/train`` and gray versions of held-back ones to ``OUT/inputs/gray``;
2. runs the feature job (Beam) on the training photos;
3. runs the training job (Beam): regressor + refinement tuned on a validation photo;
4. colorizes the held-back gray images into ``OUT/colorized`` and writes
   ``OUT/index.html`` (gray / colorized / ground truth, with PSNR and L_UV).
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
from colorize_tf.imageio import encode_image
from colorize_tf.metrics import gray_baseline, l_uv, psnr, uv_of
from colorize_tf.registry import load_colorizer
from colorize_tf.report import side_by_side_html
from colorize_tf.samples import shipped_image
from pipelines import extract_features, train
from pipelines.options import UsageError, job_parser, positive_int, setup_logging

log = logging.getLogger("demo_train")

#: Training photos, and held-back photos seen in no form during training (the stereo motorcycle pair's
#: left view is not trained on: it is the same scene as the held-back right view).
TRAIN = ("astronaut", "coffee", "rocket", "china", "chelsea")
HELD_BACK = ("motorcycle_right", "flower")


def write_inputs(out):
    train_dir = os.path.join(out, "inputs", "train")
    gray_dir = os.path.join(out, "inputs", "gray")
    truth_dir = os.path.join(out, "inputs", "truth")
    for d in (train_dir, gray_dir, truth_dir):
        os.makedirs(d, exist_ok=True)
    for name in TRAIN:
        Image.fromarray(shipped_image(name)).save(os.path.join(train_dir, f"{name}.png"))
    for name in HELD_BACK:
        rgb = shipped_image(name)
        Image.fromarray(rgb).save(os.path.join(truth_dir, f"{name}.png"))
        Image.fromarray(to_uint(gray_baseline(rgb)[..., 0])).save(os.path.join(gray_dir, f"{name}.png"))
    return train_dir, gray_dir, truth_dir


def main(argv=None):
    setup_logging()
    p = job_parser(__doc__, "python -m pipelines.demo_train", beam=False)
    p.add_argument(
        "--output", default="demo_train_out", help="Folder for inputs, features, model, outputs and index.html."
    )
    p.add_argument("--samples_per_image", type=positive_int, default=8192, help="N_s for the feature job.")
    p.add_argument("--epochs", type=positive_int, default=30, help="Most training epochs (early stopping).")
    try:
        args = p.parse_args(argv)
    except UsageError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    out = os.path.abspath(args.output)
    t0 = time.time()
    train_dir, gray_dir, truth_dir = write_inputs(out)
    features, model = os.path.join(out, "features"), os.path.join(out, "model")
    log.info("1/3 feature job on %d shipped photos", len(TRAIN))
    extract_features.run(
        [
            f"--input={train_dir}",
            f"--output={features}",
            "--runner=FnApiRunner",
            f"--samples_per_image={args.samples_per_image}",
        ]
    )
    log.info("2/3 training job")
    train.run(
        [
            f"--features={features}",
            f"--output={model}",
            "--runner=FnApiRunner",
            f"--epochs={args.epochs}",
            "--val_fraction=0.2",
        ]
    )
    log.info("3/3 colorizing held-back gray images")
    colorizer = load_colorizer(model)
    col_dir = os.path.join(out, "colorized")
    os.makedirs(col_dir, exist_ok=True)
    rows = []
    for name in HELD_BACK:
        gray = np.asarray(Image.open(os.path.join(gray_dir, f"{name}.png")), dtype=np.float32) / 255.0
        truth = np.asarray(Image.open(os.path.join(truth_dir, f"{name}.png")).convert("RGB"))
        t1 = time.perf_counter()
        out_ = colorizer.colorize(gray)
        rgb, uv = out_.rgb, out_.uv
        seconds = time.perf_counter() - t1
        with open(os.path.join(col_dir, f"{name}.png"), "wb") as fh:
            fh.write(encode_image(rgb, "PNG"))
        row = {
            "name": name,
            "gray": f"inputs/gray/{name}.png",
            "ours": f"colorized/{name}.png",
            "truth": f"inputs/truth/{name}.png",
            "psnr": psnr(rgb, truth),
            "psnr_gray": psnr(gray_baseline(truth), truth),
            "l_uv": l_uv(uv, uv_of(truth)),
            "l_uv_gray": l_uv(np.zeros_like(uv), uv_of(truth)),
            "seconds": seconds,
        }
        rows.append(row)
        log.info(
            "%s: PSNR %.2f dB (gray %.2f), L_UV %.5f (gray %.5f), %.2f s",
            name,
            row["psnr"],
            row["psnr_gray"],
            row["l_uv"],
            row["l_uv_gray"],
            seconds,
        )
    page = side_by_side_html(rows, os.path.join(out, "index.html"), "colorize-tf demo: held-back shipped images")
    write_json(os.path.join(out, "results.json"), rows)
    log.info("done in %.0f s: open %s", time.time() - t0, page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
