"""The general-purpose model shipped in the package (colorize_tf/models/general)."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import ROOT

from colorize_tf.registry import SHIPPED_MODEL, resolve_model


def test_shipped_model_is_complete_small_and_checksummed():
    from colorize_tf.checksums import sha256_file

    path = resolve_model(SHIPPED_MODEL)
    assert path == os.path.join(ROOT, "colorize_tf", "models", "general")
    meta = json.load(open(os.path.join(path, "model.json")))
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    assert size <= 25e6, size
    for name, digest in meta["files"].items():
        assert sha256_file(os.path.join(path, name)) == digest
    card = open(os.path.join(path, "MODEL.md")).read()
    for needed in ("Training data", "research use", "Recipe", "python -m pipelines.release", "Known limits"):
        assert needed in card
    release = json.load(open(os.path.join(path, "release.json")))
    assert set(release["tables"]) == {"faithful", "vivid"} and release["commit"]
    with pytest.raises(FileNotFoundError, match="no shipped model 'nope'"):
        resolve_model("shipped:nope")


def test_shipped_model_colorizes_a_package_photo_in_both_modes():
    from colorize_tf.color import luminance
    from colorize_tf.metrics import colourfulness, gray_baseline, psnr
    from colorize_tf.registry import ColorizeSettings, load_colorizer
    from colorize_tf.samples import shipped_image

    truth = shipped_image("coffee") / 255.0
    gray = luminance(truth)
    default = load_colorizer(SHIPPED_MODEL, ColorizeSettings(tile=0))
    assert set(default.modes) == {"faithful", "vivid"}
    outs = {}
    for mode in ("faithful", "vivid"):
        col = load_colorizer(SHIPPED_MODEL, ColorizeSettings(tile=0, mode=mode))
        out = col.colorize(gray)
        np.testing.assert_allclose(luminance(out.rgb), gray, atol=2e-3)  # Y kept
        assert 0 < out.confidence < 1
        outs[mode] = out.rgb
    assert psnr(outs["faithful"], truth) > psnr(gray_baseline(truth), truth)
    assert colourfulness(outs["faithful"]) > 0.1 * colourfulness(truth)
    # another answer: the uv head saturated towards a colourfulness (this photo: x3.9 of a largest 4)
    assert np.abs(outs["vivid"] - outs["faithful"]).mean() > 1e-3
    assert psnr(outs["vivid"], truth) > psnr(gray_baseline(truth), truth) + 0.5  # above gray (measured +4.68)
    assert colourfulness(outs["vivid"]) > 0.3 * colourfulness(truth)  # not a gray head (measured 0.51)


def test_colorize_command_uses_the_shipped_model_and_stamps_provenance(tmp_path):
    from PIL import Image

    from colorize_tf.provenance import read_back
    from colorize_tf.samples import shipped_image
    from pipelines import colorize

    src = tmp_path / "camera.jpg"
    Image.fromarray(shipped_image("camera")).save(src, quality=92)
    assert colorize.main([str(src), "--output", str(tmp_path / "out")]) == 0
    data = (tmp_path / "out" / "camera.jpg").read_bytes()
    fields = read_back(data)
    meta_sha = __import__("hashlib").sha256(open(os.path.join(resolve_model(SHIPPED_MODEL), "model.json"), "rb").read())
    assert fields["Model"] == "general" and fields["ModelSHA256"] == meta_sha.hexdigest()
    assert fields["Colorized"] == "True" and "colorize-tf" in fields["Software"]
    assert Image.open(tmp_path / "out" / "camera.jpg").mode == "RGB"
    # one photo from the command line: the NumPy export, TensorFlow never imported
    probe = (
        "import sys; from pipelines import colorize; "
        f"rc = colorize.main([{str(src)!r}, '--output', {str(tmp_path / 'out2')!r}]); "
        "print(rc, 'tensorflow' in sys.modules, 'apache_beam' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert run.stdout.split()[-3:] == ["0", "False", "False"], run.stderr[-2000:]
    assert (
        "shipped:general"
        in subprocess.run(
            [sys.executable, "-m", "pipelines.colorize", "--help"], capture_output=True, text=True, cwd=ROOT
        ).stdout
    )


@pytest.mark.slow
def test_wheel_and_sdist_carry_the_model(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("colorize_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("fusion.keras", "fusion.npz", "model.json", "MODEL.md", "release.json"):
        assert f"colorize_tf/models/general/{f}" in names
