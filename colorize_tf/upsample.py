"""Chroma from a working resolution to a full-resolution scan, under the scan's own luminance.

Chroma is low-frequency: every family predicts and refines it on a copy of the gray image whose longer side
is the working side (`colorize_tf.colorize.colorize_image`), and only this module touches full-resolution
pixels. It uses the fast guided filter (He & Sun 2015, arXiv:1505.00996): at the working resolution each
chroma channel is fitted locally as ``a * Y + b`` (a guided filter with the small gray image as guide); the
smooth coefficient maps ``a``, ``b`` are upsampled bilinearly and applied to the full-resolution Y, so colour
edges follow the scan's own edges. Rendering runs in row blocks: neither full-resolution chroma nor a float
RGB image is ever held, and the result is written straight into the output's integer type.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from .color import recombine_block


@dataclasses.dataclass(frozen=True)
class GuidedUpsampling:
    """Settings of the guided upsampler.

    Attributes
    ----------
    radius : int
        Box radius of the local linear fit, in working-resolution pixels (0 = plain bilinear upsampling).
    eps : float
        Regularisation of the fit, in luminance units squared: where Y varies less than about sqrt(eps)
        within the box, chroma is kept smooth rather than made to follow Y.
    """

    radius: int = 4
    eps: float = 1e-3

    def __post_init__(self):
        if not (isinstance(self.radius, int) and 0 <= self.radius <= 64):
            raise ValueError(f"guided upsampling radius {self.radius}: expected a whole number 0..64")
        if not 0 < self.eps <= 1:
            raise ValueError(f"guided upsampling eps {self.eps}: expected 0 < eps <= 1")


def guided_coefficients(guide, src, params: GuidedUpsampling = GuidedUpsampling()):
    """Local linear model of `src` in terms of `guide` (the guided filter's mean coefficients).

    Parameters
    ----------
    guide : ndarray, shape (h, w)
        Luminance at the working resolution, in [0, 1].
    src : ndarray, shape (h, w, k)
        Chroma at the same resolution.

    Returns
    -------
    coef : ndarray of float32, shape (h, w, 2k)
        ``a`` for each channel, then ``b``: the guided filter's output is ``a * guide + b``.
    """
    guide = np.asarray(guide, np.float32)
    src = np.asarray(src, np.float32)
    k = src.shape[2]
    if params.radius == 0:
        return np.concatenate([np.zeros_like(src), src], axis=2)
    size = (2 * params.radius + 1,) * 2

    def box(x):
        return cv2.boxFilter(x, -1, size, normalize=True, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    var_i = box(guide * guide) - mean_i * mean_i
    a = np.empty_like(src)
    b = np.empty_like(src)
    for c in range(k):
        p = np.ascontiguousarray(src[..., c])
        mean_p = box(p)
        cov = box(guide * p) - mean_i * mean_p
        a[..., c] = cov / (np.maximum(var_i, 0.0) + params.eps)
        b[..., c] = mean_p - a[..., c] * mean_i
    return np.concatenate([box(a).reshape(a.shape), box(b).reshape(b.shape)], axis=2)


class RowUpsampler:
    """Bilinear upsampling of a small (h, w, c) map to (H, W, c), served one block of rows at a time.

    The same sampling as ``cv2.resize(..., INTER_LINEAR)`` (pixel centres aligned); the map is first
    widened to W columns once (h x W x c floats), then each block interpolates between two of its rows.
    """

    def __init__(self, small, height, width):
        small = np.asarray(small, np.float32)
        self.h, self.height = small.shape[0], height
        wide = cv2.resize(small, (width, small.shape[0]), interpolation=cv2.INTER_LINEAR)
        self.wide = wide.reshape(small.shape[0], width, -1)

    def rows(self, y0, y1):
        """Rows y0..y1-1 of the upsampled map: (y1 - y0, W, c) float32."""
        sy = (np.arange(y0, y1, dtype=np.float64) + 0.5) * (self.h / self.height) - 0.5
        sy = np.clip(sy, 0.0, self.h - 1)
        i0 = np.floor(sy).astype(np.intp)
        i1 = np.minimum(i0 + 1, self.h - 1)
        f = (sy - i0).astype(np.float32)[:, None, None]
        top = self.wide[i0]
        return top + (self.wide[i1] - top) * f


def render(gray, coef, dtype=np.float32, rows=None):
    """Full-resolution RGB from full-resolution luminance and working-resolution coefficients.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        The scan's luminance in [0, 1]; kept exactly (up to quantisation of integer outputs).
    coef : ndarray, shape (h, w, 4)
        `guided_coefficients` of the chroma (a_U, a_V, b_U, b_V) at the working resolution.
    dtype : numpy dtype
        float32, uint8 or uint16 (`colorize_tf.color.recombine`).
    rows : int, optional
        Rows per block (default about 64 K pixels). The result does not depend on it.

    Returns
    -------
    rgb : ndarray of `dtype`, shape (H, W, 3)
    """
    gray = np.asarray(gray)
    out = np.empty(gray.shape + (3,), dtype=dtype)
    for r, r1, y, u, v in _chroma_blocks(gray, coef, rows):
        recombine_block(y, u, v, out[r:r1])
    return out


def upsample_chroma(gray, coef, rows=None):
    """The full-resolution chroma `render` recombines, (H, W, 2) float32 (for measurement and tests)."""
    gray = np.asarray(gray)
    out = np.empty(gray.shape + (2,), np.float32)
    for r, r1, _, u, v in _chroma_blocks(gray, coef, rows):
        out[r:r1, :, 0], out[r:r1, :, 1] = u, v
    return out


def _chroma_blocks(gray, coef, rows=None):
    """Yield (r0, r1, Y, U, V) for blocks of rows: Y as float32, U and V = a * Y + b from `coef` upsampled."""
    height, width = gray.shape
    up = RowUpsampler(coef, height, width)
    rows = rows or max(1, (1 << 16) // max(1, width))
    for r in range(0, height, rows):
        r1 = min(height, r + rows)
        y = gray[r:r1].astype(np.float32, copy=False)
        c = up.rows(r, r1)
        yield r, r1, y, c[..., 0] * y + c[..., 2], c[..., 1] * y + c[..., 3]
