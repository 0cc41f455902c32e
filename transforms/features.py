"""Beam DoFns that turn image files into training samples and per-image rows."""

from __future__ import annotations

import hashlib

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from colorize_tf.color import rgb_to_yuv
from colorize_tf.features import sample_pixels
from colorize_tf.gist import gist
from colorize_tf.imageio import DEFAULT_MAX_PIXELS
from colorize_tf.parser import semantic_histogram

from .fs import local_copy
from .io import DEAD, dead_letter, decode_colour

IMAGES = "images"

#: One row per image in ``images/*.parquet``: ``gist`` is the 512-d global descriptor
#: (colorize_tf.gist), ``semantic_hist`` the parser's class histogram (null without a parser).
IMAGE_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("path", pa.string()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("n_samples", pa.int64()),
        ("source_mode", pa.string()),
        ("gist", pa.list_(pa.float32())),
        ("semantic_hist", pa.list_(pa.float32())),
    ]
)


def image_seed(image_id, seed):
    """Per-image sampling seed: reruns draw the same pixels."""
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class ExtractFeaturesDoFn(beam.DoFn):
    """ImageFile -> serialised tf.train.Example (main), image row (``images``), dead letters (``dead``).

    Parameters
    ----------
    descriptor_config : list of dict
        `Descriptor.config()` of the blocks to compute.
    n_samples : int
        Pixels sampled per image.
    edge_fraction : float
        Share of samples drawn proportionally to gradient magnitude.
    seed : int
    max_pixels : int
        Larger images go to the dead letters.
    parser_dir : str, optional
        Scene parser for a ``semantic`` block; its histogram fills ``semantic_hist``.
    gist_size : int
        Side the gray image is resized to for GIST (0 = skip GIST).
    """

    def __init__(
        self,
        descriptor_config,
        n_samples,
        edge_fraction=0.0,
        seed=0,
        max_pixels=DEFAULT_MAX_PIXELS,
        parser_dir=None,
        gist_size=128,
    ):
        self.descriptor_config = descriptor_config
        self.gist_size = gist_size
        self.parser_dir = parser_dir
        self.n_samples = n_samples
        self.edge_fraction = edge_fraction
        self.seed = seed
        self.max_pixels = max_pixels
        self.ok = Metrics.counter("features", "images_ok")
        self.bad = Metrics.counter("features", "images_failed")
        self.no_colour = Metrics.counter("features", "images_without_colour")
        self.samples = Metrics.counter("features", "samples_written")

    def setup(self):
        from colorize_tf import records  # TensorFlow loads here, once per worker

        records.encode_example("warmup", [[0.0]], [[0.0, 0.0]], [[0, 0]], 1, 1)
        self._encode = records.encode_example
        from colorize_tf.registry import load_descriptor

        self.descriptor = load_descriptor(self.descriptor_config, local_copy(self.parser_dir))
        self.semantic_index = self.descriptor.names.index("semantic") if "semantic" in self.descriptor.names else None

    def process(self, item):
        pic, dead = decode_colour(item.data, item.path, "features", self.max_pixels)
        if dead is not None:
            (self.no_colour if dead["stage"] == "features" else self.bad).inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead)
            return
        try:
            coords = sample_pixels(pic.gray, self.n_samples, self.edge_fraction, image_seed(item.image_id, self.seed))
            states = self.descriptor.prepare(pic.gray)
            x = self.descriptor.compute(pic.gray, coords, states=states, window=(0, 0) + pic.shape)
            global_desc = gist(pic.gray, size=self.gist_size).tolist() if self.gist_size else None
            hist = None
            if self.semantic_index is not None:
                hist = semantic_histogram(states[self.semantic_index]).tolist()
            uv = rgb_to_yuv(pic.rgb[coords[:, 0], coords[:, 1]])[:, 1:]
            example = self._encode(item.image_id, x, uv, coords, *pic.shape)
        except Exception as exc:  # unforeseen: a dead letter (stage "internal"); the job's threshold counts them
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(item.path, "internal", f"{type(exc).__name__}: {exc}"))
            return
        self.ok.inc()
        self.samples.inc(len(coords))
        yield example
        yield beam.pvalue.TaggedOutput(
            IMAGES,
            {
                "image_id": item.image_id,
                "path": item.path,
                "height": int(pic.shape[0]),
                "width": int(pic.shape[1]),
                "n_samples": int(len(coords)),
                "source_mode": pic.mode,
                "gist": global_desc,
                "semantic_hist": hist,
            },
        )
