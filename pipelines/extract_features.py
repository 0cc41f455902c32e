"""Feature job: images -> per-pixel training samples (TFRecords) + per-image table (Parquet).

    python -m pipelines.extract_features --input IMAGES --output FEATURES_DIR

Output layout (any Beam filesystem)::

    FEATURES_DIR/config.json                    descriptor blocks and sampling settings
    FEATURES_DIR/samples/samples-*.tfrecord.gz  one tf.train.Example per image (colorize_tf.records)
    FEATURES_DIR/images/images-*.parquet        one row per image (id, path, size, ...)
    FEATURES_DIR/dead_letters/dead-*.jsonl      one JSON line per input that yielded nothing, with the reason
"""

from __future__ import annotations

import logging
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from colorize_tf.features import DEFAULT_BLOCKS, Descriptor, config_dim
from colorize_tf.parser import semantic_block_config
from transforms.features import IMAGE_SCHEMA, IMAGES, ExtractFeaturesDoFn
from transforms.fs import write_json
from transforms.io import DEAD, ReadImages, read_jsonl, write_record_outputs

from .options import (
    JobFailed,
    UsageError,
    add_inputs,
    add_output,
    add_record_job,
    add_seed,
    is_dry_run,
    job_parser,
    main_entry,
    parse_job,
    positive_int,
    run_pipeline,
)

#: Pixels sampled per image; see README ("Sampling").
DEFAULT_SAMPLES = 2048


log = logging.getLogger(__name__)


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.extract_features")
    add_inputs(parser)
    add_output(parser, "Features folder (any Beam filesystem).")
    parser.add_argument(
        "--parser", default=None, help="Scene-parser directory (pipelines.train_parser): adds the semantic block."
    )
    parser.add_argument(
        "--samples_per_image", type=positive_int, default=DEFAULT_SAMPLES, help="N_s, pixels per image."
    )
    parser.add_argument(
        "--edge_fraction",
        type=float,
        default=0.0,
        help="Share of samples drawn proportionally to gradient magnitude (rest uniform).",
    )
    parser.add_argument(
        "--blocks", default=None, help="Descriptor blocks, in order (default patch,daisy, plus semantic with --parser)."
    )
    parser.add_argument("--patch_size", type=positive_int, default=7, help="Side of the luminance patch block.")
    parser.add_argument("--daisy_radius", type=positive_int, default=15, help="DAISY radius in pixels.")
    parser.add_argument(
        "--gist_size",
        type=int,
        default=128,
        help="GIST (global descriptor) computed on the gray image resized to this side; 0 = off.",
    )
    add_record_job(parser)
    add_seed(parser)
    return parser


def descriptor_config_from_options(opts):
    """Descriptor block configs from the options (JSON-able; the parser itself loads on the workers)."""
    names = opts.blocks or ",".join(DEFAULT_BLOCKS + (("semantic",) if opts.parser else ()))
    if opts.parser and "semantic" not in names:
        raise UsageError(f"--parser given but --blocks {names!r} has no 'semantic' block: add it or drop --parser")
    configs = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name == "semantic":
            if not opts.parser:
                raise UsageError("the semantic block needs --parser PARSER_DIR")
            configs.append(semantic_block_config(opts.parser))
        else:
            kwargs = {"patch": {"size": opts.patch_size}, "daisy": {"radius": opts.daisy_radius}}.get(name, {})
            configs.append(Descriptor.from_names([name], **{name: kwargs}).config()[0])
    return configs


def write_config(opts, descriptor_config):
    config = {
        "descriptor": descriptor_config,
        "dim": descriptor_dim(descriptor_config),
        "parser": opts.parser,
        "samples_per_image": opts.samples_per_image,
        "edge_fraction": opts.edge_fraction,
        "gist_size": opts.gist_size,
        "seed": opts.seed,
        "input": opts.input,
    }
    if not FileSystems.exists(opts.output):
        FileSystems.mkdirs(opts.output)
    write_json(FileSystems.join(opts.output, "config.json"), config)
    return config


def descriptor_dim(configs):
    return sum(config_dim(c) for c in configs)


def build(pipeline, opts, descriptor_config):
    """Compose the feature job on `pipeline`; returns the output PCollections."""
    out = opts.output
    read = pipeline | "ReadImages" >> ReadImages(opts.input, opts.list_root, max_bytes=None)
    extracted = read["files"] | "ExtractFeatures" >> beam.ParDo(
        ExtractFeaturesDoFn(
            descriptor_config,
            opts.samples_per_image,
            opts.edge_fraction,
            opts.seed,
            opts.max_pixels,
            parser_dir=opts.parser,
            gist_size=opts.gist_size,
        )
    ).with_outputs(IMAGES, DEAD, main="samples")
    dead = write_record_outputs(
        out,
        "samples",
        extracted.samples,
        extracted[IMAGES],
        IMAGE_SCHEMA,
        (read[DEAD], extracted[DEAD]),
        opts.num_shards,
    )
    return extracted, dead


def run(argv=None):
    """Run the feature job; returns the Beam PipelineResult."""
    opts, options = parse_job(build_parser(), argv)
    descriptor_config = descriptor_config_from_options(opts)
    write_config(opts, descriptor_config)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, opts, descriptor_config)
    result = run_pipeline(pipeline, options)
    if is_dry_run(options):
        return result
    _log_counters(result)
    check_outcome(opts.output, opts.max_failed_fraction)
    return result


def check_outcome(out, max_failed_fraction):
    """`JobFailed` when no image produced samples or unexpected failures exceed the threshold."""
    import pyarrow.parquet as pq

    images = 0
    for path in FileSystems.match([FileSystems.join(out, "images", "images-*.parquet")])[0].metadata_list:
        with FileSystems.open(path.path, compression_type="uncompressed") as fh:
            images += pq.ParquetFile(fh).metadata.num_rows
    dead = read_jsonl(FileSystems.join(out, "dead_letters", "dead-*.jsonl"))
    internal = sum(d.get("stage") == "internal" for d in dead)
    where = FileSystems.join(out, "dead_letters")
    if not images:
        raise JobFailed(f"no usable image ({len(dead)} dead letters in {where})")
    if internal > max_failed_fraction * (images + internal):
        raise JobFailed(
            f"{internal} of {images + internal} images failed unexpectedly (> --max_failed_fraction "
            f"{max_failed_fraction:g}); see {where}"
        )


def _log_counters(result):
    try:
        for c in result.metrics().query()["counters"]:
            log.info("counter %s/%s = %s", c.key.metric.namespace, c.key.metric.name, c.committed)
    except Exception:  # some runners do not report metrics
        pass


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
