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
