"""Labelled scene datasets for the scene parser.

Three layouts are understood (`open_dataset` detects which):

``siftflow``
    ``images/NAME.jpg``, ``labels_semantic_png/NAME.png`` (0 = unlabeled,
    1..N = classes), ``classes.txt`` (``id<TAB>name``), ``train.txt`` / ``test.txt``.
``stanford``
    Stanford Background: ``images/NAME.jpg``, ``labels_regions_png/NAME.png``
    (0..7, 255 = unknown), ``CLASSES.txt``, ``mmseg_tutorial_splits/{train,val}_backup.txt``.
``generic``
    ``images/NAME.*``, ``masks/NAME.png`` (class index per pixel), ``classes.txt``
    (one name per line, line i = class i), optional ``ignore.txt`` (label values to
    ignore, default 255) and ``train.txt`` / ``val.txt`` / ``test.txt`` lists
    (otherwise a deterministic 90/10 split by name).

Masks are mapped to class indices 0..N-1, with `IGNORE` (255) where unlabeled.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

IGNORE = 255
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


@dataclasses.dataclass
class LabelledSet:
    """A labelled dataset: class names, splits of (name, image path, mask path), and the mask value map."""

    layout: str
    root: str
    classes: List[str]
    splits: Dict[str, List[Tuple[str, str, str]]]
    lut: np.ndarray  # uint8 (256,): raw mask value -> class index or IGNORE

    def map_mask(self, raw):
        """Raw mask values (uint8/any int) -> class indices, IGNORE where unlabeled or unknown."""
        return map_mask(raw, self.lut)


def map_mask(raw, lut):
    """Raw mask values (uint8 / any int) -> class indices through `lut` (uint8 (256,)), IGNORE where a value
    is outside 0..255."""
    raw = np.asarray(raw)
    if raw.dtype != np.uint8:
        raw = np.where((raw >= 0) & (raw < 256), raw, IGNORE).astype(np.uint8)
    return np.asarray(lut, np.uint8)[raw]


def decode_mask(data, shape):
    """A label mask file's raw values, shape (H, W).

    Raises
    ------
    ValueError
        When the bytes are not a readable image, have more than one channel, or are not `shape` (the photo's).
    """
    import cv2

    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError("mask is not a readable image")
    if mask.ndim == 3:
        raise ValueError(f"mask must have one channel, got {mask.shape[2]}")
    if mask.shape != tuple(shape):
        raise ValueError(f"mask size {mask.shape} differs from image size {tuple(shape)}")
    return mask


def _read_list(path):
    with open(path) as fh:
        return [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]


def _find_image(folder, name):
    for ext in IMAGE_EXTS:
        p = os.path.join(folder, name + ext)
        if os.path.exists(p):
            return p
    hits = glob.glob(os.path.join(folder, name + ".*"))
    if not hits:
        raise FileNotFoundError(f"no image for {name!r} in {folder}")
    return hits[0]


def _pairs(root, img_dir, mask_dir, names):
    return [(n, _find_image(os.path.join(root, img_dir), n), os.path.join(root, mask_dir, n + ".png")) for n in names]


def _hash_split(names, fraction=0.1):
    def held(n):
        return int(hashlib.sha256(n.encode()).hexdigest()[:8], 16) / 16**8 < fraction

    return [n for n in names if not held(n)], [n for n in names if held(n)]


def detect_layout(root):
    if os.path.isdir(os.path.join(root, "labels_semantic_png")):
        return "siftflow"
    if os.path.isdir(os.path.join(root, "labels_regions_png")):
        return "stanford"
    if os.path.isdir(os.path.join(root, "masks")):
        return "generic"
    raise ValueError(
        f"{root}: unknown dataset layout (expected labels_semantic_png/, labels_regions_png/ or images/ + masks/)"
    )


def open_dataset(root, layout: Optional[str] = None) -> LabelledSet:
    """Open a labelled dataset folder; `layout` auto-detected if None."""
    layout = layout or detect_layout(root)
    lut = np.full(256, IGNORE, np.uint8)
    if layout == "siftflow":
        classes = []
        for line in _read_list(os.path.join(root, "classes.txt")):
            idx, name = line.split(None, 1)
            if int(idx) > 0:
                classes.append(name.strip())
        lut[1 : len(classes) + 1] = np.arange(len(classes))
        splits = {
            s: _pairs(root, "images", "labels_semantic_png", _read_list(os.path.join(root, f"{s}.txt")))
            for s in ("train", "test")
        }
    elif layout == "stanford":
        classes = []
        for line in _read_list(os.path.join(root, "CLASSES.txt")):
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0].isdigit():
                classes.append(parts[1].strip())
        lut[: len(classes)] = np.arange(len(classes))
        sp = os.path.join(root, "mmseg_tutorial_splits")
        splits = {
            "train": _pairs(root, "images", "labels_regions_png", _read_list(os.path.join(sp, "train_backup.txt"))),
            "test": _pairs(root, "images", "labels_regions_png", _read_list(os.path.join(sp, "val_backup.txt"))),
        }
    elif layout == "generic":
        classes = _read_list(os.path.join(root, "classes.txt"))
        lut[: len(classes)] = np.arange(len(classes))
        ignore_file = os.path.join(root, "ignore.txt")
        if os.path.exists(ignore_file):
            for v in _read_list(ignore_file):
                lut[int(v)] = IGNORE
        names = sorted(
            os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(root, "masks", "*.png"))
        )
        splits = {}
        for s in ("train", "val", "test"):
            if os.path.exists(os.path.join(root, f"{s}.txt")):
                splits[s] = _pairs(root, "images", "masks", _read_list(os.path.join(root, f"{s}.txt")))
        if "train" not in splits:
            tr, te = _hash_split(names)
            splits = {"train": _pairs(root, "images", "masks", tr), "test": _pairs(root, "images", "masks", te)}
        if "test" not in splits and "val" in splits:
            splits["test"] = splits["val"]
    else:
        raise ValueError(f"unknown layout {layout!r}")
    if len(classes) >= IGNORE:
        raise ValueError(f"{len(classes)} classes: at most {IGNORE - 1} are supported")
    return LabelledSet(layout, root, classes, splits, lut)
