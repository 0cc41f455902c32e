import numpy as np

from colorize_tf.gist import gabor_bank, gist


def stripes(axis, period=8, n=200):
    yy, xx = np.mgrid[0:n, 0:n]
    t = xx if axis == "x" else yy
    return (0.5 + 0.4 * np.sin(2 * np.pi * t / period)).astype(np.float32)


def test_shape_and_layout():
    g = gist(np.random.default_rng(0).random((90, 120)).astype(np.float32))
    assert g.shape == (512,) and g.dtype == np.float32 and np.all(g >= 0)
    bank = gabor_bank(128)
    assert bank.shape == (32, 128, 128) and np.isclose(bank.max(), 1, atol=1e-3)
    assert bank[:, 0, 0].max() < 0.05  # (almost) no response at zero frequency: exp(-3.5) at most


def test_orientation_and_scale_selectivity():
    # intensity varying along x has its energy at orientation 0, along y at orientation 4 (pi/2)
    gx = gist(stripes("x")).reshape(4, 8, 16).mean(-1)
    gy = gist(stripes("y")).reshape(4, 8, 16).mean(-1)
    assert np.argmax(gx.max(0)) == 0 and np.argmax(gy.max(0)) == 4
    # a finer pattern peaks at a finer (lower index) scale
    fine = gist(stripes("x", period=4)).reshape(4, 8, 16).mean(-1)
    coarse = gist(stripes("x", period=24)).reshape(4, 8, 16).mean(-1)
    assert np.argmax(fine[:, 0]) < np.argmax(coarse[:, 0])


def test_spatial_grid():
    img = np.full((128, 128), 0.5, np.float32)
    img[:32, :] = stripes("x", n=128)[:32, :]  # texture only in the top quarter
    g = gist(img).reshape(32, 4, 4)
    top, rest = g[:, 0, :].mean(), g[:, 2:, :].mean()
    assert top > 5 * rest
