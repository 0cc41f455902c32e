"""Small dependency-free plots (PIL): PSNR distributions in the style of the paper's Fig. 8."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def histogram_png(
    series: Dict[str, Sequence[float]],
    path,
    bin_width=1.0,
    title="PSNR distribution",
    xlabel="PSNR (dB)",
    size=(720, 420),
):
    """Overlaid step histograms of several value lists, written as a PNG.

    Parameters
    ----------
    series : dict
        Legend label -> values.
    path : str
        Output PNG file.
    bin_width : float
        Bin width in the values' unit.
    """
    vals = [np.asarray(v, np.float64)[np.isfinite(v)] for v in series.values()]
    lo = np.floor(min(v.min() for v in vals if len(v)) / bin_width) * bin_width
    hi = np.ceil(max(v.max() for v in vals if len(v)) / bin_width) * bin_width + bin_width
    edges = np.arange(lo, hi + 1e-9, bin_width)
    counts = [np.histogram(v, edges)[0] for v in vals]
    peak = max(1, max(c.max() for c in counts))
    W, H = size
    left, right, top, bottom = 60, 20, 40, 50
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    pw, ph = W - left - right, H - top - bottom

    def x_of(v):
        return left + (v - edges[0]) / (edges[-1] - edges[0]) * pw

    def y_of(c):
        return top + ph - c / peak * ph

    d.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    for e in edges[:: max(1, len(edges) // 12)]:
        d.line([x_of(e), top + ph, x_of(e), top + ph + 4], fill=(0, 0, 0))
        d.text((x_of(e) - 8, top + ph + 6), f"{e:g}", fill=(0, 0, 0))
    for frac in (0.0, 0.5, 1.0):
        c = peak * frac
        d.text((8, y_of(c) - 6), f"{c:.0f}", fill=(0, 0, 0))
    d.text((left + pw // 2 - 30, H - 20), xlabel, fill=(0, 0, 0))
    d.text((left, 12), title, fill=(0, 0, 0))
    for k, (label, c) in enumerate(zip(series, counts)):
        col = COLOURS[k % len(COLOURS)]
        pts = []
        for i, n in enumerate(c):
            pts += [(x_of(edges[i]), y_of(n)), (x_of(edges[i + 1]), y_of(n))]
        d.line(pts, fill=col, width=2)
        mean = float(np.mean(vals[k])) if len(vals[k]) else float("nan")
        d.line([x_of(mean), top, x_of(mean), top + ph], fill=col, width=1)
        d.text((left + pw - 230, top + 8 + 14 * k), f"{label} (mean {mean:.2f})", fill=col)
    img.save(path)
    return path
