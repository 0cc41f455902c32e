"""Beam's ML idiom for our models: a custom `ModelHandler` used through `RunInference`.

Beam's TensorFlow handler needs tensorflow-hub; this one needs only ``apache_beam.ml.inference.base``.
RunInference shares the loaded model within a worker process (``shared.Shared``), batches elements,
and reports its own metrics (``num_inferences``, ``inference_batch_latency_micro_secs``,
``load_model_latency_milli_secs``, failed batches); the handler adds distributions of milliseconds per
image and kilopixels per image.

Examples are `ImageExample` (id, path, luminance, colour truth). Two handlers:

`ColorizerHandler`
    A panel of models by name (the model under evaluation and any baselines), each loaded with
    ``colorize_tf.registry.load_colorizer``; the prediction is ``{name: Colorized}``.
`ClusterModelsHandler`
    Keyed by model directory (Algorithm 3 colorizes each reference image with its own cluster's
    regressor): examples are ``(model_dir, ImageExample)``, models are loaded on first use and kept in a
    per-process LRU cache of bounded size; the scene parser is shared by all of them
    (``registry.load_parser``). Beam's multi-model ``KeyedModelHandler`` would hold every model in a
    separate server process (``MultiProcessShared``) and copy each image there and back.
"""

from __future__ import annotations

import collections
import time
from typing import NamedTuple, Optional

import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from .fs import local_copy


class ImageExample(NamedTuple):
    """One image to colorize and score: luminance (H, W) and colour truth (H, W, 3), both in [0, 1]."""

    image_id: str
    path: str
    gray: np.ndarray
    rgb: Optional[np.ndarray]


class _Measured:
    """Distributions of milliseconds and kilopixels per colorized image."""

    def __init__(self, namespace):
        self.ms = Metrics.distribution(namespace, "milliseconds_per_image")
        self.kpx = Metrics.distribution(namespace, "kilopixels_per_image")

    def colorize(self, colorizer, gray):
        from colorize_tf.colorize import colorize_image

        t0 = time.perf_counter()
        out = colorize_image(colorizer, gray)  # at the family's working side, as users get it
        self.ms.update(int(round((time.perf_counter() - t0) * 1000)))
        self.kpx.update(int(gray.size // 1000))
        return out


class Panel(dict):
    """Loaded colorizers by name (a dict RunInference can share: it holds its models by weak reference)."""


class ColorizerHandler(ModelHandler):
    """`ImageExample` -> PredictionResult(example, {name: Colorized}) for a panel of models.

    Parameters
    ----------
    models : dict of str -> str
        Name -> model directory or bundle (any Beam filesystem).
    settings : dict of str -> colorize_tf.registry.ColorizeSettings
        Per name; missing names use `default_settings`.
    """

    def __init__(self, models, settings=None, default_settings=None, max_batch_size=4):
        super().__init__(max_batch_size=max_batch_size)
        from colorize_tf.registry import ColorizeSettings

        self.models = dict(models)
        self.settings = dict(settings or {})
        self.default_settings = default_settings or ColorizeSettings()

    def load_model(self):
        from colorize_tf.registry import load_colorizer

        return Panel(
            (name, load_colorizer(local_copy(path), self.settings.get(name, self.default_settings)))
            for name, path in self.models.items()
        )

    def run_inference(self, batch, model, inference_args=None):
        measured = _Measured(self.get_metrics_namespace())
        for ex in batch:
            yield PredictionResult(
                ex,
                {name: measured.colorize(col, ex.gray) for name, col in model.items()},
                model_id=",".join(self.models),
            )

    def get_num_bytes(self, batch):
        return sum(ex.gray.nbytes for ex in batch)

    def get_metrics_namespace(self):
        return "colorize"


class ColorizerCache:
    """Colorizers by model directory, loaded on first use; the least recently used leaves beyond `size`."""

    def __init__(self, settings, size):
        self.settings, self.size = settings, size
        self._cache = collections.OrderedDict()

    def get(self, model_dir):
        from colorize_tf.registry import load_colorizer

        if model_dir in self._cache:
            self._cache.move_to_end(model_dir)
        else:
            if len(self._cache) >= self.size:
                self._cache.popitem(last=False)
            self._cache[model_dir] = load_colorizer(local_copy(model_dir), self.settings)
        return self._cache[model_dir]


class ClusterModelsHandler(ModelHandler):
    """``(model_dir, ImageExample)`` -> PredictionResult(example, Colorized, model_id=model_dir)."""

    def __init__(self, settings=None, cache_size=64, max_batch_size=8):
        super().__init__(max_batch_size=max_batch_size)
        from colorize_tf.registry import ColorizeSettings

        self.settings = settings or ColorizeSettings(tile=0)
        self.cache_size = cache_size

    def load_model(self):
        return ColorizerCache(self.settings, self.cache_size)

    def run_inference(self, batch, model, inference_args=None):
        measured = _Measured(self.get_metrics_namespace())
        for model_dir, ex in sorted(batch, key=lambda item: item[0]):
            yield PredictionResult(ex, measured.colorize(model.get(model_dir), ex.gray), model_id=model_dir)

    def get_num_bytes(self, batch):
        return sum(ex.gray.nbytes for _, ex in batch)

    def get_metrics_namespace(self):
        return "clusters"


def failure_rows(failure):
    """RunInference's failed batch ``(batch, exception)`` -> one dead letter per image (examples may be keyed
    ``(key, ImageExample)``)."""
    batch, exc = failure
    examples = [ex[1] if isinstance(ex, tuple) and not isinstance(ex, ImageExample) else ex for ex in batch]
    return [{"path": ex.path, "stage": "colorize", "reason": repr(exc)[:500]} for ex in examples]
