"""Image-level training records for convolutional families: a colour photo at a working resolution as
``tf.train.Example`` (gray input as uint8, target chroma as float16, scene label), so a Keras model reads whole
images with tf.data while the per-pixel families keep their sampled-pixel records (`colorize_tf.records`).
"""

from __future__ import annotations

import numpy as np

from .color import rgb_to_yuv, to_uint
from .splits import stratum

#: Longer side of the stored images: the working resolution the convolutional families train at.
DEFAULT_SIDE = 256
#: Stored sides are multiples of this (the nets downsample by powers of 2).
MULTIPLE = 8


def image_shape(height, width, side=DEFAULT_SIDE, multiple=MULTIPLE):
    """(h, w) with the longer side at most `side` (never upsampled), aspect kept, multiples of `multiple`."""
    scale = min(1.0, side / float(max(height, width)))
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


def prepare(rgb, side=DEFAULT_SIDE):
    """A colour photo (H, W, 3) in [0, 1] at the working resolution.

    Returns
    -------
    gray : ndarray of uint8, shape (h, w)
        BT.601 luminance of the resized photo.
    uv : ndarray of float16, shape (h, w, 2)
        Its chrominance.
    """
    import cv2

    h, w = image_shape(*rgb.shape[:2], side)
    small = cv2.resize(np.asarray(rgb, np.float32), (w, h), interpolation=cv2.INTER_AREA)
    yuv = rgb_to_yuv(np.clip(small, 0, 1))
    return to_uint(np.clip(yuv[..., 0], 0, 1), 8), yuv[..., 1:].astype(np.float16)


def encode(image_id, gray, uv, scene=None):
    """One image's Example (bytes): ``image_id``, ``scene`` (default: its stratum, e.g. SIFT Flow's category),
    ``gray`` (uint8 bytes), ``uv`` (float16 bytes), ``height``, ``width``."""
    import tensorflow as tf

    gray = np.ascontiguousarray(gray, np.uint8)
    uv = np.ascontiguousarray(uv, np.float16)
    if uv.shape != gray.shape + (2,):
        raise ValueError(f"uv shape {uv.shape} does not match gray {gray.shape}")
    scene = stratum(image_id) if scene is None else scene

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    feats = {
        "image_id": b(image_id.encode()),
        "scene": b(scene.encode()),
        "gray": b(gray.tobytes()),
        "uv": b(uv.tobytes()),
        "height": i(gray.shape[0]),
        "width": i(gray.shape[1]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def parse(serialized):
    """Parse one Example into tensors: gray float32 (h, w, 1) in [0, 1], uv float32 (h, w, 2), ids as strings."""
    import tensorflow as tf

    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("image_id", "scene", "gray", "uv")}
    spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in ("height", "width")})
    ex = tf.io.parse_single_example(serialized, spec)
    h, w = ex["height"], ex["width"]
    gray = tf.reshape(tf.io.decode_raw(ex["gray"], tf.uint8), tf.stack([h, w, 1]))
    uv = tf.reshape(tf.io.decode_raw(ex["uv"], tf.float16), tf.stack([h, w, 2]))
    return {
        "image_id": ex["image_id"],
        "scene": ex["scene"],
        "gray": tf.cast(gray, tf.float32) / 255.0,
        "uv": tf.cast(uv, tf.float32),
    }
