"""Comparator baselines: dense HOG definition, and each family trains and predicts on a tiny set."""

import json
import os

import numpy as np
import pytest
from conftest import synthetic_scene, write_png
from skimage.feature import hog


def test_dense_hog_matches_scikit_image():
    from colorize_tf.baselines.hog import dense_hog

    rng = np.random.default_rng(0)
    g = np.full((64, 64), 0.5, np.float32)
    y, x = 30, 34
    g[y - 6 : y + 6, x - 6 : x + 6] = rng.random((12, 12))  # flat ring: block borders agree with skimage's
    ref = hog(
        g[y - 8 : y + 8, x - 8 : x + 8],
        orientations=9,
        pixels_per_cell=(8, 8),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        feature_vector=True,
    )
    assert np.abs(ref - dense_hog(g)[y, x]).max() < 1e-5


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory):
    from pipelines import extract_features

    root = tmp_path_factory.mktemp("baselines")
    imgs = root / "images"
    imgs.mkdir()
    for i in range(6):
        write_png(str(imgs / f"s{i}.png"), synthetic_scene(64, 80, seed=300 + i))
    out = {}
    for name, extra in (("hog", ["--blocks=luma,hog"]), ("patch3", ["--blocks=patch", "--patch_size=3"])):
        out[name] = root / name
        extract_features.run(
            [
                f"--input={imgs}",
                f"--output={out[name]}",
                "--samples_per_image=800",
                "--gist_size=0",
                "--runner=FnApiRunner",
            ]
            + extra
        )
    return root, out


@pytest.mark.parametrize(
    "family,features,dim", [("mean_chroma", "patch3", 9), ("hog_svr", "hog", 37), ("richart", "patch3", 9)]
)
def test_baseline_trains_and_predicts(tiny_sets, family, features, dim):
    from colorize_tf.color import luminance
    from colorize_tf.metrics import gray_baseline, psnr
    from colorize_tf.registry import load_colorizer
    from pipelines import train

    root, feats = tiny_sets
    model = root / f"model_{family}"
    train.run(
        [
            f"--features={feats[features]}",
            f"--output={model}",
            f"--family={family}",
            "--epochs=5",
            "--val_fraction=0.2",
            "--refine=0,0,0",
            "--runner=FnApiRunner",
        ]
    )
    meta = json.loads((model / "model.json").read_text())
    assert meta["family"] == family and meta["input_dim"] == dim
    col = load_colorizer(str(model))
    truth = synthetic_scene(64, 80, seed=399)
    out = col.colorize(luminance(truth))
    rgb, uv = out.rgb, out.uv
    assert rgb.shape == (64, 80, 3)
    if family == "mean_chroma":
        assert np.allclose(uv, uv[0, 0]) and np.abs(uv[0, 0]).max() > 0.01  # one constant, non-gray colour
    else:
        assert psnr(rgb, truth) > psnr(gray_baseline(truth), truth)  # learned something on this easy set
    if family == "richart":
        assert len(np.unique(uv.reshape(-1, 2).round(5), axis=0)) <= 9  # at most 9 colour classes
        assert os.path.exists(model / "classifier.keras")
