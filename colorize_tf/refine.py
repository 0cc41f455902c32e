"""Chrominance refinement (Sec. III-B.4): joint bilateral filter guided by the gray image."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class RefineParams:
    """Joint bilateral filter settings.

    Attributes
    ----------
    diameter : int
        Neighbourhood diameter in pixels (OpenCV's ``d``); 0 disables refinement.
    sigma_color : float
        Range sigma on the guide, in luminance units ([0, 1]).
    sigma_space : float
        Spatial sigma in pixels.
    scale : float
        Resolution the filter runs at (1 = full). A wide filter on chroma (which
        varies slowly) loses little at half resolution and costs 1/16: the guide
        and chroma are downscaled, filtered with ``diameter * scale`` and
        ``sigma_space * scale``, and the result is upsampled bilinearly.
    """

    diameter: int = 9
    sigma_color: float = 0.1
    sigma_space: float = 4.0
    scale: float = 1.0

    #: Largest filter (pixels at the working resolution, ``diameter * scale``): cost grows with its square.
    MAX_EFFECTIVE_DIAMETER = 64

    def __post_init__(self):
        import math

        vals = (self.diameter, self.sigma_color, self.sigma_space, self.scale)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            raise ValueError(f"refinement {vals}: values must be finite numbers")
        if self.diameter < 0 or self.diameter != int(self.diameter):
            raise ValueError(f"refinement diameter {self.diameter}: expected a whole number >= 0 (0 = off)")
        if not self.enabled:
            return
        if not 0 < self.scale <= 1:
            raise ValueError(f"refinement scale {self.scale}: expected 0 < scale <= 1")
        if self.diameter * self.scale > self.MAX_EFFECTIVE_DIAMETER or self.diameter > 16 * self.MAX_EFFECTIVE_DIAMETER:
            raise ValueError(
                f"refinement diameter {self.diameter} at scale {self.scale} is too wide (at most "
                f"{self.MAX_EFFECTIVE_DIAMETER} pixels at the filter's resolution)"
            )
        if not 0 < self.sigma_color <= 10:
            raise ValueError(f"refinement sigma_color {self.sigma_color}: expected 0 < sigma_color <= 10")
        if not 0 < self.sigma_space <= 1024:
            raise ValueError(f"refinement sigma_space {self.sigma_space}: expected 0 < sigma_space <= 1024")

    @classmethod
    def parse(cls, text):
        """From ``'DIAMETER,SIGMA_COLOR,SIGMA_SPACE[,SCALE]'`` (``'0,0,0'`` = off); None stays None."""
        if text is None:
            return None
        try:
            vals = [float(v) for v in str(text).split(",")]
        except ValueError:
            vals = []
        if not 3 <= len(vals) <= 4:
            raise ValueError(f"refinement {text!r}: expected 'D,SIGMA_COLOR,SIGMA_SPACE[,SCALE]'")
        if vals[0] != int(vals[0]):
            raise ValueError(f"refinement diameter {vals[0]}: expected a whole number")
        return cls(int(vals[0]), *vals[1:])

    @property
    def cost(self):
        """Relative cost (filter taps per full-resolution pixel)."""
        if not self.enabled:
            return 0.0
        return (self.diameter * self.scale) ** 2 * self.scale**2

    @property
    def enabled(self):
        return self.diameter > 0

    @property
    def margin(self):
        """Context a tile needs so refined tiles match the whole-image result."""
        return self.diameter // 2 if self.enabled else 0


def joint_bilateral(gray, uv, params=RefineParams()):
    """Smooth predicted chrominance with a joint bilateral filter guided by luminance.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Guide: luminance in [0, 1].
    uv : ndarray, shape (H, W, 2)
        Predicted chrominance.
    params : RefineParams

    Returns
    -------
    uv : ndarray of float32, shape (H, W, 2)
    """
    uv = np.asarray(uv, dtype=np.float32)
    if not params.enabled:
        return uv
    if params.scale < 1.0:
        h, w = uv.shape[:2]
        sw, sh = max(1, round(w * params.scale)), max(1, round(h * params.scale))
        small = RefineParams(
            max(1, int(round(params.diameter * params.scale)) | 1),
            params.sigma_color,
            params.sigma_space * params.scale,
        )
        out = joint_bilateral(
            cv2.resize(np.asarray(gray, np.float32), (sw, sh), interpolation=cv2.INTER_AREA),
            cv2.resize(uv, (sw, sh), interpolation=cv2.INTER_AREA),
            small,
        )
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    guide = np.ascontiguousarray(gray, dtype=np.float32)
    # OpenCV accepts 1 or 3 channel sources only: pad U,V with a zero channel.
    src = np.zeros(uv.shape[:2] + (3,), dtype=np.float32)
    src[..., :2] = uv
    out = cv2.ximgproc.jointBilateralFilter(
        guide,
        src,
        int(params.diameter),
        float(params.sigma_color),
        float(params.sigma_space),
        borderType=cv2.BORDER_REFLECT_101,
    )
    return np.ascontiguousarray(out[..., :2])
