"""Beam DoFn preparing labelled scenes for the scene parser."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from colorize_tf.imageio import ImageDecodeError

from .fs import read_bytes
from .io import DEAD, dead_letter


class PrepareParserExampleDoFn(beam.DoFn):
    """(split, name, image_path, mask_path) -> serialised example tagged by split, or a dead letter.

    Validates that the mask decodes, has one channel and the image's size;
    maps raw label values to class indices (`lut`) and resizes both to the
    parser's working size.
    """

    def __init__(self, lut, work_size, splits=("train", "test")):
        self.lut = lut
        self.work_size = work_size
        self.splits = splits
        self.ok = Metrics.counter("parser_data", "pairs_ok")
        self.bad = Metrics.counter("parser_data", "pairs_failed")

    def setup(self):
        from colorize_tf import parser_train

        self._prepare = parser_train.prepare_pair
        self._encode = parser_train.encode_pair

    def process(self, item):
        split, name, image_path, mask_path = item
        try:
            gray, label = self._prepare(read_bytes(image_path), read_bytes(mask_path), self.lut, self.work_size)
        except (ImageDecodeError, ValueError, OSError) as exc:
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(image_path, "parser_data", f"{type(exc).__name__}: {exc}"))
            return
        self.ok.inc()
        yield beam.pvalue.TaggedOutput(split, self._encode(name, gray, label))
