"""Options shared by every job.

Beam parses all PipelineOptions subclasses loaded in a process together when
it serialises a pipeline, so an option name may be defined only once and no
option may be argparse-``required``: the shared ones live here, each job's
own ones in its module, and `require` checks presence at run time.
"""
from apache_beam.options.pipeline_options import PipelineOptions


class JobOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", default=None, help="Input: folder, glob, list file or file (any Beam filesystem).")
        parser.add_argument("--output", default=None, help="Output folder (any Beam filesystem).")
        parser.add_argument("--seed", type=int, default=0, help="Seed for sampling, splits and initialisation.")
        parser.add_argument("--model", default=None, help="Model directory or clustered bundle (jobs that colorize).")
        parser.add_argument("--list_root", default=None, help="Base folder for relative list-file entries.")
        parser.add_argument("--parser", default=None,
                            help="Scene-parser directory (pipelines.train_parser): adds the semantic block.")


class UsageError(Exception):
    """A bad option value or an unusable model, found before any worker starts; the message is one line.

    `main_entry` prints it as ``PROG: error: MESSAGE`` and exits with status 2 (argparse's convention).
    """


def require(opts, *names):
    """Raise a clear error when a needed option is missing."""
    missing = [n for n in names if getattr(opts, n, None) in (None, "")]
    if missing:
        raise UsageError("missing required option(s): " + ", ".join("--" + n for n in missing))


def job_args(options):
    """All parsed options (shared and job-specific) as one attribute namespace.

    Workers never need the launcher's ``__main__``: every DoFn imports what it
    uses, so ``save_main_session`` stays off unless asked for (Dataflow would
    otherwise pickle the launcher's session).
    """
    import types

    from apache_beam.options.pipeline_options import SetupOptions

    setup = options.view_as(SetupOptions)
    if setup.save_main_session is None:
        setup.save_main_session = False
    return types.SimpleNamespace(**options.get_all_options(retain_unknown_options=False))


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
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    for name in ("__main__", "colorize_tf", "transforms", "pipelines", "colorize", "demo"):
        logging.getLogger(name).setLevel(logging.INFO)


def main_entry(run, argv=None):
    """Console-script body: logging, the local runner unless one is given, then `run(argv)`."""
    import sys

    import os

    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.startswith("--runner") for a in argv):
        argv.append("--runner=FnApiRunner")
    try:
        run(argv)
    except UsageError as exc:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-m") else "colorize"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0
