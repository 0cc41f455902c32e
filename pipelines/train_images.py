"""Training job for image-level families (convolutional colorizers): image records -> model directory.

    python -m pipelines.train_images --records RECORDS_DIR --output MODEL_DIR [--loss l2|classification]

The records come from ``pipelines.extract_images`` (Beam); Keras trains here, on the launching machine, from
tf.data over them (crops, flips, tone jitter), with early stopping on a validation split stratified over
sources and scene types (written to ``MODEL_DIR/validation.txt`` and ``split.json``); the joint bilateral
refinement is tuned on a stratified sample of validation images. The model directory loads through
``colorize_tf.registry.load_colorizer`` like any other family, so ``colorize``, the archive job and
``pipelines.evaluate`` take it unchanged.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile

from apache_beam.io.filesystems import FileSystems

from colorize_tf.fusion import PRECISION_CHOICES, resolve_precision
from colorize_tf.registry import trainable_names
from transforms.fs import copy_tree, local_copy, match_paths, read_bytes
from transforms.train_specs import read_image_table, split_rows, write_split

from .options import (
    UsageError,
    add_seed,
    add_training,
    job_parser,
    main_entry,
    non_negative_int,
    parse_job,
    positive_float,
    positive_int,
    train_settings,
)

log = logging.getLogger(__name__)


def build_parser():
    parser = job_parser(__doc__, "python -m pipelines.train_images")
    parser.add_argument("--records", required=True, help="Output folder of pipelines.extract_images.")
    parser.add_argument("--output", required=True, help="Model directory to write (any Beam filesystem).")
    parser.add_argument("--family", default="fusion", choices=trainable_names("images"), help="Model family.")
    parser.add_argument(
        "--loss",
        default=None,
        choices=["l2", "classification", "joint"],
        help="Regression of U, V; Zhang et al.'s rebalanced classification over chroma bins; or joint: both "
        "heads on one decoder (faithful and vivid modes). Default: l2, or the loss of the --init model; "
        "another loss keeps that model's trained layers and starts the new output layers.",
    )
    parser.add_argument(
        "--uv_loss",
        choices=["mse", "log_rgb"],
        default=None,
        help="The U, V head's loss: mse (per pixel, as the paper and SFU) or log_rgb (each crop's log of its "
        "squared RGB error: the mean-PSNR objective, near-neutral photos count as much as colourful ones). "
        "Default: mse, or the --init model's.",
    )
    parser.add_argument(
        "--bins_weight",
        type=positive_float,
        default=0.01,
        help="Joint loss: weight of the bins' cross entropy next to the U, V squared error.",
    )
    parser.add_argument(
        "--bins_hidden",
        type=int,
        default=0,
        help="Bins head: channels of its own 3x3 convolution block before the readout (0 = a readout of the "
        "shared decoder's features only).",
    )
    parser.add_argument(
        "--bins_decoder",
        action="store_true",
        help="Joint loss: the bins head reads a decoder of its own from the 1/8 block on, starting as a copy of "
        "the uv path's (with --bins_only it is trained, the uv path stays as it was); without it the bins head "
        "reads the uv head's features.",
    )
    parser.add_argument(
        "--default_mode",
        choices=["faithful", "vivid"],
        default=None,
        help="Joint loss: the mode colorization uses when none is asked for (default: faithful).",
    )
    parser.add_argument(
        "--temperature",
        type=positive_float,
        default=0.38,
        help="Classification: annealed-mean temperature (1 = mean, -> 0 = mode).",
    )
    parser.add_argument(
        "--base_channels", type=positive_int, default=16, help="Channels of the first stage (sets the net's width)."
    )
    parser.add_argument(
        "--encoder",
        default="own",
        choices=["own", "parser"],
        help="Low-level path learned from scratch, or the trained scene parser's encoder (frozen; needs --parser).",
    )
    parser.add_argument("--parser", default=None, help="Scene-parser directory (pipelines.train_parser).")
    parser.add_argument(
        "--scene_weight",
        type=float,
        default=0.0,
        help="Weight (alpha) of the auxiliary scene-classification loss on the global vector; 0 = no head. "
        "Scene labels are the records' (SIFT Flow categories, room kinds).",
    )
    parser.add_argument(
        "--segment_weight",
        type=float,
        default=0.0,
        help="Weight of the auxiliary semantic-segmentation loss at the chroma resolution; 0 = no head. Needs "
        "records with labels (pipelines.extract_images --labels); unlabeled pixels count zero.",
    )
    parser.add_argument(
        "--init",
        default=None,
        help="A fusion model directory to continue from (its architecture and heads; e.g. to fine-tune, or with "
        "another --loss to start a classification model from a trained l2 one).",
    )
    parser.add_argument(
        "--finetune_encoder",
        action="store_true",
        help="Let the parser encoder's convolutions learn too (batch normalisation stays frozen); "
        "best with --init and a lower --learning_rate.",
    )
    parser.add_argument(
        "--bins_only",
        action="store_true",
        help="With --init and --loss joint: train the bins head alone on the --init model's frozen network "
        "(its faithful mode stays exactly as it was; the vivid mode is learnt on its features).",
    )
    parser.add_argument(
        "--work_dir",
        default=None,
        help="Local folder for per-epoch checkpoints (checkpoint.keras, best.keras) and TensorBoard logs "
        "(default: a temporary folder; the TensorBoard logs are copied into the model directory).",
    )
    add_training(parser, epochs=30, batch_size=16, batch_unit="Crops", patience=4, tune_images=32)
    parser.add_argument(
        "--vivid_target",
        type=float,
        default=0.85,
        help="Models with a bins head (classification, joint): calibrate its chroma gain on the validation "
        "sample to reach this share of the true photos' colourfulness while staying above the gray image's "
        "PSNR (the smallest such gain in 1 .. 2.5; 0 = keep the decoded colours, gain 1).",
    )
    parser.add_argument(
        "--vivid_images",
        type=positive_int,
        default=200,
        help="Validation images (a stratified sample) that calibrate the vivid gain: a colourfulness ratio "
        "needs more than the refinement's few (32 gave 1.7 where all 249 of SIFT Flow's gave 1.3).",
    )
    parser.add_argument(
        "--crop",
        type=non_negative_int,
        default=128,
        help="Training crop side (multiple of 8); 0 = whole photos at the shape the network sees at colorization "
        "(sides rounded to its stride), batched by shape, trained in eager steps (one traced step cannot serve "
        "several shapes; 265 s per epoch of the release set against ~140 s for 192 crops).",
    )
    parser.add_argument(
        "--lr_schedule",
        choices=["plateau", "cosine"],
        default="plateau",
        help="plateau: the rate drops 0.3x when the validation loss stalls for half the patience; cosine: a "
        "half-cosine from --learning_rate to 2 %% of it over --epochs (for runs planned to a fixed length).",
    )
    parser.add_argument(
        "--shuffle_buffer",
        type=int,
        default=0,
        help="Training images held for shuffling (0 = the whole training epoch: records are stored in listing "
        "order, so a smaller buffer trains on one source or scene type after another; about 0.33 MB each).",
    )
    parser.add_argument(
        "--source_balance",
        type=float,
        default=1.0,
        help="Share of each source (the image ids' top folder) in a training epoch, proportional to its size "
        "to this power: 1 = as listed, 0 = equal shares, 0.5 = in between (smaller sources repeated).",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="float32",
        help="Training arithmetic: bfloat16 (Keras mixed_bfloat16: float32 weights and outputs) took 0.41x the "
        "time per step with the encoder fine-tuned, 0.62x frozen, 0.63-0.72x per epoch on a CPU with "
        "AVX512-BF16 (benchmarks/train_precision.py); emulated, slower, without bfloat16 instructions or AMX. "
        "The saved model computes in float32 either way; auto = bfloat16 where the CPU has bfloat16 instructions.",
    )
    add_seed(parser)
    return parser


def check(args):
    if args.crop % 8:
        raise UsageError(f"--crop {args.crop}: expected a multiple of 8")
    if not 0 < args.val_fraction < 1:
        raise UsageError(f"--val_fraction {args.val_fraction}: expected 0 < value < 1")
    if args.encoder == "parser" and not args.parser:
        raise UsageError("--encoder parser needs --parser DIR (a pipelines.train_parser output)")
    if args.encoder == "parser" and args.crop % 32:
        raise UsageError(f"--crop {args.crop}: the parser encoder needs a multiple of 32")
    if args.scene_weight < 0 or args.segment_weight < 0:
        raise UsageError("--scene_weight and --segment_weight: expected >= 0")
    if args.shuffle_buffer < 0:
        raise UsageError(f"--shuffle_buffer {args.shuffle_buffer}: expected >= 0")
    if not 0 <= args.source_balance <= 1:
        raise UsageError(f"--source_balance {args.source_balance}: expected 0 <= value <= 1")


def choose_config(args, scenes, segments, side):
    """(init model or None, FusionConfig): the --init model's architecture (with --loss / --default_mode
    changes), or a new one from the flags."""
    from colorize_tf import fusion

    init_model = None
    if args.init:  # architecture, loss and heads come from the model continued
        init_model, config = fusion.load_model_file(local_copy(args.init))
        missing = set(config.scenes) - set(scenes) if config.scene_weight > 0 else set()
        if missing or (config.segment_weight > 0 and list(config.segments) != list(segments)):
            raise UsageError(f"--init {args.init}: its scene or segment classes are not those of these records")
        if args.loss and args.loss != config.loss:
            config = dataclasses.replace(
                config,
                loss=args.loss,
                temperature=args.temperature,
                bins_weight=args.bins_weight,
                bins_hidden=args.bins_hidden,
                bins_decoder=args.bins_decoder,
                default_mode="",
            )
        if args.default_mode:
            config = dataclasses.replace(config, default_mode=args.default_mode)
        if args.uv_loss:
            config = dataclasses.replace(config, uv_loss=args.uv_loss)
        log.info("continuing from %s: %s", args.init, config)
    else:
        config = fusion.FusionConfig(
            loss=args.loss or "l2",
            base=args.base_channels,
            temperature=args.temperature,
            side=side,
            encoder=args.encoder,
            scenes=scenes if args.scene_weight > 0 else (),
            scene_weight=args.scene_weight,
            segments=segments if args.segment_weight > 0 else (),
            segment_weight=args.segment_weight,
            bins_weight=args.bins_weight,
            bins_hidden=args.bins_hidden,
            bins_decoder=args.bins_decoder,
            default_mode=args.default_mode or "",
            uv_loss=args.uv_loss or "mse",
        )
    return init_model, config


def run(argv=None):
    from colorize_tf import fusion, image_records, splits, tuning
    from colorize_tf.imageio import decode_image
    from transforms.train_specs import read_config

    args, _ = parse_job(build_parser(), argv, check)
    records_config = read_config(args.records)
    side = records_config["side"]
    segments = records_config.get("label_classes", [])
    if args.segment_weight > 0 and len(segments) < 2:
        raise UsageError("--segment_weight needs records with labels (pipelines.extract_images --labels)")
    rows = read_image_table(args.records)
    train, val = split_rows(rows, args.val_fraction, args.seed)
    write_split(args.output, train, val, args.val_fraction, args.seed)
    shards = [
        local_copy(p) for p in match_paths(FileSystems.join(args.records, "examples", "*.tfrecord.gz"), "image records")
    ]
    scenes = sorted({r["scene"] for r in rows})
    if args.scene_weight > 0 and len(scenes) < 2:
        raise UsageError(f"--scene_weight needs at least two scene labels in the records; found {scenes}")
    try:
        init_model, config = choose_config(args, scenes, segments, side)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.bins_only and (init_model is None or "logits" not in config.heads):
        raise UsageError("--bins_only needs --init MODEL and a loss with a bins head (--loss joint)")
    if args.finetune_encoder and config.encoder != "parser":
        raise UsageError("--finetune_encoder applies to the parser encoder (--encoder parser)")
    extras = ("scene",) * (config.scene_weight > 0) + ("labels",) * (config.segment_weight > 0)
    repeats = splits.source_repeats([r["image_id"] for r in train], args.source_balance, args.seed)
    epoch = {}
    for image_id, n in repeats.items():
        epoch[splits.source(image_id)] = epoch.get(splits.source(image_id), 0) + n
    log.info("training epoch by source (source balance %s): %s", args.source_balance, epoch)
    # --crop 0: whole photos at the network's input shape (sides multiples of its stride), batched by shape
    crop, multiple = (args.crop, None) if args.crop else (None, config.stride)
    train_ds = image_records.dataset(
        shards,
        crop,
        args.batch_size,
        {r["image_id"] for r in train},
        augment=True,
        jitter=True,
        seed=args.seed,
        shuffle=args.shuffle_buffer or max(1, sum(repeats.values())),
        extras=extras,
        repeats=repeats if args.source_balance < 1 else None,
        multiple=multiple,
    )
    val_ds = image_records.dataset(
        shards, crop, args.batch_size, {r["image_id"] for r in val}, extras=extras, multiple=multiple
    )
    encoder = None
    if args.encoder == "parser" and init_model is None:
        from colorize_tf.registry import load_parser

        parser_model = load_parser(args.parser)
        encoder = fusion.parser_encoder(parser_model.model)
    settings = train_settings(args)
    log.info(
        "%s/%s: %d training, %d validation images at side %d", args.family, config.loss, len(train), len(val), side
    )
    work = tempfile.TemporaryDirectory() if args.work_dir is None else None
    work_dir = args.work_dir or work.name
    model, record = fusion.train_fusion(
        train_ds,
        val_ds,
        config,
        settings,
        encoder=encoder,
        work_dir=work_dir,
        init_model=init_model,
        finetune_encoder=args.finetune_encoder,
        bins_only=args.bins_only,
        precision=resolve_precision(args.precision),
        eager=multiple is not None,
    )
    record["epoch_by_source"] = epoch
    record["source_balance"] = args.source_balance
    if init_model is not None:
        record["init_from"] = args.init
    if encoder is not None:
        record["encoder_from"] = {"parser": args.parser, "files": parser_model.meta.get("files", {})}
    log.info(
        "trained %d epochs in %.0f s: loss %.4f, val loss %s",
        record["epochs_run"],
        record["seconds"],
        record["best_loss"],
        record["best_val_loss"],
    )
    path_of = {r["image_id"]: r["path"] for r in val}

    def validation_pictures(n):
        """A stratified sample of ``n`` validation images, decoded."""
        return [decode_image(read_bytes(path_of[i])) for i in splits.stratified_sample(sorted(path_of), n, args.seed)]

    refine = args.refine
    if refine is None:
        pics = validation_pictures(args.tune_images)
        col = fusion.FusionColorizer(model, config, fusion.RefineParams(0, 0.1, 1.0))
        refine, table = tuning.tune_refinement(
            [p.gray for p in pics], [p.rgb for p in pics], raw_uv=[col.chroma(p.gray).uv for p in pics]
        )
        record["refine_tuning"] = {"images": len(pics), "grid": table}
        log.info("refinement tuned on %d validation images: %s", len(pics), refine)
    if args.vivid_target > 0 and "logits" in config.heads:
        # the vivid (bins) head's saturation, calibrated on a larger validation sample than the refinement's
        pics = validation_pictures(args.vivid_images)
        col = fusion.FusionColorizer(model, config, refine, mode="vivid", gain=1.0)
        uvs = [col.colorize(p.gray).uv for p in pics]
        gain, table = tuning.calibrate_gain([p.gray for p in pics], [p.rgb for p in pics], uvs, args.vivid_target)
        config = dataclasses.replace(config, vivid_gain=gain)
        record["vivid_gain_tuning"] = {"images": len(pics), "target": args.vivid_target, "grid": table}
        row = next(r for r in table if r["gain"] == gain)
        log.info(
            "vivid chroma gain %g on %d validation images: colourfulness %.2f of the truth's, %.2f dB (gray %.2f)",
            gain,
            len(pics),
            row["colourfulness_ratio"],
            row["mean_psnr"],
            row["gray_psnr"],
        )
    with tempfile.TemporaryDirectory() as tmp:
        fusion.save_fusion(tmp, model, config, record, refine)
        if os.path.isdir(os.path.join(work_dir, "tensorboard")):
            copy_tree(os.path.join(work_dir, "tensorboard"), os.path.join(tmp, "tensorboard"))
        copy_tree(tmp, args.output)
    if work is not None:
        work.cleanup()
    log.info("model written to %s", args.output)
    return record


def main(argv=None):
    return main_entry(run, argv)


if __name__ == "__main__":
    sys.exit(main())
