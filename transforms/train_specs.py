"""What the training job's elements hold: the feature job's tables, the validation split, one spec per
model to train, and the bundle's upload. Plain functions over rows; the DoFns are in `training.py`."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from .fs import is_remote, local_copy, match_paths, read_json, write_atomically, write_json


def read_config(features_dir):
    """The feature job's ``config.json`` (descriptor blocks, sampling, parser)."""
    return read_json(FileSystems.join(features_dir, "config.json"))


def read_image_table(features_dir):
    """Rows of the feature job's per-image Parquet table, sorted by id."""
    pattern = FileSystems.join(features_dir, "images", "images-*.parquet")
    rows = []
    for p in match_paths(pattern, "image tables"):
        with FileSystems.open(p, compression_type="uncompressed") as fh:
            rows.extend(pq.read_table(fh).to_pylist())
    if not rows:
        raise FileNotFoundError(f"no image rows under {pattern}")
    return sorted(rows, key=lambda r: r["image_id"])


def split_rows(rows, val_fraction, seed=0, max_images=0):
    """(train rows, validation rows): `val_fraction` of the images, stratified over sources and scene
    types (colorize_tf.splits), deterministic by image id."""
    from colorize_tf.splits import validation_ids

    if max_images:
        rows = rows[:max_images]
    held = validation_ids([r["image_id"] for r in rows], val_fraction, seed)
    val = [r for r in rows if r["image_id"] in held]
    train = [r for r in rows if r["image_id"] not in held]
    if not train:
        raise ValueError("no training images left after the validation split")
    return train, val


def write_split(out, train, val, val_fraction, seed):
    """``OUT/validation.txt`` (the validation images' paths, one per line: a list file for
    ``pipelines.evaluate --input`` and ``benchmarks/quality.py``, where settings are chosen) and
    ``OUT/split.json`` (their ids and images per stratum)."""
    from colorize_tf.splits import strata_counts

    paths = [r["path"] if is_remote(r["path"]) else os.path.abspath(r["path"]) for r in val]
    write_atomically(FileSystems.join(out, "validation.txt"), "".join(p + "\n" for p in paths).encode())
    write_json(
        FileSystems.join(out, "split.json"),
        {
            "val_fraction": val_fraction,
            "seed": seed,
            "train_strata": strata_counts(r["image_id"] for r in train),
            "validation_strata": strata_counts(r["image_id"] for r in val),
            "validation": [r["image_id"] for r in val],
        },
    )


def root_spec(train, val, model_dir, tune_images, seed=0):
    """The all-images model: its validation images stop training early; a stratified sample of
    `tune_images` of them tunes the refinement."""
    from colorize_tf.splits import stratified_sample

    path_of = {r["image_id"]: r["path"] for r in val}
    tune = stratified_sample([r["image_id"] for r in val], tune_images, seed)
    return {
        "cluster_id": "all",
        "train_ids": [r["image_id"] for r in train],
        "val_ids": [r["image_id"] for r in val],
        "tune_paths": [path_of[i] for i in tune],
        "model_dir": model_dir,
        "with_parser": True,
    }


def cluster_spec(cluster, path_of, model_dir, val_ids=(), root_dir=None, learning_rate=None):
    """One cluster's element: its members train, `val_ids` (validation images nearest to the cluster,
    never members) stop training early; with `root_dir` the cluster's regressor fine-tunes the root one at
    `learning_rate`. Every member is colorized afterwards for Algorithm 3's PSNR."""
    return {
        "cluster_id": cluster.cluster_id,
        "train_ids": list(cluster.members),
        "val_ids": list(val_ids),
        "tune_paths": [],
        "model_dir": model_dir,
        "with_parser": False,
        "members": [(m, path_of[m]) for m in cluster.members],
        "init_model_dir": root_dir,
        "learning_rate": learning_rate if root_dir else None,
    }


def write_bundle_anywhere(out, clusters, reports, params):
    """``bundle.json`` for the model directories under `out` (any filesystem): checksums are taken on a
    local copy and, on a remote store, ``bundle.json`` goes up last."""
    from colorize_tf.bundle import BUNDLE_FILE, write_bundle

    if not is_remote(out):
        return write_bundle(out, clusters, reports, params)
    local = local_copy(out, refresh=True)
    meta = write_bundle(local, clusters, reports, params)
    with open(FileSystems.join(local, BUNDLE_FILE), "rb") as fh:
        write_atomically(FileSystems.join(out, BUNDLE_FILE), fh.read())
    return meta
