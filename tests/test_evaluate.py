import json
import os

import numpy as np
from conftest import synthetic_scene, write_png
from PIL import Image


def test_evaluate_report(model_dir, features_dir, tmp_path):
    from colorize_tf.metrics import colourfulness, gray_baseline, psnr
    from pipelines import evaluate, train

    mean = tmp_path / "mean_chroma"  # a comparator scored in the same pass
    train.run(
        [
            f"--features={features_dir}",
            f"--output={mean}",
            "--family=mean_chroma",
            "--refine=0,0,0",
            "--runner=FnApiRunner",
        ]
    )

    src = tmp_path / "eval"
    src.mkdir()
    for i in range(4):
        write_png(str(src / f"im{i}.png"), synthetic_scene(60, 70, seed=200 + i))
    Image.fromarray(np.full((20, 20), 9, np.uint8)).save(src / "gray_only.png")
    out = tmp_path / "report"
    report = evaluate.run(
        [
            f"--input={src}",
            f"--model={model_dir}",
            f"--output={out}",
            "--runner=FnApiRunner",
            f"--baselines=mean={mean}",
        ]
    )
    data = json.loads((out / "report.json").read_text())
    for key in ("mean_psnr", "mean_psnr_gray", "mean_l_uv", "mean_l_uv_gray"):
        assert key in data and data[key] == report[key]
    assert data["images"] == 4 and len(data["per_image"]) == 4
    # the model beats one constant colour on these training-like scenes, image by image
    assert all(r["psnr"] > r["psnr_mean"] for r in data["per_image"])
    gain = data["gain_psnr"]
    assert gain["ci95"][0] <= gain["mean"] <= gain["ci95"][1]
    assert np.isclose(gain["mean"], np.mean([r["psnr"] - r["psnr_gray"] for r in data["per_image"]]))
    assert data["gain_psnr_mean"]["mean"] < gain["mean"]
    model_row, mean_row = data["systems"]
    assert model_row["system"] == "model" and mean_row["system"] == "mean"
    diff = mean_row["diff"]  # the model minus the comparator, paired per image
    assert np.isclose(diff[0], np.mean([r["psnr"] - r["psnr_mean"] for r in data["per_image"]]))
    assert 0 < diff[1][0] <= diff[0] <= diff[1][1]
    assert mean_row["colourfulness_ratio"] is not None and "difference to the model" in (out / "index.html").read_text()
    rec = data["per_image"][0]
    assert {"psnr", "psnr_gray", "l_uv", "l_uv_gray", "cluster", "seconds"} <= set(rec)
    truth = np.asarray(Image.open(src / f"{rec['image_id']}.png"))
    assert np.isclose(rec["psnr_gray"], psnr(gray_baseline(truth), truth))
    assert np.isclose(rec["colourfulness_truth"], colourfulness(truth), rtol=1e-4)
    assert 0 < data["colourfulness_ratio"] < 2
    assert np.isclose(data["mean_psnr"], np.mean([r["psnr"] for r in data["per_image"]]))
    html = (out / "index.html").read_text()
    assert html.count("<tr>") == 3 + 5 and os.path.exists(out / rec["ours_image"])  # 3 summary rows, 1 + 4 images
    assert (out / "psnr_histogram.png").exists()
    dead = [json.loads(line) for f in (out / "records").glob("dead*.jsonl") for line in open(f) if line.strip()]
    assert [os.path.basename(d["path"]) for d in dead] == ["gray_only.png"]
