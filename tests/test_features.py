import numpy as np
import pytest
from skimage import data
from skimage.feature import daisy

from colorize_tf import features
from colorize_tf.features import DaisyBlock, Descriptor, PatchBlock


@pytest.fixture(scope="module")
def camera():
    return (data.camera()[100:228, 150:278] / 255.0).astype(np.float32)


def test_patch_values_and_reflect_border(camera):
    m = features.patch_maps(camera, 7)
    assert m.shape == camera.shape + (49,)
    y, x = 40, 50
    assert np.array_equal(m[y, x], camera[y - 3 : y + 4, x - 3 : x + 4].ravel())
    # corner: reflected (numpy 'reflect') neighbours
    padded = np.pad(camera, 3, mode="reflect")
    assert np.array_equal(m[0, 0], padded[0:7, 0:7].ravel())
    assert m[0, 0][24] == camera[0, 0]  # centre of the patch is the pixel


def test_daisy_matches_skimage_definition(camera):
    ours = features.daisy_maps(camera, radius=15)
    ref = daisy(np.pad(camera, 15, mode="reflect"), step=1, radius=15, rings=1, histograms=3, orientations=8)
    assert ours.shape == camera.shape + (32,) == ref.shape
    assert np.abs(ours - ref).max() < 1e-5
    assert np.allclose(ours.sum(-1), 1, atol=1e-5)  # l1-normalised


def test_descriptor_blocks_layout_and_sampled_equals_dense(camera):
    desc = Descriptor.from_names("patch,daisy")
    assert desc.dim == 81 and desc.names == ["patch", "daisy"]
    assert desc.layout() == {"patch": (0, 49), "daisy": (49, 81)}
    dense = desc.compute(camera)
    assert dense.shape == (camera.size, 81)
    coords = features.sample_pixels(camera, 300, edge_fraction=0.5, seed=3)
    sampled = desc.compute(camera, coords)
    assert np.array_equal(sampled, dense[coords[:, 0] * camera.shape[1] + coords[:, 1]])
    # config round trip and ablation by configuration
    again = Descriptor.from_config(desc.config())
    assert again.config() == desc.config()
    only_daisy = Descriptor.from_names("daisy")
    assert np.array_equal(only_daisy.compute(camera, coords), sampled[:, 49:])


def test_descriptor_rejects_bad_config():
    with pytest.raises(ValueError, match="unknown descriptor block"):
        Descriptor.from_config([{"name": "sift"}])
    with pytest.raises(ValueError, match="duplicate"):
        Descriptor([PatchBlock(), PatchBlock()])


def test_tile_margin_is_enough_for_exact_tiles(camera):
    desc = Descriptor([PatchBlock(7), DaisyBlock(15)])
    m = desc.margin
    full = desc.compute(camera).reshape(camera.shape + (81,))
    y0, y1, x0, x1 = 60, 90, 64, 100  # interior tile with its margin clipped to the image
    oy0, ox0 = max(0, y0 - m), max(0, x0 - m)
    crop = camera[oy0 : y1 + m, ox0 : x1 + m]
    tile = desc.compute(crop).reshape(crop.shape + (81,))
    assert np.abs(tile[y0 - oy0 : y1 - oy0, x0 - ox0 : x1 - ox0] - full[y0:y1, x0:x1]).max() < 1e-5


def test_sampling_distinct_reproducible_and_edge_weighted(camera):
    a = features.sample_pixels(camera, 500, edge_fraction=1.0, seed=7)
    b = features.sample_pixels(camera, 500, edge_fraction=1.0, seed=7)
    assert np.array_equal(a, b)
    assert len({tuple(p) for p in a}) == 500
    u = features.sample_pixels(camera, 500, edge_fraction=0.0, seed=7)
    g = features.gradient_magnitude(camera)
    assert g[a[:, 0], a[:, 1]].mean() > 2 * g[u[:, 0], u[:, 1]].mean()
    assert len(features.sample_pixels(camera[:10, :10], 5000)) == 100  # capped at the pixel count


def test_read_files_from_archives_for_the_feature_jobs(tmp_path):
    """Feature / evaluation jobs read archive members through the same walker: damaged members are dead
    letters and the members after them are still read; nested archives are entered."""
    import io

    import apache_beam as beam
    import hostile
    import numpy as np
    from PIL import Image

    from transforms.io import DEAD, ReadFileDoFn

    path = tmp_path / "box.zip"
    inner = hostile.make_zip([("deep.png", hostile._save(Image.fromarray(hostile.photo(seed=5)), "PNG"))])
    data = bytearray(
        hostile.make_zip(
            [
                ("a.png", hostile._save(Image.fromarray(hostile.photo(seed=1)), "PNG")),
                ("b.png", hostile._save(Image.fromarray(hostile.photo(seed=2)), "PNG")),
                ("c.png", hostile._save(Image.fromarray(hostile.photo(seed=3)), "PNG")),
                ("inner.zip", inner),
            ],
            compression=0,
        )
    )
    i = data.index(b"b.png") + 5 + 300  # corrupt b.png's stored bytes: its CRC fails
    data[i : i + 20] = bytes(20)
    path.write_bytes(bytes(data))
    out = list(ReadFileDoFn(1 << 20).process((str(path), "box.zip")))
    files = [o for o in out if not isinstance(o, beam.pvalue.TaggedOutput)]
    dead = [o.value for o in out if isinstance(o, beam.pvalue.TaggedOutput) and o.tag == DEAD]
    assert [f.rel for f in files] == ["box/a.png", "box/c.png", "box/inner/deep.png"]
    assert [d["path"].split("!", 1)[1] for d in dead] == ["b.png"] and "CRC" in dead[0]["reason"]
    assert np.asarray(Image.open(io.BytesIO(files[1].data))).shape == (48, 64, 3)
