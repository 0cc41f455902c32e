"""The archive job's review page (``OUT/_manifest/review-STAMP.html``), written by the launcher after a run.

Outputs are read back through Beam's FileSystems (any filesystem the job wrote to); inputs are never
opened again: the "before" picture is the output's luminance, which colorization keeps exactly.
"""

from __future__ import annotations

import io
import logging
import posixpath

from apache_beam.io.filesystems import FileSystems

from colorize_tf import review
from colorize_tf.imageio import ImageDecodeError, decode_thumbnail

from .fs import is_remote, read_bytes, write_atomically

log = logging.getLogger(__name__)


def _jpeg(rgb):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def write_review(output_dir, manifest_dir, rows, stamp, n, summary=None, title=None):
    """Pick ``n`` done rows (`colorize_tf.review.pick`), write their thumbnails under
    ``MANIFEST_DIR/review-STAMP/`` and the page ``MANIFEST_DIR/review-STAMP.html``.

    Returns
    -------
    str or None
        The page's path (None when nothing was done).
    """
    chosen = review.pick(rows, n, stamp)
    if not chosen:
        return None
    folder = f"review-{stamp}"
    items = []
    for k, (row, reason) in enumerate(chosen):
        try:
            small = decode_thumbnail(read_bytes(FileSystems.join(output_dir, row["output_rel"])), review.THUMB_SIDE)
        except (ImageDecodeError, OSError) as exc:  # e.g. deleted since: the page says so, the run stands
            log.warning("review: cannot read %s: %s", row["output_rel"], exc)
            continue
        before, after = review.thumbnails(small)
        for name, img in (("before", before), ("after", after)):
            write_atomically(FileSystems.join(manifest_dir, folder, f"{k:04d}_{name}.jpg"), _jpeg(img))
        source = row["input"]
        local_input = not is_remote(source) and "!" not in source and source.startswith("/")
        items.append(
            {
                "before": f"{folder}/{k:04d}_before.jpg",
                "after": f"{folder}/{k:04d}_after.jpg",
                "output": posixpath.join("..", row["output_rel"]),
                "output_name": row["output_rel"],
                "input": source,
                "input_link": "file://" + source if local_input else None,
                "reason": reason,
                "confidence": row.get("confidence"),
                "width": row.get("width"),
                "height": row.get("height"),
                "seconds": row.get("seconds"),
            }
        )
    path = FileSystems.join(manifest_dir, f"review-{stamp}.html")
    text = review.page(items, title or f"Archive run {stamp}: {len(items)} pairs to review", summary)
    write_atomically(path, text.encode("utf-8"))
    return path
