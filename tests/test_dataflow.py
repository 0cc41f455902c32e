"""Every job's Dataflow submission, built offline: ``--runner=DataflowRunner --dry_run=True`` constructs the job
(runner v2 pipeline proto, staged artifacts incl. the sdist of setup.py) without contacting Google Cloud.
Needs the ``apache-beam[gcp]`` extra (part of ``.[test]``)."""

import tarfile

import pytest
from conftest import ROOT, synthetic_scene, write_png

pytest.importorskip("google.cloud.storage", reason="needs the apache-beam[gcp] extra")


def dataflow_args(tmp_path, *extra):
    return [
        "--runner=DataflowRunner",
        "--dry_run=True",
        "--project=colorize-test",
        "--region=europe-west1",
        "--temp_location=gs://colorize-test-bucket/tmp",
        f"--setup_file={ROOT}/setup.py",
        "--machine_type=n2-highmem-4",
        "--max_num_workers=8",
        *extra,
    ]


def job_graph(result):
    """(top-level step names, all step names, {staged name: local file}, environment) of a dry-run job."""
    from apache_beam.portability.api import beam_runner_api_pb2

    proto = result.job.proto_pipeline
    names = [t.unique_name for t in proto.components.transforms.values()]
    staged, envs = {}, list(proto.components.environments.values())
    for env in envs:
        for dep in env.dependencies:
            path = beam_runner_api_pb2.ArtifactFilePayload.FromString(dep.type_payload).path
            role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(dep.role_payload)
            staged[role.staged_name] = path
    return {n for n in names if "/" not in n}, set(names), staged, envs


def assert_worker_package(staged):
    assert "workflow.tar.gz" in staged, staged  # the sdist of setup.py, installed on every worker
    assert "pickled_main_session" not in staged  # workers never need the launcher's __main__
    members = tarfile.open(staged["workflow.tar.gz"]).getnames()
    for module in (
        "colorize_tf/colorize.py",
        "colorize_tf/features.py",
        "transforms/fs.py",
        "transforms/training.py",
        "pipelines/train.py",
        "setup.py",
    ):
        assert any(m.endswith("/" + module) for m in members), module


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("df_images")
    for i in range(2):
        write_png(str(d / f"s{i}.png"), synthetic_scene(40, 48, seed=900 + i))
    return d


def test_feature_job_graph(images, tmp_path):
    from pipelines import extract_features

    result = extract_features.run([f"--input={images}", f"--output={tmp_path / 'f'}"] + dataflow_args(tmp_path))
    top, _, staged, envs = job_graph(result)
    assert {"ReadImages", "ExtractFeatures", "WriteSamples", "WriteImageTable", "WriteDeadLetters"} <= top
    assert_worker_package(staged)
    assert envs[0].urn == "beam:env:docker:v1"
    # files are listed on a worker: the submitted graph does not grow with the number of inputs
    assert b"s0.png" not in result.job.proto_pipeline.SerializeToString()


def test_image_record_job_graph(images, tmp_path):
    from pipelines import extract_images

    result = extract_images.run([f"--input={images}", f"--output={tmp_path / 'r'}"] + dataflow_args(tmp_path))
    top, _, staged, _ = job_graph(result)
    assert {"ReadImages", "ImageExamples", "WriteExamples", "WriteImageTable", "WriteDeadLetters"} <= top
    assert_worker_package(staged)


def test_training_job_graphs(features_dir, model_dir, tmp_path):
    from pipelines import train

    single = train.run([f"--features={features_dir}", f"--output={tmp_path / 'm'}"] + dataflow_args(tmp_path))
    top, _, staged, _ = job_graph(single)
    assert {"ClusterSpecs", "TrainModels", "WriteSummary"} <= top
    assert_worker_package(staged)
    # Algorithm 3: the first layer's job (GIST k-means needs no runner); later layers need its results
    layer = train.run(
        [
            f"--features={features_dir}",
            f"--output={tmp_path / 'b'}",
            "--adaptive_clustering",
            "--n0=2",
            "--mu=3",
            f"--root_model={model_dir}",
        ]
        + dataflow_args(tmp_path)
    )
    top, _, staged, _ = job_graph(layer)
    assert {
        "ReadSamplesL0",
        "KeyByClusterL0",
        "GroupByClusterL0",
        "TrainModelsL0",
        "SpreadImagesL0",
        "DecodeReferencesL0",
        "ColorizeReferencesL0",
        "ScoreL0",
        "WritePsnrL0",
        "WriteUnmeasuredL0",
    } <= top
    assert_worker_package(staged)


def test_archive_evaluate_and_parser_job_graphs(images, model_dir, tmp_path):
    from test_parser import write_generic

    from pipelines import colorize_archive, evaluate, train_parser

    result = colorize_archive.run(
        [f"--input={images}", f"--model={model_dir}", f"--output={tmp_path / 'o'}"]
        + dataflow_args(tmp_path, "--sdk_container_image=europe-docker.pkg.dev/p/r/colorize:1")
    )
    top, _, staged, envs = job_graph(result)
    assert {
        "ListFiles",
        "ExpandInputs",
        "AssignOutputs",
        "SkipFinished",
        "GroupReadingUnits",
        "Colorize",
        "WriteManifestParquet",
        "WriteManifestCsv",
    } <= top
    assert_worker_package(staged)
    assert b"europe-docker.pkg.dev/p/r/colorize:1" in envs[0].payload  # custom container (Dockerfile)

    result = evaluate.run(
        [f"--input={images}", f"--model={model_dir}", f"--output={tmp_path / 'r'}"] + dataflow_args(tmp_path)
    )
    top, _, staged, _ = job_graph(result)
    assert {"ReadImages", "ReadForEvaluation", "Colorize", "Score", "WriteRecords", "WriteDead"} <= top
    assert_worker_package(staged)

    data = tmp_path / "labelled"
    write_generic(data, n=6)
    result = train_parser.run([f"--data={data}", f"--output={tmp_path / 'p'}"] + dataflow_args(tmp_path))
    top, _, staged, _ = job_graph(result)
    assert {"ListPairs", "PrepareExamples", "WriteTrain", "WriteTest", "WriteDeadLetters"} <= top
    assert_worker_package(staged)
    assert not (tmp_path / "p" / "parser.json").exists()  # nothing ran


def test_dockerfile_matches_pins():
    """The worker image's Beam SDK and Python versions are the ones the package pins."""
    import re

    docker = open(f"{ROOT}/Dockerfile").read()
    setup = open(f"{ROOT}/setup.py").read()
    base = re.search(r"^FROM apache/beam_python(\d+\.\d+)_sdk:(\S+)$", docker, re.M)
    assert base, "Dockerfile must build on Beam's Python SDK image"
    assert f'"apache-beam=={base.group(2)}"' in setup
    assert base.group(1) == "3.11"  # the Python the README's commands set up
    for folder in ("colorize_tf", "transforms", "pipelines"):
        assert f"COPY {folder} ./{folder}" in docker
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in docker
