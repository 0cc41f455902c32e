"""The archive job: accounting for every input, resumability, safety, formats."""

import io
import os
import signal
import struct
import subprocess
import sys
import tarfile
import time
import zlib

import numpy as np
from conftest import ROOT, synthetic_scene
from PIL import Image


def _png(arr, fmt="PNG", mode=None):
    buf = io.BytesIO()
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(buf, format=fmt)
    return buf.getvalue()


def _huge_png(side=60000):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def mixed_archive(path):
    rgb = (synthetic_scene(90, 120, seed=3) * 255).astype(np.uint8)
    gray = rgb.mean(-1).astype(np.uint8)
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, format="TIFF")
    members = {
        "photos/a.jpg": _png(rgb, "JPEG"),
        "photos/b.png": _png(gray),
        "rgba.png": _png(np.dstack([rgb, np.full(gray.shape, 77, np.uint8)])),
        "gray16.png": _png(gray.astype(np.uint16) * 257),
        "cmyk.tif": cmyk.getvalue(),
        "corrupt.jpg": b"\xff\xd8\xff\xe0 definitely not jpeg data",
        "truncated.png": _png(rgb)[:400],
        "zero.png": b"",
        "readme.txt": b"not an image",
        "huge.png": _huge_png(),
    }
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name in ("../escape.png", "/etc/abs.png"):
            ti = tarfile.TarInfo(name)
            data = _png(gray)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        link = tarfile.TarInfo("link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
        dev = tarfile.TarInfo("dev")
        dev.type = tarfile.CHRTYPE
        tf.addfile(dev)
    return len(members) + 4


def test_mixed_archive_every_member_accounted(model_dir, tmp_path):
    from pipelines import colorize_archive

    arch = tmp_path / "box.tar.gz"
    n = mixed_archive(str(arch))
    out = tmp_path / "out"
    summary = colorize_archive.run(
        [
            f"--input={arch}",
            f"--model={model_dir}",
            f"--output={out}",
            "--max_pixels=100000000",
            "--max_failed_fraction=1",
            "--runner=FnApiRunner",
        ]
    )
    rows = colorize_archive.read_manifest(str(out))
    assert summary["inputs"] == len(rows) == n == summary["done"] + summary["skipped"] + summary["failed"]
    by = {r["input"].split("!", 1)[1]: r for r in rows}
    done = {k for k, r in by.items() if r["status"] == "done"}
    assert done == {"photos/a.jpg", "photos/b.png", "rgba.png", "gray16.png", "cmyk.tif"}
    reasons = {k: r["error"] for k, r in by.items() if r["status"] == "failed"}
    assert "truncated" in reasons["truncated.png"] and "empty" in reasons["zero.png"]
    assert by["readme.txt"]["status"] == "skipped" and "not an image file name" in by["readme.txt"]["error"]
    assert "too large" in reasons["huge.png"]
    assert "'..'" in reasons["../escape.png"] and "absolute" in reasons["/etc/abs.png"]
    assert "link" in reasons["link.png"] and "device" in reasons["dev"]
    # outputs mirror the member paths under the archive's stem, nothing outside the output folder
    assert (out / "box" / "photos" / "a.jpg").exists() and (out / "box" / "cmyk.tif").exists()
    assert not (tmp_path / "escape.png").exists() and not list(out.rglob("*escape*"))
    rgba = Image.open(out / "box" / "rgba.png")
    assert rgba.mode == "RGBA" and np.asarray(rgba)[..., 3].min() == 77
    import cv2

    g16 = cv2.imread(str(out / "box" / "gray16.png"), cv2.IMREAD_UNCHANGED)
    assert g16.dtype == np.uint16 and g16.shape == (90, 120, 3)
    assert (out / "_manifest").exists() and list((out / "_manifest").glob("manifest-*.csv"))
    # provenance: the manifest names the model of every done row, each output says how it was made
    from colorize_tf.provenance import read_back

    model_ids = {r["model"] for r in rows if r["status"] == "done"}
    assert len(model_ids) == 1 and model_ids.pop().startswith(os.path.basename(str(model_dir)) + "@")
    assert all(r["model"] == "" for r in rows if r["status"] != "done")
    made = read_back((out / "box" / "photos" / "a.jpg").read_bytes())
    assert made["Model"] == os.path.basename(str(model_dir)) and made["Colorized"] == "True"
    for name in ("gray16.png", "cmyk.tif"):  # 16-bit PNG (chunks added to OpenCV's file), TIFF
        assert read_back((out / "box" / name).read_bytes())["Model"] == os.path.basename(str(model_dir))
    # the review page: every done output once (48 asked, 5 done), before = the output's luminance
    page = (out / "_manifest" / f"review-{summary['manifest']}.html").read_text()
    assert summary["review"].endswith(f"review-{summary['manifest']}.html")
    assert page.count("<figure>") == 5 and page.count("type='range'") == 5
    assert "confidence n/a" in page  # the per-pixel regressor has no confidence measure
    assert "href='../box/photos/a.jpg'" in page
    from colorize_tf.color import luminance

    for k in range(5):
        before = np.asarray(Image.open(out / "_manifest" / f"review-{summary['manifest']}" / f"{k:04d}_before.jpg"))
        after = np.asarray(Image.open(out / "_manifest" / f"review-{summary['manifest']}" / f"{k:04d}_after.jpg"))
        assert before.shape == after.shape
        assert np.abs(before[..., 0] / 255.0 - luminance(after / 255.0)).mean() < 0.03  # JPEG both ways
    # rerun: finished outputs are skipped, bad members fail again with the same reasons
    again = colorize_archive.run(
        [
            f"--input={arch}",
            f"--model={model_dir}",
            f"--output={out}",
            "--max_pixels=100000000",
            "--max_failed_fraction=1",
            "--runner=FnApiRunner",
        ]
    )
    # (the archive is re-read; its finished members are skipped one by one)
    assert again["done"] == 0 and again["skipped"] == 5 + 1 and again["failed"] == summary["failed"]  # + readme.txt


def _folder(root, n):
    os.makedirs(root)
    for i in range(n):
        rgb = (synthetic_scene(160, 200, seed=100 + i) * 255).astype(np.uint8)
        sub = os.path.join(root, f"box{i % 3}")
        os.makedirs(sub, exist_ok=True)
        Image.fromarray(rgb.mean(-1).astype(np.uint8)).save(os.path.join(sub, f"scan{i:03d}.png"))


def _outputs(root):
    """{relative path: (pixels, provenance without its time stamps)} of every output below `root`."""
    from colorize_tf.provenance import read_back

    out = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if "_manifest" in d:
                continue
            data = open(os.path.join(d, f), "rb").read()
            fields = read_back(data)
            for stamped in ("ColorizedAt", "description"):
                fields.pop(stamped, None)
            out[os.path.relpath(os.path.join(d, f), root)] = (
                np.asarray(Image.open(io.BytesIO(data))).tobytes(),
                fields,
            )
    return out


def test_killed_run_resumes_to_identical_outputs(model_dir, tmp_path):
    src = str(tmp_path / "scans")
    n = 40
    _folder(src, n)
    args = [
        sys.executable,
        "-m",
        "pipelines.colorize_archive",
        f"--input={src}",
        f"--model={model_dir}",
        "--runner=FnApiRunner",
    ]
    ref = str(tmp_path / "reference")
    subprocess.run(args + [f"--output={ref}"], cwd=ROOT, check=True, capture_output=True)
    out = str(tmp_path / "out")
    proc = subprocess.Popen(args + [f"--output={out}"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.isdir(out) and sum(f.endswith(".png") for _, _, fs in os.walk(out) for f in fs) >= 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_at_kill = sum(f.endswith(".png") for _, _, fs in os.walk(out) for f in fs)
    assert 0 < finished_at_kill < n, "the kill should land mid-run"
    from pipelines import colorize_archive

    summary = colorize_archive.run(
        [f"--input={src}", f"--model={model_dir}", f"--output={out}", "--runner=FnApiRunner"]
    )
    assert summary["inputs"] == n and summary["failed"] == 0
    assert summary["skipped"] >= finished_at_kill - 1 and summary["done"] + summary["skipped"] == n
    got, want = _outputs(out), _outputs(ref)
    # complete, identical (pixels and provenance, time stamps aside), no partials
    assert sorted(got) == sorted(want) and all(got[k] == want[k] for k in want)
    assert all(fields["Model"] == os.path.basename(model_dir) for _, fields in got.values())
