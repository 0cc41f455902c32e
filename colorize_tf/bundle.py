"""Model bundles: the clustered regressor ensemble on disk.

::

    BUNDLE/bundle.json          hierarchy, parameters, layer reports, per-file SHA-256
    BUNDLE/root/                regressor trained on all reference images (fallback, baseline)
    BUNDLE/clusters/L0C00/ ...  one regressor directory per cluster (colorize_tf.regressor layout)
    BUNDLE/root/parser/         the scene parser, when the descriptor has a semantic block
    BUNDLE/layers/              per-layer training summaries and reference-image PSNRs

Loading verifies every listed file against its checksum and fails with a
clear message on a missing or altered file. Nothing is pickled.
"""

from __future__ import annotations

import os
import time
from typing import List

from .checksums import check_component, file_inside, sha256_file
from .clustering import Cluster
from .files import PARTIAL, read_json_meta, write_json

BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = "colorize_tf.bundle"


def _files_under(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root).replace(os.sep, "/")
            if rel != BUNDLE_FILE and PARTIAL not in rel and "/tensorboard/" not in "/" + rel:
                out.append(rel)
    return sorted(out)


def write_bundle(bundle_dir, clusters: List[Cluster], reports, params, extra=None):
    """Write ``bundle.json`` for model directories already in place under `bundle_dir`."""
    files = {rel: sha256_file(os.path.join(bundle_dir, rel)) for rel in _files_under(bundle_dir)}
    for c in clusters:
        if f"clusters/{c.cluster_id}/regressor.keras" not in files:
            raise FileNotFoundError(f"cluster {c.cluster_id} has no model under {bundle_dir}/clusters/")
    meta = {
        "format": BUNDLE_FORMAT,
        "format_version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": params,
        "layers": [r if isinstance(r, dict) else r.__dict__ for r in reports],
        "clusters": [c.to_json() for c in clusters],
        "files": files,
    }
    meta.update(extra or {})
    write_json(os.path.join(bundle_dir, BUNDLE_FILE), meta)
    return meta


def is_bundle(path):
    return os.path.exists(os.path.join(path, BUNDLE_FILE))


def read_bundle(bundle_dir, verify=True):
    """Read and verify ``bundle.json``; returns (meta, clusters)."""
    meta = read_json_meta(bundle_dir, BUNDLE_FILE, BUNDLE_FORMAT, "model bundle")
    files = meta.get("files")
    if not isinstance(files, dict) or not isinstance(meta.get("clusters"), list):
        raise ValueError(f"{bundle_dir}/{BUNDLE_FILE}: 'files' and 'clusters' missing or malformed")
    for rel, digest in files.items():
        p = file_inside(bundle_dir, rel)  # stays inside the bundle, a regular file of bounded size
        if verify and sha256_file(p) != digest:
            raise ValueError(f"bundle file altered or corrupt (checksum differs): {p}")
    clusters = [Cluster.from_json(c) for c in meta["clusters"]]
    for c in clusters:
        check_component(c.cluster_id, "cluster id")
    _check_params(meta.get("params", {}))
    return meta, clusters


def _check_params(params):
    """Bundle parameters that size work at colorization time must be in range."""
    bounds = {"selection_k": (1, 1000), "gist_size": (16, 1024)}
    for key, (lo, hi) in bounds.items():
        v = params.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi):
            raise ValueError(f"bundle parameter {key} {v!r} out of range {lo}..{hi}")
    layers = params.get("selection_layers")
    if layers is not None and (not isinstance(layers, list) or not all(isinstance(x, int) for x in layers)):
        raise ValueError(f"bundle parameter selection_layers {layers!r}: expected a list of layer numbers")
