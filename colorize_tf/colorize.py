"""Colorization of one gray image (Algorithm 2 of the paper).

descriptors for every pixel -> regressor (U, V) -> joint bilateral
refinement guided by the gray image -> recombination with the input
luminance. Large images are processed in tiles with enough overlap that
the result equals the whole-image computation, so memory stays bounded.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator, Optional, Tuple

import numpy as np

from .color import recombine
from .features import Descriptor
from .refine import RefineParams, joint_bilateral

#: Default tile side in pixels (descriptor rows per tile stay around 0.4 M).
DEFAULT_TILE = 512


def tiles(height, width, tile, margin) -> Iterator[Tuple[slice, slice, slice, slice]]:
    """Cover an image with tiles plus context.

    Yields
    ------
    (outer_rows, outer_cols, inner_rows, inner_cols)
        `outer` is the tile grown by `margin` (clipped to the image);
        `inner` selects the tile itself inside the outer crop.
    """
    for y0 in range(0, height, tile):
        y1 = min(height, y0 + tile)
        oy0, oy1 = max(0, y0 - margin), min(height, y1 + margin)
        for x0 in range(0, width, tile):
            x1 = min(width, x0 + tile)
            ox0, ox1 = max(0, x0 - margin), min(width, x1 + margin)
            yield (
                slice(oy0, oy1),
                slice(ox0, ox1),
                slice(y0 - oy0, y1 - oy0),
                slice(x0 - ox0, x1 - ox0),
            )


@dataclasses.dataclass
class Timing:
    """Seconds spent per stage of one colorization."""

    parser: float = 0.0  # whole-image context (scene parser) and cluster selection (GIST)
    features: float = 0.0
    inference: float = 0.0
    refinement: float = 0.0
    recombine: float = 0.0

    @property
    def total(self):
        return self.parser + self.features + self.inference + self.refinement + self.recombine


def _grid_span(start, inner, stride):
    """For a tile starting at global `start` with inner rows `inner` (local slice): the local offset of the
    first global multiple of `stride`, and the range [k0, k1) of grid points (counted from that offset)
    inside `inner`."""
    first = (-start) % stride
    k0 = max(0, -(-(inner.start - first) // stride))
    k1 = max(k0, -(-(inner.stop - first) // stride))
    return first, k0, k1


def upsample_grid(small, shape, stride):
    """Bilinear interpolation of values sampled at ``[::stride, ::stride]`` back to every pixel of `shape`."""
    import cv2

    h, w = shape
    if stride == 1:
        return small
    out = np.empty((h, w) + small.shape[2:], dtype=small.dtype)
    rows = max(1, (1 << 18) // max(1, w))  # maps for ~256 k pixels at a time, not two full-size float maps
    map_x = np.ascontiguousarray(np.broadcast_to((np.arange(w, dtype=np.float32) / stride)[None, :], (rows, w)))
    for r in range(0, h, rows):
        n = min(rows, h - r)
        map_y = np.ascontiguousarray(np.broadcast_to((np.arange(r, r + n, dtype=np.float32) / stride)[:, None], (n, w)))
        out[r : r + n] = cv2.remap(small, map_x[:n], map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def default_stride(refine: RefineParams):
    """Prediction stride for a refinement: 2 when the filter works at half resolution or less, else 1.

    The refinement then discards the extra density anyway: on SIFT Flow test.txt with the tuned
    quarter-resolution filter, stride 2 scores 25.310 dB against 25.311 at every pixel (stride 4: 25.309),
    with a quarter of the regressor's work.
    """
    return 2 if refine.enabled and refine.scale <= 0.5 else 1


def predict_uv(
    gray, regressor, descriptor: Descriptor, tile=DEFAULT_TILE, timing: Optional[Timing] = None, states=None, stride=1
):
    """Raw (unrefined) chrominance for every pixel.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in [0, 1].
    regressor : object with ``predict(x) -> (N, 2)``
    descriptor : Descriptor
    tile : int
        Tile side; 0 or a size >= the image computes in one piece.
    states : list, optional
        ``descriptor.prepare(gray)`` when already computed (e.g. for cluster selection).
    stride : int
        Predict at the pixels ``[::stride, ::stride]`` (descriptors always see the full-resolution
        image) and interpolate bilinearly in between; 1 = every pixel, as the paper.

    Returns
    -------
    uv : ndarray of float32, shape (H, W, 2)
        The same for any `tile` (tiles overlap by the descriptor's margin).
    """
    gray = np.asarray(gray, dtype=np.float32)
    h, w = gray.shape
    timing = timing if timing is not None else Timing()
    if states is None:
        t0 = time.perf_counter()
        states = descriptor.prepare(gray)  # whole-image context (scene parser), computed once
        timing.parser += time.perf_counter() - t0
    whole = not tile or (h <= tile and w <= tile)
    pieces = [(slice(0, h), slice(0, w), slice(0, h), slice(0, w))] if whole else tiles(h, w, tile, descriptor.margin)
    small = np.empty((-(-h // stride), -(-w // stride), 2), dtype=np.float32)
    for ory, orx, iry, irx in pieces:
        t0 = time.perf_counter()
        fr, kr0, kr1 = _grid_span(ory.start, iry, stride)
        fc, kc0, kc1 = _grid_span(orx.start, irx, stride)
        crop = gray[ory, orx]
        x = descriptor.compute(crop, states=states, window=(ory.start, orx.start, h, w), grid=(fr, fc, stride))
        rows, cols = len(range(fr, crop.shape[0], stride)), len(range(fc, crop.shape[1], stride))
        t1 = time.perf_counter()
        pred = regressor.predict(x).reshape(rows, cols, 2)
        gr, gc = (ory.start + fr) // stride, (orx.start + fc) // stride
        small[gr + kr0 : gr + kr1, gc + kc0 : gc + kc1] = pred[kr0:kr1, kc0:kc1]
        timing.features += t1 - t0
        timing.inference += time.perf_counter() - t1
    t0 = time.perf_counter()
    uv = upsample_grid(small, (h, w), stride)
    timing.inference += time.perf_counter() - t0
    return uv


def refine_uv(gray, uv, params: RefineParams, tile=DEFAULT_TILE):
    """Joint bilateral refinement, tiled with `params.margin` overlap (exact)."""
    if not params.enabled:
        return uv
    h, w = gray.shape
    if not tile or (h <= tile and w <= tile) or params.scale < 1:
        # (a reduced-resolution filter works on a small copy of the whole image: no tiles needed)
        return joint_bilateral(gray, uv, params)
    out = np.empty_like(uv)
    for ory, orx, iry, irx in tiles(h, w, tile, params.margin):
        out[ory, orx][iry, irx] = joint_bilateral(gray[ory, orx], uv[ory, orx], params)[iry, irx]
    return out


def finish(gray, uv, refine=RefineParams(), tile=DEFAULT_TILE, timing=None):
    """Refine raw chrominance and recombine it with the luminance.

    Returns
    -------
    rgb : ndarray of float32, shape (H, W, 3)
        In [0, 1]; its BT.601 luminance equals `gray`.
    uv : ndarray of float32, shape (H, W, 2)
        The refined chrominance.
    """
    timing = timing if timing is not None else Timing()
    t0 = time.perf_counter()
    uv = refine_uv(gray, uv, refine, tile=tile)
    t1 = time.perf_counter()
    rgb = recombine(gray, uv)
    timing.refinement += t1 - t0
    timing.recombine += time.perf_counter() - t1
    return rgb, uv


@dataclasses.dataclass
class Colorized:
    """One colorization's result.

    Attributes
    ----------
    rgb : ndarray of float32, shape (H, W, 3), or None
        In [0, 1]; its BT.601 luminance equals the input (None from ``chroma()``: not recombined yet).
    uv : ndarray of float32, shape (H, W, 2)
        Chrominance (refined by ``colorize()``, raw from ``chroma()``).
    cluster : str or None
        The bundle cluster whose regressor predicted (None for a single model).
    timing : Timing
        Seconds per stage.
    confidence : float or None
        How sure the model is of its colours, in [0, 1] (models that predict a distribution over chroma:
        1 - the mean normalised entropy of the per-pixel distributions); None when the family has no such
        measure. Archive reviews show the least confident outputs first.
    work_scale : float
        The resolution ``uv`` has, relative to the input (`colorize_image` on a large image: < 1).
    """

    rgb: Optional[np.ndarray]
    uv: np.ndarray
    cluster: Optional[str] = None
    timing: Timing = dataclasses.field(default_factory=Timing)
    confidence: Optional[float] = None
    work_scale: float = 1.0


class PixelColorizer:
    """A per-pixel model (the paper's regressor or a baseline) loaded for colorization.

    Parameters
    ----------
    predictor : object with ``predict(x) -> (N, 2)`` and ``input_dim``
    descriptor : Descriptor
    refine : RefineParams
    tile : int
    stride : int, optional
        Prediction stride (`predict_uv`); default `default_stride(refine)`.
    """

    #: Working side (`colorize_image`): descriptors were learnt on ~256-pixel photos; on scans enlarged 6x
    #: (`benchmarks/work_side.py`, SIFT Flow validation) 512 scored +0.63 dB over full resolution, 768 +0.48,
    #: 1024 +0.31, at a ninth of the time.
    work_side = 512

    def __init__(self, predictor, descriptor, refine=RefineParams(), tile=DEFAULT_TILE, stride=None):
        if descriptor.dim != predictor.input_dim:
            raise ValueError(f"descriptor width {descriptor.dim} != model input {predictor.input_dim}")
        self.predictor = predictor
        self.descriptor = descriptor
        self.refine = refine
        self.tile = tile
        self.stride = default_stride(refine) if stride is None else int(stride)

    @classmethod
    def load(cls, model_dir, settings=None):
        """Load `model_dir` (any per-pixel family); refinement defaults to the one stored with the model,
        the scene parser to the one the model carries (``model_dir/parser``)."""
        from .registry import ColorizeSettings, load_descriptor, load_predictor, stored_parser

        settings = settings or ColorizeSettings()
        predictor = load_predictor(model_dir)
        desc = load_descriptor(predictor.meta["descriptor"], stored_parser(model_dir, settings.parser_dir))
        refine = settings.refine or RefineParams(**predictor.meta.get("refine", {}))
        return cls(predictor, desc, refine, settings.tile, settings.stride)

    def describe(self):
        """One line for logs: what predicts and how."""
        return f"descriptor {'+'.join(self.descriptor.names)}, stride {self.stride}, refinement {self.refine}"

    def chroma(self, gray):
        """Unrefined chrominance: a `Colorized` with ``rgb=None``."""
        timing = Timing()
        uv = predict_uv(gray, self.predictor, self.descriptor, self.tile, timing, stride=self.stride)
        return Colorized(None, uv, None, timing)

    def colorize(self, gray):
        """Colorize luminance (H, W) in [0, 1] -> `Colorized`."""
        raw = self.chroma(gray)
        raw.rgb, raw.uv = finish(gray, raw.uv, self.refine, self.tile, raw.timing)
        return raw


class ClusteredColorizer(PixelColorizer):
    """A clustered bundle (colorize_tf.bundle): per image, select one cluster and use its regressor.

    Parameters
    ----------
    bundle_dir : str
    descriptor : Descriptor
        Shared by every cluster's regressor.
    clusters : list of colorize_tf.clustering.Cluster
        Candidates for selection.
    refine : RefineParams
    tile : int
    k : int
        Top-k clusters by GIST distance, then the best semantic-histogram cosine (1 = GIST only).
    gist_size : int
    stride : int, optional
        Prediction stride (`predict_uv`); default `default_stride(refine)`.
    """

    def __init__(self, bundle_dir, descriptor, clusters, refine, tile=DEFAULT_TILE, k=3, gist_size=128, stride=None):
        self.bundle_dir = bundle_dir
        self.descriptor = descriptor
        self.clusters = clusters
        self.refine = refine
        self.tile = tile
        self.k = k
        self.gist_size = gist_size
        self.stride = default_stride(refine) if stride is None else int(stride)
        self._regressors = {}
        names = descriptor.names
        self._semantic = names.index("semantic") if "semantic" in names else None

    @classmethod
    def load(cls, bundle_dir, settings=None):
        """Load and verify a bundle. Candidate layers and k default to the bundle's stored
        ``selection_layers`` / ``selection_k`` (chosen on validation images)."""
        import os

        from .bundle import read_bundle
        from .registry import ColorizeSettings, load_descriptor, stored_parser
        from .regressor import read_metadata

        settings = settings or ColorizeSettings()
        meta, clusters = read_bundle(bundle_dir)
        params = meta.get("params", {})
        layers = settings.selection_layers
        if layers is None:
            layers = params.get("selection_layers")  # None: all layers
        if layers:
            clusters = [c for c in clusters if c.layer in set(layers)]
        root_dir = os.path.join(bundle_dir, "root")
        root = read_metadata(root_dir)
        desc = load_descriptor(root["descriptor"], stored_parser(root_dir, settings.parser_dir))
        refine = settings.refine or RefineParams(**root.get("refine", {}))
        k = settings.selection_k or params.get("selection_k", 3)
        return cls(
            bundle_dir,
            desc,
            clusters,
            refine,
            settings.tile,
            k=k,
            gist_size=params.get("gist_size", 128),
            stride=settings.stride,
        )

    def regressor(self, cluster_id):
        """The (cached) regressor of a cluster; ``"root"`` is the all-images model."""
        import os

        from .regressor import Regressor

        if cluster_id not in self._regressors:
            sub = "root" if cluster_id == "root" else os.path.join("clusters", cluster_id)
            self._regressors[cluster_id] = Regressor.load(os.path.join(self.bundle_dir, sub), verify=False)
        return self._regressors[cluster_id]

    def select(self, gray, states):
        """Cluster id for an image, from its GIST and semantic histogram."""
        from .clustering import select_cluster
        from .gist import gist
        from .parser import semantic_histogram

        if not self.clusters:
            return "root"
        hist = semantic_histogram(states[self._semantic]) if self._semantic is not None else None
        return self.clusters[select_cluster(gist(gray, self.gist_size), hist, self.clusters, self.k)].cluster_id

    def chroma(self, gray):
        """Unrefined chrominance of the selected cluster's regressor: a `Colorized` with ``rgb=None``."""
        gray = np.asarray(gray, dtype=np.float32)
        timing = Timing()
        t0 = time.perf_counter()
        states = self.descriptor.prepare(gray)
        cid = self.select(gray, states)
        timing.parser += time.perf_counter() - t0
        uv = predict_uv(gray, self.regressor(cid), self.descriptor, self.tile, timing, states, self.stride)
        return Colorized(None, uv, cid, timing)


def seconds_per_image(colorizer, side=256, runs=7):
    """Median seconds of ``colorizer.colorize`` (with its own refinement) on a ``side`` x ``side`` photo
    (scikit-image's astronaut) after one warm-up call: the speed column of the quality tables."""
    import cv2
    from skimage import data

    from .color import luminance

    gray = luminance(cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA) / 255.0)
    colorizer.colorize(gray)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        colorizer.colorize(gray)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


#: Longer side (pixels) at which every family predicts and refines chroma unless it names its own
#: (``work_side`` on the colorizer) or the caller forces full resolution (0): see `colorize_image`.
DEFAULT_WORK_SIDE = 1024


def work_side_of(colorizer):
    """The colorizer's default working side (its ``work_side`` attribute, else `DEFAULT_WORK_SIDE`)."""
    return int(getattr(colorizer, "work_side", DEFAULT_WORK_SIDE))


def colorize_image(colorizer, gray, work_side=None, dtype=np.float32, upsampling=None):
    """Colorize an image of any size at a cost that hardly grows with it.

    An image whose longer side exceeds `work_side` is reduced to it (area averaging); the colorizer predicts
    and refines chroma there, and `colorize_tf.upsample` carries it to full resolution under the image's own
    luminance (guided upsampling) while recombining in row blocks. Y is kept exactly at full resolution.

    Parameters
    ----------
    colorizer : object with ``colorize(gray) -> Colorized``
    gray : ndarray, shape (H, W)
        Luminance in [0, 1].
    work_side : int, optional
        Longer side of the working copy; None: the colorizer's default (`work_side_of`); 0: full resolution.
    dtype : numpy dtype
        Of ``rgb``: float32 in [0, 1], or uint8 / uint16 quantised (no full-size float image is made).
    upsampling : colorize_tf.upsample.GuidedUpsampling, optional

    Returns
    -------
    Colorized
        ``rgb`` (H, W, 3) of `dtype`; ``uv`` the refined chroma at the resolution it was computed at
        (``work_scale`` says which: 1 = full).
    """
    import cv2

    from . import upsample

    gray = np.asarray(gray, dtype=np.float32)
    h, w = gray.shape
    side = work_side_of(colorizer) if work_side is None else int(work_side)
    if not side or max(h, w) <= side:
        out = colorizer.colorize(gray)
        if np.dtype(dtype) != np.float32:
            from .color import to_uint

            out.rgb = to_uint(out.rgb, 8 if np.dtype(dtype) == np.uint8 else 16)
        return out
    s = side / float(max(h, w))
    small = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = colorizer.colorize(small)
    t0 = time.perf_counter()
    coef = upsample.guided_coefficients(small, out.uv, upsampling or upsample.GuidedUpsampling())
    out.rgb = upsample.render(gray, coef, dtype)
    out.work_scale = small.shape[1] / float(w)
    out.timing.recombine += time.perf_counter() - t0
    return out


def _register():
    from .registry import Family, register

    register(
        Family(
            "bundle",
            "clustered regressors (Algorithm 3): GIST + semantic-histogram selection",
            colorizer=ClusteredColorizer.load,
        )
    )


_register()
