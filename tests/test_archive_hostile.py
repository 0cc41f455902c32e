"""The archive job over a generated hostile corpus (tests/hostile.py) as a folder, a .tar.gz and a .zip.

Asserted for each: exit status 0, every input exactly one manifest row with the expected status
and reason, every ``done`` output independently decoded and matching its input's size and
luminance, no two inputs sharing an output, inputs byte-identical afterwards, nothing but
outputs and the manifest left in the output folder, Parquet and CSV manifests equal, and the
job's peak resident memory under 2.5 GB.
"""

import csv
import hashlib
import io
import os
import tarfile
import zipfile

import hostile
import numpy as np
import pytest
from PIL import Image

PEAK_RSS_LIMIT_MB = 2500


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    entries, expect = hostile.files()
    folder = str(root / "corpus")
    hostile.write(folder, entries)
    packs = {
        "folder": folder,
        "tar.gz": hostile.pack(folder, str(root / "corpus.tar.gz")),
        "zip": hostile.pack(folder, str(root / "corpus.zip")),
    }
    return {"root": root, "expect": expect, "packs": packs, "hashes": tree_hashes(str(root))}


def tree_hashes(root):
    """sha256 of every file (and link target) under `root`."""
    out = {}
    for d, dirs, names in os.walk(root):
        for n in dirs + names:
            p = os.path.join(d, n)
            if os.path.islink(p):
                out[p] = "link:" + os.readlink(p)
            elif os.path.isfile(p):
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def run_job(args):
    """Run the archive job in a fresh process; (exit status, peak RSS MB of the job, stderr)."""
    from benchmarks.archive_memory import measure_job

    rc, peak_mb, _, err, _ = measure_job(args)
    return rc, peak_mb, err


def read_csv_rows(out):
    from pipelines.colorize_archive import MANIFEST_DIR

    path = [p for p in os.listdir(os.path.join(out, MANIFEST_DIR)) if p.endswith(".csv")]
    with open(os.path.join(out, MANIFEST_DIR, sorted(path)[-1]), newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def member_bytes(data, names):
    """Bytes of the member reached by `names` (nested archives in order), read with zipfile / tarfile."""
    name, rest = names[0], names[1:]
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            inner = zf.read(name)
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*", ignore_zeros=True) as tf:
            inner = tf.extractfile(name).read()
    return member_bytes(inner, rest) if rest else inner


def source_bytes(row_input):
    """The input bytes a manifest key names (file or, through ``!``, a member), or None if not resolvable."""
    parts = row_input.split("!")
    if any("#" in p for p in parts[1:]):
        return None  # duplicate names: the index says which; checked by count below
    data = open(parts[0], "rb").read()
    try:
        return member_bytes(data, parts[1:]) if len(parts) > 1 else data
    except (EOFError, OSError, tarfile.TarError, zipfile.BadZipFile):
        return None  # a damaged archive the reference reader cannot get through


def luminance_of_output(path):
    """(H, W) luminance in [0, 1] of an output file, decoded without the project's code."""
    import cv2

    arr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is not None and arr.dtype == np.uint16:  # 16-bit outputs: OpenCV
        assert arr.ndim == 3, path
        rgb = arr[..., [2, 1, 0]].astype(np.float64) / 65535.0
    else:  # 8-bit: Pillow (OpenCV premultiplies TIFF alpha)
        with Image.open(path) as img:
            assert img.mode in ("RGB", "RGBA"), (path, img.mode)
            rgb = np.asarray(img)[..., :3].astype(np.float64) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114])


def expected_for(packaging, corpus):
    """Expectations keyed by manifest key for this packaging (archives add one nesting level)."""
    pack = corpus["packs"][packaging]
    sep = "/" if packaging == "folder" else "!"
    out = {pack + sep + k: v for k, v in corpus["expect"].items()}
    if packaging != "folder":  # n3.zip is now at depth 4, past the default limit of 3
        out.pop(pack + "!archives/n1.zip!n2.tar.gz!n3.zip!c.png")
        out[pack + "!archives/n1.zip!n2.tar.gz!n3.zip"] = ("failed", "nested deeper than 3")
        for link in ("to_outside.png", "to_outside_dir", "dangling.png"):
            out[f"{pack}!links/{link}"] = ("failed", "link")
    else:
        for link in ("to_outside.png", "to_outside_dir", "dangling.png"):
            out[f"{pack}/links/{link}"] = ("failed", "link")
    return out


def check_run(packaging, corpus, out, rc, peak_mb, err):
    from colorize_tf.imageio import decode_image
    from pipelines.colorize_archive import MANIFEST_DIR, read_manifest

    assert rc == 0, err
    assert peak_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    rows = read_manifest(out)
    # Parquet and CSV hold the same rows (names with newlines, quotes and commas survive CSV)
    as_text = {tuple(str(r[c]) for c in ("input", "status", "output", "error")) for r in rows}
    assert as_text == {tuple(r[c] for c in ("input", "status", "output", "error")) for r in read_csv_rows(out)}
    keys = [r["input"] for r in rows]
    assert len(keys) == len(set(keys)), "an input has two rows"
    by = {r["input"]: r for r in rows}
    # expected statuses and reasons
    wrong = []
    for key, (status, reason) in expected_for(packaging, corpus).items():
        r = by.get(key)
        if r is None or r["status"] not in status.split("|") or reason not in r["error"]:
            wrong.append((key, status, reason, r and (r["status"], r["stage"], r["error"])))
    assert not wrong, wrong
    assert all(r["error"] for r in rows if r["status"] != "done"), "a row without a reason"
    from transforms.io import display

    # every top-level entry of the input is accounted for
    if packaging == "folder":
        folder = corpus["packs"]["folder"]
        for d, dirs, names in os.walk(folder):
            for n in dirs + names:
                p = os.path.join(d, n)
                if os.path.isdir(p) and not os.path.islink(p):
                    continue
                k = display(p)
                assert k in by or any(x.startswith(k + "!") for x in by), f"{p} has no row"
    # every done output: under the output folder, its own, decodable, same size and luminance as the input
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) >= 150
    outputs = [r["output"] for r in done]
    assert len(set(o.casefold() for o in outputs)) == len(outputs), "two inputs share an output"
    # (a name that is not UTF-8 appears escaped in the manifest: map the real files to that form)
    real = {display(os.path.join(d, n)): os.path.join(d, n) for d, _, names in os.walk(out) for n in names}
    checked = 0
    for r in done:
        assert r["output"].startswith(out + "/") and r["output"] in real, r
        y = luminance_of_output(real[r["output"]])
        data = source_bytes(r["input"]) if "\\x" not in r["input"] else None
        if data is None:
            continue
        gray = decode_image(data).gray
        assert y.shape == gray.shape, (r["input"], y.shape, gray.shape)
        err_y = np.abs(y - gray)
        if r["output"].lower().endswith((".jpg", ".jpeg", ".webp")):
            assert err_y.mean() < 0.02, (r["input"], err_y.mean())
        else:
            assert err_y.max() <= 1.01 / 255, (r["input"], err_y.max())
        checked += 1
    assert checked >= 140
    # TIFF sources came out as TIFF and their outputs hold the descriptive EXIF, not the source's layout tags
    described = [r for r in done if r["input"].endswith("tiff/described.tif")]
    assert described and described[0]["output"].endswith(".tif")
    with Image.open(described[0]["output"]) as img:
        assert img.getexif().get(0x010E) == "Box 3, print 12" and img.mode == "RGB"
    # nothing left but outputs and the manifest: no temporaries, no lock
    leftovers = [p for p in real if p not in set(outputs) and os.path.relpath(p, out).split(os.sep)[0] != MANIFEST_DIR]
    assert not leftovers, leftovers
    manifest_files = os.listdir(os.path.join(out, MANIFEST_DIR))
    assert not [f for f in manifest_files if f.startswith("tmp-") or f.startswith("lock")], manifest_files
    # inputs are untouched
    assert tree_hashes(str(corpus["root"])) == corpus["hashes"]
    return rows


@pytest.mark.parametrize("packaging", ["folder", "tar.gz", "zip"])
def test_hostile_corpus(packaging, corpus, model_dir, tmp_path):
    out = str(tmp_path / "out")
    rc, peak_mb, err = run_job(
        [f"--input={corpus['packs'][packaging]}", f"--model={model_dir}", f"--output={out}", "--max_failed_fraction=1"]
    )
    rows = check_run(packaging, corpus, out, rc, peak_mb, err)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    print(f"\n{packaging}: {len(rows)} rows {counts}, peak RSS {peak_mb:.0f} MB")
    if packaging == "folder":  # a rerun redoes nothing and reports the same failures
        from pipelines.colorize_archive import read_manifest

        rc2, _, err2 = run_job(
            [
                f"--input={corpus['packs'][packaging]}",
                f"--model={model_dir}",
                f"--output={out}",
                "--max_failed_fraction=1",
            ]
        )
        assert rc2 == 0, err2
        again = {r["input"]: r for r in read_manifest(out)}
        assert set(again) == {r["input"] for r in rows}
        for r in rows:
            a = again[r["input"]]
            if r["status"] == "done":
                assert (a["status"], a["error"], a["output"]) == ("skipped", "output exists", r["output"])
            else:
                assert (a["status"], a["error"]) == (r["status"], r["error"])
