"""The release recipe's pure parts: training lists, choices on validation, the model card."""

import json
import os

import pytest
from conftest import SHARED

from colorize_tf import release


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "people")), reason="../shared data absent")
def test_training_lists_hold_every_colour_set_and_keep_tests_out():
    train, tests = release.training_lists(SHARED)
    counts = {s: len(ps) for s, ps in release.by_source(train).items()}
    assert counts == {
        "siftflow": 2488,
        "stanford_background": 572,
        "imagenet_sample": 789,
        "people": 1000,
        "interiors": 1189,
    }
    assert {k: len(v) for k, v in tests.items()} == {"siftflow_test": 200, "stanford_test": 143}
    assert not set(train) & (set(tests["siftflow_test"]) | set(tests["stanford_test"]))
    assert all(os.path.isfile(os.path.join(SHARED, p)) for p in train[:: len(train) // 50])


def test_training_lists_need_every_source(tmp_path):
    with pytest.raises((FileNotFoundError, ValueError)):
        release.training_lists(str(tmp_path))


def test_macro_gain_weighs_sources_equally(tmp_path):
    root = str(tmp_path)
    records = [{"path": f"{root}/people/images/{i}.jpg", "psnr": 21.0, "psnr_gray": 20.0} for i in range(9)]
    records.append({"path": f"{root}/interiors/images/0.jpg", "psnr": 19.0, "psnr_gray": 20.0})
    macro, per_source = release.macro_gain(records, root)
    assert per_source == {"interiors": -1.0, "people": 1.0}
    assert macro == 0.0  # the per-image mean would be +0.8: the small source's loss is not hidden


def test_vivid_setting_choice():
    r = {
        (0.3, 1.0): {"gain": 1.0, "ci_low": 0.5, "colourfulness_ratio": 0.9},
        (0.38, 1.0): {"gain": 1.2, "ci_low": 0.7, "colourfulness_ratio": 0.86},
        (0.38, 1.3): {"gain": 1.4, "ci_low": 0.9, "colourfulness_ratio": 0.7},
    }
    assert release.choose_vivid(r) == (0.38, 1.0)  # the best PSNR among those at >= 0.85x colourfulness
    r[(0.38, 1.0)]["colourfulness_ratio"] = 0.8
    r[(0.3, 1.0)]["colourfulness_ratio"] = 0.84
    assert release.choose_vivid(r) == (0.3, 1.0)  # none reaches: the most colourful above gray
    r[(0.3, 1.0)]["ci_low"] = -0.1
    assert release.choose_vivid(r) == (0.38, 1.0)
    r[(0.38, 1.6)] = {"gain": -0.5, "ci_low": -0.9, "colourfulness_ratio": 0.88}
    assert release.choose_vivid(r) == (0.38, 1.6)  # the only one reaching the target: colour before PSNR
    del r[(0.38, 1.6)]
    assert release.choose_vivid(r, floor=0.8) == (0.3, 1.0)  # (0.38, 1) is no more colourful than faithful:
    # of the rest none has an interval above 0, so the most colourful with a mean gain above 0
    for v in r.values():
        v["ci_low"] = -1.0
    assert release.choose_vivid(r) == (0.3, 1.0)  # no interval above 0: the most colourful with a gain
    for v in r.values():
        v["gain"] -= 2.0
    assert release.choose_vivid(r) == (0.38, 1.3)  # none above gray: the best PSNR
    r[(0.38, 1.3)]["ci_low"] = 0.1
    r[(0.38, 1.3)]["gain"] = 0.5
    assert release.choose_vivid(r) == (0.38, 1.3)
    # the one above gray is grayer than faithful, the more colourful ones below gray: the best PSNR
    assert release.choose_vivid(r, floor=0.75) == (0.38, 1.3)
    r[(0.3, 1.0)]["gain"] = 0.2
    assert release.choose_vivid(r, floor=0.75) == (0.3, 1.0)  # more colourful than faithful and above gray
    mixed = {  # the faithful head saturated competes under the same rule
        (0.38, 1.1): {"gain": 0.5, "ci_low": 0.2, "colourfulness_ratio": 0.68},
        ("uv", 1.5): {"gain": 1.1, "ci_low": 0.8, "colourfulness_ratio": 0.70},
        ("uv", 1.9): {"gain": 0.2, "ci_low": -0.1, "colourfulness_ratio": 0.87},
    }
    assert release.choose_vivid(mixed, floor=0.47) == ("uv", 1.9)  # reaches 0.85
    mixed[("uv", 1.9)]["colourfulness_ratio"] = 0.8
    assert release.choose_vivid(mixed, floor=0.47) == ("uv", 1.5)  # else the most colourful above gray
    same = {(0.38, 1.0): dict(r[(0.38, 1.3)]), (0.38, 1.3): dict(r[(0.38, 1.3)])}
    assert release.choose_vivid(same) == (0.38, 1.0)  # a tie goes to the smaller gain
    with pytest.raises(ValueError):
        release.choose_vivid({})


def test_vivid_choice_asks_for_the_target_on_every_source():
    r = {  # the validation release's pattern: a constant gain is colourful on average, not on people
        ("uv", 2.1): {
            "gain": 0.17,
            "ci_low": -0.18,
            "colourfulness_ratio": 0.91,
            "min_source_ratio": 0.59,
            "macro_gain": 0.11,
        },
        ("uv", 3.0): {
            "gain": -1.2,
            "ci_low": -1.5,
            "colourfulness_ratio": 1.2,
            "min_source_ratio": 0.83,
            "macro_gain": -1.3,
        },
        ("uv", 4.0, 35.0): {
            "gain": -0.6,
            "ci_low": -0.9,
            "colourfulness_ratio": 0.95,
            "min_source_ratio": 0.85,
            "macro_gain": -1.0,
        },
        ("uv", 4.0, 40.0): {
            "gain": -0.9,
            "ci_low": -1.2,
            "colourfulness_ratio": 1.05,
            "min_source_ratio": 0.93,
            "macro_gain": -1.4,
        },
    }
    assert release.choose_vivid(r, floor=0.45) == ("uv", 4.0, 35.0)  # on every source, the best mean over them
    r[("uv", 4.0, 40.0)]["macro_gain"] = -0.9  # ranked by the mean over sources, not the pooled mean
    assert release.choose_vivid(r, floor=0.45) == ("uv", 4.0, 40.0)
    del r[("uv", 4.0, 35.0)], r[("uv", 4.0, 40.0)]
    assert release.choose_vivid(r, floor=0.45) == ("uv", 2.1)  # none reaches: the most colourful with a gain


def _report(psnr, gray, cf, other=None):
    systems = [
        {
            "system": "model",
            "mean_psnr": psnr,
            "gain": [psnr - gray, [psnr - gray - 0.3, psnr - gray + 0.3]],
            "colourfulness_ratio": cf,
        }
    ]
    if other is not None:
        systems.append(
            {
                "system": "sift_flow_only",
                "mean_psnr": other,
                "gain": [other - gray, [-1.0, 0.1]],
                "colourfulness_ratio": 0.3,
            }
        )
    return {"images": 10, "mean_psnr_gray": gray, "systems": systems}


def test_model_card_tables_and_choices():
    tables = {
        m: release.table_rows(
            {"people (validation)": _report(24.0, 23.0, 0.7, 22.5), "siftflow test": _report(25.0, 22.7, 0.6)},
            ("model", "sift_flow_only"),
        )
        for m in ("faithful", "vivid")
    }
    assert tables["faithful"][0]["sift_flow_only"]["gain"] == pytest.approx(-0.5)
    assert "sift_flow_only" not in tables["faithful"][1]
    info = {
        "command": "python -m pipelines.release --data D --output O --work W",
        "commit": "abc123",
        "minutes": {"records": 2.0, "stage_a": 20.0},
        "total_minutes": 22.0,
        "stage_a": {"chosen": 0.5, "candidates": {"1": {"macro_gain": 0.2}, "0.5": {"macro_gain": 0.4}}},
        "modes": {
            "temperature": 0.38,
            "gain": 1.15,
            "default_mode": "vivid",
            "candidates": {"T=0.38, gain 1.15": {"gain": 1.0, "colourfulness_ratio": 0.9}},
        },
        "tables": tables,
        "seconds_256": {"faithful": 0.03, "vivid": 0.04},
        "size_mb": 9.4,
        "parser": "runs/sf_parser",
        "compare": "runs/sf_model_sem",
    }
    card = release.model_card(info, {"fusion": {"side": 256}, "training": {"parameters": 2300000}})
    assert (
        "| people (validation) | 10 | 23.00 | 24.00 | +1.00 [+0.70, +1.30] | 0.70 | 22.50 | -0.50 [-1.00, +0.10] "
        "| 0.30 |" in card
    )
    assert (
        "default mode: `vivid`" in card
        and "-> 0.5;" in card
        and "T=0.38, gain 1.15 (gain +1.00 dB, colourfulness 0.90)" in card
    )
    assert "chroma x 1.15" in card
    assert "research use" in card and "Known limits" in card and "2,300,000" in card
    assert info["command"] in card and "abc123" in card
    assert "a block of its own on the faithful head's features" in card
    own = release.model_card(info, {"fusion": {"side": 256, "bins_decoder": True}, "training": {}})
    assert "a decoder of its own from the 1/8 block on" in own and "block of its own on" not in own
    info["modes"].update(head="uv", temperature=None, gain=1.7)
    info["modes"]["candidates"]["faithful head, gain 1.7"] = {"gain": 0.4, "colourfulness_ratio": 0.8}
    uv = release.model_card(info, {"fusion": {"side": 256, "bins_decoder": True}, "training": {}})
    assert "Mode `vivid` is the faithful head's chroma x 1.7" in uv and "-> faithful head, gain 1.7 (rule" in uv
    assert "temperature" not in uv.split("## Training data")[0]
    info["modes"].update(gain=4.0, colourfulness=35.0)
    info["modes"]["candidates"]["faithful head towards colourfulness 35, gain <= 4"] = {
        "gain": -0.6,
        "macro_gain": -1.0,
        "colourfulness_ratio": 0.95,
        "min_source_ratio": 0.86,
    }
    per_photo = release.model_card(info, {"fusion": {"side": 256, "bins_decoder": True}, "training": {}})
    assert "brings it to colourfulness 35" in per_photo and "between 1 and 4" in per_photo
    assert "-> faithful head towards colourfulness 35, gain <= 4 (rule" in per_photo
    assert "(gain -0.60 dB, mean over sources -1.00, colourfulness 0.95, smallest over sources 0.86)" in per_photo
    info["modes"]["cast"] = 0.5
    tint = release.model_card(info, {"fusion": {"side": 256, "bins_decoder": True}, "training": {}})
    assert "overall tint, its mean chroma, by 0.5 of that gain" in tint
    assert "-> faithful head towards colourfulness 35, gain <= 4, tint x0.5 of it (rule" in tint


def test_known_limits_are_read_off_the_tables():
    from colorize_tf.release import measured_limits

    def row(name, gain, lo, cf):
        return {
            "set": name,
            "images": 10,
            "gray": 23.0,
            "model": {"psnr": 23 + gain, "gain": gain, "ci": [lo, gain + 0.3], "colourfulness_ratio": cf},
        }

    tables = {
        "faithful": [row("people", -0.4, -0.7, 0.4), row("rooms", 1.2, 0.5, 0.5)],
        "vivid": [row("people", 0.2, 0.05, 0.41), row("rooms", 0.9, 0.4, 0.62)],
    }
    lines = measured_limits(tables)
    assert lines[0] == "- Mode `faithful` is not above the gray image (95 % interval) on: people (-0.40 dB)."
    assert "0.41-0.62 of the true photos' colourfulness" in lines[1] and len(lines) == 2
    tables["vivid"] = [row("people", 0.2, 0.05, 0.9)]  # colourful enough: no line about it
    assert len(measured_limits(tables)) == 1


def test_steps_record_minutes_skip_done_work_and_estimate_from_the_given_table(tmp_path, caplog):
    import logging

    from pipelines.release import Steps, typical_minutes

    typical = typical_minutes("bfloat16", {"parser": 25, "stage_a": 4, "stage_b": 12, "stage_b3": 5, "stage_c": 2})
    steps = Steps(str(tmp_path), typical)
    ran = []
    with caplog.at_level(logging.INFO, logger="pipelines.release"):
        steps.run("stage_b", lambda: False, lambda: ran.append("b"))
        steps.run("stage_b2", lambda: True, lambda: ran.append("b2"))  # its output exists: skipped
        steps.run("parser", lambda: False, lambda: ran.append("p"), given="runs/parser")  # given: not run
    assert ran == ["b"]
    minutes = json.loads((tmp_path / "steps.json").read_text())
    assert set(minutes) == {"stage_b"} and minutes["stage_b"] >= 0
    left = sum(typical[n] for n in list(typical)[list(typical).index("stage_b") :])  # nothing logged as done yet
    assert f"about {left:.0f} min of work left" in caplog.text
    assert typical["stage_b2"] == 0 and typical["parser"] < typical_minutes("float32", {"parser": 25})["parser"]
    assert "stage_b2: done before, skipped" in caplog.text and "parser: skipped, given: runs/parser" in caplog.text
    assert Steps(str(tmp_path), typical).minutes == minutes  # a resumed run reads it


def test_recipe_list_flags_parse_checked_numbers():
    from pipelines.options import UsageError
    from pipelines.release import build_parser

    base = ["--data", "d", "--output", "o", "--work", "w"]
    args = build_parser().parse_args(base + ["--vivid_casts", "1, 0.5", "--uv_gains", ""])
    assert args.vivid_casts == [1.0, 0.5] and args.uv_gains == []
    assert args.source_balance == [0.5] and args.vivid_colourfulness == [33.0, 36.0, 40.0]  # defaults parsed too
    for flag, value, words in (
        ("--vivid_casts", "1,1.5", "1.5: expected a number from 0 to 1"),
        ("--gains", "", "expected at least one comma-separated value"),
        ("--temperatures", "0.38,x", "'x': expected a number"),
        ("--source_balance", "-1", "-1: expected a number >= 0"),
        ("--vivid_max_gains", "4,8", "8: expected a number from 0.5 to 6"),
    ):
        with pytest.raises(UsageError) as err:
            build_parser().parse_args(base + [flag, value])
        assert f"argument {flag}: " in str(err.value) and words in str(err.value)
