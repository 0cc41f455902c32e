"""Archive job: launch-time checks, injective names, inputs never touched, one run per output, failure threshold."""

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest
from conftest import synthetic_scene
from PIL import Image


def _png(path, seed=0, gray=False, size=(40, 56)):
    rgb = (synthetic_scene(*size, seed=seed) * 255).astype(np.uint8)
    img = Image.fromarray(rgb.mean(-1).astype(np.uint8) if gray else rgb)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, format="JPEG" if path.lower().endswith(".jpg") else "PNG")


def _main(argv):
    from pipelines import colorize_archive

    return colorize_archive.main(argv + ["--runner=FnApiRunner"])


def _rows(out):
    from pipelines.colorize_archive import read_manifest

    return {
        os.path.relpath(r["input"], os.path.dirname(out)) if r["input"].startswith("/") else r["input"]: r
        for r in read_manifest(str(out))
    }


@pytest.fixture
def scans(tmp_path):
    d = tmp_path / "scans"
    for i in range(2):
        _png(str(d / f"p{i}.png"), seed=i, gray=True)
    return d


@pytest.mark.parametrize(
    "flag,words",
    [
        ("--tile=-1", "--tile -1 is out of range"),
        ("--work_side=-1", "--work_side"),
        ("--max_pixels=0", "--max_pixels 0"),
        ("--max_file_bytes=0", "--max_file_bytes 0"),
        ("--quality=0", "--quality 0"),
        ("--format=exe", "unknown output format 'exe'"),
        ("--refine=5000,0.1,4", "too wide"),
        ("--refine=a,b", "expected 'D,SIGMA"),
        ("--max_failed_fraction=2", "--max_failed_fraction"),
        ("--max_archive_depth=0", "--max_archive_depth"),
        ("--review=-3", "--review -3"),
        ("--mode=vivid", "no 'vivid' mode"),  # the regressor has one mode, faithful
        ("--chroma_gain=1.2", "a chroma gain or colourfulness target applies to models with a vivid mode"),
        ("--colourfulness=35", "a chroma gain or colourfulness target applies to models with a vivid mode"),
        ("--cast=0.5", "a chroma gain or colourfulness target applies to models with a vivid mode"),
        ("--cast=1.5", "--cast"),
    ],
)
def test_invalid_options_fail_at_launch_with_one_line(flag, words, scans, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}", flag]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "error:" in err and words in err, err
    assert not out.exists()  # nothing started


def _copy_model(model_dir, dest):
    shutil.copytree(model_dir, dest)
    return dest


def test_unusable_models_fail_at_launch_with_one_line(scans, model_dir, tmp_path, capsys):
    from colorize_tf.checksums import sha256_file

    out = tmp_path / "out"
    cases = {}
    cases["missing"] = tmp_path / "no_such_model"
    m = _copy_model(model_dir, tmp_path / "tampered")
    with open(m / "regressor.keras", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    cases["tampered"] = m
    m = _copy_model(model_dir, tmp_path / "wide_refine")
    meta = json.loads((m / "model.json").read_text())
    meta["refine"] = {"diameter": 100000, "sigma_color": 0.1, "sigma_space": 4.0, "scale": 1.0}
    (m / "model.json").write_text(json.dumps(meta))
    cases["wide_refine"] = m
    m = _copy_model(model_dir, tmp_path / "devzero")
    (m / "regressor.keras").unlink()
    os.symlink("/dev/zero", m / "regressor.keras")
    cases["devzero"] = m
    # a bundle whose file list points outside the bundle, and one naming a device
    for name, entry in (("escape", "../../../etc/passwd"), ("device", "root/zero")):
        b = tmp_path / name
        shutil.copytree(model_dir, b / "root")
        if name == "device":
            os.symlink("/dev/zero", b / "root" / "zero")
        (b / "bundle.json").write_text(
            json.dumps(
                {
                    "format": "colorize_tf.bundle",
                    "format_version": 1,
                    "params": {},
                    "layers": [],
                    "clusters": [],
                    "files": {
                        entry: "0" * 64,
                        "root/regressor.keras": sha256_file(str(b / "root" / "regressor.keras")),
                    },
                }
            )
        )
        cases[name] = b
    words = {
        "missing": "model.json missing",
        "tampered": "checksum",
        "wide_refine": "too wide",
        "devzero": "not a regular file",
        "escape": "not a plain relative path",
        "device": "leads outside",
    }
    for name, path in cases.items():
        assert _main([f"--input={scans}", f"--model={path}", f"--output={out}"]) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words[name] in err and f"--model {path}" in err, (name, err)
        assert not out.exists()


def test_collisions_get_distinct_names_and_previous_owners_keep_theirs(model_dir, tmp_path):
    src = tmp_path / "in"
    _png(str(src / "a.jpg"), seed=1)
    out = tmp_path / "out"
    assert _main([f"--input={src}", f"--model={model_dir}", f"--output={out}", "--format=png"]) == 0
    first = (out / "a.png").read_bytes()
    # a.png joins: a.jpg owns a.png from the previous run's manifest; a.png gets a hashed name
    _png(str(src / "a.png"), seed=2, gray=True)
    assert _main([f"--input={src}", f"--model={model_dir}", f"--output={out}", "--format=png"]) == 0
    rows = _rows(out)
    assert rows["in/a.jpg"]["status"] == "skipped" and rows["in/a.jpg"]["output_rel"] == "a.png"
    new = rows["in/a.png"]
    assert new["status"] == "done" and new["output_rel"].startswith("a~") and new["output_rel"].endswith(".png")
    assert "output renamed" in new["notes"] and "previous run" in new["notes"]
    assert (out / "a.png").read_bytes() == first and (out / new["output_rel"]).exists()
    # in a fresh output folder, the smallest key keeps the plain name: the same assignment every time
    out2 = tmp_path / "out2"
    assert _main([f"--input={src}", f"--model={model_dir}", f"--output={out2}", "--format=png"]) == 0
    rows2 = _rows(out2)
    assert rows2["in/a.jpg"]["output_rel"] == "a.png" and rows2["in/a.png"]["output_rel"] == new["output_rel"]


def test_output_inside_input_is_excluded_and_output_equal_to_input_refused(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "photos"
    _png(str(src / "one.png"), seed=3, gray=True)
    out = src / "colorized"
    for _ in range(2):  # the second run must not take the first run's outputs as inputs
        assert _main([f"--input={src}", f"--model={model_dir}", f"--output={out}"]) == 0
        assert list(_rows(out)) == ["one.png"]
    assert sorted(p.name for p in out.iterdir()) == ["_manifest", "one.png"]
    assert _main([f"--input={src}", f"--model={model_dir}", f"--output={src}/"]) == 2
    assert "is the input folder" in capsys.readouterr().err
    # the same with the input given as an absolute path and the output relative to the working folder
    os.chdir(tmp_path)
    assert _main([f"--input={src}", f"--model={model_dir}", "--output=photos/colorized"]) == 0
    assert list(_rows(out)) == ["one.png"] and _rows(out)["one.png"]["status"] == "skipped"


def test_only_own_temporaries_are_deleted(model_dir, scans, tmp_path):
    out = tmp_path / "out"
    (out / "_manifest" / "tmp-20200101T000000-dead00").mkdir(parents=True)
    (out / "_manifest" / "tmp-20200101T000000-dead00" / "half.png").write_bytes(b"partial output of a killed run")
    _png(str(out / "wedding.partial-1950.png"), seed=4)  # a user's file that only looks like a temporary
    _png(str(out / "notes" / "x.png.partial-abcd1234"), seed=5)
    before = {p: p.read_bytes() for p in out.rglob("*partial*") if p.is_file()}
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}"]) == 0
    assert all(p.read_bytes() == data for p, data in before.items())
    assert not (out / "_manifest" / "tmp-20200101T000000-dead00").exists()
    assert not [p for p in (out / "_manifest").iterdir() if p.name.startswith(("tmp-", "lock"))]


def test_one_run_per_output_folder_and_stale_locks_taken_over(model_dir, scans, tmp_path, capsys):
    import socket

    out = tmp_path / "out"
    (out / "_manifest").mkdir(parents=True)
    lock = out / "_manifest" / "lock.json"
    holder = subprocess.Popen(["sleep", "120"])
    try:
        lock.write_text(
            json.dumps({"run_id": "other", "host": socket.gethostname(), "pid": holder.pid, "heartbeat": time.time()})
        )
        assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}"]) == 2
        err = capsys.readouterr().err
        assert "another run (other" in err and "lock.json" in err and not list(out.glob("*.png"))
    finally:
        holder.kill()
        holder.wait()
    # a lock from another host is honoured while its heartbeat is fresh, taken over once it is silent
    lock.write_text(json.dumps({"run_id": "far", "host": "elsewhere", "pid": 1, "heartbeat": time.time()}))
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}"]) == 2
    assert "another run (far" in capsys.readouterr().err
    lock.write_text(json.dumps({"run_id": "far", "host": "elsewhere", "pid": 1, "heartbeat": time.time() - 7200}))
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}", "--lock_stale_minutes=60"]) == 0
    # a live pid on this host with a silent heartbeat is another process that reused the pid
    lock.write_text(
        json.dumps(
            {"run_id": "reused", "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time() - 7200}
        )
    )
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}", "--lock_stale_minutes=60"]) == 0
    (out / "p0.png").unlink()
    (out / "p1.png").unlink()
    # the same-host holder is gone (killed above): its lock is stale although its heartbeat is fresh
    lock.write_text(
        json.dumps({"run_id": "other", "host": socket.gethostname(), "pid": holder.pid, "heartbeat": time.time()})
    )
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["p0.png", "p1.png"] and not lock.exists()


def test_failure_threshold_exits_non_zero_after_writing_the_manifest(model_dir, scans, tmp_path, capsys):
    for i in range(2):
        (scans / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}"]) == 3  # 2 of 4 failed > 10 %
    err = capsys.readouterr().err
    assert "2 of 4 processed inputs failed" in err and "--max_failed_fraction 0.1" in err
    rows = _rows(out)
    assert sorted(r["status"] for r in rows.values()) == ["done", "done", "failed", "failed"]
    assert all("corrupt PNG" in r["error"] for r in rows.values() if r["status"] == "failed")
    assert (
        _main([f"--input={scans}", f"--model={model_dir}", f"--output={tmp_path / 'o2'}", "--max_failed_fraction=0.5"])
        == 0
    )


def test_symlinks_refused_unless_followed(model_dir, scans, tmp_path):
    outside = tmp_path / "elsewhere"
    _png(str(outside / "secret.png"), seed=6)
    os.symlink(outside / "secret.png", scans / "link.png")
    out = tmp_path / "out"
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out}", "--max_failed_fraction=1"]) == 0
    rows = _rows(out)
    assert rows["scans/link.png"]["status"] == "failed" and "symbolic link refused" in rows["scans/link.png"]["error"]
    out2 = tmp_path / "out2"
    assert _main([f"--input={scans}", f"--model={model_dir}", f"--output={out2}", "--follow_symlinks"]) == 0
    assert _rows(out2)["scans/link.png"]["status"] == "done" and (out2 / "link.png").exists()


def test_zip_members_spread_over_a_bounded_number_of_reading_units():
    from transforms.colorize import ZIP_UNITS, reading_unit

    assert len({reading_unit("a.zip", i, 100000) for i in range(100000)}) <= ZIP_UNITS  # directory read <= 256x
    assert len({reading_unit("a.zip", i, 10) for i in range(10)}) == 10  # small zips: one member per worker task
    assert {reading_unit("a.tar.gz", i, 10) for i in range(10)} == {"a.tar.gz"}  # a tar is one stream


def test_a_list_naming_a_file_twice_reads_it_once(model_dir, scans, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("scans/p0.png\nscans/p1.png\nscans/p0.png\n")
    out = tmp_path / "out"
    assert _main([f"--input={lst}", f"--model={model_dir}", f"--output={out}"]) == 0
    from pipelines.colorize_archive import read_manifest

    got = sorted((os.path.basename(r["input"]), r["status"], r["error"]) for r in read_manifest(str(out)))
    assert got == [
        ("p0.png", "done", ""),
        ("p0.png", "skipped", "skipped: listed more than once (read once)"),
        ("p1.png", "done", ""),
    ]
    assert sorted(str(p.relative_to(out)) for p in out.glob("scans/*.png")) == ["scans/p0.png", "scans/p1.png"]
