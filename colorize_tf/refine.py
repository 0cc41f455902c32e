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
    """

    diameter: int = 9
    sigma_color: float = 0.1
    sigma_space: float = 4.0

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
    guide = np.ascontiguousarray(gray, dtype=np.float32)
    # OpenCV accepts 1 or 3 channel sources only: pad U,V with a zero channel.
    src = np.zeros(uv.shape[:2] + (3,), dtype=np.float32)
    src[..., :2] = uv
    out = cv2.ximgproc.jointBilateralFilter(
        guide, src, int(params.diameter), float(params.sigma_color), float(params.sigma_space),
        borderType=cv2.BORDER_REFLECT_101,
    )
    return np.ascontiguousarray(out[..., :2])
