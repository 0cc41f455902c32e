"""Job flags: each job's --help lists its own options, one vocabulary, deprecated spellings, no TensorFlow
at import time (fast tier: no pipeline runs)."""

import subprocess
import sys

import pytest

JOBS = ("extract_features", "extract_images", "train", "train_images", "train_parser", "evaluate", "colorize_archive")
OWN = {  # options only that job has
    "extract_features": ("--samples_per_image", "--daisy_radius", "--blocks"),
    "extract_images": ("--side",),
    "train_images": ("--records", "--loss", "--scene_weight", "--encoder"),
    "train": ("--epsilon", "--mu", "--n0", "--cluster_learning_rate"),
    "train_parser": ("--class_weight_power", "--work_size", "--smooth_sigma_spatial"),
    "evaluate": ("--baselines", "--no_pictures"),
    "colorize_archive": ("--worker_memory_mb", "--max_archive_depth", "--lock_stale_minutes"),
}


def _help(name):
    import importlib

    return importlib.import_module(f"pipelines.{name}").build_parser().format_help()


@pytest.mark.parametrize("name", JOBS)
def test_help_lists_the_jobs_own_options_only(name):
    text = _help(name)
    for flag in OWN[name]:
        assert flag in text
    for other, flags in OWN.items():
        if other != name:
            assert not [f for f in flags if f + " " in text], f"{name} --help shows {other}'s options"
    assert "--runner" in text and "--help_beam" in text  # Beam's options are pointed at


def test_one_vocabulary_across_jobs():
    for name in ("evaluate", "colorize_archive"):
        text = _help(name)
        for flag in ("--input", "--list_root", "--output", "--model", "--refine", "--selection_k"):
            assert flag + " " in text
    archive = _help("colorize_archive")
    for flag in ("--overwrite", "--quality", "--max_pixels"):
        assert flag + " " in archive
    assert "--force -> --overwrite" in archive and "--jpeg_quality -> --quality" in archive


def test_help_of_a_job_module_runs_without_tensorflow():
    code = (
        "import sys; sys.argv=['x','--help']\n"
        "import pipelines.train as t, pipelines.colorize_archive, pipelines.evaluate, pipelines.extract_features\n"
        "import pipelines.train_parser, transforms.inference, transforms.training, transforms.colorize\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported at module import'\n"
        "t.build_parser().format_help()\n"
        "assert 'tensorflow' not in sys.modules, 'TF imported by --help'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    out = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--help"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "--epsilon" in out and "Error threshold on -PSNR" in out and "(default: -26.0)" in out


def test_deprecated_spellings_still_work_and_warn(capsys):
    from pipelines import colorize_archive
    from pipelines.options import parse_job

    args, options = parse_job(
        colorize_archive.build_parser(),
        [
            "--input=a",
            "--model=m",
            "--output=o",
            "--force",
            "--jpeg_quality=80",
            "--archive_selection_k=2",
            "--refine_params=9,0.1,4",
            "--runner=FnApiRunner",
        ],
    )
    assert args.overwrite is True and args.quality == 80 and args.selection_k == 2
    assert (args.refine.diameter, args.refine.sigma_space) == (9, 4.0)  # parsed once, typed
    assert options.get_all_options()["runner"] == "FnApiRunner"
    err = capsys.readouterr().err
    assert "--force is deprecated; use --overwrite" in err and "--jpeg_quality is deprecated" in err


def test_bad_values_stop_before_anything_runs():
    from pipelines import evaluate, train
    from pipelines.options import UsageError, parse_job

    with pytest.raises(UsageError, match="D,SIGMA_COLOR,SIGMA_SPACE"):
        parse_job(evaluate.build_parser(), ["--input=a", "--model=m", "--output=o", "--refine=9,0.1"])
    with pytest.raises(UsageError, match="NAME not one of model, gray, truth"):  # would overwrite psnr_gray
        parse_job(evaluate.build_parser(), ["--input=a", "--model=m", "--output=o", "--baselines=gray=x"])
    with pytest.raises(UsageError, match="--epsilonn"):
        parse_job(train.build_parser(), ["--features=f", "--output=o", "--epsilonn=-20"])
    with pytest.raises(UsageError, match="required: --features"):
        parse_job(train.build_parser(), ["--output=o"])
    args, _ = parse_job(train.build_parser(), ["--features=f", "--output=o", "--selection_layers=all"])
    assert args.selection_layers == () and args.selection_k == 1


def test_main_entry_exit_codes(capsys):
    from pipelines.options import JobFailed, UsageError, main_entry

    def bad(argv):
        raise UsageError("--x is wrong")

    def failed(argv):
        raise JobFailed("3 of 4 inputs failed")

    assert main_entry(bad, []) == 2 and main_entry(failed, []) == 3
    err = capsys.readouterr().err
    assert "error: --x is wrong" in err and "failed: 3 of 4 inputs failed" in err
