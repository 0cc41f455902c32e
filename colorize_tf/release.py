"""The general-purpose model's release: training lists, choices made on validation, and the model card.

Pure functions used by ``pipelines.release`` (which runs the Beam jobs and the training); no Beam import.
The training set is every colour set of the development data, each split by the training job into
training and validation images stratified over sources and scene types; SIFT Flow's ``test.txt`` and
Stanford Background's test split stay out of training and only report.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np

#: Colour sets of the development data (``../shared/data``), in table order.
SOURCES = ("siftflow", "stanford_background", "imagenet_sample", "people", "interiors")
#: Labelled sets with a standard test split (test-only here).
TEST_SETS = {"siftflow_test": "siftflow", "stanford_test": "stanford_background"}
#: How the model card names the test sets.
TEST_LABELS = {"siftflow_test": "SIFT Flow test.txt (test)", "stanford_test": "Stanford Background test split (test)"}
_IMAGE_EXT = (".jpg", ".jpeg", ".png")


def _relative(path, root):
    return os.path.relpath(os.path.abspath(path), os.path.abspath(root)).replace(os.sep, "/")


def training_lists(data_root) -> Tuple[List[str], Dict[str, List[str]]]:
    """Training images and test lists of the development data, as paths relative to ``data_root``.

    Returns
    -------
    train : list of str
        SIFT Flow ``train.txt`` (2488), Stanford Background's train split (572), and every photo of
        ``imagenet_sample``, ``people`` and ``interiors`` (their ``images/`` folders).
    tests : dict
        ``siftflow_test`` (``test.txt``, 200) and ``stanford_test`` (143): never trained on.

    Raises
    ------
    FileNotFoundError
        When a source folder is missing (the release needs all of them).
    """
    from .datasets import open_dataset

    train: List[str] = []
    tests: Dict[str, List[str]] = {}
    for name in ("siftflow", "stanford_background"):
        labelled = open_dataset(os.path.join(data_root, name))
        train += [_relative(img, data_root) for _, img, _ in labelled.splits["train"]]
        test_name = next(k for k, v in TEST_SETS.items() if v == name)
        tests[test_name] = [_relative(img, data_root) for _, img, _ in labelled.splits["test"]]
    for name in SOURCES[2:]:
        folder = os.path.join(data_root, name, "images")
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{folder}: the release trains on every colour set; this one is missing")
        train += sorted(f"{name}/images/{f}" for f in os.listdir(folder) if f.lower().endswith(_IMAGE_EXT))
    return train, tests


def source_of(path, data_root="") -> str:
    """The development-data source of an image path (its first folder under ``data_root``)."""
    rel = _relative(path, data_root) if data_root and os.path.isabs(str(path)) else str(path).replace("\\", "/")
    return rel.split("/", 1)[0]


def by_source(paths: Iterable[str], data_root="") -> Dict[str, List[str]]:
    """Paths grouped by `source_of`, in `SOURCES` order (unknown sources last)."""
    groups: Dict[str, List[str]] = defaultdict(list)
    for p in paths:
        groups[source_of(p, data_root)].append(p)
    order = [s for s in SOURCES if s in groups] + sorted(set(groups) - set(SOURCES))
    return {s: groups[s] for s in order}


def macro_gain(records: Sequence[Mapping], data_root="") -> Tuple[float, Dict[str, float]]:
    """Mean PSNR gain over gray per source, and their unweighted mean (every source counts the same, so
    the largest set cannot hide a loss on a small one).

    Parameters
    ----------
    records : sequence of dict
        Per-image evaluation records with ``path`` (or ``image_id``), ``psnr`` and ``psnr_gray``.
    """
    gains: Dict[str, List[float]] = defaultdict(list)
    for r in records:
        gains[source_of(r.get("path") or r["image_id"], data_root)].append(r["psnr"] - r["psnr_gray"])
    per_source = {s: float(np.mean(v)) for s, v in sorted(gains.items())}
    return float(np.mean(list(per_source.values()))), per_source


def choose_vivid(results: Mapping[Tuple, Mapping], target=0.85, floor=0.0) -> Tuple:
    """The vivid mode's setting from validation results.

    The vivid mode's promise is colour near the true photos' (``target`` x their colourfulness) on every
    kind of photo, with PSNR second: a setting "reaches" the target when its colourfulness ratio does on
    every validation source (``min_source_ratio``; the pooled ``colourfulness_ratio`` where a result has no
    per-source ratios). Only candidates more colourful than ``floor`` (the faithful mode's colourfulness
    ratio: a vivid mode grayer than the faithful one would contradict its name) count. In order:

    1. those reaching the target with a PSNR gain over gray whose 95 % interval is above 0: the highest
       PSNR gain;
    2. those reaching the target: the highest PSNR gain (saturation where the hue is wrong costs PSNR; the
       card reports how much);
    3. none reaches it: the most colourful (smallest per-source ratio) whose interval is above 0, then the
       most colourful with a mean gain above 0;
    4. if no candidate is both above the floor and above gray, the one with the highest PSNR gain.

    The PSNR gain ranked is ``macro_gain`` (the mean over sources) where given, else ``gain``. Ties go to
    the smaller chroma gain, then the higher temperature.

    Parameters
    ----------
    results : dict
        setting -> ``{"gain": mean PSNR gain, "ci_low": float, "colourfulness_ratio": float}`` plus optional
        ``"min_source_ratio"`` and ``"macro_gain"``. A setting is ``(temperature, chroma gain[, target
        colourfulness])``; its first item may be a name instead of a temperature (``("uv", 1.5)``: the
        faithful head saturated, no temperature; ``("uv", 4, 35)``: saturated per image towards
        colourfulness 35, by at most 4).
    target : float
        Colourfulness ratio the vivid mode aims at.
    floor : float
        Colourfulness ratio a vivid setting must exceed.
    """
    if not results:
        raise ValueError("no vivid setting was evaluated")

    def ratio(k):
        return results[k].get("min_source_ratio", results[k]["colourfulness_ratio"])

    def psnr_gain(k):
        return results[k].get("macro_gain", results[k]["gain"])

    def tie(k):
        return (-k[1], k[0] if isinstance(k[0], (int, float)) else 0.0)

    vivid = [k for k, r in results.items() if r["colourfulness_ratio"] > floor]
    above = [k for k in vivid if results[k]["ci_low"] > 0]
    level = [k for k in vivid if results[k]["gain"] > 0]
    for pool in (above, vivid):
        reach = [k for k in pool if ratio(k) >= target]
        if reach:
            return max(reach, key=lambda k: (psnr_gain(k), tie(k)))
    for pool in (above, level):
        if pool:
            return max(pool, key=lambda k: (ratio(k), tie(k)))
    return max(results, key=lambda k: (psnr_gain(k), tie(k)))


def table_rows(reports: Mapping[str, Mapping], systems=("model",)) -> List[Dict]:
    """Rows of the model card's tables from ``pipelines.evaluate`` reports: set name -> report.

    Each row: set, images, gray PSNR, then per system its PSNR, gain with 95 % interval and colourfulness
    ratio (a comparator scored in the same pass appears under its name).
    """
    rows = []
    for set_name, rep in reports.items():
        by_name = {s["system"]: s for s in rep.get("systems", [])}
        row = {"set": set_name, "images": rep["images"], "gray": rep["mean_psnr_gray"]}
        for name in systems:
            s = by_name.get(name)
            if s is not None:
                row[name] = {
                    "psnr": s["mean_psnr"],
                    "gain": s["gain"][0],
                    "ci": list(s["gain"][1]),
                    "colourfulness_ratio": s["colourfulness_ratio"],
                }
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[Mapping], columns: Sequence[Tuple[str, str]]) -> str:
    """A markdown table of `table_rows` rows; ``columns`` = (system key, heading)."""
    head = "| set | images | gray dB |" + "".join(f" {h}: dB | gain [95 % CI] | colourfulness |" for _, h in columns)
    rule = "|---|---:|---:|" + "---:|---|---:|" * len(columns)
    lines = [head, rule]
    for r in rows:
        cells = [r["set"], str(r["images"]), f"{r['gray']:.2f}"]
        for key, _ in columns:
            s = r.get(key)
            if s is None:
                cells += ["", "", ""]
                continue
            cells += [
                f"{s['psnr']:.2f}",
                f"{s['gain']:+.2f} [{s['ci'][0]:+.2f}, {s['ci'][1]:+.2f}]",
                f"{s['colourfulness_ratio']:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Where the training photos come from and on which terms (from the development data's README).
DATA_TERMS = (
    ("SIFT Flow / LMO", "2488 outdoor scenes (train.txt)", "Liu, Yuen, Torralba, CVPR 2009; research use"),
    ("Stanford Background", "572 outdoor scenes (train split)", "Gould, Fulton, Koller, ICCV 2009; research use"),
    ("ImageNet sample", "789 photos, one per ImageNet class", "ILSVRC-2012 validation images; ImageNet terms"),
    ("people", "1000 street photos of one person each", "Clothing Co-Parsing, Yang et al. CVPR 2014; research use"),
    ("interiors", "1189 rooms of 6 kinds", "a Places365 subset; Places terms"),
)


def measured_limits(tables: Mapping) -> List[str]:
    """Known-limit lines read off the quality tables: per mode, the sets where the gain over gray is not
    above 0 (95 % interval), and how colourful the outputs are against the vivid target (0.85x)."""
    lines = []
    for mode, rows in tables.items():
        weak = [f"{r['set']} ({r['model']['gain']:+.2f} dB)" for r in rows if r["model"]["ci"][0] <= 0]
        if weak:
            lines.append(f"- Mode `{mode}` is not above the gray image (95 % interval) on: {', '.join(weak)}.")
        ratios = [r["model"]["colourfulness_ratio"] for r in rows]
        if mode == "vivid" and ratios and max(ratios) < 0.85:
            lines.append(
                f"- Mode `vivid` keeps {min(ratios):.2f}-{max(ratios):.2f} of the true photos' colourfulness, short "
                "of the 0.85 it aims at: its bins head commits to colour only where it is fairly sure."
            )
    return lines


def candidate_name(t, g, c=0.0, cast=1.0):
    """A vivid candidate's name in the recipe's log, ``modes.json`` and the card: ``T=0.38, gain 1.1`` (the
    bins head at temperature ``t``), ``faithful head, gain 1.5`` (``t == "uv"``) or ``faithful head towards
    colourfulness 35, gain <= 4`` (a per-photo target ``c``; ``, tint x0.5 of it`` with ``cast`` below 1)."""
    if c:
        return f"faithful head towards colourfulness {c:g}, gain <= {g:g}" + (
            f", tint x{cast:g} of it" if cast != 1 else ""
        )
    return f"faithful head, gain {g:g}" if t == "uv" else f"T={t:g}, gain {g:g}"


def model_card(info: Mapping, meta: Mapping) -> str:
    """``MODEL.md``: what the model is, what it was trained on and how, its measured quality and speed,
    and its known limits.

    Parameters
    ----------
    info : dict
        ``release.json`` content (`pipelines.release`).
    meta : dict
        The model's ``model.json``.
    """
    cfg = meta["fusion"]
    training = meta.get("training", {})
    modes = info["modes"]
    chosen = info["stage_a"]
    cols = [("model", "this model")] + ([("sift_flow_only", "SIFT Flow-only")] if info.get("compare") else [])
    lines = [
        "# Model card: general (colorize-tf's shipped model)",
        "",
        "Automatic colorization of black-and-white photographs. Family `fusion` (Iizuka et al. 2016's global +",
        "local fusion network, here on the encoder of the project's grayscale scene parser), with two heads:",
        "regression of the YUV chroma (mode `faithful`, PSNR-optimal) and Zhang et al. 2016's rebalanced",
        "classification over chroma bins, decoded by annealed mean, trained afterwards on the frozen network"
        + (
            " with a decoder of its own from the 1/8 block on (begun as a copy of the faithful one)"
            if cfg.get("bins_decoder")
            else " with a block of its own on the faithful head's features"
        )
        + (
            ". Mode `vivid` is the faithful head's chroma multiplied per photo by the gain that brings it to"
            f" colourfulness {modes['colourfulness']:g} (Hasler-Suesstrunk M, measured at the network side),"
            f" between 1 and {modes['gain']:g}"
            + (
                f" (the photo's overall tint, its mean chroma, by {modes['cast']:g} of that gain: colours within a"
                " photo spread further than a warm wash deepens)"
                if modes.get("cast", 1) != 1
                else ""
            )
            + ", so photos the model is unsure of get more saturation than colourful ones; chosen on validation"
            " by the rule below; the bins head's entropy still gives each"
            " output its confidence score (the archive review page sorts by it"
            if modes.get("head") == "uv" and modes.get("colourfulness")
            else f". Mode `vivid` is the faithful head's chroma x {modes['gain']:g} (more saturated), chosen on"
            " validation over the bins head's settings by the rule below; the bins head's entropy still gives each"
            " output its confidence score (the archive review page sorts by it"
            if modes.get("head") == "uv"
            else f" (mode `vivid`, temperature {modes['temperature']:g}"
            + (f", chroma x {modes['gain']:g}" if modes.get("gain", 1) != 1 else "")
        )
        + f"). The network sees the photo at a longer side of {cfg['side']} px; chroma is refined at a",
        "working side of at most 1024 px (joint bilateral filter) and carried to full resolution under the",
        "scan's own luminance (guided upsampling), which is kept exactly, so cost hardly grows with scan size.",
        "",
        f"- parameters: {format(training['parameters'], ',') if 'parameters' in training else 'n/a'}; "
        f"files {info['size_mb']:.1f} MB "
        "(checksummed in `model.json`, loaded with Keras safe mode)",
        f"- default mode: `{modes['default_mode']}` ("
        + (
            "the vivid mode is above the gray image, 95 % interval, on every validation source"
            if modes["default_mode"] == "vivid"
            else "the vivid mode is not above the gray image on every validation source, so the default stays faithful"
        )
        + "); `--mode faithful|vivid` selects",
        f"- speed on 2 CPU cores, one 256x256 photo: faithful {info['seconds_256']['faithful']:.3f} s, vivid "
        f"{info['seconds_256']['vivid']:.3f} s (median of 7, in-process)",
        "",
        "## Training data",
        "",
        "| set | what | source and terms |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in DATA_TERMS]
    lines += [
        "",
        "The images' licences are research-use terms: the model is offered for research, archive and",
        "personal use; check the terms before commercial use. SIFT Flow's test.txt and Stanford Background's",
        "test split were never trained on; a tenth of the training images (stratified over sources and scene",
        "types) was held out for validation, where every setting below was chosen.",
        "",
        "## Recipe",
        "",
        "```",
        info["command"],
        "```",
        "",
        f"Commit `{info.get('commit') or 'unknown'}`; scene parser: {info['parser']}.",
        "Minutes per step on 2 CPU cores: "
        + ", ".join(f"{k} {v:g}" for k, v in info["minutes"].items())
        + f" (total {info['total_minutes']:g})"
        + (f"; training arithmetic {info['precision']}." if info.get("precision") else "."),
        "",
        "Choices made on validation: source balance "
        + ", ".join(f"{b} (mean gain over sources {r['macro_gain']:+.2f} dB)" for b, r in chosen["candidates"].items())
        + f" -> {chosen['chosen']:g}; vivid mode "
        + ", ".join(
            f"{k} (gain {r['gain']:+.2f} dB"
            + (f", mean over sources {r['macro_gain']:+.2f}" if "macro_gain" in r else "")
            + f", colourfulness {r['colourfulness_ratio']:.2f}"
            + (f", smallest over sources {r['min_source_ratio']:.2f}" if "min_source_ratio" in r else "")
            + ")"
            for k, r in modes["candidates"].items()
        )
        + " -> "
        + (
            candidate_name("uv", modes["gain"], modes.get("colourfulness") or 0.0, modes.get("cast", 1.0))
            if modes.get("head") == "uv"
            else candidate_name(modes["temperature"], modes.get("gain", 1))
        )
        + " (rule, among settings more colourful than the faithful mode: the best PSNR (mean over sources) of "
        "those at 0.85x the true colourfulness or more on every source, first those whose gain over gray has its "
        "interval above 0; if none reaches it, the most colourful with its interval above 0, else on average "
        "above gray).",
        "",
        "## Measured quality",
        "",
        "Mean RGB PSNR against the true colour photo, next to the gray image (U = V = 0); the gain's paired",
        "bootstrap 95 % interval; colourfulness (Hasler & Suesstrunk 2003) of the outputs relative to the true",
        "photos'. Validation rows are the held-out tenth of each source; test rows were never trained on.",
    ]
    for mode in ("faithful", "vivid"):
        lines += ["", f"### Mode `{mode}`", "", markdown_table(info["tables"][mode], cols)]
    lines += (
        ["", "## Known limits", ""]
        + measured_limits(info["tables"])
        + [
            "- Trained on modern colour photos: historical scans (sepia, faded, scratched, grainy) are out of its",
            "  training distribution; it colours them cautiously and may leave faces and clothing grayish.",
            "- Skin tones: the people set is street photos from one fashion site; skin tones of groups it",
            "  under-represents may be rendered wrongly. Check faces before publishing.",
            "- Colours are guesses: clothing, cars, painted walls have no one right colour; the faithful mode",
            "  mutes them, the vivid mode commits to likely ones. Never treat the output as a record of the past.",
            "- The vivid mode saturates what the faithful mode guessed: where that guess is a faint warm wash (old",
            "  interiors, white dresses, sepia prints) it becomes a visible brown, peach or pink tint.",
            "- Outputs carry provenance (EXIF/XMP: colorized automatically, by this model and its checksum).",
            "",
        ]
    )
    return "\n".join(lines)
