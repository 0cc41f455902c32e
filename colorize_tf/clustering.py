"""Adaptive image clustering (Algorithm 3 of the paper) and cluster selection.

Pure functions over arrays; training and PSNR measurement are supplied by the
caller as a callback (a Beam job in ``pipelines.train``), so the loop itself
is testable without any model.

Layer 0 groups all reference images into N0 clusters by k-means on their
global descriptors (GIST); a regressor is trained per cluster and every
reference image is colorized with its cluster's model. Images whose PSNR
reaches the threshold (E(I) = -PSNR <= epsilon, i.e. PSNR >= -epsilon) leave
the set; the rest are clustered again on the next layer into size / mu
clusters, until fewer than mu images remain.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Cluster:
    """One cluster of reference images on one layer."""

    cluster_id: str
    layer: int
    members: List[str]
    centre: np.ndarray  # mean global descriptor, shape (D,)
    semantic_hist: Optional[np.ndarray] = None  # mean of members' histograms, shape (N,)

    def to_json(self):
        return {
            "cluster_id": self.cluster_id,
            "layer": self.layer,
            "members": list(self.members),
            "centre": [float(v) for v in self.centre],
            "semantic_hist": None if self.semantic_hist is None else [float(v) for v in self.semantic_hist],
        }

    @classmethod
    def from_json(cls, d):
        return cls(
            d["cluster_id"],
            int(d["layer"]),
            list(d["members"]),
            np.asarray(d["centre"], np.float32),
            None if d.get("semantic_hist") is None else np.asarray(d["semantic_hist"], np.float32),
        )


def regressor_weights(input_dim, hidden_layers=3):
    """N_w: weights (with biases) of the paper's network input -> input/2 (x hidden_layers) -> 2."""
    h = max(2, input_dim // 2)
    n = input_dim * h + h
    n += (hidden_layers - 1) * (h * h + h)
    return n + h * 2 + 2


def minimal_cluster_size(input_dim, samples_per_image, alpha):
    """mu = alpha * N_w / N_s (eq. 3), at least 2."""
    return max(2, int(math.ceil(alpha * regressor_weights(input_dim) / float(samples_per_image))))


def kmeans(x, k, seed=0):
    """k-means (scikit-learn, k-means++ init, 4 restarts).

    Returns
    -------
    labels : ndarray of int, shape (n,)
    centres : ndarray of float32, shape (k, D)
    """
    from sklearn.cluster import KMeans

    x = np.asarray(x, dtype=np.float64)
    k = int(max(1, min(k, len(x))))
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    return km.labels_.astype(np.int64), km.cluster_centers_.astype(np.float32)


def cluster_layer(
    ids: Sequence[str], gist: np.ndarray, hists: Optional[np.ndarray], layer: int, k: int, seed=0, min_size=1
) -> List[Cluster]:
    """Group images into `k` clusters on one layer.

    Clusters smaller than `min_size` are merged into their nearest larger
    cluster (k-means may produce tiny clusters that cannot train a model).
    """
    ids = list(ids)
    labels, centres = kmeans(gist, k, seed)
    sizes = np.bincount(labels, minlength=len(centres))
    big = np.flatnonzero(sizes >= min_size)
    if len(big) == 0:
        big = np.array([int(np.argmax(sizes))])
    for c in np.flatnonzero(sizes < min_size):
        if c in big:
            continue
        nearest = big[np.argmin(np.linalg.norm(centres[big] - centres[c], axis=1))]
        labels[labels == c] = nearest
    out = []
    for new_i, c in enumerate(sorted(set(labels.tolist()))):
        idx = np.flatnonzero(labels == c)
        hist = None if hists is None else np.asarray(hists)[idx].mean(0).astype(np.float32)
        out.append(
            Cluster(
                f"L{layer}C{new_i:02d}",
                layer,
                [ids[i] for i in idx],
                np.asarray(gist)[idx].mean(0).astype(np.float32),
                hist,
            )
        )
    return out


@dataclasses.dataclass
class LayerReport:
    layer: int
    images: int
    clusters: List[str]
    sizes: List[int]
    removed: int
    mean_psnr: float
    unmeasured: int = 0  # images whose PSNR could not be measured (unreadable reference image): dropped


def adaptive_clustering(
    ids: Sequence[str],
    gist: np.ndarray,
    hists: Optional[np.ndarray],
    train_layer: Callable[[List[Cluster]], Dict[str, float]],
    n0=24,
    mu=80,
    epsilon_db=-26.0,
    max_layers=4,
    seed=0,
    max_unmeasured_fraction=0.1,
):
    """Algorithm 3: layered k-means with PSNR-based pruning.

    Parameters
    ----------
    ids : sequence of str
        Reference image ids.
    gist : ndarray, shape (n, D)
        Global descriptors, one row per id.
    hists : ndarray, shape (n, N), optional
        Semantic histograms (cluster histograms are their means).
    train_layer : callable
        ``train_layer(clusters) -> {image_id: psnr}``: trains one regressor per
        cluster and colorizes each member with its cluster's model.
    n0 : int
        Clusters on layer 0 (capped so clusters hold about mu images on small sets).
    mu : int
        Minimal images per regressor; later layers have size / mu clusters and the
        loop stops when fewer than mu images remain.
    epsilon_db : float
        Error threshold on E(I) = -PSNR; an image with E(I) <= epsilon leaves the set.
    max_layers : int
        Safety bound: images that never reach the threshold would otherwise loop forever.
    max_unmeasured_fraction : float
        Images `train_layer` returns no PSNR for (an unreadable reference image) are counted in the
        layer's report and leave the set; more than this share of a layer is a systematic failure
        (RuntimeError).

    Returns
    -------
    clusters : list of Cluster
        All clusters of all layers.
    reports : list of LayerReport
    """
    ids = list(ids)
    gist = np.asarray(gist, dtype=np.float32)
    index = {i: n for n, i in enumerate(ids)}
    remaining = list(ids)
    clusters: List[Cluster] = []
    reports: List[LayerReport] = []
    layer = 0
    while layer < max_layers and (layer == 0 or len(remaining) >= mu):
        k = min(n0, max(1, len(remaining) // mu)) if layer == 0 else max(1, len(remaining) // mu)
        rows = [index[i] for i in remaining]
        layer_clusters = cluster_layer(
            remaining,
            gist[rows],
            None if hists is None else np.asarray(hists)[rows],
            layer,
            k,
            seed=seed + layer,
            min_size=min(mu, len(remaining)) // 2 or 1,
        )
        log.info(
            "layer %d: %d images in %d clusters (sizes %s)",
            layer,
            len(remaining),
            len(layer_clusters),
            [len(c.members) for c in layer_clusters],
        )
        psnr = train_layer(layer_clusters)
        missing = [i for i in remaining if i not in psnr]
        if len(missing) > max_unmeasured_fraction * len(remaining):
            raise RuntimeError(
                f"layer {layer}: no PSNR measured for {len(missing)} of {len(remaining)} images "
                f"(more than {max_unmeasured_fraction:.0%}), e.g. {missing[:3]}"
            )
        if missing:
            log.warning(
                "layer %d: %d images could not be measured and leave the set, e.g. %s", layer, len(missing), missing[:3]
            )
        measured = [i for i in remaining if i in psnr]
        keep = [i for i in measured if -psnr[i] > epsilon_db]
        reports.append(
            LayerReport(
                layer,
                len(remaining),
                [c.cluster_id for c in layer_clusters],
                [len(c.members) for c in layer_clusters],
                len(measured) - len(keep),
                float(np.mean([psnr[i] for i in measured])) if measured else float("nan"),
                len(missing),
            )
        )
        log.info(
            "layer %d: mean training PSNR %.2f dB, %d images reach %.1f dB and leave, %d remain",
            layer,
            reports[-1].mean_psnr,
            reports[-1].removed,
            -epsilon_db,
            len(keep),
        )
        clusters.extend(layer_clusters)
        if len(keep) == len(measured):
            log.info("layer %d removed no image: stopping", layer)
            break
        remaining = keep
        layer += 1
    return clusters, reports


def cosine(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else 0.0


def select_cluster(gist, hist, clusters: Sequence[Cluster], k=3):
    """Choose the cluster for an image (test-time step 1 of Algorithm 2).

    The `k` clusters nearest by Euclidean distance of global descriptors are
    candidates; among them the one whose semantic histogram has the highest
    cosine similarity with the image's wins. k = 1, or no histograms, means
    GIST only.

    Returns
    -------
    index : int
        Position in `clusters`.
    """
    centres = np.stack([c.centre for c in clusters])
    d = np.linalg.norm(centres - np.asarray(gist, np.float32)[None], axis=1)
    order = np.argsort(d, kind="stable")[: max(1, k)]
    if hist is None or k <= 1 or any(clusters[i].semantic_hist is None for i in order):
        return int(order[0])
    sims = [cosine(hist, clusters[i].semantic_hist) for i in order]
    return int(order[int(np.argmax(sims))])
