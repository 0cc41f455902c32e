"""Colorize single images with a trained model.

    colorize INPUT... --model MODEL_DIR --output DIR

Each input (any mode: gray, 16-bit, palette, RGB scans of monochrome
prints, alpha) is reduced to its luminance, colorized, and written to DIR
under its own name (format kept unless ``--format``). The output's
luminance equals the input's. For whole archives use
``pipelines.colorize_archive``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from colorize_tf.imageio import decode_image, encode_image
from colorize_tf.colorize import DEFAULT_TILE, Timing, load_colorizer
from colorize_tf.refine import RefineParams
from pipelines.options import setup_logging

log = logging.getLogger("colorize")

FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP", ".webp": "WEBP"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="colorize", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="Image files.")
    p.add_argument("--model", required=True, help="Model directory or clustered bundle (pipelines.train output).")
    p.add_argument("--parser", default=None, help="Scene parser directory (default: the one stored with the model).")
    p.add_argument("--selection_k", type=int, default=None,
                   help="Bundles: top-k clusters by GIST, then semantic histogram (default: the bundle's).")
    p.add_argument("--output", required=True, help="Output folder.")
    p.add_argument("--format", default=None, help="Output format (png, jpeg, tiff, webp); default: input's.")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WEBP quality.")
    p.add_argument("--refine", default=None,
                   help="Joint bilateral 'DIAMETER,SIGMA_COLOR,SIGMA_SPACE[,SCALE]'; default: the model's tuned values; "
                        "'0,0,0' disables refinement.")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help="Tile side for large images (0 = whole image).")
    p.add_argument("--overwrite", action="store_true", help="Replace existing outputs.")
    return p.parse_args(argv)


def output_name(path, fmt=None):
    stem, ext = os.path.splitext(os.path.basename(path))
    if fmt:
        ext = "." + fmt.lower().replace("jpeg", "jpg")
    elif ext.lower() not in FORMATS:
        ext = ".png"
    return stem + ext


def colorize_file(colorizer, path, out_path, quality=95, timing=None, info=None):
    """Colorize one file to `out_path` (written atomically); returns the decoded input's size."""
    with open(path, "rb") as fh:
        pic = decode_image(fh.read())
    rgb, _ = colorizer.colorize(pic.gray, timing=timing, info=info)
    fmt = FORMATS.get(os.path.splitext(out_path)[1].lower(), "PNG")
    data = encode_image(rgb, fmt, alpha=pic.alpha, bits=pic.bits, info=pic.info, quality=quality)
    tmp = out_path + ".partial"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, out_path)
    return pic.shape


def main(argv=None):
    setup_logging()
    args = parse_args(argv)
    refine = RefineParams.parse(args.refine)
    colorizer = load_colorizer(args.model, refine=refine, tile=args.tile, parser_dir=args.parser, k=args.selection_k)
    log.info("model %s (%s), refinement %s", args.model, "+".join(colorizer.descriptor.names), colorizer.refine)
    os.makedirs(args.output, exist_ok=True)
    failures = 0
    for path in args.inputs:
        out = os.path.join(args.output, output_name(path, args.format))
        if os.path.exists(out) and not args.overwrite:
            log.info("skip %s: %s exists (use --overwrite)", path, out)
            continue
        timing, info = Timing(), {}
        t0 = time.perf_counter()
        try:
            h, w = colorize_file(colorizer, path, out, args.quality, timing, info)
        except Exception as exc:  # report and go on with the other inputs
            failures += 1
            log.error("FAILED %s: %s", path, exc)
            continue
        log.info("%s -> %s  %dx%d  cluster %s  %.3f s (features %.3f, inference %.3f, refine %.3f)", path, out,
                 w, h, info.get("cluster") or "-", time.perf_counter() - t0, timing.features, timing.inference,
                 timing.refinement)
    if failures:
        log.error("%d of %d inputs failed", failures, len(args.inputs))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
