"""Scene-parser job: labelled scenes -> grayscale parser directory.

    python -m pipelines.train_parser --data ../shared/data/siftflow --output runs/parser

1. Beam validates and prepares every (image, mask) pair of the dataset's train
   and test splits into TFRecords (gray + class indices at the working size);
   bad pairs go to dead letters with the reason.
2. Keras trains the fully convolutional parser on the training split with
   tf.data (augmentation, class weighting, unlabeled pixels ignored).
3. Pixel accuracy, mean class accuracy and mean IoU on the held-out split, with
   and without the domain-transform smoothing, are written into ``parser.json``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from colorize_tf import parser_train
from colorize_tf.datasets import open_dataset
from colorize_tf.fusion import PRECISION_CHOICES, resolve_precision
from colorize_tf.imageio import load_image
from colorize_tf.parser import PARSER_META
from transforms.fs import copy_tree, is_remote, local_copy, match_paths
from transforms.io import DEAD, write_jsonl
from transforms.parser import PrepareParserExampleDoFn

from .options import add_seed, alias, is_dry_run, job_parser, main_entry, parse_job, positive_int, run_pipeline

log = logging.getLogger(__name__)


#: Training epochs by default (the release recipe's step 2 trains this many).
EPOCHS = 25


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.train_parser")
    parser.add_argument("--data", required=True, help="Labelled dataset folder (SIFT Flow, Stanford, generic).")
    parser.add_argument("--output", required=True, help="Parser directory to write (any Beam filesystem).")
    parser.add_argument(
        "--layout",
        default=None,
        choices=["siftflow", "stanford", "generic"],
        help="Dataset layout (default: detected).",
    )
    parser.add_argument("--work_size", type=positive_int, default=256, help="Longer side the parser sees.")
    parser.add_argument("--epochs", type=positive_int, default=EPOCHS, help="Training epochs.")
    parser.add_argument("--batch_size", type=positive_int, default=16, help="Crops per step.")
    parser.add_argument("--crop", type=positive_int, default=192, help="Training crop side.")
    parser.add_argument("--base_channels", type=positive_int, default=24, help="Channels of the first stage.")
    parser.add_argument("--learning_rate", type=float, default=2e-3, help="Adam learning rate (cosine decay).")
    parser.add_argument(
        "--class_weight_power", type=float, default=0.5, help="Median-frequency weights ** power (0 = unweighted)."
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="float32",
        help="Training arithmetic: bfloat16 = Keras mixed_bfloat16 (float32 weights and logits; fast on CPUs with "
        "AVX512-BF16 or AMX, emulated and slower without); auto = bfloat16 where the CPU has those instructions. "
        "The saved parser computes in float32 either way.",
    )
    parser.add_argument("--max_images", type=int, default=0, help="Train on at most this many images (0 = all).")
    parser.add_argument("--smooth_sigma_spatial", type=float, default=8.0, help="Domain-transform sigma (pixels).")
    parser.add_argument("--smooth_sigma_color", type=float, default=0.1, help="Domain-transform range sigma.")
    add_seed(parser)
    for old, new in (
        ("--parser_work_size", "--work_size"),
        ("--parser_epochs", "--epochs"),
        ("--parser_batch_size", "--batch_size"),
        ("--parser_crop", "--crop"),
        ("--parser_base", "--base_channels"),
        ("--parser_learning_rate", "--learning_rate"),
        ("--max_train_images", "--max_images"),
    ):
        alias(parser, old, new)
    return parser


def build(pipeline, opts, dataset):
    """Prepare examples: returns nothing; writes ``OUTPUT/data/{train,test}-*.tfrecord.gz`` and dead letters."""
    items = []
    for split in ("train", "test"):
        pairs = dataset.splits.get(split, [])
        if split == "train" and opts.max_images:
            pairs = pairs[: opts.max_images]
        items += [(split, name, img, mask) for name, img, mask in pairs]
    prepared = (
        pipeline
        | "ListPairs" >> beam.Create(items)
        | "Spread" >> beam.Reshuffle()
        | "PrepareExamples"
        >> beam.ParDo(PrepareParserExampleDoFn(dataset.lut, opts.work_size)).with_outputs("train", "test", DEAD)
    )
    for split in ("train", "test"):
        prepared[split] | f"Write{split.title()}" >> beam.io.WriteToTFRecord(
            FileSystems.join(opts.output, "data", split), file_name_suffix=".tfrecord.gz"
        )
    write_jsonl(prepared[DEAD], FileSystems.join(opts.output, "data", "dead"), "DeadLetters")


def held_out_items(dataset, split="test"):
    """(gray float, label) pairs of a split at the original resolution."""
    import cv2

    for _, img, mask in dataset.splits.get(split, []):
        raw = cv2.imread(mask, cv2.IMREAD_UNCHANGED)
        yield load_image(img).gray, dataset.map_mask(raw)


def run(argv=None):
    opts, options = parse_job(build_parser(), argv)
    dataset = open_dataset(opts.data, opts.layout)
    log.info(
        "%s dataset %s: %d classes, %s",
        dataset.layout,
        opts.data,
        len(dataset.classes),
        {k: len(v) for k, v in dataset.splits.items()},
    )
    pipeline = beam.Pipeline(options=options)
    build(pipeline, opts, dataset)
    result = run_pipeline(pipeline, options)
    if is_dry_run(options):
        return result
    # the prepared data may live on any filesystem; Keras trains here, on the launching machine
    shards = match_paths(FileSystems.join(opts.output, "data", "train-*.tfrecord.gz"), "prepared training shards")
    pairs = parser_train.load_pairs([local_copy(s) for s in shards])
    log.info("training the parser on %d prepared images", len(pairs))
    parser, record = parser_train.fit_parser(
        pairs,
        dataset.classes,
        epochs=opts.epochs,
        batch_size=opts.batch_size,
        crop=opts.crop,
        base=opts.base_channels,
        learning_rate=opts.learning_rate,
        weighting_power=opts.class_weight_power,
        seed=opts.seed,
        work_size=opts.work_size,
        precision=resolve_precision(opts.precision),
        smoothing={"sigma_spatial": opts.smooth_sigma_spatial, "sigma_color": opts.smooth_sigma_color},
    )
    metrics = {}
    for smooth in (False, True):
        m = parser_train.evaluate_parser(parser, held_out_items(dataset), smooth=smooth)
        metrics["smoothed" if smooth else "raw"] = m
        log.info(
            "held-out %s: pixel acc %.4f, mean class acc %.4f, mean IoU %.4f, %.1f ms/image",
            "smoothed" if smooth else "raw",
            m["pixel_accuracy"],
            m["mean_class_accuracy"],
            m["mean_iou"],
            m["ms_per_image"] or float("nan"),
        )
    extra = {
        "dataset": {"root": os.path.abspath(opts.data), "layout": dataset.layout},
        "training": record,
        "metrics": metrics,
    }
    if is_remote(opts.output):
        with tempfile.TemporaryDirectory() as tmp:
            parser.save(tmp, extra=extra)
            copy_tree(tmp, opts.output, last=(PARSER_META,))
    else:
        parser.save(opts.output, extra=extra)
    log.info("parser written to %s", opts.output)
    return metrics


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
