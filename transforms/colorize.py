"""Beam DoFns of the archive colorization job: skip finished work, colorize, account for every input."""
from __future__ import annotations

import logging
import posixpath
import time

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from colorize_tf.color import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image, encode_image

from .fs import write_atomically
from .io import unsafe_member_reason

log = logging.getLogger(__name__)

DONE, SKIPPED, FAILED = "done", "skipped", "failed"

#: One row per input in the manifest (Parquet and CSV).
MANIFEST_SCHEMA = pa.schema(
    [
        ("input", pa.string()),
        ("rel", pa.string()),
        ("status", pa.string()),
        ("output", pa.string()),
        ("cluster", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("mode", pa.string()),
        ("bits", pa.int64()),
        ("seconds", pa.float64()),
        ("error", pa.string()),
    ]
)
MANIFEST_COLUMNS = [f.name for f in MANIFEST_SCHEMA]

#: Output extension per input extension when the format is kept (formats that cannot
#: hold colour well are written as PNG).
KEEP_FORMAT = {".jpg": ".jpg", ".jpeg": ".jpeg", ".jfif": ".jpg", ".png": ".png", ".tif": ".tif",
               ".tiff": ".tiff", ".bmp": ".bmp", ".webp": ".webp", ".gif": ".png", ".pgm": ".png", ".ppm": ".png"}
PIL_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
              ".webp": "WEBP"}


def manifest_row(input_path, rel, status, output="", cluster="", width=0, height=0, mode="", bits=0, seconds=0.0,
                 error=""):
    return {"input": input_path, "rel": rel, "status": status, "output": output, "cluster": cluster or "",
            "width": int(width), "height": int(height), "mode": mode, "bits": int(bits),
            "seconds": round(float(seconds), 4), "error": error}


def dead_to_row(dead):
    """A dead letter from reading / listing as a manifest row (``skipped`` for non-image names)."""
    reason = dead["reason"]
    status = SKIPPED if reason.startswith("skipped") else FAILED
    return manifest_row(dead["path"], "", status, error=f"{dead['stage']}: {reason}")


def output_rel(rel, fmt=None):
    """Relative output path: same folders and stem; extension from `fmt` or kept (see KEEP_FORMAT)."""
    stem, ext = posixpath.splitext(rel)
    if fmt:
        return stem + "." + fmt.lower().lstrip(".")
    return stem + KEEP_FORMAT.get(ext.lower(), ".png")


def safe_output_path(output_dir, rel):
    """Join `rel` under `output_dir`, refusing anything that could escape it."""
    reason = unsafe_member_reason(rel)
    if reason:
        raise ValueError(reason)
    return FileSystems.join(output_dir, *[p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")])


class SkipFinishedDoFn(beam.DoFn):
    """(path, rel) -> same (main) or a ``skipped`` manifest row when the output already exists.

    Outputs only ever appear by atomic rename, so an existing output is complete.
    Archives pass through (their members are checked by `ColorizeDoFn`).
    """

    def __init__(self, output_dir, fmt=None, force=False):
        self.output_dir, self.fmt, self.force = output_dir, fmt, force
        self.skipped = Metrics.counter("archive", "images_skipped")

    def process(self, item):
        from .io import is_archive_name

        path, rel = item
        if not self.force and not is_archive_name(path):
            try:
                out = safe_output_path(self.output_dir, output_rel(rel, self.fmt))
                if FileSystems.exists(out):
                    self.skipped.inc()
                    yield beam.pvalue.TaggedOutput(SKIPPED, manifest_row(path, rel, SKIPPED, out,
                                                                         error="output exists"))
                    return
            except ValueError:
                pass  # reported by the colorize step
        yield item


class ColorizeDoFn(beam.DoFn):
    """`ImageFile` -> colorized output file + manifest row (never raises on bad input).

    The model (single regressor or clustered bundle, and its parser) loads
    once per worker in `setup()`.
    """

    def __init__(self, model_dir, output_dir, fmt=None, quality=95, force=False, max_pixels=DEFAULT_MAX_PIXELS,
                 refine=None, tile=512, chroma_max_side=0, parser_dir=None, selection_k=None, log_every=50):
        self.model_dir, self.output_dir, self.fmt, self.quality = model_dir, output_dir, fmt, quality
        self.force, self.max_pixels, self.refine, self.tile = force, max_pixels, refine, tile
        self.chroma_max_side, self.parser_dir, self.selection_k = chroma_max_side, parser_dir, selection_k
        self.log_every = log_every
        self.done = Metrics.counter("archive", "images_done")
        self.failed = Metrics.counter("archive", "images_failed")
        self.skipped = Metrics.counter("archive", "images_skipped")
        self.pixels = Metrics.counter("archive", "pixels_done")

    def setup(self):
        from colorize_tf.colorize import load_colorizer
        from colorize_tf.refine import RefineParams

        from .fs import local_copy

        refine = RefineParams.parse(self.refine)
        self.colorizer = load_colorizer(local_copy(self.model_dir), refine=refine, tile=self.tile,
                                        parser_dir=local_copy(self.parser_dir), k=self.selection_k)
        self._count, self._t0 = 0, time.time()

    def process(self, item):
        t0 = time.perf_counter()
        try:
            out = safe_output_path(self.output_dir, output_rel(item.rel, self.fmt))
        except ValueError as exc:
            self.failed.inc()
            yield manifest_row(item.path, item.rel, FAILED, error=f"unsafe path: {exc}")
            return
        if not self.force and FileSystems.exists(out):
            self.skipped.inc()
            yield manifest_row(item.path, item.rel, SKIPPED, out, error="output exists")
            return
        try:
            pic = decode_image(item.data, max_pixels=self.max_pixels)
        except ImageDecodeError as exc:
            self.failed.inc()
            yield manifest_row(item.path, item.rel, FAILED, error=f"decode: {exc}")
            return
        h, w = pic.shape
        try:
            info = {}
            from colorize_tf.colorize import colorize_reduced

            rgb = colorize_reduced(self.colorizer, pic.gray, self.chroma_max_side, info=info)
            ext = posixpath.splitext(out)[1].lower()
            data = encode_image(rgb, PIL_FORMAT.get(ext, "PNG"), alpha=pic.alpha, bits=pic.bits, info=pic.info,
                                quality=self.quality)
            write_atomically(out, data)
        except Exception as exc:  # out of memory, encoder or filesystem errors: report, go on
            self.failed.inc()
            yield manifest_row(item.path, item.rel, FAILED, width=w, height=h, mode=pic.mode, bits=pic.bits,
                               seconds=time.perf_counter() - t0, error=f"colorize: {type(exc).__name__}: {exc}")
            return
        self.done.inc()
        self.pixels.inc(h * w)
        self._count += 1
        if self.log_every and self._count % self.log_every == 0:
            log.info("worker colorized %d images (%.2f images/s)", self._count,
                     self._count / max(time.time() - self._t0, 1e-9))
        yield manifest_row(item.path, item.rel, DONE, out, info.get("cluster"), w, h, pic.mode, pic.bits,
                           time.perf_counter() - t0)
