"""Side-by-side HTML pages of colorization results."""

from __future__ import annotations

import html
import os


def side_by_side_html(rows, path, title="Colorization results"):
    """Write an HTML page showing gray input / colorized / ground truth per image.

    Parameters
    ----------
    rows : list of dict
        Keys: ``name``, ``gray``, ``ours``, optional ``truth`` (image paths
        relative to the page), optional ``psnr``, ``psnr_gray``, ``l_uv``,
        ``l_uv_gray``, ``seconds``.
    path : str
        Output HTML file.
    """

    def cell(src):
        return f'<td><img src="{html.escape(src)}" loading="lazy"></td>' if src else "<td>-</td>"

    def num(row, key, fmt):
        return format(row[key], fmt) if row.get(key) is not None else "-"

    lines = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif}img{max-width:320px;max-height:320px}"
        "td,th{padding:4px;text-align:center;vertical-align:top}</style>",
        f"<h1>{html.escape(title)}</h1>",
        "<table><tr><th>image</th><th>gray input</th><th>colorized</th><th>ground truth</th>"
        "<th>PSNR ours / gray (dB)</th><th>L_UV ours / gray</th><th>seconds</th></tr>",
    ]
    for r in rows:
        lines.append(
            f"<tr><td>{html.escape(r['name'])}</td>{cell(r['gray'])}{cell(r['ours'])}{cell(r.get('truth'))}"
            f"<td>{num(r, 'psnr', '.2f')} / {num(r, 'psnr_gray', '.2f')}</td>"
            f"<td>{num(r, 'l_uv', '.5f')} / {num(r, 'l_uv_gray', '.5f')}</td>"
            f"<td>{num(r, 'seconds', '.3f')}</td></tr>"
        )
    lines.append("</table>")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
