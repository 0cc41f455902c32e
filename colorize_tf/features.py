"""Per-pixel feature descriptors (Sec. III-B of the paper).

A descriptor is a list of named *blocks*. Each block turns a gray image
(H, W) into a per-pixel map (H, W, dim); the descriptor of pixel p is the
concatenation of the blocks' values at p, in order. The same code computes
descriptors for sampled pixels (training) and for every pixel
(colorization), so the two can never drift apart.

Blocks here: ``patch`` (7x7 luminance patch, 49-d, low level) and ``daisy``
(DAISY, 32-d = 4 locations x 8 orientations, mid level). The semantic block
(high level) lives with the scene parser and has the same interface.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np


# --------------------------------------------------------------------------
# Low level: luminance patch
# --------------------------------------------------------------------------
def patch_maps(gray, size=7):
    """Return the luminance patch around every pixel.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
    size : int
        Odd patch side; borders are reflected (``numpy.pad`` mode 'reflect').

    Returns
    -------
    maps : ndarray of float32, shape (H, W, size * size)
        A read-only strided view; row-major patch order.
    """
    if size % 2 != 1:
        raise ValueError(f"patch size must be odd, got {size}")
    r = size // 2
    padded = np.pad(np.asarray(gray, dtype=np.float32), r, mode="reflect")
    win = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    return win.reshape(gray.shape[0], gray.shape[1], size * size)


# --------------------------------------------------------------------------
# Mid level: DAISY
# --------------------------------------------------------------------------
def daisy_offsets(radius=15, rings=1, histograms=3):
    """(dy, dx) offsets of the ring histograms, as skimage.feature.daisy places them."""
    offsets = []
    for i in range(rings):
        ring_r = radius * (i + 1) / float(rings)
        for j in range(histograms):
            theta = 2 * math.pi * j / histograms
            offsets.append((int(round(ring_r * math.sin(theta))), int(round(ring_r * math.cos(theta)))))
    return offsets


def daisy_maps(gray, radius=15, rings=1, histograms=3, orientations=8):
    """Dense DAISY descriptor for every pixel.

    Same definition as ``skimage.feature.daisy(..., step=1,
    normalization='l1')`` applied to the image reflect-padded by `radius`
    (so every pixel, borders included, gets a descriptor), but computed with
    OpenCV separable Gaussian filters: about 10x faster.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in [0, 1].
    radius, rings, histograms, orientations : int
        DAISY layout; the defaults give (1 * 3 + 1) * 8 = 32 dimensions.

    Returns
    -------
    maps : ndarray of float32, shape (H, W, (rings * histograms + 1) * orientations)
    """
    gray = np.asarray(gray, dtype=np.float32)
    h, w = gray.shape
    img = np.pad(gray, radius, mode="reflect")
    dx = np.zeros_like(img)
    dy = np.zeros_like(img)
    dx[:, :-1] = np.diff(img, axis=1)
    dy[:-1, :] = np.diff(img, axis=0)
    mag = np.sqrt(dx * dx + dy * dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_g = np.where(mag > 0, dx / mag, 1.0).astype(np.float32)
        sin_g = np.where(mag > 0, dy / mag, 0.0).astype(np.float32)
    kappa = orientations / math.pi
    hist = np.empty(img.shape + (orientations,), dtype=np.float32)
    for i in range(orientations):
        o = 2 * i * math.pi / orientations - math.pi
        # cos(g - o) = cos g cos o + sin g sin o  (von Mises soft binning)
        hist[..., i] = np.exp(kappa * (cos_g * math.cos(o) + sin_g * math.sin(o))) * mag
    sigmas = [radius * (i + 1) / float(2 * rings) for i in range(rings)]
    sigmas = [sigmas[0]] + sigmas  # centre histogram uses the first ring's sigma
    smoothed = {}
    for s in set(sigmas):
        k = int(4.0 * s + 0.5)  # scipy's truncate=4.0
        kern = cv2.getGaussianKernel(2 * k + 1, s, cv2.CV_32F)
        smoothed[s] = _sep_filter(hist, kern)
    parts = [smoothed[sigmas[0]][radius : radius + h, radius : radius + w]]
    for i, (oy, ox) in enumerate(daisy_offsets(radius, rings, histograms)):
        src = smoothed[sigmas[1 + i // histograms]]
        parts.append(src[radius + oy : radius + oy + h, radius + ox : radius + ox + w])
    desc = np.concatenate(parts, axis=-1)
    desc += 1e-10
    desc /= desc.sum(axis=-1, keepdims=True)
    return desc


def _sep_filter(stack, kern):
    """Gaussian-filter each channel of (H, W, C) with scipy-style reflect borders."""
    out = np.empty_like(stack)
    for c0 in range(0, stack.shape[-1], 4):  # OpenCV filters up to 4 channels at once
        chunk = np.ascontiguousarray(stack[..., c0 : c0 + 4])
        res = cv2.sepFilter2D(chunk, cv2.CV_32F, kern, kern, borderType=cv2.BORDER_REFLECT)
        out[..., c0 : c0 + 4] = res.reshape(chunk.shape)
    return out


# --------------------------------------------------------------------------
# Blocks and descriptors
# --------------------------------------------------------------------------
class Block:
    """One named part of the per-pixel descriptor.

    Subclasses define `name`, `dim`, `margin` (pixels of context a tile needs
    around it for exact results), `maps(gray, state, window)` returning
    (H, W, dim), and `config()` (JSON-able, round-trips through
    `block_from_config`).

    Blocks that need the whole image (the scene parser) compute a compact
    per-image `state` in `prepare(full_gray)`; `maps` then receives a crop
    of the image and its `window` = (row, col, full_height, full_width).
    """

    name = "block"
    dim = 0
    margin = 0

    def prepare(self, gray):
        """Per-image state computed once on the whole image (None for local blocks)."""
        return None

    def maps(self, gray, state=None, window=None):  # pragma: no cover - interface
        raise NotImplementedError

    def config(self):  # pragma: no cover - interface
        raise NotImplementedError


def _bounded(what, value, lo, hi):
    """`value` as an int within [lo, hi] (model metadata is checked before it sizes any work)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or not lo <= value <= hi:
        raise ValueError(f"{what} {value!r} out of range: expected a whole number in {lo}..{hi}")
    return int(value)


class PatchBlock(Block):
    """Low-level feature: the size x size luminance patch around the pixel."""

    name = "patch"

    def __init__(self, size=7):
        self.size = _bounded("patch size", size, 1, 31)
        self.dim = self.size * self.size
        self.margin = self.size // 2

    def maps(self, gray, state=None, window=None):
        return patch_maps(gray, self.size)

    def config(self):
        return {"name": self.name, "size": self.size}


class DaisyBlock(Block):
    """Mid-level feature: DAISY (Tola et al.), 32-d by default."""

    name = "daisy"

    def __init__(self, radius=15, rings=1, histograms=3, orientations=8):
        self.radius, self.rings = _bounded("DAISY radius", radius, 1, 64), _bounded("DAISY rings", rings, 1, 8)
        self.histograms = _bounded("DAISY histograms", histograms, 1, 16)
        self.orientations = _bounded("DAISY orientations", orientations, 1, 32)
        self.dim = (self.rings * self.histograms + 1) * self.orientations
        sigma = self.radius / 2.0
        # ring offset + Gaussian support + 1 for the forward difference
        self.margin = self.radius + int(4.0 * sigma + 0.5) + 1

    def maps(self, gray, state=None, window=None):
        return daisy_maps(gray, self.radius, self.rings, self.histograms, self.orientations)

    def config(self):
        return {
            "name": self.name,
            "radius": self.radius,
            "rings": self.rings,
            "histograms": self.histograms,
            "orientations": self.orientations,
        }


BLOCK_TYPES: Dict[str, type] = {"patch": PatchBlock, "daisy": DaisyBlock}
DEFAULT_BLOCKS = ("patch", "daisy")


def register_block(cls):
    """Make a Block subclass constructible from its config (used by the parser's semantic block)."""
    BLOCK_TYPES[cls.name] = cls
    return cls


#: Modules defining further blocks, imported on first use.
BLOCK_MODULES = {
    "semantic": "colorize_tf.parser",
    "hog": "colorize_tf.baselines.hog",
    "luma": "colorize_tf.baselines.hog",
}


def block_type(name):
    """The Block class registered under `name` (importing its module if needed)."""
    if name not in BLOCK_TYPES and name in BLOCK_MODULES:
        import importlib

        importlib.import_module(BLOCK_MODULES[name])
    if name not in BLOCK_TYPES:
        raise ValueError(f"unknown descriptor block {name!r}; known: {sorted(set(BLOCK_TYPES) | set(BLOCK_MODULES))}")
    return BLOCK_TYPES[name]


def config_dim(cfg):
    """Width of a block from its config alone (no parser needed for the semantic block)."""
    if "classes" in cfg:
        return len(cfg["classes"])
    params = {k: v for k, v in cfg.items() if k != "name"}
    return block_type(cfg["name"])(**params).dim


def select_blocks(configs, names):
    """Keep the named blocks of a descriptor config (in stored order).

    Returns
    -------
    configs : list of dict
    columns : ndarray of int
        Columns of the full descriptor that the kept blocks occupy.
    """
    names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = set(names) - {c["name"] for c in configs}
    if unknown:
        raise ValueError(f"blocks {sorted(unknown)} are not in the stored descriptor {[c['name'] for c in configs]}")
    kept, cols, start = [], [], 0
    for c in configs:
        d = config_dim(c)
        if c["name"] in names:
            kept.append(c)
            cols.extend(range(start, start + d))
        start += d
    return kept, np.asarray(cols, dtype=np.int64)


def block_from_config(cfg, **context):
    """Build a block from its `config()` dict; `context` feeds blocks needing resources (a parser)."""
    cfg = dict(cfg)
    name = cfg.pop("name")
    cls = block_type(name)
    if context and hasattr(cls, "from_config"):
        return cls.from_config(cfg, **context)
    return cls(**cfg)


class Descriptor:
    """An ordered list of blocks; computes the concatenated per-pixel descriptor."""

    def __init__(self, blocks: Sequence[Block]):
        if not blocks:
            raise ValueError("a descriptor needs at least one block")
        names = [b.name for b in blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate blocks in {names}")
        self.blocks: List[Block] = list(blocks)

    @classmethod
    def from_names(cls, names=DEFAULT_BLOCKS, **block_kwargs):
        """Build from block names, e.g. ``("patch", "daisy")``; kwargs keyed by block name."""
        if isinstance(names, str):
            names = [n for n in names.split(",") if n]
        return cls([block_type(n)(**block_kwargs.get(n, {})) for n in names])

    @classmethod
    def from_config(cls, configs, **context):
        return cls([block_from_config(c, **context) for c in configs])

    def config(self):
        return [b.config() for b in self.blocks]

    @property
    def dim(self):
        return sum(b.dim for b in self.blocks)

    @property
    def names(self):
        return [b.name for b in self.blocks]

    @property
    def margin(self):
        """Context a tile needs around it so its descriptors match the whole-image ones."""
        return max(b.margin for b in self.blocks)

    def layout(self):
        """``{name: (start, stop)}`` column ranges of each block in the descriptor."""
        out, start = {}, 0
        for b in self.blocks:
            out[b.name] = (start, start + b.dim)
            start += b.dim
        return out

    def prepare(self, gray):
        """Per-image states of the blocks (see `Block.prepare`), computed on the whole image."""
        return [b.prepare(gray) for b in self.blocks]

    def block_maps(self, gray, states=None, window=None):
        """Each block's (H, W, dim) map for `gray` (the whole image, or a crop at `window`)."""
        gray = np.asarray(gray, dtype=np.float32)
        if states is None:
            states = self.prepare(gray)
        if window is None:  # `gray` is the whole image
            window = (0, 0) + gray.shape
        return [b.maps(gray, s, window) for b, s in zip(self.blocks, states)]

    def compute(self, gray, coords: Optional[np.ndarray] = None, states=None, window=None, maps=None, grid=None):
        """Descriptors for the pixels at `coords`, or for every pixel.

        Parameters
        ----------
        gray : ndarray, shape (H, W)
            Luminance in [0, 1]: the whole image, or a crop of it (then give
            `states` from `prepare(whole)` and `window`).
        coords : ndarray of int, shape (n, 2), optional
            (row, col) of the wanted pixels; all pixels in row-major order if None.
        states, window
            See `Block.prepare` / `Block.maps`.
        maps : list of ndarray, optional
            Precomputed `block_maps` (reused, e.g. for the semantic histogram).
        grid : (row0, col0, stride), optional
            Instead of every pixel, the pixels ``[row0::stride, col0::stride]`` in row-major order.

        Returns
        -------
        x : ndarray of float32, shape (n, dim) or (H * W, dim)
        """
        gray = np.asarray(gray, dtype=np.float32)
        if maps is None:
            maps = self.block_maps(gray, states, window)
        if grid is not None:
            r0, c0, step = grid
            maps = [m[r0::step, c0::step] for m in maps]
        n = maps[0].shape[0] * maps[0].shape[1] if coords is None else len(coords)
        out = np.empty((n, self.dim), dtype=np.float32)
        start = 0
        for b, m in zip(self.blocks, maps):
            if coords is None:
                out[:, start : start + b.dim] = m.reshape(-1, b.dim)
            else:
                out[:, start : start + b.dim] = m[coords[:, 0], coords[:, 1]]
            start += b.dim
        return out


# --------------------------------------------------------------------------
# Pixel sampling for training
# --------------------------------------------------------------------------
def gradient_magnitude(gray):
    """Sobel gradient magnitude, shape (H, W), float32."""
    g = np.asarray(gray, dtype=np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def sample_pixels(gray, n, edge_fraction=0.0, seed=0):
    """Choose distinct pixels to train on.

    A share ``1 - edge_fraction`` is drawn uniformly; the rest with
    probability proportional to the gradient magnitude (edges and texture,
    where DAISY carries information). Pixels are never drawn twice.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
    n : int
        Samples wanted; capped at H * W.
    edge_fraction : float in [0, 1]
    seed : int
        Makes the choice reproducible.

    Returns
    -------
    coords : ndarray of int32, shape (min(n, H*W), 2)
        (row, col), sorted in row-major order.
    """
    if not 0.0 <= edge_fraction <= 1.0:
        raise ValueError(f"edge_fraction must be in [0, 1], got {edge_fraction}")
    h, w = np.shape(gray)
    total = h * w
    n = int(min(n, total))
    rng = np.random.default_rng(seed)
    n_edge = int(round(n * edge_fraction))
    chosen = np.zeros(total, dtype=bool)
    if n_edge:
        p = gradient_magnitude(gray).ravel().astype(np.float64)
        if p.sum() <= 0:
            p = np.ones_like(p)
        nz = np.count_nonzero(p)
        k = min(n_edge, nz)
        idx = rng.choice(total, size=k, replace=False, p=p / p.sum())
        chosen[idx] = True
    rest = n - int(chosen.sum())
    if rest:
        free = np.flatnonzero(~chosen)
        chosen[rng.choice(free, size=rest, replace=False)] = True
    flat = np.flatnonzero(chosen)
    return np.stack([flat // w, flat % w], axis=1).astype(np.int32)
