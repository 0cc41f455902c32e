"""Colour spaces (image files: `colorize_tf.imageio`).

The paper works in YUV (BT.601): the network sees luminance features and
predicts the two chrominance channels U and V. All arrays here are float32
in [0, 1] for RGB and Y, and U in [-U_MAX, U_MAX], V in [-V_MAX, V_MAX].
"""

from __future__ import annotations

import numpy as np

# BT.601 analogue YUV (the paper's colour space), RGB in [0, 1].
RGB_TO_YUV = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14713, -0.28886, 0.436],
        [0.615, -0.51499, -0.10001],
    ],
    dtype=np.float64,
)
# The exact inverse, so that (Y, 0, 0) maps to gray and chroma adds no luma.
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV)
U_MAX = 0.436
V_MAX = 0.615
UV_SCALE = np.array([U_MAX, V_MAX], dtype=np.float32)


def rgb_to_yuv(rgb):
    """Convert RGB to YUV (BT.601).

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        RGB in [0, 1].

    Returns
    -------
    yuv : ndarray of float32, shape (..., 3)
        Y in [0, 1], U in [-0.436, 0.436], V in [-0.615, 0.615].
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    return (rgb @ RGB_TO_YUV.T.astype(np.float32)).astype(np.float32)


def yuv_to_rgb(yuv):
    """Convert YUV (BT.601) to RGB without clipping; inverse of `rgb_to_yuv`."""
    yuv = np.asarray(yuv, dtype=np.float32)
    return (yuv @ YUV_TO_RGB.T.astype(np.float32)).astype(np.float32)


def luminance(rgb):
    """Return Y (BT.601) of an RGB array in [0, 1], shape (...,)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return rgb @ RGB_TO_YUV[0].astype(np.float32)


def recombine(y, uv):
    """Combine luminance with chrominance into RGB, keeping Y exactly.

    Where Y + chroma would leave the RGB cube, the chroma of that pixel is
    scaled towards zero just enough to fit (hue kept, saturation reduced),
    instead of clipping channels, which would change the luminance.

    Parameters
    ----------
    y : ndarray, shape (H, W)
        Luminance in [0, 1].
    uv : ndarray, shape (H, W, 2)
        Chrominance.

    Returns
    -------
    rgb : ndarray of float32, shape (H, W, 3)
        In [0, 1], with ``luminance(rgb) == y`` up to float rounding.
    """
    y = np.asarray(y, dtype=np.float32)
    uv = np.asarray(uv, dtype=np.float32)
    rows = max(1, (1 << 21) // max(1, y.shape[-1])) if y.ndim == 2 else 0
    if rows and y.shape[0] > rows:  # bound the temporaries for large images: ~2 M pixels at a time
        out = np.empty(y.shape + (3,), dtype=np.float32)
        for r in range(0, y.shape[0], rows):
            out[r : r + rows] = recombine(y[r : r + rows], uv[r : r + rows])
        return out
    y = np.clip(y, 0.0, 1.0)
    # Chroma contribution to each RGB channel: it has zero luminance.
    delta = uv @ YUV_TO_RGB[:, 1:].T.astype(np.float32)  # (H, W, 3)
    yy = y[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        room_up = np.where(delta > 0, (1.0 - yy) / delta, np.inf)
        room_down = np.where(delta < 0, yy / -delta, np.inf)
    scale = np.minimum(1.0, np.minimum(room_up, room_down).min(axis=-1))
    rgb = yy + delta * scale[..., None]
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def to_uint(img, bits=8, rows=256):
    """Quantise a [0, 1] float image to uint8 (bits=8) or uint16 (bits=16).

    Works in blocks of `rows` rows, so the float temporaries stay small for large images.
    """
    peak = (1 << bits) - 1
    img = np.asarray(img)
    out = np.empty(img.shape, dtype=np.uint8 if bits == 8 else np.uint16)
    if img.ndim == 0:
        return (
            np.uint8(np.rint(np.clip(img, 0.0, 1.0) * peak))
            if bits == 8
            else np.uint16(np.rint(np.clip(img, 0.0, 1.0) * peak))
        )
    for r in range(0, img.shape[0], rows):
        block = np.clip(img[r : r + rows], 0.0, 1.0) * peak
        out[r : r + rows] = np.rint(block, out=block)
    return out
