"""A review page for archivists: a sample of before/after pairs from an archive run.

A million-image run cannot be looked at whole; `pick` takes a reproducible random sample (what the run
looks like on average) plus the outputs the model was least sure of (`colorize_tf.colorize.Colorized`'s
``confidence``), `thumbnails` makes the before/after pair from the output alone (its luminance is the
input's, kept exactly), and `page` writes one HTML file with a slider per pair and links to the files.
"""

from __future__ import annotations

import html
import random
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

#: Longer side of the review thumbnails in pixels.
THUMB_SIDE = 480


def pick(rows: Sequence[Mapping], n: int, seed: str = "") -> List[Tuple[Mapping, str]]:
    """Rows to review: up to ``n // 2`` with the lowest confidence, then random ones up to ``n`` in all.

    Parameters
    ----------
    rows : sequence of dict
        Manifest rows; only ``status == "done"`` rows are candidates. ``confidence`` may be None (the
        model has no such measure): then the sample is all random.
    n : int
        Pairs on the page.
    seed : str
        Seeds the random part (e.g. the run's stamp), so the same run gives the same page.

    Returns
    -------
    list of (row, reason)
        ``reason`` is ``"least confident"`` or ``"random"``; least confident first, in rising confidence.
    """
    done = sorted((r for r in rows if r.get("status") == "done"), key=lambda r: str(r.get("input")))
    if n <= 0 or not done:
        return []
    scored = sorted((r for r in done if r.get("confidence") is not None), key=lambda r: r["confidence"])
    low = scored[: n // 2]
    chosen = {id(r) for r in low}
    rest = [r for r in done if id(r) not in chosen]
    sample = random.Random(f"review:{seed}").sample(rest, min(len(rest), n - len(low)))
    return [(r, "least confident") for r in low] + [(r, "random") for r in sample]


def thumbnails(rgb: np.ndarray, side: int = THUMB_SIDE) -> Tuple[np.ndarray, np.ndarray]:
    """(before, after) uint8 thumbnails of a colorized image: its BT.601 luminance (the gray input, which
    colorization keeps exactly) and its colours, longer side at most ``side``.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        The output, float in [0, 1] or uint8/uint16.
    """
    import cv2

    from .color import luminance

    rgb = np.asarray(rgb)
    if rgb.dtype.kind in "ui":
        rgb = rgb.astype(np.float32) / np.iinfo(rgb.dtype).max
    h, w = rgb.shape[:2]
    scale = min(1.0, side / float(max(h, w)))
    if scale < 1.0:
        rgb = cv2.resize(
            rgb.astype(np.float32), (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    after = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    gray = np.clip(np.round(luminance(rgb.astype(np.float32)) * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, -1), after


_STYLE = """
body{font-family:sans-serif;margin:1em}figure{display:inline-block;margin:8px;vertical-align:top;width:480px}
.pair{position:relative;display:inline-block;line-height:0}.pair img{max-width:480px;max-height:480px}
.pair img.before{position:absolute;left:0;top:0;clip-path:inset(0 50% 0 0)}
figcaption{font-size:13px;line-height:1.4;word-break:break-all}input[type=range]{width:100%}
.low{color:#a40}
"""


def page(items: Sequence[Mapping], title: str, summary: Optional[Mapping] = None) -> str:
    """The review page's HTML.

    Parameters
    ----------
    items : sequence of dict
        Keys: ``before``, ``after`` (thumbnail URLs relative to the page), ``output`` (link to the full
        output), ``input`` (the input's name), ``input_link`` (optional URL), ``reason``, ``confidence``
        (float or None), ``width``, ``height``, ``seconds``.
    summary : dict, optional
        Run totals shown above the pairs (``inputs``, ``done``, ``skipped``, ``failed``, ``model``).
    """
    esc = html.escape
    lines = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_STYLE}</style>",
        f"<h1>{esc(title)}</h1>",
    ]
    if summary:
        lines.append("<p>" + ", ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in summary.items()) + "</p>")
    lines.append(
        "<p>Drag a slider: gray input on the left, colorized on the right. The least confident outputs (the "
        "model spread its belief over many colours) come first, then a random sample of the run. Click a "
        "picture for the full-size output.</p>"
    )
    for i, it in enumerate(items):
        conf = it.get("confidence")
        conf_text = "n/a" if conf is None else f"{conf:.2f}"
        link = it.get("input_link")
        name = f"<a href='{esc(link)}'>{esc(it['input'])}</a>" if link else esc(it["input"])
        cls = " class='low'" if it["reason"] == "least confident" else ""
        lines.append(
            f"<figure><a class='pair' href='{esc(it['output'])}'>"
            f"<img class='after' src='{esc(it['after'])}' alt='colorized' loading='lazy'>"
            f"<img class='before' id='b{i}' src='{esc(it['before'])}' alt='gray input' loading='lazy'></a>"
            f"<input type='range' min='0' max='100' value='50' aria-label='before / after' "
            f"oninput=\"document.getElementById('b{i}').style.clipPath='inset(0 '+(100-this.value)+'% 0 0)'\">"
            f"<figcaption><span{cls}>{esc(it['reason'])}</span> - confidence {conf_text} - "
            f"{int(it.get('width') or 0)}x{int(it.get('height') or 0)}, {float(it.get('seconds') or 0):.2f} s<br>"
            f"input: {name}<br>output: <a href='{esc(it['output'])}'>{esc(it['output_name'])}</a></figcaption>"
            "</figure>"
        )
    return "\n".join(lines) + "\n"
