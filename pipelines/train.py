"""Training job: feature-job output -> trained model directory.

    python -m pipelines.train --features FEATURES_DIR --output MODEL_DIR

Images are split (deterministically, by id) into training and held-out
validation sets; the regressor trains with early stopping on the held-out
samples, and the joint bilateral refinement is tuned on the held-out images'
PSNR. Training runs as a Beam ParDo over clusters (one cluster, "all", until
adaptive clustering is enabled), so clusters train in parallel on a
multi-worker runner.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from colorize_tf import records
from transforms.training import TrainRegressorDoFn

from .options import JobOptions, job_args, main_entry, require  # noqa: F401  (JobOptions registers shared flags)


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
        parser.add_argument("--tune_images", type=int, default=32, help="Held-out images used to tune refinement.")
        parser.add_argument(
            "--refine", default=None,
            help="Fixed refinement 'DIAMETER,SIGMA_COLOR,SIGMA_SPACE' instead of tuning (0,0,0 = off).",
        )
        parser.add_argument("--max_images", type=int, default=0, help="Use at most this many images (0 = all).")


def read_config(features_dir):
    with FileSystems.open(FileSystems.join(features_dir, "config.json")) as fh:
        return json.loads(fh.read().decode())


def read_image_table(features_dir):
    """Rows of the feature job's per-image Parquet table, sorted by id."""
    pattern = FileSystems.join(features_dir, "images", "images-*.parquet")
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    rows = []
    for p in paths:
        with FileSystems.open(p, compression_type="uncompressed") as fh:
            rows.extend(pq.read_table(fh).to_pylist())
    if not rows:
        raise FileNotFoundError(f"no image rows under {pattern}")
    return sorted(rows, key=lambda r: r["image_id"])


def is_held_out(image_id, fraction, seed=0):
    """Deterministic train/validation split by hashing the image id."""
    h = int.from_bytes(hashlib.sha256(f"val:{seed}:{image_id}".encode()).digest()[:8], "little")
    return (h / 2.0**64) < fraction


def cluster_specs(rows, opts):
    """The clusters to train: a single one holding every image (clustering extends this)."""
    if opts.max_images:
        rows = rows[: opts.max_images]
    val = [r for r in rows if is_held_out(r["image_id"], opts.val_fraction, opts.seed)]
    train = [r for r in rows if not is_held_out(r["image_id"], opts.val_fraction, opts.seed)]
    if not train:
        raise ValueError("no training images left after the validation split")
    return [
        {
            "cluster_id": "all",
            "train_ids": [r["image_id"] for r in train],
            "val_ids": [r["image_id"] for r in val],
            "val_paths": [r["path"] for r in val],
            "model_dir": opts.output,
        }
    ]


def parse_refine(text):
    if text is None:
        return None
    d, sc, ss = (float(v) for v in text.split(","))
    return {"diameter": int(d), "sigma_color": sc, "sigma_space": ss}


def build(pipeline, opts):
    config = read_config(opts.features)
    shards = records.list_shards(opts.features)
    specs = cluster_specs(read_image_table(opts.features), opts)
    train_kwargs = {
        "epochs": opts.epochs,
        "batch_size": opts.batch_size,
        "learning_rate": opts.learning_rate,
        "patience": opts.patience,
        "seed": opts.seed,
    }
    summaries = (
        pipeline
        | "ClusterSpecs" >> beam.Create(specs)
        | "Spread" >> beam.Reshuffle()
        | "TrainRegressors" >> beam.ParDo(
            TrainRegressorDoFn(shards, config["descriptor"], train_kwargs, opts.tune_images, parse_refine(opts.refine),
                               parser_dir=opts.parser or config.get("parser"))
        )
    )
    summaries | "SummaryToJson" >> beam.Map(json.dumps, sort_keys=True) | "WriteSummary" >> beam.io.WriteToText(
        FileSystems.join(opts.output, "training_summary"), file_name_suffix=".jsonl", shard_name_template=""
    )
    return summaries


def run(argv=None):
    options = PipelineOptions(argv)
    opts = job_args(options)
    require(opts, "features", "output")
    pipeline = beam.Pipeline(options=options)
    build(pipeline, opts)
    result = pipeline.run()
    result.wait_until_finish()
    return result


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
