import numpy as np

from colorize_tf import metrics


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
