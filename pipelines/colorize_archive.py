"""Archive job: colorize every image of a folder, glob, list file or tar/zip archive.

    python -m pipelines.colorize_archive --input SCANS --model BUNDLE --output OUT

Outputs mirror the inputs' relative paths under OUT (archive members under the
archive's stem). Every input ends as one manifest row (``OUT/_manifest/``,
Parquet and CSV): done, skipped (output already there, or not an image file
name) or failed, with the reason. Outputs are written under a temporary name
and renamed, so a rerun after a crash skips finished images, redoes the rest,
and leaves no partial files (``--force`` redoes everything).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from colorize_tf.color import DEFAULT_MAX_PIXELS
from transforms.colorize import (
    FAILED, MANIFEST_COLUMNS, MANIFEST_SCHEMA, SKIPPED, ColorizeDoFn, SkipFinishedDoFn, dead_to_row,
)
from transforms.fs import PARTIAL
from transforms.io import DEAD, ListFiles, ReadFileDoFn

from .options import JobOptions, is_dry_run, job_args, main_entry, require, run_pipeline  # noqa: F401  (JobOptions registers shared flags)

log = logging.getLogger(__name__)
MANIFEST_DIR = "_manifest"


class ArchiveOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--format", default=None, help="Output format (jpg, png, tif, webp); default: input's.")
        parser.add_argument("--jpeg_quality", type=int, default=95)
        parser.add_argument("--force", action="store_true", help="Redo inputs whose output exists.")
        parser.add_argument("--archive_max_pixels", type=int, default=DEFAULT_MAX_PIXELS,
                            help="Decompression-bomb limit: larger images fail with the reason.")
        parser.add_argument("--max_file_bytes", type=int, default=1 << 30, help="Larger files / members are refused.")
        parser.add_argument("--refine_params", default=None, help="'D,SIGMA_COLOR,SIGMA_SPACE[,SCALE]' (default: model's).")
        parser.add_argument("--tile", type=int, default=512)
        parser.add_argument("--chroma_max_side", type=int, default=0,
                            help="Predict chroma with the longer side reduced to this (0 = full resolution).")
        parser.add_argument("--archive_selection_k", type=int, default=None)


def clean_partials(output_dir):
    """Delete temporary files left by an interrupted run (never a finished output)."""
    found = FileSystems.match([FileSystems.join(output_dir, f"**{PARTIAL}*")])[0].metadata_list
    if found:
        FileSystems.delete([m.path for m in found])
        log.info("removed %d partial files of an interrupted run", len(found))
    return len(found)


def build(pipeline, opts):
    found = pipeline | "ListFiles" >> ListFiles(opts.input, opts.list_root)
    listed = (
        found["files"]
        | "SkipFinished" >> beam.ParDo(SkipFinishedDoFn(opts.output, opts.format, opts.force)).with_outputs(
            SKIPPED, main="todo")
    )
    read = (
        listed.todo
        | "ReadFiles" >> beam.ParDo(ReadFileDoFn(opts.max_file_bytes)).with_outputs(DEAD, main="files")
    )
    refine = opts.refine_params
    done = (
        read.files
        | "SpreadImages" >> beam.Reshuffle()
        | "Colorize" >> beam.ParDo(ColorizeDoFn(
            opts.model, opts.output, opts.format, opts.jpeg_quality, opts.force, opts.archive_max_pixels, refine,
            opts.tile, opts.chroma_max_side, opts.parser, opts.archive_selection_k))
    )
    dead = (
        (read[DEAD], found[DEAD])
        | "AllDead" >> beam.Flatten()
        | "DeadToRows" >> beam.Map(dead_to_row)
    )
    rows = (done, listed[SKIPPED], dead) | "ManifestRows" >> beam.Flatten()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    rows | "WriteManifestParquet" >> beam.io.WriteToParquet(
        FileSystems.join(opts.output, MANIFEST_DIR, f"manifest-{stamp}"), MANIFEST_SCHEMA, file_name_suffix=".parquet",
        num_shards=1, shard_name_template="")
    rows | "ToCsvLine" >> beam.Map(_csv_line) | "WriteManifestCsv" >> beam.io.WriteToText(
        FileSystems.join(opts.output, MANIFEST_DIR, f"manifest-{stamp}"), file_name_suffix=".csv",
        header=",".join(MANIFEST_COLUMNS), num_shards=1, shard_name_template="")
    return stamp


def _csv_line(row):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([row[c] for c in MANIFEST_COLUMNS])
    return buf.getvalue()


def read_manifest(output_dir, stamp=None):
    """Rows of the newest (or the given) manifest."""
    pattern = FileSystems.join(output_dir, MANIFEST_DIR, f"manifest-{stamp or '*'}.parquet")
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    if not paths:
        raise FileNotFoundError(f"no manifest matches {pattern}")
    with FileSystems.open(paths[-1], compression_type="uncompressed") as fh:
        return pq.read_table(fh).to_pylist()


def run(argv=None):
    options = PipelineOptions(argv)
    opts = job_args(options)
    require(opts, "input", "model", "output")
    if not FileSystems.exists(opts.output):
        FileSystems.mkdirs(opts.output)
    clean_partials(opts.output)
    t0 = time.time()
    pipeline = beam.Pipeline(options=options)
    stamp = build(pipeline, opts)
    result = run_pipeline(pipeline, options)
    if is_dry_run(options):
        return result
    rows = read_manifest(opts.output, stamp)
    totals = {s: sum(r["status"] == s for r in rows) for s in ("done", SKIPPED, FAILED)}
    seconds = time.time() - t0
    log.info("inputs %d = done %d + skipped %d + failed %d in %.1f s (%.2f images/s)", len(rows), totals["done"],
             totals[SKIPPED], totals[FAILED], seconds, totals["done"] / max(seconds, 1e-9))
    summary = {"inputs": len(rows), **totals, "seconds": round(seconds, 2), "manifest": stamp}
    with FileSystems.create(FileSystems.join(opts.output, MANIFEST_DIR, f"summary-{stamp}.json")) as fh:
        fh.write(json.dumps(summary, indent=1).encode())
    return summary


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
