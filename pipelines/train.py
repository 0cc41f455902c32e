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

import logging
import sys

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import RunInference

from colorize_tf.features import select_blocks
from colorize_tf.parser import needs_parser
from colorize_tf.registry import ColorizeSettings, trainable_names
from transforms.fs import copy_tree, local_copy, match_paths
from transforms.inference import ClusterModelsHandler, failure_rows
from transforms.io import DEAD, read_jsonl, write_jsonl
from transforms.train_specs import (
    cluster_spec,
    read_config,
    read_image_table,
    root_spec,
    split_rows,
    write_bundle_anywhere,
    write_split,
)
from transforms.training import KeyByClusterDoFn, ReferenceImageDoFn, TrainRegressorDoFn, psnr_row

from .options import (
    UsageError,
    add_seed,
    add_selection,
    add_training,
    is_dry_run,
    job_parser,
    main_entry,
    parse_job,
    positive_int,
    run_pipeline,
    train_settings,
)

log = logging.getLogger(__name__)


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.train")
    parser.add_argument("--features", required=True, help="Output folder of pipelines.extract_features.")
    parser.add_argument("--output", required=True, help="Model directory (or bundle) to write (any Beam filesystem).")
    parser.add_argument(
        "--parser", default=None, help="Scene-parser directory (default: the one the feature job used)."
    )
    parser.add_argument(
        "--family",
        default="regressor",
        choices=trainable_names(),
        help="Model family (colorize_tf.registry): the paper's regressor or a baseline.",
    )
    add_training(parser, epochs=20, batch_size=1024, batch_unit="Samples", patience=3, tune_images=64)
    parser.add_argument("--max_images", type=int, default=0, help="Use at most this many images (0 = all).")
    parser.add_argument(
        "--use_blocks",
        default=None,
        help="Train on these stored descriptor blocks only, e.g. 'patch,daisy' (ablations).",
    )
    clustering = parser.add_argument_group("adaptive clustering (Algorithm 3)")
    clustering.add_argument(
        "--adaptive_clustering", action="store_true", help="Train a clustered bundle instead of one model."
    )
    clustering.add_argument(
        "--root_model", default=None, help="Reuse this trained all-images model directory as the bundle's root."
    )
    clustering.add_argument(
        "--cluster_init",
        default="root",
        choices=["root", "scratch"],
        help="Clusters' regressors start from the root regressor (fine-tuning) or from scratch.",
    )
    clustering.add_argument(
        "--cluster_learning_rate",
        type=float,
        default=1e-4,
        help="Learning rate when fine-tuning the root regressor for a cluster.",
    )
    clustering.add_argument("--n0", type=positive_int, default=24, help="Clusters on layer 0 (paper: 24).")
    clustering.add_argument(
        "--mu", type=int, default=0, help="Minimal images per cluster; 0 = eq. 3, alpha * N_w / N_s (paper: 80)."
    )
    clustering.add_argument(
        "--alpha",
        type=float,
        default=12.5,
        help="Eq. 3 scale; 12.5 gives mu = 80 for the paper's 114-d descriptor and N_s = 2048.",
    )
    clustering.add_argument("--epsilon", type=float, default=-26.0, help="Error threshold on -PSNR (dB).")
    clustering.add_argument("--max_layers", type=positive_int, default=4, help="Most layers.")
    clustering.add_argument(
        "--max_unmeasured_fraction",
        type=float,
        default=0.1,
        help="Share of a layer's reference images that may fail to be measured (unreadable) before the job stops.",
    )
    add_selection(parser, k_default=1, layers_default="0")
    add_seed(parser)
    return parser


def check(args):
    if not 0 <= args.val_fraction < 1:
        raise UsageError(f"--val_fraction {args.val_fraction}: expected 0 <= value < 1")


def build(pipeline, args, config, specs, refine=None, measure=False, label="", out=None):
    """Train one model per spec; with `measure`, also colorize every member with its cluster's model
    (RunInference) and write the PSNRs. `config` is the feature job's config.json. Returns the PCollection
    of training summaries."""
    pattern = FileSystems.join(args.features, "samples", "samples-*.tfrecord.gz")
    shards = match_paths(pattern, "TFRecord shards")
    parser_dir = args.parser or config.get("parser")
    descriptor, columns = config["descriptor"], None
    if args.use_blocks:
        descriptor, columns = select_blocks(descriptor, args.use_blocks)
        columns = columns.tolist()
    if not needs_parser(descriptor):
        parser_dir = None
    trainer = TrainRegressorDoFn(
        shards, descriptor, train_settings(args), refine, parser_dir=parser_dir, family=args.family, columns=columns
    )
    if len(specs) == 1:  # one model: it reads the shards itself
        summaries = (
            pipeline | f"ClusterSpecs{label}" >> beam.Create(specs) | f"TrainModels{label}" >> beam.ParDo(trainer)
        )
    else:  # many clusters: read the samples once and group them by cluster (a shuffle), train in parallel
        cluster_of = {m: s["cluster_id"] for s in specs for m in s["train_ids"] + s["val_ids"]}
        summaries = (
            pipeline
            | f"ReadSamples{label}" >> beam.io.ReadFromTFRecord(pattern)
            | f"KeyByCluster{label}" >> beam.ParDo(KeyByClusterDoFn(cluster_of))
            | f"GroupByCluster{label}" >> beam.GroupByKey()
            | f"TrainModels{label}" >> beam.ParDo(trainer, specs={s["cluster_id"]: s for s in specs})
        )
    out = out or args.output
    write_jsonl(summaries, FileSystems.join(out, f"training_summary{label}"), f"Summary{label}", one_file=True)
    if measure:
        members = {s["cluster_id"]: s["members"] for s in specs}
        cluster_of_dir = {s["model_dir"]: s["cluster_id"] for s in specs}
        refs = (
            summaries
            | f"ReferenceImages{label}"
            >> beam.FlatMap(lambda s: [(s["model_dir"], i, p) for i, p in members[s["cluster_id"]]])
            | f"SpreadImages{label}" >> beam.Reshuffle()
            | f"DecodeReferences{label}" >> beam.ParDo(ReferenceImageDoFn()).with_outputs(DEAD, main="examples")
        )
        colorized, failed = (
            refs.examples
            | f"ColorizeReferences{label}"
            >> RunInference(
                ClusterModelsHandler(ColorizeSettings(tile=0, parser_dir=parser_dir))
            ).with_exception_handling()
        )
        psnrs = colorized | f"Score{label}" >> beam.Map(psnr_row, cluster_of_dir)
        write_jsonl(psnrs, FileSystems.join(out, f"psnr{label}"), f"Psnr{label}")
        unmeasured = (
            refs[DEAD],
            failed.failed_inferences | f"InferenceFailures{label}" >> beam.FlatMap(failure_rows),
        ) | f"AllUnmeasured{label}" >> beam.Flatten()
        write_jsonl(unmeasured, FileSystems.join(out, f"unmeasured{label}"), f"Unmeasured{label}")
    return summaries


def nearest_clusters(val_rows, clusters):
    """Validation images by the cluster whose GIST centre is nearest (`select_cluster` with k = 1): they stop
    that cluster's training early and never join a cluster (their GIST does not move a centre), so choosing
    the selection settings on them stays honest."""
    from colorize_tf.clustering import select_cluster

    out = {c.cluster_id: [] for c in clusters}
    for r in val_rows:
        out[clusters[select_cluster(r["gist"], None, clusters, k=1)].cluster_id].append(r["image_id"])
    return out


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
    args, options = parse_job(build_parser(), argv, check)
    rows = read_image_table(args.features)
    config = read_config(args.features)  # read once on the launcher
    train, val = split_rows(rows, args.val_fraction, args.seed, args.max_images)
    if not is_dry_run(options):
        write_split(args.output, train, val, args.val_fraction, args.seed)
    root = root_spec(train, val, args.output, args.tune_images, args.seed)
    try:
        if not args.adaptive_clustering:
            return _run(options, lambda p: build(p, args, config, [root], args.refine))
        return run_clustered(options, args, config, train, val, root)
    except _DryRun as dry:  # the first job's graph, built and staged, not run
        return dry.result


def run_clustered(options, args, config, train, val, root):
    """Algorithm 3 with one Beam job per layer on the `train` rows (`val` rows only stop clusters' training
    early); writes the bundle."""
    from colorize_tf.clustering import adaptive_clustering, minimal_cluster_size
    from colorize_tf.refine import RefineParams
    from colorize_tf.regressor import read_metadata

    out = args.output
    root_dir = FileSystems.join(out, "root")
    if args.root_model:
        log.info("root regressor: copied from %s", args.root_model)
        copy_tree(args.root_model, root_dir)
    else:
        log.info("root regressor on %d training images", len(train))
        _run(
            options,
            lambda p: build(p, args, config, [dict(root, model_dir=root_dir)], args.refine, label="Root", out=out),
        )
    refine = RefineParams(**read_metadata(local_copy(root_dir))["refine"])
    missing = [r["image_id"] for r in train + val if not r.get("gist")]
    if missing:
        raise UsageError(
            f"{len(missing)} images have no GIST in the image table (rerun the feature job): {missing[:3]}"
        )
    ids = [r["image_id"] for r in train]  # sorted by id (read_image_table); validation images never join
    path_of = {r["image_id"]: r["path"] for r in train}
    gist = np.array([r["gist"] for r in train], np.float32)
    hists = None
    if all(r.get("semantic_hist") for r in train):
        hists = np.array([r["semantic_hist"] for r in train], np.float32)
    dim = len(select_blocks(config["descriptor"], args.use_blocks)[1]) if args.use_blocks else config["dim"]
    mu = args.mu or minimal_cluster_size(dim, config["samples_per_image"], args.alpha)
    log.info(
        "adaptive clustering: %d training images (%d validation images only stop training early), N0=%d, "
        "mu=%d, epsilon=%.1f dB",
        len(ids),
        len(val),
        args.n0,
        mu,
        args.epsilon,
    )
    init = root_dir if args.cluster_init == "root" and args.family == "regressor" else None

    def train_layer(clusters):
        layer = clusters[0].layer
        early = nearest_clusters(val, clusters)
        specs = [
            cluster_spec(
                c,
                path_of,
                FileSystems.join(out, "clusters", c.cluster_id),
                early[c.cluster_id],
                init,
                args.cluster_learning_rate,
            )
            for c in clusters
        ]
        layers_dir = FileSystems.join(out, "layers")
        _run(options, lambda p: build(p, args, config, specs, refine, measure=True, label=f"L{layer}", out=layers_dir))
        measured = read_jsonl(FileSystems.join(layers_dir, f"psnrL{layer}-*.jsonl"))
        return {m["image_id"]: m["psnr"] for m in measured}

    clusters, reports = adaptive_clustering(
        ids,
        gist,
        hists,
        train_layer,
        n0=args.n0,
        mu=mu,
        epsilon_db=args.epsilon,
        max_layers=args.max_layers,
        seed=args.seed,
        max_unmeasured_fraction=args.max_unmeasured_fraction,
    )
    params = {
        "n0": args.n0,
        "mu": mu,
        "alpha": args.alpha,
        "epsilon_db": args.epsilon,
        "max_layers": args.max_layers,
        "selection_k": args.selection_k,
        "selection_layers": list(args.selection_layers) or None,
        "gist_size": config.get("gist_size", 128),
        "samples_per_image": config["samples_per_image"],
        "descriptor_dim": dim,
    }
    meta = write_bundle_anywhere(out, clusters, reports, params)
    log.info("bundle written to %s: %d clusters on %d layers", out, len(clusters), len(reports))
    return meta


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
