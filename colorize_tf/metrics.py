"""Quality metrics: RGB PSNR (the paper's) and the L_UV error (Zhu, Zhao, Guo)."""

from __future__ import annotations

import numpy as np

from .color import UV_SCALE, rgb_to_yuv, to_uint


def psnr(pred, truth, peak=255.0):
    """PSNR in dB between two RGB images, computed on 8-bit values.

    Parameters
    ----------
    pred, truth : ndarray, shape (H, W, 3)
        uint8, or float in [0, 1] (quantised to 8 bits first, as saved files are).

    Returns
    -------
    float
        ``10 log10(peak^2 / MSE)``; ``inf`` for identical images.
    """
    a = _as_uint8(pred).astype(np.float64)
    b = _as_uint8(truth).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def l_uv(pred_uv, true_uv):
    """UV loss of Zhu, Zhao and Guo: sum of squared U,V error / (2 W H).

    U and V are first normalised to [-1, 1] (U / 0.436, V / 0.615).

    Parameters
    ----------
    pred_uv, true_uv : ndarray, shape (H, W, 2)
    """
    d = (np.asarray(pred_uv, np.float64) - np.asarray(true_uv, np.float64)) / UV_SCALE
    return float(np.sum(d * d) / d.size)


def uv_of(rgb):
    """Chrominance (H, W, 2) of an RGB image (uint8 or float in [0, 1])."""
    rgb = _as_float(rgb)
    return rgb_to_yuv(rgb)[..., 1:]


def gray_baseline(truth):
    """The gray prediction (U = V = 0) of a colour image, as RGB float in [0, 1]."""
    y = rgb_to_yuv(_as_float(truth))[..., 0]
    return np.repeat(np.clip(y, 0, 1)[..., None], 3, axis=-1)


def _as_uint8(img):
    img = np.asarray(img)
    return img if img.dtype == np.uint8 else to_uint(img, 8)


def _as_float(img):
    img = np.asarray(img)
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)


def colourfulness(rgb):
    """Hasler & Suesstrunk (2003) colourfulness M of an RGB image (0 = gray; ~ 30-60 for everyday photos).

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        uint8, or float in [0, 1].

    Returns
    -------
    float
        ``sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with ``rg = R - G`` and
        ``yb = (R + G) / 2 - B`` on the 0..255 scale.
    """
    img = _as_float(rgb).reshape(-1, 3) * 255.0
    rg = img[:, 0] - img[:, 1]
    yb = 0.5 * (img[:, 0] + img[:, 1]) - img[:, 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def bootstrap_interval(gains, n_boot=2000, seed=0, level=0.95):
    """Paired bootstrap interval of a mean per-image gain (e.g. PSNR of a model minus PSNR of gray).

    Parameters
    ----------
    gains : array-like, shape (N,)
        One paired difference per image.

    Returns
    -------
    (mean, low, high) : tuple of float
    """
    gains = np.asarray(gains, np.float64)
    rng = np.random.default_rng(seed)
    means = gains[rng.integers(0, len(gains), size=(n_boot, len(gains)))].mean(1)
    tail = (1 - level) / 2 * 100
    return float(gains.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def has_colour(rgb, tolerance=1.0 / 255):
    """False for a colour-typed image whose channels are all equal (a gray photo stored as RGB): it has no
    chroma to learn from or to score against (its gray baseline would score infinite PSNR)."""
    img = _as_float(rgb)
    return bool(
        np.abs(img[..., 0] - img[..., 1]).max() > tolerance or np.abs(img[..., 1] - img[..., 2]).max() > tolerance
    )
