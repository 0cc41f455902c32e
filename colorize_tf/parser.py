"""Grayscale scene parser and the semantic descriptor block (Sec. III-B.3).

The paper retrains FCN (Long et al.) on grayscale SIFT Flow. No pretrained
weights can be downloaded here, so this module defines a compact fully
convolutional encoder-decoder (strided 3x3 convolutions, batch norm, skip
connections, a global-context branch) that trains from scratch on 2 CPU
cores, and turns its per-pixel class probabilities into the ``semantic``
descriptor block, smoothed at region boundaries by a domain-transform
edge-preserving filter (Gastal & Oliveira) guided by the gray image.

A parser directory holds ``parser.keras`` and ``parser.json`` (class names,
working size, smoothing, metrics, SHA-256 of the Keras file).
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .checksums import load_verified_keras, sha256_file
from .features import Block, register_block
from .files import read_json_meta, write_json

PARSER_FILE = "parser.keras"
PARSER_META = "parser.json"
PARSER_FORMAT = "colorize_tf.parser"
#: Input sides must be multiples of this (five stride-2 stages).
STRIDE = 32


# --------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------
def build_parser(num_classes, base=24, name="gray_scene_parser"):
    """Fully convolutional encoder-decoder for 1-channel input.

    Encoder: five stride-2 stages (1/2 .. 1/32) of two 3x3 conv + BN + ReLU;
    a global-average context vector is added back at 1/32 (scene-level
    consistency, as in ParseNet). Decoder: three upsampling steps with skip
    connections to 1/4, 1x1 classifier, bilinear upsampling x4 to the input
    size. Output: per-pixel logits (H, W, num_classes).

    Parameters
    ----------
    num_classes : int
    base : int
        Channels of the first stage (x1, x2, x4, x8, x8 in later stages).
    """
    import keras
    from keras import layers

    def conv(x, ch, stride=1, tag=""):
        x = layers.Conv2D(ch, 3, strides=stride, padding="same", use_bias=False, name=f"{tag}_conv")(x)
        x = layers.BatchNormalization(name=f"{tag}_bn")(x)
        return layers.ReLU(name=f"{tag}_relu")(x)

    inp = keras.Input(shape=(None, None, 1), name="gray")
    widths = [base, 2 * base, 4 * base, 8 * base, 8 * base]
    x = inp
    skips = []
    for i, ch in enumerate(widths):
        x = conv(x, ch, 2, f"enc{i + 1}a")
        x = conv(x, ch, 1, f"enc{i + 1}b")
        skips.append(x)
    ctx = layers.GlobalAveragePooling2D(keepdims=True, name="context_pool")(x)
    ctx = layers.Conv2D(widths[-1], 1, activation="relu", name="context_fc")(ctx)
    x = layers.Add(name="context_add")([x, ctx])
    for i, (skip, ch) in enumerate(zip(reversed(skips[1:4]), (4 * base, 2 * base, base))):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{i + 1}_up")(x)
        x = layers.Concatenate(name=f"dec{i + 1}_cat")([x, skip])
        x = conv(x, ch, 1, f"dec{i + 1}")
    x = layers.Conv2D(num_classes, 1, name="classifier")(x)
    out = layers.UpSampling2D(4, interpolation="bilinear", name="logits")(x)
    return keras.Model(inp, out, name=name)


def class_weights(counts, power=0.5, clip=(0.1, 10.0)):
    """Median-frequency class weights (Eigen & Fergus), softened by `power`.

    Parameters
    ----------
    counts : ndarray, shape (N,)
        Labelled pixels per class in the training set.

    Returns
    -------
    weights : ndarray of float32, shape (N,)
        Classes absent from training get weight 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / max(counts.sum(), 1.0)
    present = freq > 0
    w = np.zeros_like(freq)
    w[present] = (np.median(freq[present]) / freq[present]) ** power
    w[present] = np.clip(w[present], *clip)
    return w.astype(np.float32)


def pad_to_stride(arr, stride=STRIDE):
    """Reflect-pad (H, W, ...) to multiples of `stride`; returns (padded, (h, w))."""
    h, w = arr.shape[:2]
    ph, pw = (-h) % stride, (-w) % stride
    if ph or pw:
        pad = [(0, ph), (0, pw)] + [(0, 0)] * (arr.ndim - 2)
        arr = np.pad(arr, pad, mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    return arr, (h, w)


def working_shape(h, w, size):
    """Resize target keeping aspect: longer side `size` (never upsampled beyond it), multiples of STRIDE."""
    scale = size / float(max(h, w))
    nh = max(STRIDE, int(round(h * scale / STRIDE)) * STRIDE)
    nw = max(STRIDE, int(round(w * scale / STRIDE)) * STRIDE)
    return nh, nw


# --------------------------------------------------------------------------
# Edge-preserving smoothing of probability maps
# --------------------------------------------------------------------------
_POOLS = {}


def _thread_pool(n):
    """A shared pool of `n` threads (OpenCV releases the GIL, so channel chunks filter in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    if n not in _POOLS:
        _POOLS[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="dtfilter")
    return _POOLS[n]


def smooth_probabilities(gray, probs, sigma_spatial=8.0, sigma_color=0.1, iterations=3):
    """Domain-transform filter of class probabilities guided by the gray image.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Guide in [0, 1].
    probs : ndarray, shape (H, W, N)
    sigma_spatial, sigma_color : float
        Domain transform parameters (pixels; luminance units).

    Returns
    -------
    probs : ndarray of float32, shape (H, W, N)
        Smoothed and renormalised to sum to 1 per pixel.
    """
    probs = np.asarray(probs, dtype=np.float32)
    if sigma_spatial <= 0:
        return probs
    guide = np.ascontiguousarray(gray, dtype=np.float32)
    out = np.empty_like(probs)

    def smooth(c0):  # OpenCV's domain transform takes up to 4 channels and runs on one thread
        dtf = cv2.ximgproc.createDTFilter(
            guide, float(sigma_spatial), float(sigma_color), cv2.ximgproc.DTF_RF, int(iterations)
        )
        chunk = np.ascontiguousarray(probs[..., c0 : c0 + 4])
        out[..., c0 : c0 + 4] = dtf.filter(chunk).reshape(chunk.shape)

    starts = range(0, probs.shape[-1], 4)
    threads = min(len(starts), cv2.getNumThreads())  # cv2.setNumThreads(1) makes it sequential
    if threads > 1:
        list(_thread_pool(threads).map(smooth, starts))
    else:
        for c0 in starts:
            smooth(c0)
    np.maximum(out, 0, out=out)
    out /= np.maximum(out.sum(-1, keepdims=True), 1e-12)
    return out


def semantic_histogram(probs):
    """Fraction of pixels assigned (argmax) to each class; shape (N,), sums to 1."""
    probs = np.asarray(probs)
    n = probs.shape[-1]
    counts = np.bincount(probs.reshape(-1, n).argmax(-1), minlength=n).astype(np.float64)
    return (counts / max(counts.sum(), 1.0)).astype(np.float32)


# --------------------------------------------------------------------------
# Loaded parser
# --------------------------------------------------------------------------
class SceneParser:
    """A trained grayscale scene parser.

    Parameters
    ----------
    model : keras.Model
        Logits model from `build_parser`.
    meta : dict
        ``classes`` (names), ``work_size``, ``smoothing`` ({sigma_spatial, sigma_color}).
    """

    def __init__(self, model, meta, directory=None):
        import tensorflow as tf

        self.model = model
        self.meta = meta
        self.directory = directory
        self.classes: List[str] = list(meta["classes"])
        self.work_size = int(meta.get("work_size", 256))
        sm = meta.get("smoothing", {})
        self.sigma_spatial = float(sm.get("sigma_spatial", 8.0))
        self.sigma_color = float(sm.get("sigma_color", 0.1))

        def softmax_probs(t):
            return tf.nn.softmax(model(t, training=False), axis=-1)

        from .tracing import Traced

        # one concrete function per working shape (a handful: the longer side is fixed, sides are multiples
        # of 32); bilinear upsampling layers need static spatial sizes
        self._fn = Traced(softmax_probs)

    @property
    def num_classes(self):
        return len(self.classes)

    @classmethod
    def load(cls, directory, verify=True):
        meta = read_parser_meta(directory)
        model = load_verified_keras(
            os.path.join(directory, PARSER_FILE), meta.get("files", {}).get(PARSER_FILE), PARSER_META, verify
        )
        return cls(model, meta, directory)

    def save(self, directory, extra=None):
        os.makedirs(directory, exist_ok=True)
        kpath = os.path.join(directory, PARSER_FILE)
        self.model.save(kpath)
        meta = dict(self.meta)
        meta.update(extra or {})
        meta["format"] = PARSER_FORMAT
        meta["files"] = {PARSER_FILE: sha256_file(kpath)}
        write_json(os.path.join(directory, PARSER_META), meta)
        self.meta, self.directory = meta, directory
        return meta

    def raw_probabilities(self, gray):
        """Class probabilities at the parser's working resolution.

        Returns
        -------
        probs : ndarray of float32, shape (h, w, N)
            For the image resized to `working_shape` (aspect kept).
        """
        gray = np.asarray(gray, dtype=np.float32)
        h, w = working_shape(*gray.shape, self.work_size)
        small = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
        return self._fn(small[None, :, :, None]).numpy()[0]

    def probabilities(self, gray, smooth=True, raw=None, window=None):
        """Per-pixel class probabilities at the image's resolution, shape (H, W, N).

        The working-resolution output is upsampled bilinearly and, if
        `smooth`, filtered by the domain transform guided by `gray`.

        Parameters
        ----------
        gray : ndarray, shape (H, W)
            The whole image, or a crop of it at `window`.
        raw : ndarray, shape (h, w, N), optional
            ``raw_probabilities(whole image)`` when already computed (required for a crop).
        window : (row, col, full_height, full_width), optional
            Where `gray` lies in the whole image (default: it is the whole image).
        """
        gray = np.asarray(gray, dtype=np.float32)
        if raw is None:
            raw = self.raw_probabilities(gray)
        y0, x0, H, W = window if window is not None else (0, 0) + gray.shape
        probs = upsample_probabilities(raw, (H, W), (y0, x0) + gray.shape)
        if smooth:
            probs = smooth_probabilities(gray, probs, self.sigma_spatial, self.sigma_color)
        return probs

    def labels(self, gray, smooth=True):
        """Argmax class index per pixel, shape (H, W), int32 (0-based into `classes`)."""
        return self.probabilities(gray, smooth).argmax(-1).astype(np.int32)


def upsample_probabilities(probs, shape, crop=None):
    """Bilinear upsampling of working-resolution probabilities to the image grid.

    Parameters
    ----------
    probs : ndarray, shape (h, w, N)
        Probabilities of the whole image at the working resolution.
    shape : (H, W)
        Full image size.
    crop : (row, col, rows, cols), optional
        Only this part of the full-resolution grid (tiles); default all of it.

    Returns
    -------
    ndarray of float32, shape (rows, cols, N)
        Equal to resizing the whole map bilinearly and cropping (up to OpenCV's
        1/32-pixel interpolation grid), so tiles agree exactly with the whole image.
    """
    H, W = shape
    y0, x0, rows, cols = crop if crop is not None else (0, 0, H, W)
    h, w, n = probs.shape
    if (h, w) == (H, W):  # same grid: bilinear sampling at integer positions is the identity
        return np.array(probs[y0 : y0 + rows, x0 : x0 + cols], dtype=np.float32)
    ys = ((np.arange(y0, y0 + rows, dtype=np.float64) + 0.5) * (h / H) - 0.5).astype(np.float32)
    xs = ((np.arange(x0, x0 + cols, dtype=np.float64) + 0.5) * (w / W) - 0.5).astype(np.float32)
    map_x = np.ascontiguousarray(np.broadcast_to(xs[None, :], (rows, cols)))
    map_y = np.ascontiguousarray(np.broadcast_to(ys[:, None], (rows, cols)))
    out = np.empty((rows, cols, n), dtype=np.float32)
    for c0 in range(0, n, 4):
        chunk = np.ascontiguousarray(probs[..., c0 : c0 + 4], dtype=np.float32)
        res = cv2.remap(chunk, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[..., c0 : c0 + 4] = res.reshape(rows, cols, -1)
    return out


# --------------------------------------------------------------------------
# Descriptor block
# --------------------------------------------------------------------------
@register_block
class SemanticBlock(Block):
    """High-level feature: N class probabilities per pixel from the scene parser.

    The parser sees the whole image (global context) once per image in
    `prepare`, at its working resolution; `maps` upsamples the part a tile
    needs and smooths it with the domain transform guided by the tile's gray
    values (margin: 3 spatial sigmas, beyond which the filter's weight is
    negligible).
    """

    name = "semantic"

    def __init__(
        self,
        parser: Optional[SceneParser] = None,
        classes: Optional[Sequence[str]] = None,
        parser_sha256: Optional[str] = None,
    ):
        if parser is None:
            raise ValueError(
                "the descriptor has a 'semantic' block: a scene parser is needed (pass --parser PARSER_DIR, "
                "or use a model directory that contains its parser)"
            )
        if classes is not None and list(classes) != parser.classes:
            raise ValueError(f"parser classes {parser.classes} differ from the model's {list(classes)}")
        sha = parser.meta.get("files", {}).get(PARSER_FILE)
        if parser_sha256 is not None and sha is not None and sha != parser_sha256:
            raise ValueError("the parser is not the one the model was trained with (checksum differs)")
        self.parser = parser
        self.dim = parser.num_classes
        self.margin = int(3 * parser.sigma_spatial) + 1

    @classmethod
    def from_config(cls, cfg, parser=None, **_):
        return cls(parser=parser, classes=cfg.get("classes"), parser_sha256=cfg.get("parser_sha256"))

    def prepare(self, gray):
        return self.parser.raw_probabilities(gray)

    def maps(self, gray, state=None, window=None):
        return self.parser.probabilities(gray, raw=state, window=window)

    def config(self):
        return {
            "name": self.name,
            "classes": list(self.parser.classes),
            "parser_sha256": self.parser.meta.get("files", {}).get(PARSER_FILE),
        }


def read_parser_meta(directory):
    """``parser.json`` of a parser directory (no TensorFlow needed)."""
    return read_json_meta(directory, PARSER_META, PARSER_FORMAT, "parser directory")


def semantic_block_config(directory):
    """The ``semantic`` block's descriptor config for the parser in `directory` (no TensorFlow needed)."""
    meta = read_parser_meta(directory)
    return {
        "name": SemanticBlock.name,
        "classes": list(meta["classes"]),
        "parser_sha256": meta.get("files", {}).get(PARSER_FILE),
    }


def needs_parser(descriptor_config):
    """True when a descriptor config has a semantic block."""
    return any(c.get("name") == SemanticBlock.name for c in descriptor_config)
