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
    and unforeseen errors (stage ``internal``) are dead letters.

    ``masks`` maps an image's file stem to its label mask's path (any Beam filesystem) and ``lut`` raw mask
    values to class indices (`colorize_tf.datasets.LabelledSet`): those images carry per-pixel labels; an
    image without a mask is kept without labels (counter ``images_without_labels``); a mask that cannot be
    read or does not match its image is a dead letter (stage ``labels``).
    """

    def __init__(self, side, max_pixels=None, masks=None, lut=None):
        self.side, self.max_pixels = side, max_pixels
        self.masks, self.lut = masks or {}, lut
        self.ok = Metrics.counter("images", "images_ok")
        self.bad = Metrics.counter("images", "images_failed")
        self.unlabelled = Metrics.counter("images", "images_without_labels")

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
        labels = None
        if self.masks:
            labels, dead = self._labels(item, pic.shape[:2])
            if dead is not None:
                self.bad.inc()
                yield beam.pvalue.TaggedOutput(DEAD, dead)
                return
        try:
            gray, uv = self.records.prepare(pic.rgb, self.side)
            if labels is not None:
                labels = self.records.prepare_labels(labels, self.lut, gray.shape)
            example = self.records.encode(item.image_id, gray, uv, labels=labels)
        except Exception as exc:  # unforeseen: counted against the job's --max_failed_fraction
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(item.path, "internal", f"{type(exc).__name__}: {exc}"))
            return
        self.ok.inc()
        if self.masks and labels is None:
            self.unlabelled.inc()
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

    def _labels(self, item, shape):
        """(raw mask at the photo's size or None, dead letter or None)."""
        import posixpath

        from colorize_tf.datasets import decode_mask

        from .fs import read_bytes

        mask_path = self.masks.get(posixpath.splitext(posixpath.basename(item.rel))[0])
        if mask_path is None:
            return None, None
        try:
            return decode_mask(read_bytes(mask_path), shape), None
        except ValueError as exc:  # not a one-channel mask of the photo's size
            return None, dead_letter(item.path, "labels", f"mask {mask_path}: {exc}")
        except Exception as exc:  # unreadable file: this image's dead letter, not the job's end
            return None, dead_letter(item.path, "labels", f"mask {mask_path}: {type(exc).__name__}: {exc}")
