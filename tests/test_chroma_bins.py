"""Colorization as classification (Zhang et al.): bins, soft encoding, rebalancing, annealed mean — against
hand-computed values."""

import numpy as np
import pytest

from colorize_tf import chroma_bins as B
from colorize_tf.color import rgb_to_yuv


def test_gamut_and_bins_cover_every_reachable_colour():
    corners = rgb_to_yuv(np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32))[:, 1:]
    assert B.in_gamut(corners).all() and B.in_gamut(np.zeros((1, 2))).all()
    assert not B.in_gamut(np.array([[0.436, 0.615], [-0.436, -0.615]])).any()  # no RGB has both extremes
    centres = B.bin_centres(0.04)
    assert 200 < len(centres) < 700 and B.in_gamut(centres).all()
    assert np.abs(centres).sum(1).min() == 0  # gray is a class
    rgb = np.random.default_rng(0).uniform(0, 1, (5000, 3)).astype(np.float32)
    uv = rgb_to_yuv(rgb)[:, 1:]
    nearest = np.sqrt(((uv[:, None] - centres[None]) ** 2).sum(-1)).min(1)
    assert nearest.max() < 0.04  # within one bin side of a class


def test_soft_encoding_matches_hand_computed_weights():
    centres = B.bin_centres(0.04)
    zero = int(np.argmin(np.abs(centres).sum(1)))
    idx, w = B.soft_encode(np.zeros((1, 2)), centres, k=5)  # sigma = half the bin side
    assert idx[0, 0] == zero and np.isclose(w.sum(), 1)
    # the 4 neighbours sit at distance 0.04 = 2 sigma: weight exp(-2) relative to the centre's
    np.testing.assert_allclose(w[0], np.r_[1, [np.exp(-2.0)] * 4] / (1 + 4 * np.exp(-2.0)), rtol=1e-4)
    one = B.soft_encode(centres[:3], centres, k=1)
    np.testing.assert_array_equal(one[0][:, 0], [0, 1, 2]) and np.testing.assert_array_equal(one[1], 1.0)
    d = B.dense(idx, w, len(centres))
    assert d.shape == (1, len(centres)) and np.isclose(d.sum(), 1) and d[0, zero] == w[0, 0]


def test_rebalancing_weights_by_hand():
    w = B.rebalancing_weights([3, 1], lam=0.5)
    # p = (.75, .25); 1 / (.5 p + .25) = (1.6, 2.667); normalised so that sum(p w) = 1
    np.testing.assert_allclose(w, np.array([1.6, 8 / 3]) / (0.75 * 1.6 + 0.25 * 8 / 3), rtol=1e-5)
    assert np.isclose((np.array([0.75, 0.25]) * w).sum(), 1)
    np.testing.assert_allclose(B.rebalancing_weights([5, 1, 0], lam=1.0), 1.0)  # lam = 1: no rebalancing
    rare_first = B.rebalancing_weights([1, 10, 100], lam=0.0)
    assert rare_first[0] > rare_first[1] > rare_first[2]
    centres = B.bin_centres(0.04)
    smooth = B.rebalancing_weights(np.eye(len(centres))[0] * 10 + 1, smooth=0.05, centres=centres)
    assert smooth.shape == (len(centres),) and np.all(smooth > 0)


def test_annealed_mean_between_mode_and_mean():
    probs = np.array([0.5, 0.3, 0.2])
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(B.annealed_mean(probs, centres, 1.0), [0.3, 0.2], rtol=1e-6)  # the mean
    np.testing.assert_allclose(B.annealed_mean(probs, centres, 0.01), [0.0, 0.0], atol=1e-6)  # the mode
    np.testing.assert_allclose(B.annealed_mean(probs, centres, 0.5), [0.09 / 0.38, 0.04 / 0.38], rtol=1e-6)
    batch = B.annealed_mean(np.tile(probs, (4, 5, 1)), centres)
    assert batch.shape == (4, 5, 2)
    with pytest.raises(ValueError):
        B.annealed_mean(probs, centres, 0.0)
