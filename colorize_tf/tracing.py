"""Keras inference as TensorFlow concrete functions, traced once per input shape and never again.

Bilinear upsampling layers need static spatial sizes, so a convolutional model is traced once per working
shape (a handful: the longer side is fixed and sides are multiples of the stride); a per-pixel model once for
any number of rows. Calling a ``tf.function`` object with a new shape retraces it and, past a few traces,
TensorFlow logs "triggered tf.function retracing" warnings (it counts traces by source line, so even one trace
for each of a bundle's regressors trips it). Here each shape's concrete function is made explicitly and kept,
so tracing is bounded, counted and silent.
"""

from __future__ import annotations

import threading

import numpy as np


class Traced:
    """``fn(x)`` on float32 arrays through one concrete function per shape of ``x``.

    Parameters
    ----------
    fn : callable
        TensorFlow-traceable function of one float32 tensor (e.g. ``lambda t: model(t, training=False)``).
    any_rows : bool
        The first axis may vary without a new trace (per-pixel models: ``(None, D)``).
    """

    def __init__(self, fn, any_rows=False):
        import tensorflow as tf

        self._tf = tf
        self._function = tf.function(fn, autograph=False)
        self._any_rows = any_rows
        self._concrete = {}
        self._lock = threading.Lock()

    @property
    def traces(self):
        """How many shapes have been traced."""
        return len(self._concrete)

    def __call__(self, x):
        x = np.asarray(x, np.float32)
        key = ((None,) + x.shape[1:]) if self._any_rows else x.shape
        fn = self._concrete.get(key)
        if fn is None:
            with self._lock:
                fn = self._concrete.get(key)
                if fn is None:
                    spec = self._tf.TensorSpec(key, self._tf.float32)
                    fn = self._concrete[key] = self._function.get_concrete_function(spec)
        return fn(self._tf.constant(x))
