"""Choosing refinement parameters on held-out training images (never on test data)."""

from __future__ import annotations

from typing import Iterable, List, Sequence

import numpy as np

from .color import recombine
from .colorize import predict_uv, refine_uv
from .metrics import colourfulness, gray_baseline, psnr
from .refine import RefineParams

#: Default search grid: no refinement, the classic 9-px filter, wider filters, and the wide
#: filters at half / quarter resolution (16x / 256x cheaper).
DEFAULT_GRID = tuple(
    [RefineParams(0, 0.1, 1.0)]
    + [
        RefineParams(d, sc, ss, scale)
        for d, ss, scale in (
            (9, 4.0, 1.0),
            (21, 10.0, 1.0),
            (41, 20.0, 1.0),
            (61, 40.0, 1.0),
            (61, 40.0, 0.5),
            (61, 40.0, 0.25),
            (121, 80.0, 0.25),
            (241, 160.0, 0.125),
        )
        for sc in (0.05, 0.1, 0.2)
    ]
)
#: Settings within this many dB of the best count as equal; the cheapest of them is chosen.
TOLERANCE_DB = 0.02


def tune_refinement(
    gray_images: Sequence[np.ndarray],
    rgb_images: Sequence[np.ndarray],
    regressor=None,
    descriptor=None,
    grid: Iterable[RefineParams] = DEFAULT_GRID,
    tile=0,
    tolerance_db=TOLERANCE_DB,
    raw_uv=None,
):
    """Pick the joint bilateral parameters with the best mean RGB PSNR.

    Among settings within `tolerance_db` of the best, the cheapest wins.

    Parameters
    ----------
    gray_images : list of ndarray (H, W)
        Luminance of held-out images.
    rgb_images : list of ndarray (H, W, 3)
        Their colour ground truth in [0, 1].
    regressor, descriptor
        As for `colorize_tf.colorize.predict_uv`; or give `raw_uv`.
    raw_uv : list of ndarray (H, W, 2), optional
        The unrefined chroma of each image from any family (e.g. ``colorizer.chroma(gray).uv``).
    grid : iterable of RefineParams

    Returns
    -------
    best : RefineParams
    table : list of dict
        ``{"diameter", "sigma_color", "sigma_space", "mean_psnr"}`` per grid point.
    """
    grid = list(grid)
    raw = raw_uv if raw_uv is not None else [predict_uv(g, regressor, descriptor, tile=tile) for g in gray_images]
    table: List[dict] = []
    for params in grid:
        scores = [
            psnr(recombine(g, refine_uv(g, uv, params, tile=tile)), rgb)
            for g, uv, rgb in zip(gray_images, raw, rgb_images)
        ]
        table.append(
            {
                "diameter": params.diameter,
                "sigma_color": params.sigma_color,
                "sigma_space": params.sigma_space,
                "scale": params.scale,
                "mean_psnr": float(np.mean(scores)),
            }
        )
    best = max(row["mean_psnr"] for row in table)
    near = [i for i, row in enumerate(table) if row["mean_psnr"] >= best - tolerance_db]
    best_i = min(near, key=lambda i: (grid[i].cost, -table[i]["mean_psnr"]))
    return grid[best_i], table


#: Chroma gains `calibrate_gain` tries: 1 (as decoded) to 2.5 in steps of 0.1.
GAIN_GRID = tuple(round(1.0 + 0.1 * k, 2) for k in range(16))


def calibrate_gain(
    gray_images: Sequence[np.ndarray],
    rgb_images: Sequence[np.ndarray],
    uv_images: Sequence[np.ndarray],
    target=0.85,
    gains: Iterable[float] = GAIN_GRID,
):
    """The chroma gain (a saturation multiplier) that brings a vivid head's colourfulness to ``target`` x
    the true photos', without falling to the gray image's PSNR.

    The smallest gain whose mean colourfulness (Hasler & Süsstrunk) reaches ``target`` x the truth's while
    the mean RGB PSNR stays above the gray image's; if none reaches it, the most colourful gain still above
    gray; if none is above gray, 1.

    Parameters
    ----------
    gray_images : list of ndarray (H, W)
        Luminance of held-out images.
    rgb_images : list of ndarray (H, W, 3)
        Their colour ground truth in [0, 1].
    uv_images : list of ndarray (H, W, 2)
        The head's refined chroma at gain 1 (refinement is linear in the chroma, so the gain can follow it).
    target : float
        Wanted colourfulness ratio (output / truth).
    gains : iterable of float

    Returns
    -------
    gain : float
    table : list of dict
        ``{"gain", "mean_psnr", "colourfulness_ratio"}`` per gain, plus ``"gray_psnr"`` on each row.
    """
    truth_cf = float(np.mean([colourfulness(rgb) for rgb in rgb_images]))
    gray_psnr = float(np.mean([psnr(gray_baseline(rgb), rgb) for rgb in rgb_images]))
    table: List[dict] = []
    for gain in gains:
        outs = [recombine(g, uv * np.float32(gain)) for g, uv in zip(gray_images, uv_images)]
        table.append(
            {
                "gain": float(gain),
                "mean_psnr": float(np.mean([psnr(o, rgb) for o, rgb in zip(outs, rgb_images)])),
                "colourfulness_ratio": float(np.mean([colourfulness(o) for o in outs])) / max(truth_cf, 1e-9),
                "gray_psnr": gray_psnr,
            }
        )
    above = [row for row in table if row["mean_psnr"] > gray_psnr]
    reach = [row for row in above if row["colourfulness_ratio"] >= target]
    if reach:
        return min(reach, key=lambda r: r["gain"])["gain"], table
    if above:
        return max(above, key=lambda r: r["colourfulness_ratio"])["gain"], table
    return 1.0, table
