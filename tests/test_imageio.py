"""Safe decoding of untrusted bytes, metadata carried only as formats define it, output verification."""

import io

import numpy as np
import pytest
from PIL import Image

from colorize_tf import imageio
from colorize_tf.imageio import ImageDecodeError, OutputCheckError, decode_image, encode_image, verify_encoded


def _save(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(h=40, w=56, seed=0):
    from conftest import synthetic_scene

    return (synthetic_scene(h, w, seed=seed) * 255).astype(np.uint8)


def test_pillow_bomb_guard_stays_on_and_follows_our_limit():
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS >= imageio.DEFAULT_MAX_PIXELS
    data = _save(Image.fromarray(_photo()), "PNG")
    decode_image(data, max_pixels=3 * imageio.DEFAULT_MAX_PIXELS)
    assert Image.MAX_IMAGE_PIXELS == 3 * imageio.DEFAULT_MAX_PIXELS  # raised to ours, never None
    with pytest.raises(ImageDecodeError, match=r"too large: 56x40 = 2240 pixels > limit 2000"):
        decode_image(data, max_pixels=2000)


@pytest.mark.parametrize(
    "fmt,name",
    [("EPS", "PostScript/EPS"), ("ICO", "ICO"), ("PDF", "PDF"), ("QOI", "QOI"), ("DDS", "DDS"), ("SGI", "SGI")],
)
def test_formats_outside_the_allow_list_are_refused_by_name(fmt, name, monkeypatch):
    import subprocess

    def no_subprocess(*a, **k):  # EPS must never reach Ghostscript
        raise AssertionError("a decoder tried to start a program")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    data = _save(Image.fromarray(_photo()), fmt)
    with pytest.raises(ImageDecodeError, match=f"unsupported format: {name}"):
        decode_image(data)


def test_reasons_a_user_can_act_on():
    reason = imageio._reason
    assert reason(OSError("decoder jpeg2k not available"), "JPEG2000").startswith("decoder not installed: jpeg2k")
    assert "corrupt TIFF data" in reason(OSError("decoder error -2"), "TIFF")
    assert "unsupported TIFF variant" in reason(NotImplementedError("tile layout"), "TIFF")
    assert reason(OSError("image file is truncated (3 bytes not processed)"), "JPEG").startswith("truncated JPEG")
    assert imageio.sniff_format(b"\x00\x00\x00\x18ftypheic") == "HEIF/HEIC"
    assert imageio.sniff_format(b"\x00\x00\x02\x00\x00\x00\x00\x00" + bytes(20)) is None  # a TGA, not a cursor


def test_malformed_exif_is_dropped_with_a_note_and_the_image_kept():
    import struct

    # IFD0 with XResolution stored as a string (Pillow cannot write it back) and a descriptive tag
    entries = [(282, 2, 4, b"abc\x00"), (0x010F, 2, 4, b"Kod\x00")]
    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", t, ty, c) + v for t, ty, c, v in entries)
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + body + struct.pack("<I", 0)
    pic = decode_image(_save(Image.fromarray(_photo()), "JPEG", exif=exif))
    assert pic.gray.shape == (40, 56)
    # only descriptive tags are carried; the structural ones are not
    carried = Image.Exif()
    if "exif" in pic.info:
        carried.load(pic.info["exif"])
    assert 282 not in carried


def test_tiff_source_tags_never_override_the_writer():
    g = Image.fromarray(_photo().mean(-1).astype(np.uint8))
    ex = Image.Exif()
    ex[0x010E] = "Box 3"
    pic = decode_image(_save(g, "TIFF", compression="tiff_lzw", exif=ex, dpi=(400, 400)))
    carried = Image.Exif()
    carried.load(pic.info["exif"])
    assert dict(carried) == {0x010E: "Box 3"}  # no BitsPerSample, StripOffsets, Photometric, ...
    rgb = np.dstack([pic.gray] * 3)
    out = encode_image(rgb, "TIFF", info=pic.info)
    with Image.open(io.BytesIO(out)) as img:
        assert img.mode == "RGB" and img.size == (56, 40) and img.getexif()[0x010E] == "Box 3"
        assert np.abs(np.asarray(img)[..., 0] / 255.0 - pic.gray).max() <= 0.5 / 255 + 1e-6
        assert tuple(round(v) for v in img.info["dpi"]) == (400, 400)


def test_gray_icc_profile_is_not_attached_to_rgb_outputs():
    from PIL import ImageCms

    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[16:20] = b"GRAY"
    pic = decode_image(_save(Image.fromarray(_photo().mean(-1).astype(np.uint8)), "PNG", icc_profile=bytes(icc)))
    assert "icc_profile" not in pic.info and any("ICC profile not carried" in n for n in pic.notes)


def test_planar_16_bit_tiff_decodes_to_the_right_pixels():
    import tifffile

    rgb = _photo().astype(np.uint16) * 257
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    pic = decode_image(buf.getvalue())
    assert pic.bits == 16 and np.abs(pic.rgb - rgb / 65535.0).max() < 1e-6


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "JPEG", "WEBP", "BMP"])
def test_verify_accepts_true_outputs_and_catches_wrong_ones(fmt):
    rgb = _photo(48, 64, seed=2).astype(np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    data = encode_image(rgb, fmt)
    verify_encoded(data, gray, fmt=fmt)
    with pytest.raises(OutputCheckError, match="luminance differs"):  # a mirrored picture is the wrong picture
        verify_encoded(encode_image(rgb[:, ::-1], fmt), gray, fmt=fmt)
    with pytest.raises(OutputCheckError, match="pixels, the input"):
        verify_encoded(encode_image(rgb[:-1], fmt), gray, fmt=fmt)
    with pytest.raises(OutputCheckError, match="does not decode"):
        verify_encoded(data[: len(data) // 3], gray, fmt=fmt)


def test_verify_checks_alpha_and_16_bits():
    rgb = _photo(20, 30, seed=3).astype(np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    alpha = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    verify_encoded(encode_image(rgb, "PNG", alpha=alpha), gray, alpha, fmt="PNG")
    with pytest.raises(OutputCheckError, match="alpha"):
        verify_encoded(encode_image(rgb, "PNG"), gray, alpha, fmt="PNG")
    verify_encoded(encode_image(rgb, "TIFF", bits=16), gray, bits=16, fmt="TIFF")
    with pytest.raises(OutputCheckError):
        verify_encoded(encode_image(rgb * 0.9, "PNG", bits=16), gray, bits=16, fmt="PNG")


def test_decode_thumbnail_reduces_without_a_full_size_float_image(tmp_path):
    import cv2

    from colorize_tf.imageio import ImageDecodeError, decode_thumbnail

    yy, xx = np.mgrid[0:1000, 0:2000]
    rgb = np.stack([xx / 2000 * 255, yy / 1000 * 255, np.full_like(xx, 90.0)], -1).astype(np.uint8)
    want = cv2.resize(rgb, (480, 240), interpolation=cv2.INTER_AREA).astype(float)
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, quality=95)
        small = decode_thumbnail(buf.getvalue(), 480)
        assert small.dtype == np.uint8 and small.shape == (240, 480, 3), (fmt, small.shape)
        assert np.abs(small.astype(float) - want).mean() < 2.0, fmt
    path = tmp_path / "deep.tif"  # 16-bit colour TIFF: through the full decoder, same result
    cv2.imwrite(str(path), (rgb[..., ::-1].astype(np.uint16) * 257))
    small = decode_thumbnail(str(path), 480)
    assert small.shape == (240, 480, 3) and np.abs(small.astype(float) - want).mean() < 2.0
    with pytest.raises(ImageDecodeError):
        decode_thumbnail(b"not an image at all", 480)
