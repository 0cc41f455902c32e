"""The NumPy runtime gives the Keras model's outputs."""

import dataclasses

import numpy as np
import pytest


@pytest.mark.parametrize(
    "encoder,loss,hidden,decoder",
    [
        ("own", "l2", 0, False),
        ("parser", "joint", 0, False),
        ("own", "joint", 16, False),
        ("parser", "joint", 16, True),
    ],
)
def test_numpy_runtime_matches_keras(encoder, loss, hidden, decoder):
    import keras

    from colorize_tf.fusion import FusionConfig, build_model, parser_encoder
    from colorize_tf.npnet import NumpyNet, export
    from colorize_tf.parser import build_parser

    keras.utils.set_random_seed(3)
    config = FusionConfig(base=8, encoder=encoder, loss=loss, scenes=("a", "b"), scene_weight=0.1, bins_hidden=hidden)
    config = dataclasses.replace(config, bins_decoder=decoder)
    enc = parser_encoder(build_parser(5, base=8)) if encoder == "parser" else None
    model = build_model(config, n_bins=31, encoder=enc)
    rng = np.random.default_rng(0)
    for layer in model.layers + (enc.layers if enc else []):  # non-trivial statistics and biases everywhere
        ws = layer.get_weights()
        if ws and "encoder" != layer.name:
            layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(np.float32) * (w.ndim == 1) for w in ws])
            if "bn" in layer.name:  # moving variance must stay positive
                ws = layer.get_weights()
                ws[-1] = np.abs(ws[-1]) + 0.5
                layer.set_weights(ws)
    net = NumpyNet.load(export(model))
    for h, w in ((64, 96), (96, 64)):
        x = rng.uniform(0, 1, (1, h, w, 1)).astype(np.float32)
        want = model(x, training=False)
        want = [t.numpy()[0] for t in want] if isinstance(want, (list, tuple)) else [want.numpy()[0]]
        got = net(x[0])
        got = got if isinstance(got, list) else [got]
        assert len(got) == len(want) == len(config.heads)
        for g, k in zip(got, want):
            assert g.shape == k.shape
            np.testing.assert_allclose(g, k, rtol=1e-3, atol=1e-4)


def test_conv_same_padding_and_strides_match_tensorflow():
    import tensorflow as tf

    from colorize_tf.npnet import conv2d, resize_bilinear

    rng = np.random.default_rng(1)
    for h, w, s in ((9, 12, 2), (10, 7, 2), (8, 8, 1)):
        x = rng.normal(size=(h, w, 3)).astype(np.float32)
        k = rng.normal(size=(3, 3, 3, 5)).astype(np.float32)
        want = tf.nn.conv2d(x[None], k, s, "SAME").numpy()[0]
        np.testing.assert_allclose(conv2d(x, k, strides=(s, s)), want, rtol=1e-4, atol=1e-5)
    x = rng.normal(size=(5, 7, 300)).astype(np.float32)  # more channels than one OpenCV call takes
    want = tf.image.resize(x[None], (10, 14), "bilinear").numpy()[0]
    np.testing.assert_allclose(resize_bilinear(x, 10, 14), want, rtol=1e-4, atol=1e-5)
    want = tf.image.resize(x[None], (3, 4), "bilinear").numpy()[0]
    np.testing.assert_allclose(resize_bilinear(x, 3, 4), want, rtol=1e-4, atol=1e-5)
