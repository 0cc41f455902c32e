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

import json
import logging
import sys
import time

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.evaluate import EvaluateDoFn
from transforms.io import DEAD, ReadImages, read_jsonl

from .options import JobOptions, is_dry_run, job_args, main_entry, require, run_pipeline  # noqa: F401  (JobOptions registers shared flags)

log = logging.getLogger(__name__)


class EvaluateOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--eval_refine", default=None, help="'D,SIGMA_COLOR,SIGMA_SPACE[,SCALE]' (default: model's).")
        parser.add_argument("--eval_selection_k", type=int, default=None)
        parser.add_argument("--no_pictures", action="store_true", help="Skip the per-image JPEGs and HTML images.")
        parser.add_argument("--baselines", default=None,
                            help="Comparators scored in the same pass: 'NAME=MODEL_DIR,NAME=MODEL_DIR' "
                                 "(see pipelines.train --family).")


def build(pipeline, opts, model):
    read = pipeline | "ReadImages" >> ReadImages(opts.input, opts.list_root, max_bytes=None)
    refine = opts.eval_refine
    scored = read["files"] | "Evaluate" >> beam.ParDo(
        EvaluateDoFn(model, opts.output, refine=refine, parser_dir=opts.parser, selection_k=opts.eval_selection_k,
                     pictures=not opts.no_pictures, baselines=parse_baselines(opts.baselines))
    ).with_outputs(DEAD, main="records")
    scored.records | "RecordsToJson" >> beam.Map(json.dumps, sort_keys=True) | "WriteRecords" >> beam.io.WriteToText(
        FileSystems.join(opts.output, "records", "records"), file_name_suffix=".jsonl")
    dead = (read[DEAD], scored[DEAD]) | "AllDead" >> beam.Flatten()
    dead | "DeadToJson" >> beam.Map(json.dumps, sort_keys=True) | "WriteDead" >> beam.io.WriteToText(
        FileSystems.join(opts.output, "records", "dead"), file_name_suffix=".jsonl")


def parse_baselines(text):
    """'NAME=DIR,NAME=DIR' -> {NAME: DIR}."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        name, _, path = part.partition("=")
        if not name or not path:
            raise SystemExit(f"--baselines entry {part!r}: expected NAME=MODEL_DIR")
        out[name.strip()] = path.strip()
    return out


def summarise(records):
    """report.json content: per-image records and their means."""
    records = sorted(records, key=lambda r: r["image_id"])
    out = {"images": len(records)}
    keys = ["psnr", "psnr_gray", "l_uv", "l_uv_gray", "seconds"]
    keys += sorted({k for r in records for k in r if k.startswith(("psnr_", "l_uv_")) and k not in keys})
    for key in keys:
        vals = [r[key] for r in records if r.get(key) is not None and np.isfinite(r[key])]
        out[f"mean_{key}"] = float(np.mean(vals)) if vals else None
    clusters = [r["cluster"] for r in records if r.get("cluster")]
    if clusters:
        out["clusters_used"] = {c: clusters.count(c) for c in sorted(set(clusters))}
    out["per_image"] = records
    return out


def write_report(report_dir, records, model, seconds=None):
    from colorize_tf.plots import histogram_png
    from colorize_tf.report import side_by_side_html

    report = summarise(records)
    report.update(model=model, wall_seconds=seconds)
    with FileSystems.create(FileSystems.join(report_dir, "report.json")) as fh:
        fh.write(json.dumps(report, indent=1).encode())
    rows = sorted(records, key=lambda r: r["psnr"] - r["psnr_gray"], reverse=True)
    html_rows = [{"name": f"{r['image_id']} ({r.get('cluster') or '-'})", "gray": r.get("gray_image"),
                  "ours": r.get("ours_image"), "truth": r.get("truth_image"), "psnr": r["psnr"],
                  "psnr_gray": r["psnr_gray"], "l_uv": r["l_uv"], "l_uv_gray": r["l_uv_gray"],
                  "seconds": r["seconds"]} for r in rows]
    if "://" not in report_dir:
        side_by_side_html(html_rows, FileSystems.join(report_dir, "index.html"),
                          f"{model}: mean PSNR {report['mean_psnr']:.2f} dB (gray {report['mean_psnr_gray']:.2f}), "
                          f"sorted by gain")
        histogram_png({"gray": [r["psnr_gray"] for r in records], "ours": [r["psnr"] for r in records]},
                      FileSystems.join(report_dir, "psnr_histogram.png"),
                      title=f"PSNR distribution, {len(records)} images")
    return report


def read_records(report_dir):
    return read_jsonl(FileSystems.join(report_dir, "records", "records-*.jsonl"))


def run(argv=None):
    options = PipelineOptions(argv)
    opts = job_args(options)
    require(opts, "input", "model", "output")
    model = opts.model
    t0 = time.time()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, opts, model)
    result = run_pipeline(pipeline, options)
    if is_dry_run(options):
        return result
    report = write_report(opts.output, read_records(opts.output), model, round(time.time() - t0, 1))
    log.info("%d images: mean PSNR %.2f dB (gray %.2f), mean L_UV %.5f (gray %.5f); report in %s", report["images"],
             report["mean_psnr"], report["mean_psnr_gray"], report["mean_l_uv"], report["mean_l_uv_gray"],
             opts.output)
    return report


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
