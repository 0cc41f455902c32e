"""GIST global scene descriptor (Oliva & Torralba, 2001), as in the LabelMe ``LMgist`` code.

gray image -> fixed size -> prefilter (log, whitening high-pass, local
contrast normalisation) -> Gabor filter bank in the frequency domain
(default 4 scales x 8 orientations) -> magnitude -> mean over a 4x4 grid
of blocks = 4 * 8 * 16 = 512 values.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

DEFAULT_ORIENTATIONS = (8, 8, 8, 8)


@functools.lru_cache(maxsize=8)
def gabor_bank(size, orientations=DEFAULT_ORIENTATIONS):
    """Frequency-domain Gabor transfer functions, shape (n_filters, size, size), float32.

    Follows LMgist's ``createGabor``: for scale s (0-based) and orientation k
    of the scale's n_o orientations, centre frequency ``0.3 / 1.85**s`` (cycles
    per pixel), orientation ``pi * k / n_o``, radial bandwidth parameter 0.35
    and angular parameter ``16 n_o^2 / 32^2``. Zero frequency is at [0, 0]
    (``numpy.fft`` layout).
    """
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    fr = np.sqrt(fx * fx + fy * fy)
    theta = np.arctan2(fy, fx)
    filters = []
    for s, n_o in enumerate(orientations):
        for k in range(n_o):
            f0 = 0.3 / (1.85**s)
            angular = 16.0 * n_o * n_o / 32.0**2
            orient = math.pi * k / n_o
            tr = np.angle(np.exp(1j * (theta - orient)))  # wrap to (-pi, pi]
            g = np.exp(-10.0 * 0.35 * (fr / f0 - 1.0) ** 2 - 2.0 * angular * math.pi * tr**2)
            filters.append(g)
    return np.stack(filters).astype(np.float32)


def prefilter(img, fc=4.0):
    """LMgist prefiltering: log, whitening, local contrast normalisation. `img` in [0, 255] scale."""
    w = 5
    s1 = fc / math.sqrt(math.log(2))
    img = np.log(img.astype(np.float64) + 1.0)
    img = np.pad(img, w, mode="symmetric")
    n = img.shape[0]
    fy, fx = np.meshgrid(np.fft.fftfreq(n) * n, np.fft.fftfreq(img.shape[1]) * img.shape[1], indexing="ij")
    gf = np.exp(-(fx * fx + fy * fy) / (s1 * s1))
    out = img - np.real(np.fft.ifft2(np.fft.fft2(img) * gf))
    local_std = np.sqrt(np.abs(np.real(np.fft.ifft2(np.fft.fft2(out * out) * gf))))
    out = out / (0.2 + local_std)
    return out[w:-w, w:-w]


def gist(gray, size=128, orientations=DEFAULT_ORIENTATIONS, grid=4):
    """GIST descriptor of a gray image.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in [0, 1].
    size : int
        Side the image is resized to (aspect not kept, as in LMgist).
    orientations : tuple of int
        Orientations per scale (one entry per scale).
    grid : int
        Blocks per side for spatial averaging.

    Returns
    -------
    ndarray of float32, shape (n_filters * grid * grid,)
        Ordered filter-major: ``[filter 0 blocks (row-major), filter 1 blocks, ...]``
        (LMgist orders the blocks column-major; only the order differs).
    """
    if size % grid:
        raise ValueError(f"size {size} must be a multiple of grid {grid}")
    g = np.asarray(gray, dtype=np.float32)
    img = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA if min(g.shape) >= size else cv2.INTER_LINEAR)
    img = prefilter(np.clip(img, 0, 1) * 255.0)
    bank = gabor_bank(size, tuple(orientations))
    spectrum = np.fft.fft2(img)
    responses = np.abs(np.fft.ifft2(spectrum[None] * bank))  # (n_filters, size, size)
    h = size // grid
    feats = responses.reshape(len(bank), grid, h, grid, h).mean(axis=(2, 4))
    return feats.reshape(-1).astype(np.float32)
