"""Archive-job throughput: start-up apart from steady state, images/s per core, CPU-seconds per megapixel,
time per image inside the job and peak memory, for small photos, 1024x1024 scans and 6000x4000 scans.

    python benchmarks/archive_throughput.py [--model shipped:general] [--sets 256:200,1024:40,6000x4000:4]
        [--workers 1,2] [--input ../shared/data/archive_bw]

Each set is generated from scikit-image's astronaut photo (gray, resized, a different crop and film grain per
image, 8-bit JPEG at quality 92 like most scans; ``--tiff16`` adds 16-bit TIFFs of the largest size). For each
set and worker count, ``pipelines.colorize_archive`` (FnApiRunner, multi_threading) runs twice in fresh
processes: on the first image alone and on all N. From outside:

* start-up = the one-image run's wall time minus that image's own time in the manifest;
* steady-state images/s = (N - 1) / (wall(N) - wall(1)); per core = that / workers;
* CPU-seconds per megapixel = (CPU(N) - CPU(1)) / ((N - 1) x megapixels) (user + system of the job process);
* inside the job: the median of the manifest's per-image ``seconds`` (read, decode, colorize, encode, verify,
  write) and the job's peak RSS.

``--input FOLDER`` adds a real folder (its images' total wall time, start-up included).

Projection (``--project 3000x2000``, a set of that size must be among ``--sets``): vCPU-hours and cost of
``--scans`` (one million) such scans on Dataflow from the 2-worker steady-state rate per core (billing is wall
time of workers) and, as a floor, from the CPU-seconds per megapixel; priced at ``--vcpu_hour`` and
``--gb_hour`` for ``--gb_per_vcpu`` of memory (defaults: Dataflow batch list prices in us-central1, $0.056
per vCPU-hour and $0.003557 per GB-hour, n2-standard machines' 4 GB per vCPU; disks, network and storage not
included).
"""

import argparse
import glob
import os
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # benchmarks.archive_memory, run as a script


def steady_rate(n, wall1, walln, min_span=1.0):
    """Images per second once started: (n - 1) / (wall(n) - wall(1)); None when the difference is under
    ``min_span`` seconds (job start-up varies by about that much between runs, so a smaller set measures
    noise, not throughput)."""
    span = walln - wall1
    if n < 2 or span < min_span:
        return None
    return (n - 1) / span


def run_job(model, inp, out, workers, extra=()):
    """Run the archive job in a fresh wrapper process (`benchmarks.archive_memory.measure_job`): (wall s,
    CPU s, peak RSS MB)."""
    from benchmarks.archive_memory import measure_job

    args = [f"--input={inp}", f"--model={model}", f"--output={out}", "--direct_running_mode=multi_threading"]
    code, rss, wall, err, cpu = measure_job(args + [f"--direct_num_workers={workers}", *extra])
    if code:
        raise RuntimeError(f"archive job failed ({code}): {err[-2000:]}")
    return wall, cpu, rss


def manifest_seconds(out):
    """Per-image ``seconds`` of the done rows of the newest manifest in `out`."""
    import pyarrow.parquet as pq

    path = sorted(glob.glob(os.path.join(out, "_manifest", "manifest-*.parquet")))[-1]
    table = pq.read_table(path, columns=["status", "seconds"]).to_pydict()
    return [s for st, s in zip(table["status"], table["seconds"]) if st == "done"]


def make_set(folder, n, h, w, seed=0, tiff16=False):
    """N gray scans of h x w: crops of the astronaut photo, resized, with film grain; JPEG (or 16-bit TIFF)."""
    import cv2
    from skimage import data

    os.makedirs(folder, exist_ok=True)
    photo = data.astronaut().mean(-1).astype(np.float32)
    rng = np.random.default_rng(seed)
    for i in range(n):
        y, x = rng.integers(0, 96, 2)
        crop = photo[y : y + 416, x : x + 416]
        img = cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0, 4.0, img.shape).astype(np.float32)
        if tiff16:
            cv2.imwrite(os.path.join(folder, f"scan{i:04d}.tif"), np.clip(img * 257, 0, 65535).astype(np.uint16))
        else:
            path = os.path.join(folder, f"scan{i:04d}.jpg")
            cv2.imwrite(path, np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 92])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="shipped:general")
    p.add_argument("--sets", default="256:200,1024:40,6000x4000:4", help="SIZE:N,... (SIZE = side or WxH).")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--tiff16", action="store_true", help="Also 16-bit TIFF scans of the largest size.")
    p.add_argument("--input", default=None, help="A real folder to time as well.")
    p.add_argument("--work_side", type=int, default=None, help="Passed to the job (default: the family's).")
    p.add_argument("--keep", default=None, help="Keep the generated sets and outputs in this folder.")
    p.add_argument("--project", default=None, help="Scan size WxH to project a large run's cost for.")
    p.add_argument("--scans", type=float, default=1e6)
    p.add_argument("--vcpu_hour", type=float, default=0.056)
    p.add_argument("--gb_hour", type=float, default=0.003557)
    p.add_argument("--gb_per_vcpu", type=float, default=4.0)
    args = p.parse_args(argv)
    tmp = args.keep or tempfile.mkdtemp(prefix="archive_bench_")
    extra = [f"--work_side={args.work_side}"] if args.work_side is not None else []
    sets = []
    for spec in args.sets.split(","):
        size, _, n = spec.partition(":")
        w, _, h = size.partition("x")
        w, h, n = int(w), int(h or w), int(n)
        sets.append((f"{w}x{h} JPEG", n, h, w, False))
    if args.tiff16:
        _, n, h, w, _ = sets[-1]
        sets.append((f"{w}x{h} 16-bit TIFF", n, h, w, True))
    workers = [int(x) for x in args.workers.split(",")]
    header = (
        f"{'set':<22} {'workers':>7} {'start-up s':>10} {'images/s':>9} {'per core':>9} {'CPU s/MP':>9} "
        f"{'s/image in job':>14} {'peak RSS MB':>11}"
    )
    print(header)
    measured = {}
    for label, n, h, w, tiff16 in sets:
        folder = os.path.join(tmp, label.replace(" ", "_"))
        make_set(folder, n, h, w, tiff16=tiff16)
        first = os.path.join(tmp, label.replace(" ", "_") + "_first")
        os.makedirs(first, exist_ok=True)
        name = sorted(os.listdir(folder))[0]
        shutil.copy(os.path.join(folder, name), os.path.join(first, name))
        mp = h * w / 1e6
        for k in workers:
            out1, outn = os.path.join(tmp, f"out1_{k}"), os.path.join(tmp, f"outn_{k}")
            shutil.rmtree(out1, ignore_errors=True)
            shutil.rmtree(outn, ignore_errors=True)
            wall1, cpu1, _ = run_job(args.model, first, out1, k, extra)
            walln, cpun, rss = run_job(args.model, folder, outn, k, extra)
            inside = manifest_seconds(outn)
            startup = wall1 - manifest_seconds(out1)[0]
            rate = steady_rate(n, wall1, walln)
            if rate is None:  # the N-image run is within timing noise of the one-image run
                print(
                    f"{label:<22} {k:>7} {startup:10.1f} {'n/a':>9} {'n/a':>9} {'n/a':>9} "
                    f"{float(np.median(inside)):14.2f} {rss:11.0f}   (set too small for a steady rate: "
                    f"{n} images took {walln - wall1:+.2f} s more than one; use more images)",
                    flush=True,
                )
                continue
            cpu_mp = (cpun - cpu1) / ((n - 1) * mp)
            measured[(label, k)] = (rate / k, cpu_mp, mp)
            print(
                f"{label:<22} {k:>7} {startup:10.1f} {rate:9.2f} {rate / k:9.2f} {cpu_mp:9.3f} "
                f"{float(np.median(inside)):14.2f} {rss:11.0f}",
                flush=True,
            )
    if args.project:
        label, k = f"{args.project} JPEG", max(workers)
        if (label, k) not in measured:
            raise SystemExit(f"--project {args.project}: no steady rate measured for it (add more images to its set)")
        per_core, cpu_mp, mp = measured[(label, k)]
        hours_wall = args.scans / per_core / 3600.0
        hours_cpu = args.scans * mp * cpu_mp / 3600.0
        price = args.vcpu_hour + args.gb_per_vcpu * args.gb_hour
        print(
            f"projection, {args.scans:,.0f} scans of {args.project} ({k} workers per machine's measured rate): "
            f"{hours_wall:,.0f} vCPU-hours from the steady rate per core ({per_core:.2f} images/s), "
            f"{hours_cpu:,.0f} from CPU time ({cpu_mp:.3f} CPU-s/MP); at ${price:.4f} per vCPU-hour "
            f"(${args.vcpu_hour}/vCPU-h + {args.gb_per_vcpu:g} GB x ${args.gb_hour}/GB-h): "
            f"${hours_wall * price:,.0f} (${hours_cpu * price:,.0f} at the CPU-time floor)"
        )
    if args.input:
        out = os.path.join(tmp, "out_input")
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu, rss = run_job(args.model, args.input, out, max(workers), extra)
        inside = manifest_seconds(out)
        print(
            f"{os.path.basename(args.input.rstrip('/')):<22} {max(workers):>7} {len(inside)} images in {wall:.1f} s "
            f"(start-up included), median {float(np.median(inside)):.2f} s/image in the job, peak RSS {rss:.0f} MB"
        )
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
