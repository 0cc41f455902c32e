import os
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = os.path.join(ROOT, "..", "shared", "data")
N_IMAGES = 10
SAMPLES = 600


def synthetic_scene(h=64, w=80, seed=0):
    """A colour test image with structure: blue sky gradient, green textured ground, red disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    horizon = h // 2 + int(rng.integers(-4, 5))
    sky = yy < horizon
    rgb[sky] = np.stack([0.35 + 0.2 * yy[sky] / h, 0.55 + 0.2 * yy[sky] / h, 0.95 * np.ones(sky.sum())], -1)
    tex = 0.1 * np.sin(xx / 2.0 + rng.uniform(0, 6)) * np.cos(yy / 3.0)
    ground = ~sky
    rgb[ground] = np.stack([0.2 + tex[ground], 0.55 + tex[ground], 0.15 + 0.5 * tex[ground]], -1)
    cy, cx, r = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w, min(h, w) / 6
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    rgb[disc] = [0.85, 0.15, 0.1]
    return np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1).astype(np.float32)


@pytest.fixture
def scene():
    return synthetic_scene()


def write_png(path, rgb):
    from PIL import Image

    Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)).save(path)


@pytest.fixture(scope="session")
def features_dir(tmp_path_factory):
    from pipelines import extract_features

    root = tmp_path_factory.mktemp("job")
    imgs = root / "images"
    (imgs / "sub").mkdir(parents=True)
    for i in range(N_IMAGES):
        write_png(str(imgs / ("sub" if i % 2 else "") / f"scene{i:02d}.png"), synthetic_scene(64, 80, seed=i))
    (imgs / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = (imgs / "scene00.png").read_bytes()
    (imgs / "truncated.png").write_bytes(good[: len(good) // 3])
    Image.fromarray(np.full((32, 32), 100, np.uint8)).save(imgs / "gray.png")
    (imgs / "notes.txt").write_text("not an image")
    out = root / "features"
    extract_features.run(
        [
            f"--input={imgs}",
            f"--output={out}",
            f"--samples_per_image={SAMPLES}",
            "--edge_fraction=0.25",
            "--runner=FnApiRunner",
        ]
    )
    return out


@pytest.fixture(scope="session")
def model_dir(features_dir):
    from pipelines import train

    out = features_dir.parent / "model"
    train.run(
        [
            f"--features={features_dir}",
            f"--output={out}",
            "--epochs=15",
            "--val_fraction=0.2",
            "--tune_images=2",
            "--runner=FnApiRunner",
        ]
    )
    return out


#: Fixtures that run Beam jobs or train models: tests using them belong to the slow (job) tier.
JOB_FIXTURES = {"features_dir", "model_dir", "bundle_dir", "tiny_sets", "trained", "job_service"}
#: Modules whose tests run whole jobs.
JOB_MODULES = {
    "test_archive",
    "test_archive_hostile",
    "test_archive_safety",
    "test_dataflow",
    "test_evaluate",
    "test_pipelines",
    "test_portable",
    "test_remote",
}


def pytest_collection_modifyitems(config, items):
    """Two tiers: ``-m "not slow"`` (library and TestPipeline tests, < 60 s) and ``-m slow`` (the jobs)."""
    for item in items:
        if item.module.__name__ in JOB_MODULES or JOB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def clustering_args(features, out, epsilon=-60, max_layers=1, epochs=2, **extra):
    """`pipelines.train` flags for a small Algorithm 3 run (N0 = 2, mu = 3) on the generated images."""
    args = [
        f"--features={features}",
        f"--output={out}",
        "--adaptive_clustering",
        "--n0=2",
        "--mu=3",
        f"--epsilon={epsilon}",
        f"--max_layers={max_layers}",
        f"--epochs={epochs}",
    ]
    return args + [f"--{k}={v}" for k, v in extra.items()]
