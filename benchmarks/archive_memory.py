"""Peak memory of the archive job: per-pixel cost, the default pixel limit it implies, and hostile inputs.

    python benchmarks/archive_memory.py --model MODEL [--sizes 4,12,24,36] [--hostile]

* For each size (megapixels), one generated scan (8-bit gray PNG; and a 16-bit RGB TIFF at the
  largest size) goes through ``pipelines.colorize_archive`` alone, in a fresh process, at the
  job's defaults; the job's peak RSS (ru_maxrss) and wall time are printed. A least-squares line
  through (pixels, peak RSS) gives the base RSS and the bytes per pixel that
  ``colorize_tf.imageio.BYTES_PER_PIXEL`` and ``pipelines.colorize_archive.BASE_RSS_MB`` hold,
  and the pixel limit a 2500 MB worker allows.
* ``--pair MP``: two scans of MP megapixels in one folder, two worker threads
  (``--direct_running_mode=multi_threading --direct_num_workers=2``): the per-process memory budget
  keeps them from being colorized at the same time when both would not fit.
* ``--hostile``: the generated hostile corpus of the tests (bombs, 1000 MiB zip members, ...) as a
  folder, a .tar.gz and a .zip: rows by status, peak RSS, wall time.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure_job(args):
    """Run ``pipelines.colorize_archive ARGS`` in a fresh process: (exit status, peak RSS MB, seconds, stderr,
    CPU seconds).

    A wrapper process whose only child is the job reads the job's peak and CPU time (user + system) from
    RUSAGE_CHILDREN.
    """
    cmd = [sys.executable, "-m", "pipelines.colorize_archive", *args, "--runner=FnApiRunner"]
    probe = (
        "import json, resource, subprocess, sys, time; t = time.time(); "
        f"r = subprocess.run({cmd!r}, capture_output=True, text=True); "
        "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(json.dumps([r.returncode, u.ru_maxrss, time.time() - t, r.stderr[-3000:], u.ru_utime + u.ru_stime]))"
    )
    res = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    rc, peak_kb, sec, err, cpu = json.loads(res.stdout.strip().splitlines()[-1])
    return rc, peak_kb / 1024.0, sec, err, cpu


def run_job(model, inp, out, extra=()):
    """(exit status, peak RSS MB, seconds, summary or None) of one archive job."""
    rc, peak, sec, _, _ = measure_job([f"--input={inp}", f"--model={model}", f"--output={out}", *extra])
    summ = (
        sorted(f for f in os.listdir(os.path.join(out, "_manifest")) if f.startswith("summary-"))
        if os.path.isdir(os.path.join(out, "_manifest"))
        else []
    )
    summary = json.load(open(os.path.join(out, "_manifest", summ[-1]))) if summ else None
    return rc, peak, sec, summary


def scan(path, megapixels, bits=8):
    """A textured scan of about `megapixels` (4:3), 8-bit gray PNG or 16-bit RGB TIFF."""
    from PIL import Image

    h = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    w = int(round(megapixels * 1e6 / h))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 0.2 * (yy / h) - 0.1
    if bits == 8:
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)
    else:
        import cv2

        rgb = np.clip(np.stack([img, img * 0.9, img * 0.8], -1), 0, 1)
        cv2.imwrite(path, (rgb[..., ::-1] * 65535).astype(np.uint16))
    return w, h


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--sizes", default="4,12,24,36")
    p.add_argument("--pair", type=float, default=0)
    p.add_argument("--hostile", action="store_true")
    args = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="archive_mem_")
    points = []
    print(f"{'input':<34} {'pixels':>11} {'status':>8} {'peak RSS MB':>12} {'seconds':>8}")
    sizes = [float(s) for s in args.sizes.split(",")]
    cases = [(mp, 8) for mp in sizes] + [(sizes[-1], 16)]
    for mp, bits in cases:
        d = os.path.join(tmp, f"in_{mp}_{bits}")
        os.makedirs(d)
        w, h = scan(os.path.join(d, "scan.png" if bits == 8 else "scan.tif"), mp, bits)
        out = os.path.join(tmp, f"out_{mp}_{bits}")
        rc, peak, sec, summary = run_job(args.model, d, out)
        status = "done" if summary and summary["done"] == 1 else f"rc {rc}"
        label = f"{w}x{h} {'8-bit gray PNG' if bits == 8 else '16-bit RGB TIFF'}"
        print(f"{label:<34} {w * h:>11} {status:>8} {peak:>12.0f} {sec:>8.1f}", flush=True)
        if bits == 8 and status == "done":
            points.append((w * h, peak))
        shutil.rmtree(d)
        shutil.rmtree(out)
    if len(points) >= 2:
        x, y = np.array(points, float).T
        slope, base = np.polyfit(x, y * (1 << 20), 1)
        print(
            f"fit: peak RSS = {base / (1 << 20):.0f} MB + {slope:.1f} bytes/pixel "
            f"-> a 2500 MB worker holds {(2500 * (1 << 20) - base) / slope / 1e6:.1f} M pixels"
        )
    if args.pair:
        d = os.path.join(tmp, "pair")
        os.makedirs(d)
        for name in ("a.png", "b.png"):
            w, h = scan(os.path.join(d, name), args.pair)
        out = os.path.join(tmp, "out_pair")
        rc, peak, sec, summary = run_job(
            args.model, d, out, ["--direct_running_mode=multi_threading", "--direct_num_workers=2"]
        )
        print(
            f"{'2 x ' + f'{w}x{h}' + ', 2 threads':<34} {2 * w * h:>11} {summary['done']:>6}/2 {peak:>12.0f} "
            f"{sec:>8.1f}",
            flush=True,
        )
        shutil.rmtree(d)
    if args.hostile:
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import hostile

        entries, _ = hostile.files()
        folder = os.path.join(tmp, "hostile", "corpus")
        hostile.write(folder, entries)
        packs = {
            "folder": folder,
            "tar.gz": hostile.pack(folder, folder + ".tar.gz"),
            "zip": hostile.pack(folder, folder + ".zip"),
        }
        for name, inp in packs.items():
            out = os.path.join(tmp, f"hostile_out_{name.replace('.', '_')}")
            rc, peak, sec, summary = run_job(args.model, inp, out, ["--max_failed_fraction=1"])
            print(
                f"hostile corpus as {name:<7}: rc {rc}, {summary['inputs']} rows = done {summary['done']} + "
                f"skipped {summary['skipped']} + failed {summary['failed']} "
                f"(by stage {summary['failed_by_stage']}), peak RSS {peak:.0f} MB, {sec:.1f} s",
                flush=True,
            )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
