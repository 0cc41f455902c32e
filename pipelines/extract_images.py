"""Image-record job: colour photos -> image-level TFRecords at a working resolution (convolutional families).

    python -m pipelines.extract_images --input IMAGES --output RECORDS_DIR [--side 256]

Output layout (any Beam filesystem)::

    RECORDS_DIR/config.json                      working side, input, label classes
    RECORDS_DIR/examples/examples-*.tfrecord.gz  one tf.train.Example per image (colorize_tf.image_records)
    RECORDS_DIR/images/images-*.parquet          one row per image (id, path, scene, sizes)
    RECORDS_DIR/dead_letters/dead-*.jsonl        one JSON line per input that yielded nothing, with the reason

The train/validation split is not fixed here: the training job draws it from the image table, stratified
over sources and scene types (colorize_tf.splits), and records it in the model directory.
"""

from __future__ import annotations

import logging
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from colorize_tf.image_records import DEFAULT_SIDE
from transforms.fs import write_json
from transforms.image_records import IMAGE_SCHEMA, IMAGES, ImageExampleDoFn
from transforms.io import DEAD, ReadImages, write_record_outputs

from .extract_features import check_outcome
from .options import (
    UsageError,
    add_inputs,
    add_output,
    add_record_job,
    is_dry_run,
    job_parser,
    main_entry,
    parse_job,
    positive_int,
    run_pipeline,
)

log = logging.getLogger(__name__)


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.extract_images")
    add_inputs(parser)
    add_output(parser, "Records folder (any Beam filesystem).")
    parser.add_argument(
        "--side",
        type=positive_int,
        default=DEFAULT_SIDE,
        help="Longer side of the stored images (never upsampled; multiples of 8).",
    )
    parser.add_argument(
        "--labels",
        default=None,
        help="A labelled dataset folder (SIFT Flow, Stanford Background or images/ + masks/ layout, "
        "colorize_tf.datasets): images whose file name has a mask there carry per-pixel class labels "
        "(for the fusion family's auxiliary segmentation head).",
    )
    add_record_job(parser)
    return parser


def label_masks(root):
    """(class names, {file stem: mask path}, lut) of a labelled dataset folder, every split."""
    from colorize_tf.datasets import open_dataset

    try:
        labelled = open_dataset(root)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--labels {root}: {exc}") from None
    masks = {name: mask for pairs in labelled.splits.values() for name, _, mask in pairs}
    return labelled.classes, masks, labelled.lut


def build(pipeline, args, labelled=None):
    """Compose the job; `labelled` is `label_masks` of ``--labels`` (None: no labels)."""
    read = pipeline | "ReadImages" >> ReadImages(args.input, args.list_root, max_bytes=None)
    masks, lut = (None, None) if labelled is None else labelled[1:]
    out = read["files"] | "ImageExamples" >> beam.ParDo(
        ImageExampleDoFn(args.side, args.max_pixels, masks, lut)
    ).with_outputs(IMAGES, DEAD, main="examples")
    write_record_outputs(
        args.output, "examples", out.examples, out[IMAGES], IMAGE_SCHEMA, (read[DEAD], out[DEAD]), args.num_shards
    )


def run(argv=None):
    args, options = parse_job(build_parser(), argv)
    if not FileSystems.exists(args.output):
        FileSystems.mkdirs(args.output)
    config = {
        "format": "colorize_tf.image_records",
        "side": args.side,
        "input": args.input,
        "list_root": args.list_root,
    }
    labelled = None if args.labels is None else label_masks(args.labels)
    if labelled is not None:
        config.update(labels=args.labels, label_classes=labelled[0])
    write_json(FileSystems.join(args.output, "config.json"), config)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, args, labelled)
    result = run_pipeline(pipeline, options)
    if not is_dry_run(options):
        check_outcome(args.output, args.max_failed_fraction)
    return result


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
