"""Release recipe: the development data -> the general-purpose model directory and its model card.

    python -m pipelines.release --data ../shared/data --output colorize_tf/models/general --work runs/release

One command, nine steps; each is skipped when its output is complete, so a stopped run resumes where it
stopped (logs say which steps ran, how long each took, and an estimate of the time left). Every training
step but stage A runs in ``--precision`` (default ``auto``: bfloat16 where the CPU has bfloat16 instructions):

1. lists: every colour set's training images (SIFT Flow train.txt, Stanford Background's train split,
   ``imagenet_sample``, ``people``, ``interiors``) and the test lists (SIFT Flow test.txt, Stanford's test
   split), which only report (`colorize_tf.release.training_lists`);
2. scene parser: ``pipelines.train_parser`` on SIFT Flow train.txt (or ``--parser DIR``, one made by it);
3. image records: ``pipelines.extract_images`` (Beam) at the working side 256; the training job splits
   them into training and validation images stratified over sources and scene types;
4. stage A: family ``fusion``, ``l2`` loss, the parser's encoder frozen, once per ``--source_balance``
   candidate with the same number of training steps; the candidate with the best gain over gray on
   validation, averaged over sources (each source counts the same), is kept;
5. stage B: the encoder fine-tuned (``--init A --finetune_encoder``), ``--epochs_b`` on a cosine
   learning-rate schedule from 3e-4 (``--schedule_b constant``: constant with early stopping); with
   ``--epochs_b2 N`` a second round from B on a cosine schedule, and with ``--epochs_b3 M`` a last one on
   the mean-PSNR objective (``--uv_loss log_rgb``, cosine from 2e-4, M epochs); the last round takes B's
   place in the next steps;
6. stage C: ``joint`` heads (``--init B --loss joint --bins_only --bins_decoder --bins_hidden 64``): the
   ``uv`` head is the faithful mode (stage B's network, unchanged), the bins head (Zhang et al.'s
   rebalanced classification) gives the archive job's confidence score and vivid candidates: it reads a
   decoder of its own from the 1/8 block on, a copy of stage B's trained on the bins' loss alone, with a
   3x3 block before its readout (``--no-bins_decoder``: the head reads stage B's frozen features, as the
   first releases did; ``--joint_finetune`` trains the whole network on both losses instead; its bins head
   stayed gray);
7. the vivid mode, chosen on validation (`colorize_tf.release.choose_vivid`: colourfulness near the true
   photos' on every source first, PSNR second) among the bins head's temperatures, then chroma gains
   (saturation) at the best one, the faithful head's chroma times each of ``--uv_gains`` (a saturated
   regression; the model's ``vivid_head`` is then ``uv``), and the faithful head brought per photo to each
   of ``--vivid_colourfulness`` by at most each of ``--vivid_max_gains``; the default mode: vivid when its
   gain over gray is above 0 (95 % interval) on every validation source, else faithful;
8. evaluation (``pipelines.evaluate``, Beam) on validation, per source, and on the test sets, both modes,
   next to ``--compare`` (e.g. the SIFT Flow-only model) scored in the same pass;
9. ``--output``: the model directory (checksummed, loads with Keras safe mode), ``MODEL.md`` (the model
   card, with the tables) and ``release.json`` (commands, commit, timings, every number).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time

from colorize_tf.files import write_atomic, write_json
from colorize_tf.fusion import MAX_GAIN, PRECISION_CHOICES, resolve_precision
from transforms.fs import read_json

from .options import (
    UsageError,
    job_parser,
    main_entry,
    non_negative_float,
    number_list,
    number_type,
    parse_job,
    positive_float,
    positive_int,
    unit_float,
)
from .train_parser import EPOCHS as PARSER_EPOCHS

log = logging.getLogger(__name__)

# a vivid candidate's chroma multiplier, as the model config accepts it (FusionConfig.vivid_gain)
vivid_gain = number_type(
    float, "a number", lambda v: 0.5 <= v <= MAX_GAIN, f"a number from 0.5 to {MAX_GAIN:g}", "vivid_gain"
)
MODES = ("faithful", "vivid")

#: Minutes each step took in the measured release runs on 2 cores (for the time-left estimate): fixed steps
#: as minutes (vivid: per candidate), training steps as minutes per epoch (float32, bfloat16; stage A per
#: candidate and --epochs_a epoch). bfloat16 from the seventh release's run (parser with its data preparation
#: and evaluation), float32 from the sixth's.
TYPICAL_MINUTES = {"lists": 0.1, "records": 1.3, "vivid": 0.5, "evaluation": 6, "output": 0.5}
EPOCH_MINUTES = {
    "parser": (1.7, 0.7),
    "stage_a": (2.0, 1.4),
    "stage_b": (4.5, 2.2),
    "stage_b2": (4.9, 2.2),
    "stage_b3": (4.6, 2.0),
    "stage_c": (7.6, 4.3),
}
STEPS = ("lists", "parser", "records", "stage_a", "stage_b", "stage_b2", "stage_b3", "stage_c", "vivid")
STEPS += ("evaluation", "output")


def typical_minutes(precision, epochs, vivid_candidates=8, precision_a="float32"):
    """Expected minutes of each step, in order: ``epochs`` maps a training step to its epochs (stage A: epochs
    times candidates; 0 = not run), ``vivid_candidates`` the validation passes of the vivid step; stage A
    runs in ``precision_a``, the other training steps in ``precision``."""
    out = {}
    for name in STEPS:
        if name in EPOCH_MINUTES:
            col = int((precision_a if name == "stage_a" else precision) == "bfloat16")
            out[name] = round(EPOCH_MINUTES[name][col] * epochs.get(name, 0), 1)
        else:
            out[name] = TYPICAL_MINUTES[name] * (vivid_candidates if name == "vivid" else 1)
    return out


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.release", beam=False)
    parser.add_argument("--data", required=True, help="Development data folder (../shared/data).")
    parser.add_argument("--output", required=True, help="Model directory to write (e.g. colorize_tf/models/general).")
    parser.add_argument("--work", required=True, help="Folder for the steps' outputs (records, stages, reports).")
    parser.add_argument(
        "--parser", default=None, help="A scene parser made by pipelines.train_parser on SIFT Flow (skips step 2)."
    )
    parser.add_argument(
        "--compare", default=None, help="A model scored next to the release in step 8 (e.g. the SIFT Flow-only one)."
    )
    parser.add_argument(
        "--source_balance",
        type=number_list(non_negative_float),
        default="0.5",
        help="Stage A candidates for pipelines.train_images --source_balance (comma-separated; each costs a "
        "stage A run). Of 1 and 0.5, 0.5 had the higher mean validation gain over sources in both releases that "
        "tried them (+0.55 against +0.37 dB in the sixth: its release.json).",
    )
    parser.add_argument("--epochs_a", type=positive_int, default=4, help="Stage A epochs at source balance 1.")
    parser.add_argument("--epochs_b", type=positive_int, default=12, help="Stage B (encoder fine-tuned) epochs.")
    parser.add_argument(
        "--schedule_b",
        choices=["cosine", "constant"],
        default="cosine",
        help="Stage B's learning rate from 3e-4: cosine decay over its epochs (no early stop), or constant with "
        "early stopping (patience 3; the sixth release's, followed by a cosine second round --epochs_b2 10).",
    )
    parser.add_argument(
        "--epochs_b2",
        type=int,
        default=0,
        help="Stage B's second round: epochs on a cosine schedule from 3e-4 (0 = no second round).",
    )
    parser.add_argument(
        "--epochs_b3",
        type=int,
        default=13,
        help="Stage B's last round: epochs of the mean-PSNR loss (--uv_loss log_rgb), cosine from 2e-4 (0 = none). "
        "13 against 5 after the same stage B: +0.14 dB on SIFT Flow validation, +0.27 Stanford, +0.09 people, "
        "+0.07 rooms, -0.03 ImageNet (paired, the seventh release's run).",
    )
    parser.add_argument(
        "--epochs_c",
        type=positive_int,
        default=2,
        help="Stage C (the bins head) epochs: the head gives the confidence score of the archive job's review page "
        "and the vivid candidates at --temperatures.",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help="Arithmetic of the parser's training and of stages B and C (--precision of pipelines.train_parser "
        "and pipelines.train_images; stage A: --precision_a): bfloat16 took 0.69x stage B's training time (63 "
        "against 92 min) for 0.04 dB less mean validation gain over sources, on a CPU with AVX512-BF16; CPUs "
        "without bfloat16 instructions (or AMX) emulate it, slower. auto = bfloat16 where the CPU has those "
        "instructions, else float32.",
    )
    parser.add_argument(
        "--precision_a",
        choices=PRECISION_CHOICES,
        default="float32",
        help="Arithmetic of stage A (the decoder trained from scratch on the frozen encoder): in bfloat16 it "
        "took 0.70x the time but scored about 0.1 dB lower on every source (seed 1), far lower once (seed 0: "
        "mean gain over sources +0.56 -> -0.36 dB), so the default stays float32.",
    )
    parser.add_argument("--crop", type=positive_int, default=192, help="Training crop side (multiple of 32).")
    parser.add_argument("--bins_weight", type=float, default=0.001, help="Stage C: weight of the bins' loss.")
    parser.add_argument(
        "--bins_hidden", type=int, default=64, help="Stage C: channels of the bins head's own 3x3 block (0 = none)."
    )
    parser.add_argument(
        "--bins_decoder",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Stage C: the bins head reads a decoder of its own from the 1/8 block on, a copy of stage B's "
        "trained on the bins' loss alone (pipelines.train_images --bins_decoder; --no-bins_decoder: the head "
        "reads stage B's features, as the first releases did).",
    )
    parser.add_argument(
        "--joint_finetune",
        action="store_true",
        help="Stage C trains the whole network on the joint loss (default: the bins head alone on stage B's "
        "frozen network, so the faithful mode is stage B's exactly).",
    )
    parser.add_argument(
        "--temperatures",
        type=number_list(positive_float),
        default="0.38",
        help="Vivid-mode temperatures of the bins head tried on validation (at equal colourfulness the bins head "
        "scored 1.4 dB below the faithful head saturated in the sixth release: 0.85 of the true colourfulness at "
        "-0.84 against +0.52 dB; its candidates stay in the choice).",
    )
    parser.add_argument(
        "--gains",
        type=number_list(vivid_gain),
        default="1",
        help="Vivid-mode chroma gains tried at the best temperature.",
    )
    parser.add_argument(
        "--uv_gains",
        type=number_list(vivid_gain, allow_empty=True),
        default="1.5,1.7,1.9,2.1,2.3",
        help="Vivid-mode candidates from the faithful head: its chroma times each of these (a saturated "
        "regression); chosen by the same rule as the bins head's settings ('' = the bins head only).",
    )
    parser.add_argument(
        "--vivid_colourfulness",
        type=number_list(positive_float, allow_empty=True),
        default="33,36,40",
        help="Vivid-mode candidates from the faithful head saturated per image: each photo's chroma brought to "
        "one of these colourfulness values (Hasler-Suesstrunk M), by at most each of --vivid_max_gains; a "
        "constant gain leaves the photos the model is unsure of (people, objects) grayer than the rest "
        "('' = none).",
    )
    parser.add_argument(
        "--vivid_max_gains",
        type=number_list(vivid_gain),
        default="4,5",
        help="Largest per-image chroma multipliers of the --vivid_colourfulness candidates.",
    )
    parser.add_argument(
        "--vivid_casts",
        type=number_list(unit_float),
        default="1,0.5",
        help="Shares of the per-image multiplier given to each photo's overall tint, tried with each "
        "--vivid_colourfulness candidate (1 = all chroma alike; below 1 the colours within a photo spread "
        "further than a warm wash where the model is unsure deepens).",
    )
    parser.add_argument("--side", type=positive_int, default=256, help="Working side of the records and the model.")
    parser.add_argument("--max_mb", type=float, default=25.0, help="Refuse to write a model larger than this.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split and the training.")
    return parser


class Steps:
    """Step bookkeeping: which are done, how long they took (``WORK/steps.json``), time left (from
    ``typical``, expected minutes per step in order: `typical_minutes`)."""

    def __init__(self, work, typical):
        self.typical = dict(typical)
        self.path = os.path.join(work, "steps.json")
        self.minutes = json.load(open(self.path)) if os.path.exists(self.path) else {}
        self.t0 = time.time()

    def run(self, name, done, body, given=None):
        """Run ``body()`` unless ``done()`` (or its output was ``given``); log progress and an estimate of the
        time left."""
        names = list(self.typical)
        k = names.index(name) + 1
        if given:
            log.info("step %d/%d %s: skipped, given: %s", k, len(names), name, given)
            self.minutes.pop(name, None)
            return
        if done():
            log.info("step %d/%d %s: done before, skipped", k, len(names), name)
            return
        left = sum(self.typical[n] for n in names[k - 1 :] if n not in self.minutes)
        log.info("step %d/%d %s: starting (about %.0f min of work left, 2 cores)", k, len(names), name, left)
        t = time.time()
        body()
        self.minutes[name] = round((time.time() - t) / 60, 2)
        write_json(self.path, self.minutes)
        log.info(
            "step %d/%d %s: done in %.1f min (%.1f min since start)",
            k,
            len(names),
            name,
            self.minutes[name],
            (time.time() - self.t0) / 60,
        )


def _has(path, *names):
    return all(os.path.exists(os.path.join(path, n)) for n in names)


def _write_list(path, entries):
    write_atomic(path, "".join(e + "\n" for e in entries).encode("utf-8"))


def _evaluate(
    model,
    input_list,
    list_root,
    out,
    mode=None,
    temperature=None,
    compare=None,
    chroma_gain=None,
    colourfulness=None,
    cast=None,
):
    from pipelines import evaluate

    argv = [
        f"--model={model}",
        f"--input={input_list}",
        f"--output={out}",
        "--no_pictures",
        "--runner=FnApiRunner",
    ]
    if list_root:
        argv.append(f"--list_root={list_root}")
    if mode:
        argv.append(f"--mode={mode}")
    if temperature:
        argv.append(f"--temperature={temperature}")
    if chroma_gain:
        argv.append(f"--chroma_gain={chroma_gain}")
    if colourfulness:
        argv.append(f"--colourfulness={colourfulness}")
    if cast is not None and cast != 1:
        argv.append(f"--cast={cast}")
    if compare:
        argv.append(f"--baselines=sift_flow_only={compare}")
    return evaluate.run(argv)


def _report(path):
    return read_json(os.path.join(path, "report.json"))


def _per_source(report, data_root):
    """Per-source reports (pipelines.evaluate.summarise of each source's records)."""
    from colorize_tf.release import by_source
    from pipelines.evaluate import summarise

    records = report["per_image"]
    groups = {s: set(ps) for s, ps in by_source([r["path"] for r in records], data_root).items()}
    return {s: summarise([r for r in records if r["path"] in ps]) for s, ps in groups.items()}


def _git_commit():
    try:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain"], capture_output=True, text=True)
        return out.stdout.strip() + ("+local changes" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run(argv=None):
    from colorize_tf import release

    args, _ = parse_job(build_parser(), argv)
    balances, temperatures, gains, uv_gains = args.source_balance, args.temperatures, args.gains, args.uv_gains
    targets = args.vivid_colourfulness
    max_gains, casts = (args.vivid_max_gains, args.vivid_casts) if targets else ([], [])
    if args.crop % 32:
        raise UsageError(f"--crop {args.crop}: expected a multiple of 32 (the parser encoder's stride)")
    data, work = os.path.abspath(args.data), os.path.abspath(args.work)
    if not os.path.isdir(data):
        raise UsageError(f"--data {args.data}: not a folder")
    os.makedirs(work, exist_ok=True)
    precision, precision_a = resolve_precision(args.precision), resolve_precision(args.precision_a)
    epochs = {
        "parser": 0 if args.parser else PARSER_EPOCHS,
        "stage_a": args.epochs_a * len(balances),
        "stage_b": args.epochs_b,
        "stage_b2": args.epochs_b2,
        "stage_b3": args.epochs_b3,
        "stage_c": args.epochs_c,
    }
    vivid_candidates = 1 + len(temperatures) + len(gains) + len(uv_gains) + len(targets) * len(max_gains) * len(casts)
    steps = Steps(work, typical_minutes(precision, epochs, vivid_candidates, precision_a))
    log.info("training precision %s (--precision %s), stage A %s", precision, args.precision, precision_a)
    lists = os.path.join(work, "lists")
    train_list = os.path.join(lists, "train.txt")

    def make_lists():
        train, tests = release.training_lists(data)
        _write_list(train_list, train)
        for name, entries in tests.items():
            _write_list(os.path.join(lists, f"{name}.txt"), entries)
        log.info("%d training images; tests: %s", len(train), {k: len(v) for k, v in tests.items()})

    steps.run("lists", lambda: os.path.exists(train_list), make_lists)

    parser_dir = args.parser or os.path.join(work, "parser")

    def train_parser():
        from pipelines import train_parser as job

        job.run(
            [
                f"--data={os.path.join(data, 'siftflow')}",
                f"--output={parser_dir}",
                f"--precision={precision}",
                "--runner=FnApiRunner",
            ]
        )

    steps.run("parser", lambda: _has(parser_dir, "parser.json"), train_parser, given=args.parser)

    records = os.path.join(work, "records")

    def make_records():
        from pipelines import extract_images

        extract_images.run(
            [
                f"--input={train_list}",
                f"--list_root={data}",
                f"--output={records}",
                f"--side={args.side}",
                "--runner=FnApiRunner",
                "--direct_running_mode=multi_threading",
            ]
        )

    steps.run("records", lambda: _has(records, "config.json", "images"), make_records)

    from pipelines import train_images

    common = [f"--records={records}", f"--crop={args.crop}", f"--seed={args.seed}", "--runner=FnApiRunner"]
    candidates = {b: os.path.join(work, f"stage_a_balance{b:g}") for b in balances}
    choice_path = os.path.join(work, "stage_a_choice.json")

    def stage_a():
        results = {}
        for b, out in candidates.items():
            if not _has(out, "model.json"):
                # the same number of training steps for every candidate: a balanced epoch is longer
                epochs = max(1, round(args.epochs_a * _epoch_share(records, b, args.seed)))
                train_images.run(
                    common
                    + [
                        f"--output={out}",
                        "--encoder=parser",
                        f"--parser={parser_dir}",
                        "--loss=l2",
                        f"--epochs={epochs}",
                        "--patience=3",
                        f"--source_balance={b}",
                        f"--work_dir={out}_work",
                        f"--precision={precision_a}",
                    ]
                )
            rep_dir = out + "_val"
            if not _has(rep_dir, "report.json"):
                _evaluate(out, os.path.join(out, "validation.txt"), None, rep_dir)
            macro, per_source = release.macro_gain(_report(rep_dir)["per_image"], data)
            results[b] = {"macro_gain": macro, "per_source": per_source, "model": out}
            log.info("stage A, source balance %g: mean gain over sources %+.2f dB %s", b, macro, per_source)
        best = max(results, key=lambda b: (results[b]["macro_gain"], -b))
        write_json(choice_path, {"chosen": best, "candidates": {f"{b:g}": r for b, r in results.items()}})

    steps.run("stage_a", lambda: os.path.exists(choice_path), stage_a)
    with open(choice_path) as fh:
        chosen = json.load(fh)
    balance = chosen["chosen"]
    stage_c = os.path.join(work, "stage_c")

    def finetune(out, init, epochs, flags):
        train_images.run(
            common
            + [
                f"--output={out}",
                f"--init={init}",
                "--finetune_encoder",
                *flags,
                f"--epochs={epochs}",
                f"--source_balance={balance}",
                f"--work_dir={out}_work",
                f"--precision={precision}",
            ]
        )

    def cosine(learning_rate, epochs):
        """A round planned to a fixed length: cosine decay over its epochs, no early stop."""
        return [f"--learning_rate={learning_rate}", "--lr_schedule=cosine", f"--patience={epochs}"]

    # stage B's rounds, each continuing the one before; the last feeds stage C
    rounds = [
        (
            "stage_b",
            args.epochs_b,
            cosine("3e-4", args.epochs_b) if args.schedule_b == "cosine" else ["--learning_rate=3e-4", "--patience=3"],
        ),
        ("stage_b2", args.epochs_b2, cosine("3e-4", args.epochs_b2)),
        ("stage_b3", args.epochs_b3, cosine("2e-4", args.epochs_b3) + ["--uv_loss=log_rgb"]),
    ]
    stage_b = candidates[balance]
    for name, epochs, flags in rounds:
        if epochs > 0:
            init, stage_b = stage_b, os.path.join(work, name)
            steps.run(
                name,
                lambda out=stage_b: _has(out, "model.json"),
                lambda out=stage_b, init=init, epochs=epochs, flags=flags: finetune(out, init, epochs, flags),
            )

    def run_stage_c():
        train_images.run(
            common
            + [
                f"--output={stage_c}",
                f"--init={stage_b}",
                "--loss=joint",
                f"--bins_weight={args.bins_weight}",
                f"--bins_hidden={args.bins_hidden}",
                f"--learning_rate={3e-4 if args.joint_finetune or args.bins_decoder else 1e-3}",
            ]
            + ([] if args.joint_finetune else ["--bins_only"])
            + (["--bins_decoder"] if args.bins_decoder else [])
            + [
                f"--epochs={args.epochs_c}",
                "--patience=3",
                f"--source_balance={balance}",
                f"--work_dir={stage_c}_work",
                f"--precision={precision}",
            ]
        )

    steps.run("stage_c", lambda: _has(stage_c, "model.json"), run_stage_c)

    val_list = os.path.join(stage_c, "validation.txt")
    modes_path = os.path.join(work, "modes.json")

    def choose_modes():
        results = {}

        def measure(t, g, c=0.0, cast=1.0):
            """One candidate: the bins head at temperature ``t`` (or ``t == "uv"``: the faithful head) x ``g``;
            with ``c``, the faithful head brought per image to colourfulness ``c`` by at most ``g``, its mean
            chroma by ``cast`` of it."""
            if c:
                name = f"vivid_uv_cf{c:g}_max{g:g}" + (f"_cast{cast:g}" if cast != 1 else "")
                rep_dir = os.path.join(work, name + "_val")
                how = dict(mode="faithful", chroma_gain=g, colourfulness=c, cast=cast)
            elif t == "uv":
                rep_dir = os.path.join(work, f"vivid_uv_gain{g:g}_val")
                how = dict(mode="faithful", chroma_gain=g)
            else:
                rep_dir = os.path.join(work, f"vivid_T{t:g}_gain{g:g}_val")
                how = dict(mode="vivid", temperature=t, chroma_gain=g)
            if not _has(rep_dir, "report.json"):
                _evaluate(stage_c, val_list, None, rep_dir, **how)
            rep = _report(rep_dir)
            sources = _per_source(rep, data)
            key = (t, g, c, cast) if c else (t, g)
            results[key] = {
                "gain": rep["gain_psnr"]["mean"],
                "ci_low": rep["gain_psnr"]["ci95"][0],
                "colourfulness_ratio": rep["colourfulness_ratio"],
                "macro_gain": sum(r["gain_psnr"]["mean"] for r in sources.values()) / len(sources),
                "min_source_ratio": min(r["colourfulness_ratio"] for r in sources.values()),
                "report": rep_dir,
            }
            log.info(
                "vivid %s: %s", release.candidate_name(*key), {k: v for k, v in results[key].items() if k != "report"}
            )

        faithful_dir = os.path.join(work, "faithful_val")
        if not _has(faithful_dir, "report.json"):
            _evaluate(stage_c, val_list, None, faithful_dir, mode="faithful")
        floor = _report(faithful_dir)["colourfulness_ratio"]
        log.info("faithful mode on validation: colourfulness %.2f of the truth's (the vivid mode's floor)", floor)
        for t in temperatures:  # the bins head's temperature first, at the network's own chroma
            measure(t, 1.0)
        t_best = release.choose_vivid(results, floor=floor)[0]
        for g in gains:  # then a saturation gain at that temperature
            if g != 1.0:
                measure(t_best, g)
        for g in uv_gains:  # and the faithful head saturated
            measure("uv", g)
        for c in targets:  # and saturated per image, towards a colourfulness
            for g in max_gains:
                for cast in casts:
                    measure("uv", g, c, cast)
        best = release.choose_vivid(results, floor=floor)
        t_best, g_best, c_best, cast_best = best if len(best) == 4 else (*best, 0.0, 1.0)
        vivid = _per_source(_report(results[best]["report"]), data)
        every = all(r["gain_psnr"]["ci95"][0] > 0 for r in vivid.values())
        default = "vivid" if every else "faithful"
        head = "uv" if t_best == "uv" else "logits"
        write_json(
            modes_path,
            {
                "head": head,
                "temperature": None if head == "uv" else t_best,
                "gain": g_best,
                "colourfulness": c_best,
                "cast": cast_best,
                "default_mode": default,
                "faithful_colourfulness_ratio": floor,
                "candidates": {release.candidate_name(*k): r for k, r in results.items()},
                "vivid_above_gray_on_every_source": every,
                "vivid_per_source_gain": {k: v["gain_psnr"] for k, v in vivid.items()},
                "vivid_per_source_colourfulness_ratio": {k: v["colourfulness_ratio"] for k, v in vivid.items()},
            },
        )
        log.info("vivid: %s; default mode %s", release.candidate_name(*best), default)

    steps.run("vivid", lambda: os.path.exists(modes_path), choose_modes)
    with open(modes_path) as fh:
        modes = json.load(fh)
    final = os.path.join(work, "final")

    def save_final():
        from colorize_tf import fusion
        from colorize_tf.refine import RefineParams
        from colorize_tf.regressor import read_metadata

        meta = read_metadata(stage_c)
        model, config = fusion.load_model_file(stage_c, meta)
        config = dataclasses.replace(
            config,
            vivid_head=modes.get("head", "logits"),
            temperature=modes["temperature"] or config.temperature,
            vivid_gain=modes["gain"],
            vivid_colourfulness=modes.get("colourfulness", 0.0),
            vivid_cast=modes.get("cast", 1.0),
            default_mode=modes["default_mode"],
        )
        if os.path.isdir(final):
            shutil.rmtree(final)
        fusion.save_fusion(final, model, config, meta["training"], RefineParams(**meta["refine"]))
        shutil.copy(os.path.join(stage_c, "split.json"), os.path.join(final, "split.json"))

    evaluation = os.path.join(work, "evaluation")
    sets = {"validation": (val_list, None)}
    sets.update({name: (os.path.join(lists, f"{name}.txt"), data) for name in release.TEST_SETS})

    def evaluate_all():
        save_final()
        for mode in MODES:
            for name, (lst, root) in sets.items():
                out = os.path.join(evaluation, f"{name}_{mode}")
                if not _has(out, "report.json"):
                    _evaluate(final, lst, root, out, mode=mode, compare=args.compare)

    steps.run(
        "evaluation",
        lambda: all(
            _has(os.path.join(evaluation, f"{n}_{m}"), "report.json") for n in sets for m in ("faithful", "vivid")
        ),
        evaluate_all,
    )

    def write_output():
        if not _has(final, "model.json"):
            save_final()
        write_release(args, final, work, evaluation, sets, chosen, modes, steps.minutes, data, precision, precision_a)

    steps.run("output", lambda: False, write_output)
    return os.path.abspath(args.output)


def _epoch_share(records, balance, seed):
    """Stage A epochs scale: 1 / (images per balanced epoch / images per plain epoch)."""
    from colorize_tf.splits import source_repeats
    from transforms.train_specs import read_image_table, split_rows

    train, _ = split_rows(read_image_table(records), 0.1, seed)
    reps = source_repeats([r["image_id"] for r in train], balance, seed)
    return len(train) / max(1, sum(reps.values()))


def write_release(args, final, work, evaluation, sets, chosen, modes, minutes, data, precision, precision_a):
    """``--output``: the final model directory, ``release.json`` and ``MODEL.md``."""
    from colorize_tf import release
    from colorize_tf.colorize import seconds_per_image
    from colorize_tf.registry import ColorizeSettings, load_colorizer
    from transforms.fs import copy_tree

    tables = {}
    for mode in ("faithful", "vivid"):
        reports = {}
        val = _report(os.path.join(evaluation, f"validation_{mode}"))
        for source, rep in _per_source(val, data).items():
            reports[f"{source} (validation)"] = rep
        for name in sets:
            if name != "validation":
                reports[release.TEST_LABELS[name]] = _report(os.path.join(evaluation, f"{name}_{mode}"))
        tables[mode] = release.table_rows(reports, ("model", "sift_flow_only"))
    speed = {}
    for mode in ("faithful", "vivid"):
        col = load_colorizer(final, ColorizeSettings(tile=0, mode=mode))
        speed[mode] = seconds_per_image(col)
    size_mb = sum(os.path.getsize(os.path.join(final, f)) for f in os.listdir(final)) / 1e6
    if size_mb > args.max_mb:
        raise UsageError(f"the model takes {size_mb:.1f} MB, more than --max_mb {args.max_mb}")
    info = {
        "command": "python -m pipelines.release " + " ".join(sys.argv[1:] if sys.argv[1:] else []),
        "commit": _git_commit(),
        "minutes": minutes,
        "total_minutes": round(sum(minutes.values()), 1),
        "precision": precision if precision == precision_a else f"{precision}, stage A {precision_a}",
        "stage_a": chosen,
        "modes": modes,
        "tables": tables,
        "seconds_256": speed,
        "size_mb": round(size_mb, 2),
        "parser": (
            f"given (`--parser {args.parser}`), made by `python -m pipelines.train_parser --data DATA/siftflow` "
            f"(step 2 when not given; {typical_minutes('float32', {'parser': PARSER_EPOCHS})['parser']:.0f} min in "
            f"float32, {typical_minutes('bfloat16', {'parser': PARSER_EPOCHS})['parser']:.0f} in bfloat16 on 2 cores)"
            if args.parser
            else "trained by step 2 (`pipelines.train_parser` on SIFT Flow train.txt)"
        ),
        "compare": args.compare,
    }
    write_json(os.path.join(final, "release.json"), info)
    with open(os.path.join(final, "MODEL.md"), "w") as fh:
        fh.write(release.model_card(info, json.load(open(os.path.join(final, "model.json")))))
    if os.path.abspath(args.output) != final:
        if os.path.isdir(args.output):
            shutil.rmtree(args.output)
        copy_tree(final, args.output)
    log.info("released %s (%.1f MB) to %s", os.path.basename(os.path.abspath(args.output)), size_mb, args.output)


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
