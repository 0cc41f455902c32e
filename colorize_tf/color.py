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


def recombine(y, uv, dtype=np.float32, rows=None):
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
    dtype : numpy dtype
        float32 (values in [0, 1]), or uint8 / uint16 (quantised to the full range, no float image made).
    rows : int, optional
        Rows per block (default: about 64 K pixels, so the temporaries stay in cache).

    Returns
    -------
    rgb : ndarray of `dtype`, shape (H, W, 3)
        With ``luminance(rgb) == y`` up to float rounding (and quantisation for integer types).
    """
    y = np.asarray(y, dtype=np.float32)
    uv = np.asarray(uv, dtype=np.float32)
    out = np.empty(y.shape + (3,), dtype=dtype)
    if y.ndim != 2:
        out[...] = recombine(y.reshape(1, -1), uv.reshape(1, -1, 2), dtype).reshape(out.shape)
        return out
    rows = rows or max(1, (1 << 16) // max(1, y.shape[1]))
    for r in range(0, y.shape[0], rows):
        recombine_block(y[r : r + rows], uv[r : r + rows, :, 0], uv[r : r + rows, :, 1], out[r : r + rows])
    return out


_CHROMA_TO_RGB = YUV_TO_RGB[:, 1:].astype(np.float32)  # (3, 2): each channel's share of U and V


def _chroma_term(m, u, v):
    """m[0] * u + m[1] * v, skipping an exact zero (R has no U term and B no V term in BT.601)."""
    if m[0] == 0:
        return v * m[1]
    if m[1] == 0:
        return u * m[0]
    d = u * m[0]
    d += v * m[1]
    return d


def recombine_block(y, u, v, out):
    """`recombine` of one block into `out` (float32 in [0, 1], or uint8 / uint16 at full range).

    ``y``, ``u``, ``v``: (h, w) float32. The gamut fit per pixel: Y + s * delta_c in [0, 1] for each channel c
    (delta_c its chroma term) with the largest s <= 1, i.e. s = 1 / max(1, max_c r_c) where
    r_c = max(delta_c / (1 - Y), -delta_c / Y) is how far the channel overshoots.
    """
    y = np.clip(y, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_up = np.reciprocal(1.0 - y)  # inf where Y = 1: any push up overshoots, none down
        inv_dn = np.reciprocal(y)
    deltas = [_chroma_term(m, u, v) for m in _CHROMA_TO_RGB]
    over = np.ones_like(y)
    tmp = np.empty_like(y)
    with np.errstate(invalid="ignore"):  # 0 * inf where a channel's term is 0 at Y = 0 or 1: no overshoot
        for d in deltas:
            np.multiply(d, inv_up, out=tmp)
            np.fmax(over, tmp, out=over)  # fmax: a NaN never wins
            np.multiply(d, inv_dn, out=tmp)
            np.negative(tmp, out=tmp)
            np.fmax(over, tmp, out=over)
    scale = np.reciprocal(over, out=over)
    integer = out.dtype != np.float32
    peak = float(np.iinfo(out.dtype).max) if integer else 1.0
    for c, d in enumerate(deltas):
        d *= scale
        d += y
        np.clip(d, 0.0, 1.0, out=d)
        if integer:
            d *= peak
            np.rint(d, out=d)
        out[..., c] = d
    return out


def to_uint(img, bits=8, rows=256):
    """Quantise a [0, 1] float image to uint8 (bits=8) or uint16 (bits=16).

    Works in blocks of `rows` rows, so the float temporaries stay small for large images.
    """
    peak = (1 << bits) - 1
    img = np.asarray(img)
    if img.dtype == (np.uint8 if bits == 8 else np.uint16):
        return img
    if img.dtype in (np.uint8, np.uint16):  # the other integer depth: rescaled exactly (x 257) or rounded
        return (img.astype(np.uint16) * 257) if bits == 16 else ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
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
