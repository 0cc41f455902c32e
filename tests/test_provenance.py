"""Provenance in outputs: EXIF Software / ImageDescription and an XMP packet that readers find again."""

import io

import numpy as np
import pytest
from PIL import Image


@pytest.mark.parametrize("fmt,bits", [("JPEG", 8), ("PNG", 8), ("WEBP", 8), ("TIFF", 8), ("PNG", 16)])
def test_provenance_reads_back_and_keeps_carried_metadata(fmt, bits):
    from colorize_tf.imageio import encode_image, provenance_kept
    from colorize_tf.provenance import DIGITAL_SOURCE_TYPE, Provenance, read_back

    prov = Provenance("people_v1", "0123456789ab" + "c" * 52, version="1.2.3", when="2026-11-24T02:00:00+00:00")
    source = Image.Exif()
    source[0x010F] = "Nikon"  # camera make, carried from the scan
    rgb = np.random.default_rng(0).uniform(0, 1, (24, 32, 3))
    data = encode_image(rgb, fmt, bits=bits, info={"exif": source.tobytes(), "dpi": (300, 300)}, provenance=prov)
    assert provenance_kept(fmt, bits)
    got = read_back(data)
    assert got["Model"] == "people_v1" and got["ModelSHA256"] == prov.model_sha256 and got["Version"] == "1.2.3"
    assert got["Colorized"] == "True" and got["ColorizedAt"] == "2026-11-24T02:00:00+00:00"
    assert got["digital_source_type"] == DIGITAL_SOURCE_TYPE
    assert got["software"] == "colorize-tf 1.2.3 (model people_v1@0123456789ab)"
    assert got["description"].startswith("Colorized automatically by colorize-tf 1.2.3")
    with Image.open(io.BytesIO(data)) as img:
        assert img.getexif()[0x010F] == "Nikon"
        if fmt != "WEBP" and bits == 8:
            assert np.allclose(img.info["dpi"], (300, 300), atol=0.01)


def test_a_source_description_is_kept_and_bmp_has_no_room():
    from colorize_tf.imageio import encode_image, provenance_kept
    from colorize_tf.provenance import Provenance, read_back

    prov = Provenance("m", "f" * 64)
    source = Image.Exif()
    source[0x010E] = "Grandmother & <her> sisters, 1931"
    data = encode_image(np.full((8, 8, 3), 0.5), "JPEG", info={"exif": source.tobytes()}, provenance=prov)
    got = read_back(data)
    assert got["description"] == "Grandmother & <her> sisters, 1931" and got["Model"] == "m"
    assert not provenance_kept("BMP") and not provenance_kept("TIFF", 16)
    plain = read_back(encode_image(np.full((8, 8, 3), 0.5), "PNG"))
    assert plain["software"] is None and "Model" not in plain


@pytest.mark.skipif(not __import__("shutil").which("exiftool"), reason="exiftool is not installed")
@pytest.mark.parametrize("fmt,bits", [("JPEG", 8), ("PNG", 8), ("WEBP", 8), ("TIFF", 8), ("PNG", 16)])
def test_exiftool_reads_the_provenance(fmt, bits, tmp_path):
    import json
    import subprocess

    from colorize_tf.imageio import encode_image
    from colorize_tf.provenance import Provenance

    prov = Provenance("people_v1", "ab" * 32, version="1.2.3", when="2026-11-24T02:00:00+00:00")
    path = tmp_path / f"out.{fmt.lower()}"
    path.write_bytes(encode_image(np.full((16, 16, 3), 0.4), fmt, bits=bits, provenance=prov))
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", str(path)], capture_output=True, text=True, check=True)
    tags = json.loads(out.stdout)[0]
    assert tags["IFD0:Software"] == "colorize-tf 1.2.3 (model people_v1@abababababab)"
    assert tags["XMP-colorize:Model"] == "people_v1" and tags["XMP-colorize:ModelSHA256"] == "ab" * 32
    assert tags["XMP-iptcExt:DigitalSourceType"].endswith("compositeWithTrainedAlgorithmicMedia")
