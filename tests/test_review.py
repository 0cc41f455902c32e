"""The archive review page's parts: sample, thumbnails, HTML."""

import numpy as np
from conftest import synthetic_scene


def _rows(n, confidence=True):
    return [
        {
            "input": f"/scans/{i:03d}.tif",
            "status": "done" if i % 10 else "failed",
            "confidence": (i / n if confidence else None),
            "output_rel": f"{i:03d}.tif",
        }
        for i in range(n)
    ]


def test_pick_least_confident_then_random_reproducibly():
    from colorize_tf.review import pick

    rows = _rows(100)
    chosen = pick(rows, 10, seed="run1")
    assert len(chosen) == 10 and all(r["status"] == "done" for r, _ in chosen)
    low = [r for r, why in chosen if why == "least confident"]
    assert [r["input"] for r in low] == [f"/scans/{i:03d}.tif" for i in (1, 2, 3, 4, 5)]  # 0 failed
    rand = [r for r, why in chosen if why == "random"]
    assert len(rand) == 5 and not {id(r) for r in rand} & {id(r) for r in low}
    assert [r["input"] for r, _ in pick(list(reversed(rows)), 10, seed="run1")] == [r["input"] for r, _ in chosen]
    assert [r["input"] for r, _ in pick(rows, 10, seed="run2")] != [r["input"] for r, _ in chosen]
    assert all(why == "random" for _, why in pick(_rows(100, confidence=False), 10))
    assert len(pick(rows, 500)) == 90 and pick(rows, 0) == [] and pick([], 5) == []


def test_thumbnails_are_the_output_and_its_luminance():
    from colorize_tf.color import luminance
    from colorize_tf.review import thumbnails

    rgb = synthetic_scene(600, 900, seed=1)
    before, after = thumbnails(rgb)
    assert before.shape == after.shape == (320, 480, 3) and before.dtype == after.dtype == np.uint8
    assert np.abs(before[..., 0] / 255.0 - luminance(after / 255.0)).max() < 2.5 / 255
    assert (before[..., 0] == before[..., 2]).all()
    small, _ = thumbnails((synthetic_scene(40, 30, seed=2) * 65535).astype(np.uint16))
    assert small.shape == (40, 30, 3)  # never upscaled; 16-bit input scaled to 8 bits


def test_page_has_a_slider_per_pair_and_escapes_names():
    from colorize_tf.review import page

    items = [
        {
            "before": "r/0_before.jpg",
            "after": "r/0_after.jpg",
            "output": "../a<b>.png",
            "output_name": "a<b>.png",
            "input": "/scans/a<b>.png",
            "input_link": "file:///scans/a<b>.png",
            "reason": "least confident",
            "confidence": 0.123,
            "width": 900,
            "height": 600,
            "seconds": 0.5,
        },
        {
            "before": "r/1_before.jpg",
            "after": "r/1_after.jpg",
            "output": "../c.png",
            "output_name": "c.png",
            "input": "box.tar!c.png",
            "reason": "random",
            "confidence": None,
            "width": 10,
            "height": 10,
            "seconds": 0.1,
        },
    ]
    html = page(items, "Run x", {"inputs": 3, "done": 2})
    assert html.count("<figure>") == 2 and html.count("type='range'") == 2
    assert "a&lt;b&gt;.png" in html and "a<b>" not in html
    assert "confidence 0.12" in html and "confidence n/a" in html and "inputs: 3" in html
    assert "getElementById('b1')" in html and "href='file:///scans/a&lt;b&gt;.png'" in html
