"""benchmarks/table.py: the quality tables of the README and notes."""

import json

import pytest

from benchmarks import table


def summary(psnr, gain, ci, gray=22.7, images=200, cf_ratio=0.5, seconds_256=0.05):
    return {
        "images": images,
        "gray": {"mean_psnr": gray, "mean_l_uv": 0.02},
        "model": {
            "mean_psnr": psnr,
            "mean_l_uv": 0.0125,
            "gain": {"mean": gain, "ci95": list(ci)},
            "colourfulness_ratio": cf_ratio,
        },
        "seconds_256": seconds_256,
    }


def test_rows_format_every_column_and_refuse_mixed_image_sets(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"training": {"seconds": 600}}))
    a = dict(summary(25.2, 2.5, (2.0, 3.0)), model_dir=str(model))
    b = summary(24.0, 1.3, (0.9, 1.6), cf_ratio=0.86, seconds_256=None)
    lines = table.rows([("paper", a), ("fusion", b)], {"fusion": "75"})
    assert lines[2] == "| gray (U = V = 0) | 22.70 | – | 0.02000 | 0 | – | – |"
    assert lines[3] == "| paper | 25.20 | +2.50 [+2.00, +3.00] | 0.01250 | 0.50 | 0.050 | 10 |"
    assert lines[4] == "| fusion | 24.00 | +1.30 [+0.90, +1.60] | 0.01250 | 0.86 | – | 75 |"
    assert table._pair("bundle k=1, T=0.38=runs/q.json") == ("bundle k=1, T=0.38", "runs/q.json")
    with pytest.raises(ValueError, match="other images"):
        table.rows([("paper", a), ("elsewhere", summary(25.0, 1.0, (0.5, 1.5), gray=21.0))])


def test_archive_throughput_reports_no_steady_rate_for_a_set_within_start_up_noise():
    from benchmarks.archive_throughput import steady_rate

    assert steady_rate(41, 10.0, 30.0) == pytest.approx(2.0)  # 40 more images in 20 s
    assert steady_rate(5, 10.0, 10.4) is None  # 0.4 s apart: noise of the start-up, not a rate
    assert steady_rate(5, 10.0, 9.0) is None  # the larger set faster: never a negative or huge rate
    assert steady_rate(1, 10.0, 20.0) is None


def test_blend_scores_pair_two_models_and_score_their_average(tmp_path):
    import numpy as np
    from PIL import Image

    from benchmarks.blend import blend_scores
    from colorize_tf.color import recombine
    from colorize_tf.colorize import Colorized, Timing
    from colorize_tf.metrics import psnr, uv_of
    from colorize_tf.refine import RefineParams

    rng = np.random.default_rng(0)
    rgb = np.clip(rng.normal([0.6, 0.4, 0.3], 0.1, (24, 32, 3)), 0, 1)
    path = str(tmp_path / "photo.png")
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(str(tmp_path / "gray.png"))  # no colour: left out
    truth = np.asarray(Image.open(path), np.float32) / 255

    class Constant:  # predicts one chroma everywhere, no refinement
        refine = RefineParams(0, 0.1, 1.0)

        def __init__(self, uv):
            self.uv = np.float32(uv)

        def chroma(self, gray):
            return Colorized(None, np.broadcast_to(self.uv, gray.shape + (2,)).copy(), None, Timing())

    true_mean = uv_of(truth).reshape(-1, 2).mean(0)
    a, b = Constant(true_mean + [0.04, -0.03]), Constant(true_mean - [0.04, -0.03])
    rows, skipped = blend_scores(a, b, [path, str(tmp_path / "gray.png")], [0.0, 0.5, 1.0])
    assert skipped == [str(tmp_path / "gray.png")] and len(rows) == 1
    y = 0.299 * truth[..., 0] + 0.587 * truth[..., 1] + 0.114 * truth[..., 2]  # BT.601, as load_image
    expect = [
        psnr(recombine(y, np.broadcast_to(np.float32(uv), y.shape + (2,))), truth) for uv in (a.uv, true_mean, b.uv)
    ]
    np.testing.assert_allclose(rows[0]["psnr"], expect, atol=0.05)
    assert rows[0]["psnr"][1] > max(rows[0]["psnr"][0], rows[0]["psnr"][2]) + 1  # opposite errors cancel
    assert rows[0]["psnr_gray"] < rows[0]["psnr"][1]
