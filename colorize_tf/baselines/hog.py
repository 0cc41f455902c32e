"""Dense HOG and luminance descriptor blocks for the HOG + SVR baseline (Zhu, Zhao, Guo).

For each pixel: the 16x16 block around it, split into 2x2 cells of 8x8, a
9-bin unsigned-orientation histogram of gradient magnitude per cell (4 x 9 =
36 values), L2-Hys normalised over the block (as Dalal & Triggs / scikit-image).
Computed for every pixel at once with box filters over per-bin magnitude maps.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..features import Block, register_block


def dense_hog(gray, cell=8, bins=9, clip=0.2):
    """HOG of the (2 cell) x (2 cell) block centred on every pixel.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
    cell : int
        Cell side in pixels (block side = 2 * cell).
    bins : int
        Unsigned orientation bins over [0, pi) (hard assignment, as scikit-image; gradients
        at the block border use the real neighbours instead of zero).

    Returns
    -------
    ndarray of float32, shape (H, W, 4 * bins)
        Cells ordered top-left, top-right, bottom-left, bottom-right.
    """
    g = np.asarray(gray, dtype=np.float32)
    pad = cell
    gp = np.pad(g, pad, mode="reflect")
    gx = np.zeros_like(gp)
    gy = np.zeros_like(gp)
    gx[:, 1:-1] = gp[:, 2:] - gp[:, :-2]  # centred differences, as skimage.feature.hog
    gy[1:-1, :] = gp[2:, :] - gp[:-2, :]
    mag = np.sqrt(gx * gx + gy * gy)
    ang = np.mod(np.arctan2(gy, gx), math.pi)
    bin_of = np.minimum((ang * (bins / math.pi)).astype(np.int64), bins - 1)  # hard binning, as scikit-image
    hist = np.zeros(gp.shape + (bins,), np.float32)
    for b in range(bins):
        hist[..., b] = np.where(bin_of == b, mag, 0.0)
    # cell sums: box filter of size `cell` anchored so that cell (dy, dx) of pixel p covers
    # rows p.y - cell + dy*cell .. p.y + dy*cell - 1 (block = [p - cell, p + cell))
    box = np.empty_like(hist)
    for c0 in range(0, bins, 4):
        chunk = np.ascontiguousarray(hist[..., c0 : c0 + 4])
        res = cv2.boxFilter(chunk, -1, (cell, cell), anchor=(0, 0), normalize=False, borderType=cv2.BORDER_CONSTANT)
        box[..., c0 : c0 + 4] = res.reshape(chunk.shape)
    h, w = g.shape
    cells = []
    for dy in (0, cell):
        for dx in (0, cell):
            # box[y, x] sums hist[y : y + cell, x : x + cell] (padded coordinates); pixel p is at p + pad
            cells.append(box[dy : dy + h, dx : dx + w])
    desc = np.concatenate(cells, axis=-1)
    desc /= np.sqrt((desc * desc).sum(-1, keepdims=True) + 1e-10)
    np.minimum(desc, clip, out=desc)
    desc /= np.sqrt((desc * desc).sum(-1, keepdims=True) + 1e-10)
    return desc.astype(np.float32)


@register_block
class HogBlock(Block):
    """36-d dense HOG (baseline of Zhu, Zhao and Guo)."""

    name = "hog"

    def __init__(self, cell=8, bins=9):
        self.cell, self.bins = int(cell), int(bins)
        self.dim = 4 * self.bins
        self.margin = self.cell + 1

    def maps(self, gray, state=None, window=None):
        return dense_hog(gray, self.cell, self.bins)

    def config(self):
        return {"name": self.name, "cell": self.cell, "bins": self.bins}


@register_block
class LumaBlock(Block):
    """The pixel's luminance (1-d)."""

    name = "luma"
    dim = 1

    def maps(self, gray, state=None, window=None):
        return np.asarray(gray, dtype=np.float32)[..., None]

    def config(self):
        return {"name": self.name}
