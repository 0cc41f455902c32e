"""Job flags, the way Beam's own examples do them: each job's `argparse` parser takes its flags,
``parse_known_args`` passes the rest to `PipelineOptions`.

One vocabulary across jobs, the ``colorize`` command and the benchmarks (one name per concept):

==================  ==========================================================================
concept             flag
==================  ==========================================================================
inputs              ``--input`` (folder, glob, list file, archive or file), ``--list_root``
output              ``--output``
model               ``--model`` (model directory or bundle), ``--parser`` (scene parser)
refinement          ``--refine D,SIGMA_COLOR,SIGMA_SPACE[,SCALE]`` (parsed into a RefineParams)
cluster selection   ``--selection_k``, ``--selection_layers``
pixel limit         ``--max_pixels``
replace outputs     ``--overwrite``
output quality      ``--quality``
==================  ==========================================================================

Old spellings (``--refine_params``, ``--eval_refine``, ``--archive_selection_k``,
``--eval_selection_k``, ``--archive_max_pixels``, ``--force``, ``--jpeg_quality``, the parser job's
``--parser_epochs`` ...) still work for one release and print a deprecation warning. Values are parsed
and checked here, on the launcher, into typed objects (`RefineParams`, tuples of layers) that DoFns
receive; a bad value stops the job before anything is submitted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)

#: Beam options most jobs need, listed in every job's --help (``--help_beam`` prints all of them).
BEAM_EPILOG = """\
Beam pipeline options: every other --flag goes to Beam's PipelineOptions, e.g. --runner (default here:
FnApiRunner, in-process), --direct_num_workers=2 --direct_running_mode=multi_threading (local parallelism),
--runner=DataflowRunner --project --region --temp_location --setup_file=./setup.py [--dry_run=True],
--runner=PortableRunner --job_endpoint --environment_type --environment_config (Flink, Spark).
--help_beam lists all of Beam's options."""


class UsageError(Exception):
    """A bad option value or an unusable model, found before any worker starts; the message is one line.

    `main_entry` prints it as ``PROG: error: MESSAGE`` and exits with status 2 (argparse's convention).
    """


class JobFailed(Exception):
    """The job ran but its result is unusable (e.g. more inputs failed than allowed); the message is one
    line. `main_entry` prints it and exits with status 3."""


class _Deprecated(argparse.Action):
    """An old spelling: stores into the new flag's destination and warns."""

    def __init__(self, option_strings, dest, new=None, target_type=None, flag_const=None, **kwargs):
        self.new, self.target_type, self.flag_const = new, target_type, flag_const
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        if self.flag_const is not None:
            values = self.flag_const
        elif self.target_type is not None:
            try:
                values = self.target_type(values)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, values)


class _Formatter(argparse.HelpFormatter):
    """Defaults shown where they say something; description and epilog keep their line breaks."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=32, width=110)

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.default not in (None, False, argparse.SUPPRESS)
            and "%(default)" not in text
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text

    def _fill_text(self, text, width, indent):
        return "\n".join(indent + line for line in text.splitlines())


class _JobParser(argparse.ArgumentParser):
    """Argparse whose errors are `UsageError`s: one line (``PROG: error: MESSAGE``, exit 2 via
    `main_entry`), not a usage block."""

    def error(self, message):
        raise UsageError(message)


def job_parser(doc, prog=None, beam=True):
    """A job's parser: the module docstring's first paragraph as description, defaults in the help;
    a Beam job's epilog points at Beam's options."""
    parser = _JobParser(
        prog=prog,
        description=(doc or "").strip().split("\n\n")[0],
        epilog=BEAM_EPILOG if beam else None,
        allow_abbrev=False,
        formatter_class=_Formatter,
    )
    if beam:
        parser.add_argument("--help_beam", action="store_true", help="List all of Beam's pipeline options and exit.")
    parser.deprecated = []
    parser.base_epilog = parser.epilog
    return parser


def alias(parser, old, new):
    """Accept `old` as a deprecated spelling of the already defined flag `new`."""
    target = next(a for a in parser._actions if new in a.option_strings)
    is_flag = target.nargs == 0
    parser.add_argument(
        old,
        dest=target.dest,
        action=_Deprecated,
        new=new,
        help=argparse.SUPPRESS,
        target_type=None if is_flag else target.type,
        nargs=0 if is_flag else None,
        flag_const=target.const if is_flag else None,
    )
    parser.deprecated.append((old, new))
    parser.epilog = (
        ((parser.base_epilog + "\n\n") if parser.base_epilog else "")
        + "Deprecated spellings (still accepted, with a warning): "
        + ", ".join(f"{o} -> {n}" for o, n in parser.deprecated)
        + "."
    )


def refine_arg(text):
    """``--refine`` value -> RefineParams (argparse type; a bad value is a usage error)."""
    from colorize_tf.refine import RefineParams

    try:
        return RefineParams.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def layers_arg(text):
    """``--selection_layers`` value: ``all`` -> () (every layer), ``0,1`` -> (0, 1)."""
    if str(text).strip().lower() == "all":
        return ()
    try:
        layers = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'all' or layer numbers like '0' or '0,1'") from None
    if any(v < 0 for v in layers):
        raise argparse.ArgumentTypeError(f"{text!r}: layer numbers start at 0")
    return layers


def number_type(convert, kind, accept, expected, name):
    """An argparse ``type``: ``convert(text)`` (else "expected ``kind``"), kept when ``accept(value)`` (else
    "expected ``expected``")."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {kind}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text}: expected {expected}")
        return value

    parse.__name__ = name
    return parse


positive_float = number_type(float, "a number", lambda v: v > 0, "a number > 0", "positive_float")
non_negative_float = number_type(
    float, "a number", lambda v: 0 <= v < float("inf"), "a number >= 0", "non_negative_float"
)
unit_float = number_type(float, "a number", lambda v: 0 <= v <= 1, "a number from 0 to 1", "unit_float")
non_negative_int = number_type(int, "a whole number", lambda v: v >= 0, "a number >= 0", "non_negative_int")
positive_int = number_type(int, "a whole number", lambda v: v >= 1, "a number >= 1", "positive_int")


def number_list(item, allow_empty=False):
    """An argparse ``type`` for comma-separated numbers, each parsed by ``item`` (e.g. `unit_float`):
    ``"1,0.5"`` -> [1.0, 0.5]; ``""`` -> [] with ``allow_empty``, else an error."""

    def parse(text):
        values = [item(v.strip()) for v in str(text).split(",") if v.strip()]
        if not values and not allow_empty:
            raise argparse.ArgumentTypeError(f"{text!r}: expected at least one comma-separated value")
        return values

    parse.__name__ = f"{item.__name__} list"
    return parse


def add_inputs(parser, required=True, what="Images"):
    parser.add_argument(
        "--input",
        required=required,
        help=f"{what}: folder (recursive), glob, list file (one path or glob per line), file; any Beam filesystem.",
    )
    parser.add_argument(
        "--list_root",
        default=None,
        help="Base folder for relative list-file entries (default: the list file's folder).",
    )


def add_output(parser, what="Output folder (any Beam filesystem).", required=True):
    parser.add_argument("--output", required=required, help=what)


def add_model(parser):
    from colorize_tf.registry import SHIPPED_MODEL

    parser.add_argument(
        "--model",
        default=SHIPPED_MODEL,
        help="Model directory or clustered bundle (pipelines.train / train_images / release output; any Beam "
        f"filesystem). Default: {SHIPPED_MODEL}, the general-purpose model shipped in the package (see its "
        "MODEL.md).",
    )
    parser.add_argument(
        "--parser", default=None, help="Scene-parser directory to use instead of the one stored with the model."
    )
    parser.add_argument(
        "--temperature",
        type=positive_float,
        default=None,
        help="Models trained with the classification loss: annealed-mean temperature (1 = mean, muted; "
        "lower = more vivid; default: the model's, 0.38 as Zhang et al.).",
    )
    parser.add_argument(
        "--mode",
        choices=["faithful", "vivid"],
        default=None,
        help="faithful: the PSNR-optimal chroma (muted where unsure); vivid: likely colours at nearly the "
        "true photos' colourfulness; where the model offers both (default: the model's default mode).",
    )
    parser.add_argument(
        "--chroma_gain",
        type=positive_float,
        default=None,
        help="Models with modes: multiply the chosen mode's chroma by this (more or less saturated; default: "
        "1 in the faithful mode, the model's own in the vivid mode, chosen on validation); with "
        "--colourfulness, the largest multiplier.",
    )
    parser.add_argument(
        "--colourfulness",
        type=non_negative_float,
        default=None,
        help="Models with modes: bring each photo's chroma to this colourfulness (Hasler-Suesstrunk M: 0 gray, "
        "everyday photos ~30-45) by a per-photo multiplier of 1 .. --chroma_gain (default 6); 0 = one fixed "
        "multiplier; default: the mode's own (the vivid mode's target, chosen on validation).",
    )
    parser.add_argument(
        "--cast",
        type=unit_float,
        default=None,
        help="Models with modes: share of the chroma multiplier given to each photo's overall tint (1 = all "
        "chroma alike; 0.5 = colours within the photo spread further than its tint deepens; 0 = the faithful "
        "mode's tint kept, less of a warm wash on old scans; default: the mode's own, chosen on validation).",
    )


def add_refine(
    parser,
    help_text="Refinement 'DIAMETER,SIGMA_COLOR,SIGMA_SPACE[,SCALE]' (0,0,0 = off); "
    "default: the one tuned and stored with the model.",
    old=(),
):
    parser.add_argument("--refine", type=refine_arg, default=None, help=help_text)
    for name in old:
        alias(parser, name, "--refine")


def work_side_arg(text):
    """``--work_side`` value: 0 (full resolution) or a side of at least 32 pixels (argparse type)."""
    try:
        side = int(text)
    except ValueError:
        side = -1
    if side != 0 and not 32 <= side <= 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 (full resolution) or a side of 32..65536 pixels")
    return side


def add_work_side(parser):
    from colorize_tf.colorize import DEFAULT_WORK_SIDE

    parser.add_argument(
        "--work_side",
        type=work_side_arg,
        default=None,
        help="Longer side (pixels) at which chroma is predicted and refined; larger images get it upsampled "
        "under their own full-resolution luminance (guided), which is kept exactly, so the cost hardly grows "
        f"with scan size. 0 = full resolution. Default: the model family's ({DEFAULT_WORK_SIDE} unless it "
        "sets another).",
    )


def add_selection(parser, k_default=None, layers_default=None, old_k=()):
    parser.add_argument(
        "--selection_k",
        type=positive_int,
        default=k_default,
        help="Bundles: top-k clusters by GIST, then the semantic histogram picks one (1 = GIST only)"
        + ("" if k_default else "; default: the bundle's")
        + ".",
    )
    parser.add_argument(
        "--selection_layers",
        type=layers_arg,
        default=layers_default,
        help="Bundles: layers whose clusters are candidates ('all' or e.g. '0' or '0,1')"
        + ("" if layers_default is not None else "; default: the bundle's")
        + ".",
    )
    for name in old_k:
        alias(parser, name, "--selection_k")


def colorize_settings(args, tile=None):
    """The ColorizeSettings a job's parsed flags ask for (--refine, --tile, --parser, --selection_*)."""
    from colorize_tf.registry import ColorizeSettings

    return ColorizeSettings(
        refine=args.refine,
        tile=args.tile if tile is None else tile,
        parser_dir=args.parser,
        selection_k=args.selection_k,
        selection_layers=args.selection_layers,
        temperature=getattr(args, "temperature", None),
        mode=getattr(args, "mode", None),
        chroma_gain=getattr(args, "chroma_gain", None),
        colourfulness=getattr(args, "colourfulness", None),
        cast=getattr(args, "cast", None),
    )


def add_training(parser, epochs, batch_size, batch_unit, patience, tune_images, learning_rate=1e-3):
    """Flags every training job shares: schedule, early stopping, the stratified validation split and the
    refinement (tuned on validation images unless fixed)."""
    parser.add_argument(
        "--epochs", type=positive_int, default=epochs, help="Most epochs (early stopping may end sooner)."
    )
    parser.add_argument("--batch_size", type=positive_int, default=batch_size, help=f"{batch_unit} per gradient step.")
    parser.add_argument("--learning_rate", type=float, default=learning_rate, help="Adam learning rate.")
    parser.add_argument("--patience", type=positive_int, default=patience, help="Early-stopping patience (epochs).")
    parser.add_argument(
        "--val_fraction",
        type=float,
        default=0.1,
        help="Share of images held out for validation, stratified over sources and scene types.",
    )
    parser.add_argument(
        "--tune_images",
        type=int,
        default=tune_images,
        help="Validation images (a stratified sample) that tune the refinement.",
    )
    add_refine(parser, "Fixed refinement 'DIAMETER,SIGMA_COLOR,SIGMA_SPACE[,SCALE]' instead of tuning (0,0,0 = off).")


def train_settings(args):
    """The TrainSettings of the flags `add_training` defines (and --seed)."""
    from colorize_tf.registry import TrainSettings

    return TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        seed=args.seed,
        lr_schedule=getattr(args, "lr_schedule", "plateau"),
    )


def add_record_job(parser):
    """Flags of the jobs that turn images into training records: decoding bound, shards, failure threshold."""
    from colorize_tf.imageio import DEFAULT_MAX_PIXELS

    parser.add_argument(
        "--max_pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help="Larger images become dead letters (decoding bound).",
    )
    parser.add_argument("--num_shards", type=int, default=0, help="TFRecord shards (0 = runner decides).")
    parser.add_argument(
        "--max_failed_fraction",
        type=float,
        default=0.1,
        help="Exit with status 3 when more than this share of images failed unexpectedly (stage "
        "'internal' in the dead letters: a bug, not a bad file). A job with no usable image "
        "always fails.",
    )


def add_seed(parser):
    parser.add_argument("--seed", type=int, default=0, help="Seed for sampling, splits and initialisation.")


def beam_parser():
    """Argparse parser holding every registered Beam PipelineOptions flag."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(prog="Beam pipeline options", allow_abbrev=False)
    seen = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    return parser


def parse_job(parser, argv=None, checks=None):
    """Parse a job's flags; the rest become its PipelineOptions.

    Returns
    -------
    args : argparse.Namespace
        The job's flags (typed).
    options : PipelineOptions
        Beam's flags; flags neither the job nor Beam knows are a `UsageError`.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help_beam" in argv:
        beam_parser().print_help()
        raise SystemExit(0)
    args, rest = parser.parse_known_args(argv)
    unknown = [a for a in beam_parser().parse_known_args(rest)[1] if a.startswith("-")]
    if unknown:
        raise UsageError(f"unrecognised option(s) {' '.join(unknown)} (neither this job's nor Beam's; see --help)")
    options = PipelineOptions(rest)
    setup = options.view_as(SetupOptions)
    if setup.save_main_session is None:  # workers never need the launcher's __main__
        setup.save_main_session = False
    if checks:
        checks(args)
    return args, options


def is_dry_run(options):
    """``--dry_run`` (Dataflow): the job graph is built and its packages staged locally, nothing runs."""
    from apache_beam.options.pipeline_options import TestOptions

    return bool(options.view_as(TestOptions).dry_run)


def run_pipeline(pipeline, options):
    """Run `pipeline` and wait for it; with ``--dry_run`` return the unexecuted result at once."""
    result = pipeline.run()
    if not is_dry_run(options):
        result.wait_until_finish()
    return result


def setup_logging(verbose=False):
    """Our loggers at INFO with timestamps; Beam/TensorFlow at WARNING unless `verbose`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    for name in ("__main__", "colorize_tf", "transforms", "pipelines", "colorize", "demo"):
        logging.getLogger(name).setLevel(logging.INFO)


def main_entry(run, argv=None):
    """Console-script body: logging, the local runner unless one is given, then `run(argv)`."""
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--runner") for a in argv):
        argv.append("--runner=FnApiRunner")
    try:
        run(argv)
    except UsageError as exc:
        print(f"{_prog()}: error: {exc}", file=sys.stderr)
        return 2
    except JobFailed as exc:
        print(f"{_prog()}: failed: {exc}", file=sys.stderr)
        return 3
    return 0


def _prog():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-m") else "colorize"
