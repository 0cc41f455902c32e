"""Evaluation job: colour images -> gray -> colorized -> report.

    python -m pipelines.evaluate --model BUNDLE --input ../shared/data/siftflow/test.txt \
        --list_root ../shared/data/siftflow/images --output REPORT_DIR

Writes ``REPORT_DIR/report.json`` (per-image ``psnr``, ``psnr_gray``, ``l_uv``,
``l_uv_gray``, ``cluster``, ``seconds``, and the means ``mean_psnr``,
``mean_psnr_gray``, ``mean_l_uv``, ``mean_l_uv_gray``), ``index.html`` (gray /
ours / ground truth per image, sorted by PSNR gain over gray) and
``psnr_histogram.png`` (the paper's Fig. 8 style). Scoring runs as a Beam job,
so it scales like the archive job.
"""

from __future__ import annotations

import logging
import sys
import time

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import RunInference

from colorize_tf.registry import ColorizeSettings
from transforms.evaluate import ReadForEvaluationDoFn, ScoreDoFn
from transforms.fs import write_json
from transforms.inference import ColorizerHandler, failure_rows
from transforms.io import DEAD, ReadImages, read_jsonl, write_jsonl

from .options import (
    JobFailed,
    add_inputs,
    add_model,
    add_output,
    add_refine,
    add_selection,
    colorize_settings,
    is_dry_run,
    job_parser,
    main_entry,
    parse_job,
    run_pipeline,
)

log = logging.getLogger(__name__)


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.evaluate")
    add_inputs(parser, what="Colour images to score")
    add_model(parser)
    add_output(parser, "Report folder (any Beam filesystem).")
    add_refine(parser, old=("--eval_refine",))
    add_selection(parser, old_k=("--eval_selection_k",))
    parser.add_argument("--tile", type=int, default=512, help="Tile side in pixels (0 = whole image).")
    parser.add_argument("--no_pictures", action="store_true", help="Skip the per-image JPEGs and HTML images.")
    parser.add_argument(
        "--baselines",
        type=parse_baselines,
        default={},
        help="Comparators scored in the same pass: 'NAME=MODEL_DIR,NAME=MODEL_DIR' (see pipelines.train --family).",
    )
    parser.add_argument(
        "--max_failed_fraction",
        type=float,
        default=0.1,
        help="Stop the job when more than this share of images fails inside colorization.",
    )
    return parser


#: Names a comparator cannot take: its scores would overwrite the model's or the gray baseline's record keys.
RESERVED_NAMES = ("model", "gray", "truth")


def parse_baselines(text):
    """'NAME=DIR,NAME=DIR' -> {NAME: DIR} (argparse type)."""
    import argparse

    out = {}
    for part in (text or "").split(","):
        name, _, path = part.partition("=")
        if not name.strip() or not path.strip() or name.strip() in RESERVED_NAMES:
            raise argparse.ArgumentTypeError(
                f"entry {part!r}: expected NAME=MODEL_DIR (NAME not one of {', '.join(RESERVED_NAMES)})"
            )
        out[name.strip()] = path.strip()
    return out


def build(pipeline, args):
    read = pipeline | "ReadImages" >> ReadImages(args.input, args.list_root, max_bytes=None)
    examples = read["files"] | "ReadForEvaluation" >> beam.ParDo(ReadForEvaluationDoFn()).with_outputs(
        DEAD, main="examples"
    )
    settings = colorize_settings(args)
    handler = ColorizerHandler(
        {"model": args.model, **args.baselines},
        {"model": settings},
        ColorizeSettings(tile=args.tile, parser_dir=args.parser),
    )
    colorized, failed = examples.examples | "Colorize" >> RunInference(handler).with_exception_handling(
        threshold=args.max_failed_fraction
    )
    records = colorized | "Score" >> beam.ParDo(ScoreDoFn(args.output, pictures=not args.no_pictures))
    write_jsonl(records, FileSystems.join(args.output, "records", "records"), "Records")
    failures = failed.failed_inferences | "FailedToDead" >> beam.FlatMap(failure_rows)
    dead = (read[DEAD], examples[DEAD], failures) | "AllDead" >> beam.Flatten()
    write_jsonl(dead, FileSystems.join(args.output, "records", "dead"), "Dead")


def summarise(records):
    """report.json content: per-image records, their means, and per system (``systems``): the paired
    bootstrap 95 % interval of the PSNR gain over gray and of the difference to the model, and the
    colourfulness of outputs relative to the true photos."""
    from colorize_tf.metrics import bootstrap_interval

    records = sorted(records, key=lambda r: r["image_id"])
    out = {"images": len(records)}
    keys = ["psnr", "psnr_gray", "l_uv", "l_uv_gray", "colourfulness", "colourfulness_truth", "seconds"]
    prefixes = ("psnr_", "l_uv_", "colourfulness_")
    keys += sorted({k for r in records for k in r if k.startswith(prefixes) and k not in keys})
    for key in keys:
        vals = [r[key] for r in records if r.get(key) is not None and np.isfinite(r[key])]
        out[f"mean_{key}"] = float(np.mean(vals)) if vals else None
    if records:
        truth_cf = max(out["mean_colourfulness_truth"], 1e-9)
        out["colourfulness_ratio"] = out["mean_colourfulness"] / truth_cf
        names = sorted(k[len("psnr_") :] for k in keys if k.startswith("psnr_") and k != "psnr_gray")
        out["systems"] = [_system(name, records, out, truth_cf) for name in ["model"] + names]
        for row in out["systems"]:
            suffix = _suffix(row["system"])
            if suffix:  # the model minus this comparator, paired per image
                diff = bootstrap_interval([r["psnr"] - r[f"psnr{suffix}"] for r in records])
                row["diff"] = [diff[0], [diff[1], diff[2]]]
            out[f"gain_psnr{suffix}"] = {"mean": row["gain"][0], "ci95": row["gain"][1]}
    clusters = [r["cluster"] for r in records if r.get("cluster")]
    if clusters:
        out["clusters_used"] = {c: clusters.count(c) for c in sorted(set(clusters))}
    out["per_image"] = records
    return out


def _suffix(system):
    """Record-key suffix of a system: the model's scores are ``psnr``, ``l_uv`` ..., comparator NAME's
    ``psnr_NAME`` ..."""
    return "" if system == "model" else f"_{system}"


def _system(name, records, means, truth_cf):
    """One system's summary row: mean PSNR, gain over gray with its paired bootstrap interval, L_UV and
    colourfulness relative to the true photos."""
    from colorize_tf.metrics import bootstrap_interval

    suffix = _suffix(name)
    gain = bootstrap_interval([r[f"psnr{suffix}"] - r["psnr_gray"] for r in records])
    cf = means.get(f"mean_colourfulness{suffix}")
    return {
        "system": name,
        "mean_psnr": means[f"mean_psnr{suffix}"],
        "gain": [gain[0], [gain[1], gain[2]]],
        "mean_l_uv": means[f"mean_l_uv{suffix}"],
        "colourfulness_ratio": None if cf is None else cf / truth_cf,
    }


def write_report(report_dir, records, model, seconds=None):
    from colorize_tf.plots import histogram_png
    from colorize_tf.report import side_by_side_html

    report = summarise(records)
    report.update(model=model, wall_seconds=seconds)
    write_json(FileSystems.join(report_dir, "report.json"), report)
    rows = sorted(records, key=lambda r: r["psnr"] - r["psnr_gray"], reverse=True)
    html_rows = [
        {
            "name": f"{r['image_id']} ({r.get('cluster') or '-'})",
            "gray": r.get("gray_image"),
            "ours": r.get("ours_image"),
            "truth": r.get("truth_image"),
            "psnr": r["psnr"],
            "psnr_gray": r["psnr_gray"],
            "l_uv": r["l_uv"],
            "l_uv_gray": r["l_uv_gray"],
            "seconds": r["seconds"],
        }
        for r in rows
    ]
    if "://" not in report_dir and records:
        side_by_side_html(
            html_rows,
            FileSystems.join(report_dir, "index.html"),
            f"{model}: mean PSNR {report['mean_psnr']:.2f} dB (gray {report['mean_psnr_gray']:.2f}), sorted by gain",
            systems=report["systems"],
        )
        histogram_png(
            {"gray": [r["psnr_gray"] for r in records], "ours": [r["psnr"] for r in records]},
            FileSystems.join(report_dir, "psnr_histogram.png"),
            title=f"PSNR distribution, {len(records)} images",
        )
    return report


def read_records(report_dir):
    return read_jsonl(FileSystems.join(report_dir, "records", "records-*.jsonl"))


def run(argv=None):
    args, options = parse_job(build_parser(), argv)
    t0 = time.time()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, args)
    result = run_pipeline(pipeline, options)
    if is_dry_run(options):
        return result
    records = read_records(args.output)
    if not records:
        raise JobFailed(f"no image could be scored (see {FileSystems.join(args.output, 'records', 'dead-*.jsonl')})")
    report = write_report(args.output, records, args.model, round(time.time() - t0, 1))
    gain = report["gain_psnr"]
    log.info(
        "%d images: mean PSNR %.2f dB (gray %.2f; gain %.2f dB, 95%% CI %.2f..%.2f), mean L_UV %.5f "
        "(gray %.5f), colourfulness %.1f (truth %.1f); report in %s",
        report["images"],
        report["mean_psnr"],
        report["mean_psnr_gray"],
        gain["mean"],
        *gain["ci95"],
        report["mean_l_uv"],
        report["mean_l_uv_gray"],
        report["mean_colourfulness"],
        report["mean_colourfulness_truth"],
        args.output,
    )
    return report


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
