import numpy as np
import pytest

from colorize_tf import color, metrics


def test_psnr_hand_computed():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 16  # one sample off by 16: MSE = 256 / 48
    assert np.isclose(metrics.psnr(a, b), 10 * np.log10(255**2 / (256 / 48)))
    assert metrics.psnr(a, a) == float("inf")


def test_l_uv_hand_computed():
    true = np.zeros((2, 3, 2), np.float32)
    pred = true.copy()
    pred[0, 0] = [0.436, 0.0]  # normalised U error 1 at one pixel
    pred[1, 2] = [0.0, -0.615 / 2]  # normalised V error 0.5
    assert np.isclose(metrics.l_uv(pred, true), (1 + 0.25) / (2 * 6))


def test_gray_baseline_has_no_chroma():
    rgb = np.random.default_rng(0).random((5, 5, 3)).astype(np.float32)
    g = metrics.gray_baseline(rgb)
    assert np.allclose(metrics.uv_of(g), 0, atol=1e-5)


def test_histogram_png(tmp_path):
    from PIL import Image

    from colorize_tf.plots import histogram_png

    rng = np.random.default_rng(0)
    path = histogram_png({"a": rng.normal(22, 2, 50), "b": rng.normal(25, 2, 50)}, str(tmp_path / "h.png"))
    img = Image.open(path)
    assert img.format == "PNG" and img.size == (720, 420)
    assert len(np.unique(np.asarray(img).reshape(-1, 3), axis=0)) > 3  # something was drawn


def test_refinement_scale_and_parse():
    from colorize_tf.refine import RefineParams, joint_bilateral

    rng = np.random.default_rng(1)
    gray = np.zeros((96, 128), np.float32)
    gray[:, 64:] = 1.0
    smooth = np.zeros((96, 128, 2), np.float32)
    smooth[:, :64] = [0.1, -0.1]
    smooth[:, 64:] = [-0.1, 0.2]
    noisy = smooth + rng.normal(0, 0.05, smooth.shape).astype(np.float32)
    full = joint_bilateral(gray, noisy, RefineParams(21, 0.1, 10.0))
    half = joint_bilateral(gray, noisy, RefineParams(21, 0.1, 10.0, 0.5))
    assert half.shape == noisy.shape
    # both remove most of the noise; the half-resolution filter is close to the full one away from the edge
    assert np.abs(full - smooth).mean() < 0.3 * np.abs(noisy - smooth).mean()
    assert np.abs(half[:, :56] - full[:, :56]).mean() < 0.01
    p = RefineParams.parse("61,0.05,40,0.5")
    assert p == RefineParams(61, 0.05, 40.0, 0.5) and p.cost < RefineParams(61, 0.05, 40.0).cost / 10
    assert RefineParams.parse(None) is None and not RefineParams.parse("0,0,0").enabled


def test_colourfulness_matches_hasler_suesstrunk():
    from colorize_tf.metrics import colourfulness

    gray = np.full((8, 8, 3), 0.5, np.float32)
    assert colourfulness(gray) == 0.0
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255  # rg = 255, yb = 127.5, no spread: M = 0.3 * sqrt(255^2 + 127.5^2)
    assert np.isclose(colourfulness(red), 0.3 * np.hypot(255, 127.5))
    half = red.copy()
    half[:, :4] = 0  # half black: rg and yb spread
    rg, yb = np.r_[np.zeros(32), np.full(32, 255.0)], np.r_[np.zeros(32), np.full(32, 127.5)]
    assert np.isclose(colourfulness(half), np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_images():
    from colorize_tf.metrics import bootstrap_interval

    rng = np.random.default_rng(0)
    small = rng.normal(0.5, 1.0, 30)
    large = rng.normal(0.5, 1.0, 3000)
    m, lo, hi = bootstrap_interval(small)
    assert lo < m < hi and np.isclose(m, small.mean())
    _, lo2, hi2 = bootstrap_interval(large)
    assert (hi2 - lo2) < (hi - lo) / 5 and lo2 < 0.5 < hi2


def test_calibrate_gain_restores_halved_chroma_and_refuses_wrong_colours():
    from conftest import synthetic_scene

    from colorize_tf.color import rgb_to_yuv
    from colorize_tf.metrics import colourfulness
    from colorize_tf.tuning import calibrate_gain

    truths = [synthetic_scene(48, 64, seed=s) for s in range(3)]
    grays = [rgb_to_yuv(t)[..., 0] for t in truths]
    half = [0.5 * rgb_to_yuv(t)[..., 1:] for t in truths]  # the right colours, half as saturated
    gain, table = calibrate_gain(grays, truths, half, target=0.85)
    by_gain = {row["gain"]: row for row in table}
    assert [row["gain"] for row in table][:3] == [1.0, 1.1, 1.2] and by_gain[2.5]["gain"] == 2.5
    truth_cf = np.mean([colourfulness(t) for t in truths])
    assert by_gain[1.0]["colourfulness_ratio"] == pytest.approx(
        np.mean([colourfulness(color.recombine(g, uv)) for g, uv in zip(grays, half)]) / truth_cf, rel=1e-6
    )
    assert by_gain[2.0]["colourfulness_ratio"] == pytest.approx(1.0, abs=0.02)  # the truth's chroma again
    assert by_gain[2.0]["mean_psnr"] > 50  # (the exact colours, up to float rounding)
    reach = [g for g, row in by_gain.items() if row["colourfulness_ratio"] >= 0.85]
    assert gain == min(reach) and 1.6 <= gain <= 1.8  # the smallest gain reaching 0.85x, near 0.85 / 0.5
    assert calibrate_gain(grays, truths, half, target=2.0)[0] == 2.5  # out of reach: the most colourful above gray
    wrong = [-uv for uv in half]  # opposite hues: every gain is below the gray image
    gain, table = calibrate_gain(grays, truths, wrong, target=0.85)
    assert gain == 1.0 and all(row["mean_psnr"] < row["gray_psnr"] for row in table)
