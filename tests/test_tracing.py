"""Inference is traced once per working shape and never again (no retracing warnings)."""

import logging

import numpy as np


def test_one_trace_per_shape_and_no_retracing_warning(caplog):
    from colorize_tf.fusion import FusionConfig, build_model
    from colorize_tf.tracing import Traced

    model = build_model(FusionConfig(base=8))
    fn = Traced(lambda t: model(t, training=False))
    rng = np.random.default_rng(0)
    shapes = [(1, 64, 96, 1), (1, 96, 64, 1), (1, 64, 64, 1)]
    with caplog.at_level(logging.WARNING):
        for _ in range(4):
            for shape in shapes:
                x = rng.uniform(0, 1, shape).astype(np.float32)
                np.testing.assert_allclose(fn(x).numpy(), model(x, training=False).numpy(), atol=1e-5)
    assert fn.traces == 3
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    rows = Traced(lambda t: t * 2.0, any_rows=True)  # per-pixel models: any number of rows, one trace
    for n in (1, 7, 300):
        assert rows(np.ones((n, 5), np.float32)).shape == (n, 5)
    assert rows.traces == 1
