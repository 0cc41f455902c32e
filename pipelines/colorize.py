"""Colorize single images with a trained model.

    colorize INPUT... --model MODEL_DIR --output DIR

Each input (any mode: gray, 16-bit, palette, RGB scans of monochrome
prints, alpha) is reduced to its luminance, colorized, and written to DIR
under its own name (format kept unless ``--format``). The output's
luminance equals the input's. For whole archives use
``pipelines.colorize_archive``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time

from colorize_tf.colorize import DEFAULT_TILE
from colorize_tf.files import write_atomic
from colorize_tf.imageio import (
    DEFAULT_MAX_PIXELS,
    decode_image,
    encode_image,
    normalise_format,
    output_bits,
    output_extension,
)
from pipelines.options import (
    UsageError,
    add_model,
    add_refine,
    add_selection,
    add_work_side,
    alias,
    colorize_settings,
    job_parser,
    positive_int,
    setup_logging,
)

log = logging.getLogger("colorize")
#: Up to this many inputs, `--runtime auto` avoids importing TensorFlow: its ~5 s start-up outweighs the NumPy
#: runtime's slower per-image time.
NUMPY_UP_TO = 20


def build_parser():
    p = job_parser(__doc__, "colorize", beam=False)
    p.add_argument("inputs", nargs="+", help="Image files.")
    add_model(p)
    p.add_argument("--output", required=True, help="Output folder.")
    p.add_argument("--format", default=None, help="Output format (jpg, png, tif, webp, bmp); default: the input's.")
    p.add_argument("--quality", type=int, default=95, help="JPEG / WebP quality.")
    add_refine(p)
    add_selection(p)
    add_work_side(p)
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help="Tile side for large images (0 = whole image).")
    p.add_argument("--max_pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, help="Larger inputs fail.")
    p.add_argument(
        "--runtime",
        choices=["auto", "keras", "numpy"],
        default="auto",
        help="numpy: no TensorFlow import (about 5 s less start-up, slower per image; models with a NumPy "
        "export); keras: TensorFlow; auto: numpy for up to %d inputs, else keras." % NUMPY_UP_TO,
    )
    p.add_argument("--overwrite", action="store_true", help="Replace existing outputs.")
    alias(p, "--force", "--overwrite")
    alias(p, "--jpeg_quality", "--quality")
    return p


def output_name(path, fmt=None):
    """Output file name for an input path (colorize_tf.imageio.output_extension: the archive job's table)."""
    stem, ext = os.path.splitext(os.path.basename(path))
    return stem + output_extension(ext, fmt)


def colorize_file(colorizer, path, out_path, quality=95, max_pixels=DEFAULT_MAX_PIXELS, identity=None, work_side=None):
    """Colorize one file to `out_path` (written atomically, with the provenance of the model `identity`,
    ``(name, sha256)``, where the format has room; chroma at `work_side`, `colorize_image`); returns
    (decoded input's shape, Colorized)."""
    import numpy as np

    from colorize_tf.colorize import colorize_image
    from colorize_tf.provenance import Provenance

    with open(path, "rb") as fh:
        pic = decode_image(fh.read(), max_pixels=max_pixels, need_rgb=False)
    fmt = normalise_format(os.path.splitext(out_path)[1])
    depth = np.uint16 if output_bits(pic.bits, fmt) == 16 else np.uint8
    out = colorize_image(colorizer, pic.gray, work_side, dtype=depth)
    provenance = None if identity is None else Provenance(*identity)  # stamped when this output is made
    data = encode_image(
        out.rgb, fmt, alpha=pic.alpha, bits=pic.bits, info=pic.info, quality=quality, provenance=provenance
    )
    write_atomic(out_path, data)
    return pic.shape, out


def main(argv=None):
    from colorize_tf.registry import load_colorizer

    setup_logging()
    try:
        args = build_parser().parse_args(argv)
        if args.format:
            try:
                normalise_format(args.format)
            except ValueError as exc:
                raise UsageError(f"--format: {exc}") from None
        settings = colorize_settings(args)
        runtime = args.runtime
        if runtime == "auto":
            runtime = "numpy" if len(args.inputs) <= NUMPY_UP_TO else "keras"
        settings = dataclasses.replace(settings, runtime=runtime)
        try:
            colorizer = load_colorizer(args.model, settings)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--model {args.model}: {exc}") from None
    except UsageError as exc:
        print(f"colorize: error: {exc}", file=sys.stderr)
        return 2
    log.info("model %s: %s", args.model, colorizer.describe())
    from colorize_tf.provenance import local_identity

    identity = local_identity(args.model)
    os.makedirs(args.output, exist_ok=True)
    failures = 0
    for path in args.inputs:
        out_path = os.path.join(args.output, output_name(path, args.format))
        if os.path.exists(out_path) and not args.overwrite:
            log.info("skip %s: %s exists (use --overwrite)", path, out_path)
            continue
        t0 = time.perf_counter()
        try:
            shape, out = colorize_file(
                colorizer, path, out_path, args.quality, args.max_pixels, identity, args.work_side
            )
        except Exception as exc:  # report and go on with the other inputs; the exit status says it
            failures += 1
            log.error("FAILED %s: %s", path, exc)
            continue
        t = out.timing
        log.info(
            "%s -> %s  %dx%d  cluster %s  %.3f s (features %.3f, inference %.3f, refine %.3f)",
            path,
            out_path,
            shape[1],
            shape[0],
            out.cluster or "-",
            time.perf_counter() - t0,
            t.features,
            t.inference,
            t.refinement,
        )
    if failures:
        log.error("%d of %d inputs failed", failures, len(args.inputs))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
