"""Photos that installed packages ship (scikit-image, scikit-learn): demo and test inputs, no download."""

from __future__ import annotations

import numpy as np

#: Gray photos scikit-image ships (no colour original exists).
GRAY_PHOTOS = ("camera", "moon", "coins", "grass", "brick")
#: Colour photos scikit-image and scikit-learn ship; the demos colorize their gray versions.
COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_right", "china", "flower")


def shipped_image(name):
    """A photo shipped with scikit-image or scikit-learn: uint8, (H, W, 3) RGB or (H, W) gray."""
    from skimage import data

    if name == "motorcycle_right":
        return data.stereo_motorcycle()[1]
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    img = getattr(data, name)()
    return np.asarray(img, np.uint8)
