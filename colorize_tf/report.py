"""Side-by-side HTML pages of colorization results."""

from __future__ import annotations

import html
import os


def summary_table(systems):
    """HTML table of per-system means: ``system``, ``mean_psnr``, ``gain`` (mean, [lo, hi]) over gray,
    optional ``diff`` (mean, [lo, hi]) against the main system, ``mean_l_uv``, ``colourfulness_ratio``."""

    def ci(value):
        return f"{value[0]:+.2f} [{value[1][0]:+.2f}, {value[1][1]:+.2f}]" if value else "-"

    def num(row, key, fmt):
        return format(row[key], fmt) if row.get(key) is not None else "-"

    lines = [
        "<table><tr><th>system</th><th>mean PSNR (dB)</th><th>gain over gray [95% CI]</th>"
        "<th>difference to the model [95% CI]</th><th>mean L_UV</th><th>colourfulness / truth</th></tr>"
    ]
    for r in systems:
        lines.append(
            f"<tr><td>{html.escape(r['system'])}</td><td>{num(r, 'mean_psnr', '.2f')}</td>"
            f"<td>{ci(r.get('gain'))}</td><td>{ci(r.get('diff'))}</td><td>{num(r, 'mean_l_uv', '.5f')}</td>"
            f"<td>{num(r, 'colourfulness_ratio', '.2f')}</td></tr>"
        )
    lines.append("</table><p>95% intervals: paired bootstrap over images.</p>")
    return "\n".join(lines)


def side_by_side_html(rows, path, title="Colorization results", systems=None):
    """Write an HTML page showing gray input / colorized / ground truth per image.

    Parameters
    ----------
    rows : list of dict
        Keys: ``name``, ``gray``, ``ours``, optional ``truth`` (image paths
        relative to the page), optional ``psnr``, ``psnr_gray``, ``l_uv``,
        ``l_uv_gray``, ``seconds``.
    path : str
        Output HTML file (written atomically).
    systems : list of dict, optional
        A summary table above the images (`summary_table`).
    """
    from .files import write_atomic

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
        summary_table(systems) if systems else "",
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
    write_atomic(os.path.abspath(path), ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def columns_html(rows, columns, path, title, intro=""):
    """Write an HTML page with one picture column per entry of ``columns`` and a caption under each.

    Parameters
    ----------
    rows : list of dict
        ``name`` and, per column key, ``{"src": path relative to the page, "caption": text}`` (or None for
        an empty cell).
    columns : list of (key, heading)
    path : str
        Output HTML file (written atomically).
    """
    from .files import write_atomic

    def cell(c):
        if not c:
            return "<td>-</td>"
        src = html.escape(c["src"])
        return (
            f"<td><a href='{src}'><img src='{src}' loading='lazy'></a>"
            f"<br><small>{html.escape(c.get('caption', ''))}</small></td>"
        )

    lines = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif}img{max-width:300px;max-height:300px}"
        "td,th{padding:4px;text-align:center;vertical-align:top}</style>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(intro)}</p>" if intro else "",
        "<table><tr><th>image</th>" + "".join(f"<th>{html.escape(h)}</th>" for _, h in columns) + "</tr>",
    ]
    for r in rows:
        lines.append(f"<tr><td>{html.escape(r['name'])}</td>" + "".join(cell(r.get(k)) for k, _ in columns) + "</tr>")
    lines.append("</table>")
    write_atomic(os.path.abspath(path), ("\n".join(lines) + "\n").encode("utf-8"))
    return path
