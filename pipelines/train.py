"""Training job: feature-job output -> trained model directory or clustered bundle.

    python -m pipelines.train --features FEATURES_DIR --output MODEL_DIR
    python -m pipelines.train --features FEATURES_DIR --output BUNDLE_DIR --adaptive_clustering

Images are split (deterministically, by id) into training and held-out
validation sets; the regressor trains with early stopping on the held-out
samples, and the joint bilateral refinement is tuned on the held-out images'
PSNR. Training runs as a Beam ParDo over clusters, so clusters train in
parallel on a multi-worker runner.

With ``--adaptive_clustering`` (Algorithm 3), the output is a bundle
(colorize_tf.bundle): ``root/`` (the all-images regressor, whose tuned
refinement every cluster shares), then layer after layer a Beam job trains
one regressor per cluster (``clusters/L<l>C<i>/``) and measures every
member's PSNR with its cluster's model (a second ParDo, spread over
workers); images reaching the threshold leave, the rest are re-clustered.
"""
from __future__ import annotations

import json
import logging
import sys

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from colorize_tf.features import select_blocks
from colorize_tf.parser import needs_parser
from transforms.fs import copy_tree, is_remote, local_copy, match_paths, read_json, write_atomically
from transforms.io import read_jsonl
from transforms.training import KeyByClusterDoFn, MeasurePSNRDoFn, TrainRegressorDoFn

from .options import JobOptions, is_dry_run, job_args, main_entry, require, run_pipeline  # noqa: F401  (JobOptions registers shared flags)


log = logging.getLogger(__name__)


class TrainOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--features", default=None, help="Output folder of pipelines.extract_features.")
        parser.add_argument("--epochs", type=int, default=20)
        parser.add_argument("--batch_size", type=int, default=1024)
        parser.add_argument("--learning_rate", type=float, default=1e-3)
        parser.add_argument("--patience", type=int, default=3, help="Early-stopping patience (epochs).")
        parser.add_argument("--val_fraction", type=float, default=0.1, help="Share of images held out.")
        parser.add_argument("--tune_images", type=int, default=64,
                            help="Validation images (a stratified sample) used to tune refinement.")
        parser.add_argument(
            "--refine", default=None,
            help="Fixed refinement 'DIAMETER,SIGMA_COLOR,SIGMA_SPACE[,SCALE]' instead of tuning (0,0,0 = off).",
        )
        parser.add_argument("--max_images", type=int, default=0, help="Use at most this many images (0 = all).")
        parser.add_argument("--family", default="regressor",
                            choices=["regressor", "mean_chroma", "hog_svr", "richart"],
                            help="Model family: the paper's regressor or a comparator baseline (colorize_tf.baselines).")
        parser.add_argument("--use_blocks", default=None,
                            help="Train on these stored descriptor blocks only, e.g. 'patch,daisy' (ablations).")
        parser.add_argument("--adaptive_clustering", action="store_true",
                            help="Train a clustered bundle (Algorithm 3) instead of one regressor.")
        parser.add_argument("--root_model", default=None,
                            help="Clustering: reuse this trained all-images model directory as the bundle's root.")
        parser.add_argument("--cluster_init", default="root", choices=["root", "scratch"],
                            help="Clusters' regressors start from the root regressor (fine-tuning) or from scratch.")
        parser.add_argument("--cluster_learning_rate", type=float, default=1e-4,
                            help="Learning rate when fine-tuning the root regressor for a cluster.")
        parser.add_argument("--n0", type=int, default=24, help="Clusters on layer 0 (paper: 24).")
        parser.add_argument("--mu", type=int, default=0,
                            help="Minimal images per cluster; 0 = eq. 3, alpha * N_w / N_s (paper: 80).")
        parser.add_argument("--alpha", type=float, default=12.5,
                            help="Eq. 3 scale; 12.5 gives mu = 80 for the paper's 114-d descriptor and N_s = 2048.")
        parser.add_argument("--epsilon", type=float, default=-26.0, help="Error threshold on -PSNR (dB).")
        parser.add_argument("--max_layers", type=int, default=4)
        parser.add_argument("--selection_layers", default="0",
                            help="Layers whose clusters are candidates at colorization ('all' or e.g. '0' or '0,1'); "
                                 "layer 0 measured best on SIFT Flow (README).")
        parser.add_argument("--selection_k", type=int, default=3,
                            help="At colorization: top-k clusters by GIST, then semantic histogram.")


def read_config(features_dir):
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


def split_rows(rows, opts):
    """(train rows, validation rows): `opts.val_fraction` of the images, stratified over sources and
    scene types (colorize_tf.splits), deterministic by image id."""
    from colorize_tf.splits import validation_ids

    if opts.max_images:
        rows = rows[: opts.max_images]
    held = validation_ids([r["image_id"] for r in rows], opts.val_fraction, opts.seed)
    val = [r for r in rows if r["image_id"] in held]
    train = [r for r in rows if r["image_id"] not in held]
    if not train:
        raise ValueError("no training images left after the validation split")
    return train, val


def root_spec(rows, opts, model_dir):
    """The all-images regressor: its validation images stop training early; a stratified sample of them
    (`opts.tune_images`) tunes the refinement."""
    from colorize_tf.splits import stratified_sample

    train, val = split_rows(rows, opts)
    path_of = {r["image_id"]: r["path"] for r in val}
    tune = stratified_sample([r["image_id"] for r in val], opts.tune_images, opts.seed)
    return {
        "cluster_id": "all",
        "train_ids": [r["image_id"] for r in train],
        "val_ids": [r["image_id"] for r in val],
        "val_paths": [path_of[i] for i in tune],
        "model_dir": model_dir,
        "with_parser": True,
    }


def write_split(out, rows, opts):
    """``OUT/validation.txt``: the validation images' paths, one per line (a list file for
    ``pipelines.evaluate --input`` and ``benchmarks/quality.py``, where selection settings are chosen),
    and ``OUT/split.json``: their ids and images per stratum."""
    from colorize_tf.splits import strata_counts

    train, val = split_rows(rows, opts)
    write_atomically(FileSystems.join(out, "validation.txt"), "".join(r["path"] + "\n" for r in val).encode())
    split = {"val_fraction": opts.val_fraction, "seed": opts.seed, "train_strata": strata_counts(r["image_id"] for r in train),
             "validation_strata": strata_counts(r["image_id"] for r in val), "validation": [r["image_id"] for r in val]}
    write_atomically(FileSystems.join(out, "split.json"), json.dumps(split, indent=1).encode())


def cluster_spec(cluster, by_id, opts, model_dir, root_dir=None, held_out=frozenset()):
    """One cluster's training element: members split into training and early-stopping images (the
    validation images of the whole set, `held_out`); with `root_dir`, the cluster's regressor
    fine-tunes the root one."""
    val = [m for m in cluster.members if m in held_out]
    train = [m for m in cluster.members if m not in set(val)] or list(cluster.members)
    return {
        "cluster_id": cluster.cluster_id,
        "train_ids": train,
        "val_ids": [m for m in val if m not in set(train)],
        "val_paths": [],
        "model_dir": model_dir,
        "with_parser": False,
        "members": [(m, by_id[m]["path"]) for m in cluster.members],
        "init_model_dir": root_dir,
        "learning_rate": opts.cluster_learning_rate if root_dir else None,
    }


def parse_refine(text):
    """'D,SIGMA_COLOR,SIGMA_SPACE[,SCALE]' -> RefineParams fields as a dict (None = tune)."""
    import dataclasses

    from colorize_tf.refine import RefineParams

    params = RefineParams.parse(text)
    return None if params is None else dataclasses.asdict(params)


def train_kwargs(opts):
    return {
        "epochs": opts.epochs,
        "batch_size": opts.batch_size,
        "learning_rate": opts.learning_rate,
        "patience": opts.patience,
        "seed": opts.seed,
    }


def build(pipeline, opts, specs, refine=None, tune_images=None, measure=False, label="", out=None):
    """Train one regressor per spec; with `measure`, also the members' PSNR with their cluster's model.

    Returns the PCollection of training summaries (and writes them to ``out``/training_summary*.jsonl).
    """
    config = read_config(opts.features)
    shards = match_paths(FileSystems.join(opts.features, "samples", "samples-*.tfrecord.gz"), "TFRecord shards")
    parser_dir = opts.parser or config.get("parser")
    descriptor, columns = config["descriptor"], None
    if opts.use_blocks:
        descriptor, columns = select_blocks(descriptor, opts.use_blocks)
        columns = columns.tolist()
        if not needs_parser(descriptor):
            parser_dir = None
    trainer = TrainRegressorDoFn(shards, descriptor, train_kwargs(opts),
                                 opts.tune_images if tune_images is None else tune_images,
                                 refine, parser_dir=parser_dir, family=opts.family, columns=columns)
    if len(specs) == 1:  # one model: it reads the shards itself
        summaries = (
            pipeline
            | f"ClusterSpecs{label}" >> beam.Create(specs)
            | f"TrainRegressors{label}" >> beam.ParDo(trainer)
        )
    else:  # many clusters: read the samples once and group them by cluster (a shuffle), train in parallel
        cluster_of = {m: s["cluster_id"] for s in specs for m in s["train_ids"] + s["val_ids"]}
        summaries = (
            pipeline
            | f"ReadSamples{label}" >> beam.io.ReadFromTFRecord(
                FileSystems.join(opts.features, "samples", "samples-*.tfrecord.gz"))
            | f"KeyByCluster{label}" >> beam.ParDo(KeyByClusterDoFn(cluster_of))
            | f"GroupByCluster{label}" >> beam.GroupByKey()
            | f"TrainRegressors{label}" >> beam.ParDo(trainer, specs={s["cluster_id"]: s for s in specs})
        )
    out = out or opts.output
    summaries | f"SummaryToJson{label}" >> beam.Map(json.dumps, sort_keys=True) | f"WriteSummary{label}" >> (
        beam.io.WriteToText(FileSystems.join(out, f"training_summary{label}"), file_name_suffix=".jsonl",
                            shard_name_template="")
    )
    if measure:
        members = {s["cluster_id"]: s["members"] for s in specs}
        psnrs = (
            summaries
            | f"ReferenceImages{label}" >> beam.FlatMap(
                lambda s: [(s["cluster_id"], s["model_dir"], i, p) for i, p in members[s["cluster_id"]]])
            | f"SpreadImages{label}" >> beam.Reshuffle()
            | f"MeasurePSNR{label}" >> beam.ParDo(MeasurePSNRDoFn(parser_dir))
        )
        psnrs | f"PsnrToJson{label}" >> beam.Map(json.dumps, sort_keys=True) | f"WritePsnr{label}" >> (
            beam.io.WriteToText(FileSystems.join(out, f"psnr{label}"), file_name_suffix=".jsonl")
        )
    return summaries


class _DryRun(Exception):
    """Stops Algorithm 3 after its first job graph under ``--dry_run`` (later layers need real results)."""

    def __init__(self, result):
        super().__init__("dry run")
        self.result = result


def _run(options, build_fn):
    pipeline = beam.Pipeline(options=options)
    build_fn(pipeline)
    result = run_pipeline(pipeline, options)
    if is_dry_run(options):
        raise _DryRun(result)
    return result


def run(argv=None):
    options = PipelineOptions(argv)
    opts = job_args(options)
    require(opts, "features", "output")
    rows = read_image_table(opts.features)
    if not is_dry_run(options):
        write_split(opts.output, rows, opts)
    try:
        if not opts.adaptive_clustering:
            return _run(options, lambda p: build(p, opts, [root_spec(rows, opts, opts.output)],
                                                 parse_refine(opts.refine)))
        return run_clustered(options, opts, rows)
    except _DryRun as dry:  # the first job's graph, built and staged, not run
        return dry.result


def run_clustered(options, opts, rows):
    """Algorithm 3 with one Beam job per layer; writes the bundle."""
    from colorize_tf.bundle import BUNDLE_FILE, write_bundle
    from colorize_tf.clustering import adaptive_clustering, minimal_cluster_size
    from colorize_tf.regressor import read_metadata

    out = opts.output
    root_dir = FileSystems.join(out, "root")
    if opts.root_model:
        log.info("root regressor: copied from %s", opts.root_model)
        copy_tree(opts.root_model, root_dir)
    else:
        log.info("root regressor on all %d images", len(rows))
        _run(options, lambda p: build(p, opts, [root_spec(rows, opts, root_dir)], parse_refine(opts.refine),
                                      label="Root", out=out))
    root = read_metadata(local_copy(root_dir))
    refine = root["refine"]
    if opts.max_images:
        rows = rows[: opts.max_images]
    missing = [r["image_id"] for r in rows if not r.get("gist")]
    if missing:
        raise SystemExit(f"{len(missing)} images have no GIST in the image table (rerun the feature job): "
                         f"{missing[:3]}")
    by_id = {r["image_id"]: r for r in rows}
    ids = sorted(by_id)
    held_out = {r["image_id"] for r in split_rows(rows, opts)[1]}
    gist = np.array([by_id[i]["gist"] for i in ids], np.float32)
    hists = None
    if all(by_id[i].get("semantic_hist") for i in ids):
        hists = np.array([by_id[i]["semantic_hist"] for i in ids], np.float32)
    config = read_config(opts.features)
    dim = len(select_blocks(config["descriptor"], opts.use_blocks)[1]) if opts.use_blocks else config["dim"]
    mu = opts.mu or minimal_cluster_size(dim, config["samples_per_image"], opts.alpha)
    log.info("adaptive clustering: %d images, N0=%d, mu=%d, epsilon=%.1f dB", len(ids), opts.n0, mu, opts.epsilon)

    def train_layer(clusters):
        layer = clusters[0].layer
        init = root_dir if opts.cluster_init == "root" and opts.family == "regressor" else None
        specs = [cluster_spec(c, by_id, opts, FileSystems.join(out, "clusters", c.cluster_id), init, held_out)
                 for c in clusters]
        _run(options, lambda p: build(p, opts, specs, refine, tune_images=0, measure=True, label=f"L{layer}",
                                      out=FileSystems.join(out, "layers")))
        measured = read_jsonl(FileSystems.join(out, "layers", f"psnrL{layer}-*.jsonl"))
        return {m["image_id"]: m["psnr"] for m in measured if m["psnr"] == m["psnr"]}  # drop NaN (failed)

    clusters, reports = adaptive_clustering(ids, gist, hists, train_layer, n0=opts.n0, mu=mu,
                                            epsilon_db=opts.epsilon, max_layers=opts.max_layers, seed=opts.seed)
    params = {"n0": opts.n0, "mu": mu, "alpha": opts.alpha, "epsilon_db": opts.epsilon, "max_layers": opts.max_layers,
              "selection_k": opts.selection_k,
              "selection_layers": None if opts.selection_layers == "all" else
              [int(v) for v in opts.selection_layers.split(",")],
              "gist_size": config.get("gist_size", 128),
              "samples_per_image": config["samples_per_image"], "descriptor_dim": dim}
    if is_remote(out):  # checksums are taken on a local copy; bundle.json goes up last
        local = local_copy(out, refresh=True)
        meta = write_bundle(local, clusters, reports, params)
        with open(FileSystems.join(local, BUNDLE_FILE), "rb") as fh:
            write_atomically(FileSystems.join(out, BUNDLE_FILE), fh.read())
    else:
        meta = write_bundle(out, clusters, reports, params)
    log.info("bundle written to %s: %d clusters on %d layers", out, len(clusters), len(reports))
    return meta


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
