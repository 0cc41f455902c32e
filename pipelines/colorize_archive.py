"""Archive job: colorize every image of a folder, glob, list file or tar/zip archive.

    python -m pipelines.colorize_archive --input SCANS --model BUNDLE --output OUT

Outputs mirror the inputs' relative paths under OUT (archive members under the archive's
stem); two inputs never share an output (collisions get ``~HASH`` names, see
`transforms.colorize.AssignOutputs`). Every input ends as one manifest row
(``OUT/_manifest/manifest-STAMP.{parquet,csv}``): done, skipped (output already there, not an
image file name, empty archive) or failed, with the stage and the reason.

Safety: inputs are only read; the job deletes only files it created, all under
``OUT/_manifest/tmp-RUN/`` (outputs are written there, verified, and renamed into place), so
a rerun after a crash skips finished images and redoes the rest (``--force`` redoes
everything). One run at a time per output folder (``OUT/_manifest/lock.json``; a lock whose
process is gone is taken over). Options and the model are checked before any worker starts;
a run whose failed share exceeds ``--max_failed_fraction`` exits with status 3 after writing
its manifest.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from colorize_tf.imageio import BASE_RSS_BYTES, DEFAULT_MAX_PIXELS, normalise_format, pixel_limit_for_budget
from transforms.colorize import (
    FAILED,
    MANIFEST_COLUMNS,
    MANIFEST_SCHEMA,
    OCCUPIED,
    ROWS,
    SKIPPED,
    AssignOutputs,
    ColorizeDoFn,
    ExpandInputsDoFn,
    SkipFinishedDoFn,
    csv_line,
    dead_to_row,
    owners_from_manifest,
)
from transforms.fs import OutputLock, OutputLockError, delete_tree, is_remote, write_json
from transforms.io import DEAD, ListFiles
from transforms.sources import Limits

from .options import (
    JobFailed,
    UsageError,
    add_inputs,
    add_model,
    add_output,
    add_refine,
    add_selection,
    add_work_side,
    alias,
    colorize_settings,
    is_dry_run,
    job_parser,
    main_entry,
    parse_job,
    run_pipeline,
)

log = logging.getLogger(__name__)
MANIFEST_DIR = "_manifest"
BASE_RSS_MB = BASE_RSS_BYTES >> 20


class FailureThresholdExceeded(JobFailed):
    """More inputs failed than ``--max_failed_fraction`` allows (the manifest is written)."""

    def __init__(self, summary, limit):
        super().__init__(
            f"{summary['failed']} of {summary['done'] + summary['failed']} processed inputs failed "
            f"({summary['failed_fraction']:.1%} > --max_failed_fraction {limit:g}); "
            f"see {summary['manifest_path']}"
        )
        self.summary = summary


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.colorize_archive")
    add_inputs(
        parser,
        what="Scans: folder (recursive, hidden files included), glob, list file, .zip / .tar[.gz] "
        "archive or file; any Beam filesystem. Never modified",
    )
    add_model(parser)
    add_output(parser, "Output folder (any Beam filesystem); must not be the input.")
    parser.add_argument(
        "--format",
        default=None,
        help="Output format for every image (jpg, png, tif, webp, bmp); default: keep each input's "
        "where it can hold colour, else PNG.",
    )
    parser.add_argument("--quality", type=int, default=95, help="JPEG / WebP quality, 1-100.")
    parser.add_argument("--overwrite", action="store_true", help="Redo inputs whose output exists.")
    parser.add_argument(
        "--review",
        type=int,
        default=48,
        help="Before/after pairs on the run's review page (OUT/_manifest/review-STAMP.html): half the outputs "
        "the model was least confident of (where it measures confidence), half a random sample; 0 = no page.",
    )
    add_refine(parser, old=("--refine_params",))
    add_selection(parser, old_k=("--archive_selection_k",))
    parser.add_argument("--tile", type=int, default=512, help="Tile side in pixels (64-8192; 0 = no tiling).")
    add_work_side(parser)
    alias(parser, "--chroma_max_side", "--work_side")
    limits = parser.add_argument_group("limits and safety")
    limits.add_argument(
        "--worker_memory_mb",
        type=int,
        default=2500,
        help="Peak resident memory a worker may reach; the default pixel limit and the image work "
        "in flight per worker follow from it.",
    )
    limits.add_argument(
        "--max_pixels",
        type=int,
        default=None,
        help="Images with more pixels fail before decoding (default: what --worker_memory_mb "
        "allows, 40 M pixels at 2500 MB).",
    )
    limits.add_argument(
        "--max_file_bytes",
        type=int,
        default=None,
        help="Larger files and archive members are refused (default: 8 bytes per allowed pixel + 64 MiB).",
    )
    limits.add_argument(
        "--max_archive_depth",
        type=int,
        default=3,
        help="Archives nested deeper are refused (1 = no archives inside archives).",
    )
    limits.add_argument(
        "--follow_symlinks",
        action="store_true",
        help="Follow symbolic links in input folders (default: refuse them, as archive links).",
    )
    limits.add_argument(
        "--max_failed_fraction",
        type=float,
        default=0.1,
        help="Exit with status 3 (after writing the manifest) when more than this share of the "
        "processed inputs failed.",
    )
    limits.add_argument(
        "--lock_stale_minutes",
        type=float,
        default=30.0,
        help="A lock from another host whose heartbeat is older than this is taken over.",
    )
    alias(parser, "--jpeg_quality", "--quality")
    alias(parser, "--force", "--overwrite")
    alias(parser, "--archive_max_pixels", "--max_pixels")
    return parser


def _range(name, value, lo, hi, allow_zero=False):
    if value is None:
        return
    if allow_zero and value == 0:
        return
    if not lo <= value <= hi:
        extra = " or 0" if allow_zero else ""
        raise UsageError(f"--{name} {value} is out of range: expected {lo}..{hi}{extra}")


def check_options(opts):
    """Validate option values; `UsageError` with a one-line message."""
    if opts.format is not None:
        try:
            normalise_format(opts.format)
        except ValueError as exc:
            raise UsageError(f"--format: {exc}") from None
    _range("quality", opts.quality, 1, 100)
    _range("tile", opts.tile, 64, 8192, allow_zero=True)
    _range("worker_memory_mb", opts.worker_memory_mb, BASE_RSS_MB + 100, 1 << 20)
    _range("max_pixels", opts.max_pixels, 1, 1 << 34)
    _range("max_file_bytes", opts.max_file_bytes, 1, 1 << 40)
    _range("max_archive_depth", opts.max_archive_depth, 1, 16)
    _range("selection_k", opts.selection_k, 1, 1000)
    _range("review", opts.review, 1, 100000, allow_zero=True)
    if not 0.0 <= opts.max_failed_fraction <= 1.0:
        raise UsageError(f"--max_failed_fraction {opts.max_failed_fraction} is out of range: expected 0..1")
    if not opts.lock_stale_minutes > 0:
        raise UsageError("--lock_stale_minutes must be > 0")


def limits_of(opts):
    """(max_pixels, Limits, memory budget in bytes) from the options and the memory budget."""
    budget = opts.worker_memory_mb << 20
    max_pixels = opts.max_pixels or min(DEFAULT_MAX_PIXELS, pixel_limit_for_budget(budget, BASE_RSS_MB << 20))
    max_bytes = opts.max_file_bytes or max_pixels * 8 + (64 << 20)
    return max_pixels, Limits(max_bytes=max_bytes, max_depth=opts.max_archive_depth), budget - (BASE_RSS_MB << 20)


def _spec_root(spec):
    """The folder an input spec lists from (None for a single file or a list file)."""
    from transforms.io import GLOB_CHARS, _glob_root

    if any(c in spec for c in GLOB_CHARS):
        return _glob_root(spec) or "."
    if not is_remote(spec) and os.path.isdir(spec):
        return spec
    return None


def _norm(path):
    return path.rstrip("/") if is_remote(path) else os.path.realpath(path)


def output_exclusions(spec, output):
    """Paths to leave out of the listing; `UsageError` when the output folder is the input folder.

    An output folder inside the input folder is excluded from the listing (else each rerun would
    colorize the previous outputs).
    """
    out = _norm(output)
    root = _spec_root(spec)
    if root is not None and _norm(root) == out:
        raise UsageError(
            f"--output {output!r} is the input folder: choose another folder (inputs are never overwritten)"
        )
    return [output.rstrip("/"), out] if out != output.rstrip("/") else [out]


def check_model(opts):
    """Open and verify the model / bundle (and parser) once on the launcher: a one-line error instead of a
    worker traceback. In-process runners reuse the loaded model."""
    from transforms.colorize import shared_colorizer

    try:
        shared_colorizer(opts.model, colorize_settings(opts))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--model {opts.model}: cannot be used ({type(exc).__name__}: {first})") from None


def build(pipeline, opts, stamp, tmp_dir, previous=()):
    max_pixels, limits, budget = limits_of(opts)
    exclude = output_exclusions(opts.input, opts.output)
    found = pipeline | "ListFiles" >> ListFiles(
        opts.input, opts.list_root, exclude=exclude, follow_symlinks=opts.follow_symlinks
    )
    expanded = found["files"] | "ExpandInputs" >> beam.ParDo(ExpandInputsDoFn(opts.output, limits)).with_outputs(
        ROWS, OCCUPIED, main="sources"
    )
    owners = None
    if previous:
        owners = (
            pipeline
            | "PreviousManifests" >> beam.Create(list(previous))
            | "ReadPrevious"
            >> beam.io.ReadAllFromParquet(with_filename=True, columns=["input", "status", "output", "output_rel"])
            | "PreviousOwners" >> beam.FlatMap(owners_from_manifest, opts.output)
        )
    named = expanded.sources | "AssignOutputs" >> AssignOutputs(opts.output, opts.format, expanded[OCCUPIED], owners)
    todo = named["named"] | "SkipFinished" >> beam.ParDo(SkipFinishedDoFn(opts.output, opts.overwrite)).with_outputs(
        ROWS, main="todo"
    )
    done = (
        todo.todo
        | "GroupReadingUnits" >> beam.GroupByKey()
        | "Colorize"
        >> beam.ParDo(
            ColorizeDoFn(
                opts.model,
                colorize_settings(opts),
                opts.output,
                tmp_dir,
                opts.quality,
                max_pixels,
                limits,
                opts.work_side,
                memory_budget=budget,
            )
        )
    )
    dead = found[DEAD] | "DeadToRows" >> beam.Map(dead_to_row)
    rows = (done, todo[ROWS], named[ROWS], expanded[ROWS], dead) | "ManifestRows" >> beam.Flatten()
    prefix = FileSystems.join(opts.output, MANIFEST_DIR, f"manifest-{stamp}")
    rows | "WriteManifestParquet" >> beam.io.WriteToParquet(
        prefix, MANIFEST_SCHEMA, file_name_suffix=".parquet", num_shards=1, shard_name_template=""
    )
    (
        rows
        | "ToCsvLine" >> beam.Map(csv_line)
        | "WriteManifestCsv"
        >> beam.io.WriteToText(
            prefix, file_name_suffix=".csv", header=",".join(MANIFEST_COLUMNS), num_shards=1, shard_name_template=""
        )
    )


def manifest_paths(output_dir):
    pattern = FileSystems.join(output_dir, MANIFEST_DIR, "manifest-*.parquet")
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def read_manifest(output_dir, stamp=None):
    """Rows of the newest (or the given) manifest."""
    paths = [p for p in manifest_paths(output_dir) if stamp is None or p.endswith(f"manifest-{stamp}.parquet")]
    if not paths:
        raise FileNotFoundError(f"no manifest in {FileSystems.join(output_dir, MANIFEST_DIR)}")
    with FileSystems.open(paths[-1], compression_type="uncompressed") as fh:
        return pq.read_table(fh).to_pylist()


def clean_temporaries(output_dir):
    """Delete the temporary folders of earlier runs of this job (``_manifest/tmp-*``): only files this job
    created live there. Called while holding the output lock."""
    manifest_dir = FileSystems.join(output_dir, MANIFEST_DIR)
    if is_remote(output_dir):  # object stores: the run folders are prefixes of the objects under them
        found = [m.path for m in FileSystems.match([FileSystems.join(manifest_dir, "tmp-*", "**")])[0].metadata_list]
        dirs = sorted({p[: p.index("/", len(manifest_dir) + 1)] for p in found})
        if found:
            FileSystems.delete(found)
    else:
        import glob

        dirs = sorted(glob.glob(os.path.join(output_dir, MANIFEST_DIR, "tmp-*")))
        for d in dirs:
            delete_tree(d)
    if dirs:
        log.info("removed %d temporary folder(s) of interrupted runs", len(dirs))
    return len(dirs)


def _absolute(path):
    """Local paths made absolute (listed inputs and the output folder compare as strings); others unchanged."""
    if path is None or is_remote(path):
        return path
    trail = "/" if path.endswith("/") and len(path) > 1 else ""
    return os.path.abspath(path) + trail


def run(argv=None):
    opts, options = parse_job(build_parser(), argv, check_options)
    opts.input, opts.output, opts.list_root = _absolute(opts.input), _absolute(opts.output), _absolute(opts.list_root)
    output_exclusions(opts.input, opts.output)
    now = time.time()  # stamps sort in run order (microseconds: two runs in one second stay ordered)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}-" + uuid.uuid4().hex[:6]
    manifest_dir = FileSystems.join(opts.output, MANIFEST_DIR)
    tmp_dir = FileSystems.join(manifest_dir, f"tmp-{stamp}")
    if is_dry_run(options):
        pipeline = beam.Pipeline(options=options)
        build(pipeline, opts, stamp, tmp_dir)
        return run_pipeline(pipeline, options)
    check_model(opts)
    if not FileSystems.exists(opts.output):
        FileSystems.mkdirs(opts.output)
    lock = OutputLock(FileSystems.join(manifest_dir, "lock.json"), stamp, stale_s=opts.lock_stale_minutes * 60)
    try:
        lock.acquire()
    except OutputLockError as exc:
        raise UsageError(str(exc)) from None
    try:
        if lock.taken_over:
            log.warning("took over the stale lock of run %s", lock.taken_over.get("run_id"))
        clean_temporaries(opts.output)
        if not is_remote(tmp_dir):
            os.makedirs(tmp_dir, exist_ok=True)
        previous = manifest_paths(opts.output)
        t0 = time.time()
        pipeline = beam.Pipeline(options=options)
        build(pipeline, opts, stamp, tmp_dir, previous)
        run_pipeline(pipeline, options)
        rows = read_manifest(opts.output, stamp)
        summary = summarise(rows, time.time() - t0, stamp, FileSystems.join(manifest_dir, f"manifest-{stamp}.parquet"))
        if opts.review > 0:
            from transforms.review import write_review

            models = sorted({r["model"] for r in rows if r["model"]})
            shown = {k: summary[k] for k in ("inputs", "done", SKIPPED, FAILED)}
            summary["review"] = write_review(
                opts.output, manifest_dir, rows, stamp, opts.review, {**shown, "model": ", ".join(models)}
            )
            if summary["review"]:
                log.info("review page: %s", summary["review"])
        write_json(FileSystems.join(manifest_dir, f"summary-{stamp}.json"), summary)
        delete_tree(tmp_dir)
    finally:
        lock.release()
    log.info(
        "inputs %d = done %d + skipped %d + failed %d in %.1f s (%.2f images/s)",
        summary["inputs"],
        summary["done"],
        summary[SKIPPED],
        summary[FAILED],
        summary["seconds"],
        summary["done"] / max(summary["seconds"], 1e-9),
    )
    if summary["failed_fraction"] > opts.max_failed_fraction:
        raise FailureThresholdExceeded(summary, opts.max_failed_fraction)
    return summary


def summarise(rows, seconds, stamp, manifest_path):
    totals = {s: sum(r["status"] == s for r in rows) for s in ("done", SKIPPED, FAILED)}
    by_stage = {}
    for r in rows:
        if r["status"] == FAILED:
            by_stage[r["stage"]] = by_stage.get(r["stage"], 0) + 1
    processed = totals["done"] + totals[FAILED]
    return {
        "inputs": len(rows),
        **totals,
        "failed_by_stage": by_stage,
        "failed_fraction": round(totals[FAILED] / processed, 4) if processed else 0.0,
        "seconds": round(seconds, 2),
        "manifest": stamp,
        "manifest_path": manifest_path,
    }


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
