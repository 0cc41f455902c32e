"""Beam DoFn of the image-record job: colour photo -> image-level Example + per-image row + dead letters."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from .io import DEAD, dead_letter, decode_colour

IMAGES = "images"
IMAGE_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("path", pa.string()),
        ("scene", pa.string()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("source_height", pa.int64()),
        ("source_width", pa.int64()),
    ]
)


class ImageExampleDoFn(beam.DoFn):
    """`ImageFile` -> serialised Example (main output) + a row (``IMAGES``); undecodable or colourless inputs
    and unforeseen errors (stage ``internal``) are dead letters."""

    def __init__(self, side, max_pixels=None):
        self.side, self.max_pixels = side, max_pixels
        self.ok = Metrics.counter("images", "images_ok")
        self.bad = Metrics.counter("images", "images_failed")

    def setup(self):
        from colorize_tf import image_records  # TensorFlow loads here, once per worker

        self.records = image_records

    def process(self, item):
        from colorize_tf.splits import stratum

        pic, dead = decode_colour(item.data, item.path, "images", self.max_pixels)
        if dead is not None:
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead)
            return
        try:
            gray, uv = self.records.prepare(pic.rgb, self.side)
            example = self.records.encode(item.image_id, gray, uv)
        except Exception as exc:  # unforeseen: counted against the job's --max_failed_fraction
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(item.path, "internal", f"{type(exc).__name__}: {exc}"))
            return
        self.ok.inc()
        yield example
        yield beam.pvalue.TaggedOutput(
            IMAGES,
            {
                "image_id": item.image_id,
                "path": item.path,
                "scene": stratum(item.image_id),
                "height": int(gray.shape[0]),
                "width": int(gray.shape[1]),
                "source_height": int(pic.shape[0]),
                "source_width": int(pic.shape[1]),
            },
        )
