"""Quantised chroma for colorization as classification (Zhang, Isola, Efros 2016, "Colorful Image Colorization").

The project's colour space stays YUV (BT.601, `colorize_tf.color`): the (U, V) plane is cut into square bins of
side `step`; only bins whose centre is a reachable colour (some Y in [0, 1] gives RGB inside [0, 1]^3) are
classes. A pixel's target is soft-encoded over its `k` nearest bin centres with Gaussian weights; rare colours
are up-weighted by class rebalancing; a predicted distribution is decoded by the annealed mean (temperature T:
T -> 0 is the mode, T = 1 the mean; the paper's 0.38 keeps colours vivid).
"""

from __future__ import annotations

import numpy as np

from .color import U_MAX, V_MAX, YUV_TO_RGB

#: Bin side in U, V units (Zhang's 10 ab units out of about +-110 is a similar share of the range).
DEFAULT_STEP = 0.04
#: Annealed-mean temperature of the paper.
DEFAULT_TEMPERATURE = 0.38


def in_gamut(uv):
    """True where some luminance Y in [0, 1] makes (Y, U, V) an RGB colour inside [0, 1]^3.

    Parameters
    ----------
    uv : ndarray, shape (N, 2)

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    uv = np.asarray(uv, np.float64)
    gain = YUV_TO_RGB[:, 0]  # RGB_c = gain_c * Y + offset_c (gain_c = 1 up to the inverse's rounding)
    offsets = uv @ YUV_TO_RGB[:, 1:].T
    lo = np.maximum(0.0, (-offsets / gain).max(1))
    hi = np.minimum(1.0, ((1.0 - offsets) / gain).min(1))
    return lo <= hi + 1e-5  # colours on the gamut boundary (pure primaries) count as inside


def bin_centres(step=DEFAULT_STEP):
    """Centres of the in-gamut bins, ordered by V then U.

    Returns
    -------
    ndarray of float32, shape (Q, 2)
        (U, V) of each class.
    """
    u = np.arange(-np.floor(U_MAX / step), np.floor(U_MAX / step) + 1) * step
    v = np.arange(-np.floor(V_MAX / step), np.floor(V_MAX / step) + 1) * step
    grid = np.stack(np.meshgrid(u, v), -1).reshape(-1, 2)
    return grid[in_gamut(grid)].astype(np.float32)


def soft_encode(uv, centres, k=5, sigma=None):
    """Soft targets: each colour spread over its `k` nearest bin centres with Gaussian weights.

    Parameters
    ----------
    uv : ndarray, shape (N, 2)
    centres : ndarray, shape (Q, 2)
    k : int
    sigma : float, optional
        Gaussian width; default half the distance between neighbouring centres (Zhang: 5 for a 10-unit grid).

    Returns
    -------
    index : ndarray of int32, shape (N, k)
    weight : ndarray of float32, shape (N, k)
        Rows sum to 1.
    """
    uv = np.asarray(uv, np.float32).reshape(-1, 2)
    centres = np.asarray(centres, np.float32)
    if sigma is None:
        d = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
        np.fill_diagonal(d, np.inf)
        sigma = 0.5 * float(np.median(d.min(1)))
    d2 = ((uv[:, None, :] - centres[None]) ** 2).sum(-1)
    index = np.argpartition(d2, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(d2, index, 1)
    order = np.argsort(near, axis=1)
    index, near = np.take_along_axis(index, order, 1), np.take_along_axis(near, order, 1)
    w = np.exp(-(near - near[:, :1]) / (2 * sigma**2))
    return index.astype(np.int32), (w / w.sum(1, keepdims=True)).astype(np.float32)


def dense(index, weight, n_classes):
    """(N, k) soft encoding -> (N, Q) distributions."""
    out = np.zeros((len(index), n_classes), np.float32)
    np.put_along_axis(out, index, weight, 1)
    return out


def rebalancing_weights(counts, lam=0.5, smooth=None, centres=None):
    """Class weights ``w ∝ ((1 - lam) p + lam / Q)^-1`` normalised so that ``sum(p * w) = 1`` (Zhang eq. 4).

    Parameters
    ----------
    counts : ndarray, shape (Q,)
        How often each class occurs in the training targets (soft counts are fine).
    lam : float
        0 = full rebalancing (inverse frequency), 1 = none (all weights 1).
    smooth : float, optional
        Gaussian width (in U, V units) to smooth the empirical distribution over neighbouring bins, as the paper
        does; needs `centres`.

    Returns
    -------
    ndarray of float32, shape (Q,)
    """
    p = np.asarray(counts, np.float64)
    p = p / p.sum()
    if smooth:
        c = np.asarray(centres, np.float64)
        g = np.exp(-((c[:, None] - c[None]) ** 2).sum(-1) / (2 * smooth**2))
        p = g @ p
        p /= p.sum()
    w = 1.0 / ((1 - lam) * p + lam / len(p))
    return (w / (p * w).sum()).astype(np.float32)


def annealed_mean(probs, centres, temperature=DEFAULT_TEMPERATURE):
    """Decode class distributions into chroma: the mean of the re-normalised ``p ** (1 / T)``.

    Parameters
    ----------
    probs : ndarray, shape (..., Q)
    centres : ndarray, shape (Q, 2)
    temperature : float
        > 0; T = 1 is the mean of the distribution, T -> 0 its mode.

    Returns
    -------
    ndarray of float32, shape (..., 2)
    """
    if not temperature > 0:
        raise ValueError(f"temperature {temperature}: expected > 0")
    logp = np.log(np.clip(np.asarray(probs, np.float64), 1e-30, None)) / temperature
    logp -= logp.max(-1, keepdims=True)
    q = np.exp(logp)
    q /= q.sum(-1, keepdims=True)
    return (q @ np.asarray(centres, np.float64)).astype(np.float32)
