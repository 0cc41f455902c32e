import io

import numpy as np
import pytest
from PIL import Image

from colorize_tf import color, imageio


def _bytes(img, fmt="PNG", **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_yuv_round_trip_and_known_values():
    rng = np.random.default_rng(1)
    rgb = rng.random((50, 3)).astype(np.float32)
    assert np.allclose(color.yuv_to_rgb(color.rgb_to_yuv(rgb)), rgb, atol=1e-5)
    # white: Y=1, no chroma; pure blue: U=0.436 - 0.114*0.492...
    yuv = color.rgb_to_yuv(np.array([[1, 1, 1], [0, 0, 1], [1, 0, 0]], np.float32))
    assert np.allclose(yuv[0], [1, 0, 0], atol=1e-4)
    assert np.allclose(yuv[1], [0.114, 0.436, -0.10001], atol=1e-4)
    assert np.allclose(yuv[2], [0.299, -0.14713, 0.615], atol=1e-4)


def test_recombine_keeps_luminance_exactly_even_out_of_gamut():
    rng = np.random.default_rng(2)
    y = rng.random((40, 40)).astype(np.float32)
    uv = rng.normal(0, 0.5, (40, 40, 2)).astype(np.float32)  # far outside the gamut
    rgb = color.recombine(y, uv)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert np.abs(color.luminance(rgb) - y).max() < 1e-5
    # after 8-bit quantisation the luminance moves by at most half a level
    q = color.to_uint(rgb).astype(np.float32) / 255
    assert np.abs(color.luminance(q) - y).max() <= 0.5 / 255 + 1e-6
    # in-gamut chroma is reproduced unchanged
    rgb0 = rng.random((10, 10, 3)).astype(np.float32)
    yuv0 = color.rgb_to_yuv(rgb0)
    assert np.allclose(color.recombine(yuv0[..., 0], yuv0[..., 1:]), rgb0, atol=5e-5)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16", "1"])
def test_decode_any_mode(mode):
    rgb = (np.random.default_rng(3).random((20, 30, 3)) * 255).astype(np.uint8)
    base = Image.fromarray(rgb)
    if mode == "I;16":
        img = Image.fromarray((np.arange(600).reshape(20, 30) * 100).astype(np.uint16))
    else:
        img = base.convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    pic = imageio.decode_image(_bytes(img, fmt))
    assert pic.gray.shape == (20, 30) and pic.gray.dtype == np.float32
    assert 0 <= pic.gray.min() and pic.gray.max() <= 1
    assert (pic.alpha is not None) == (mode in ("LA", "RGBA"))
    assert (pic.rgb is not None) == (mode in ("RGB", "RGBA", "P", "CMYK"))
    if mode == "I;16":
        assert pic.bits == 16
        assert np.isclose(pic.gray[0, 1], 100 / 65535, atol=1e-6)
    if mode == "RGB":
        assert np.allclose(pic.gray, color.luminance(rgb / 255.0), atol=1e-5)


def test_exif_orientation_applied():
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    pic = imageio.decode_image(_bytes(img, "JPEG", exif=exif.tobytes(), quality=100))
    assert pic.gray.shape == (20, 10)  # rotated
    assert pic.gray[:8].mean() > 0.9 and pic.gray[-8:].mean() < 0.1  # white half now on top


@pytest.mark.parametrize(
    "data,reason",
    [(b"", "empty"), (b"hello, not an image", "not an image")],
)
def test_decode_errors_have_reasons(data, reason):
    with pytest.raises(imageio.ImageDecodeError, match=reason):
        imageio.decode_image(data)


def test_truncated_and_too_large():
    good = _bytes(Image.fromarray(np.full((64, 64, 3), 128, np.uint8)), "PNG")
    with pytest.raises(imageio.ImageDecodeError, match="truncated|corrupt"):
        imageio.decode_image(good[: len(good) // 2])
    with pytest.raises(imageio.ImageDecodeError, match="too large"):
        imageio.decode_image(good, max_pixels=1000)


def test_encode_keeps_alpha_and_16_bit():
    rgb = np.random.default_rng(4).random((8, 9, 3)).astype(np.float32)
    alpha = np.linspace(0, 1, 72, dtype=np.float32).reshape(8, 9)
    pic = imageio.decode_image(imageio.encode_image(rgb, "PNG", alpha=alpha))
    assert pic.alpha is not None and np.allclose(pic.alpha, alpha, atol=1 / 255)
    import cv2

    arr = cv2.imdecode(np.frombuffer(imageio.encode_image(rgb, "PNG", bits=16), np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr.dtype == np.uint16 and np.allclose(arr[..., ::-1] / 65535.0, rgb, atol=1e-4)


def test_16_bit_colour_png_keeps_precision():
    import cv2

    rgb = np.random.default_rng(5).random((12, 10, 3))
    arr16 = (rgb * 65535).round().astype(np.uint16)
    ok, buf = cv2.imencode(".png", arr16[..., ::-1])
    pic = imageio.decode_image(buf.tobytes())
    assert pic.bits == 16 and pic.rgb is not None
    assert np.abs(pic.rgb - arr16 / 65535.0).max() < 1e-6  # not reduced to 8 bits
    assert np.allclose(pic.gray, color.luminance(arr16 / 65535.0), atol=1e-5)


def test_recombine_in_row_blocks_matches():
    rng = np.random.default_rng(6)
    y = rng.random((3000, 800)).astype(np.float32)  # 2.4 M pixels: processed in blocks
    uv = rng.normal(0, 0.2, (3000, 800, 2)).astype(np.float32)
    out = color.recombine(y, uv)
    assert np.allclose(out[:5], color.recombine(y[:5], uv[:5]))
    assert np.abs(color.luminance(out) - y).max() < 1e-5


def test_working_resolution_keeps_full_luminance_and_matches_full_resolution():
    """colorize_image: the model sees the image at the working side; the output keeps every Y value and, on a
    smooth scene, the guided upsampling gives the chroma full-resolution prediction gives."""
    from colorize_tf.color import luminance, recombine, rgb_to_yuv
    from colorize_tf.colorize import Colorized, colorize_image

    seen = []

    def true_uv(h, w):  # a smooth chroma field: a ramp in U, a bump in V
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        uv = np.zeros((h, w, 2), np.float32)
        uv[..., 0] = -0.1 + 0.2 * xx / (w - 1)
        uv[..., 1] = 0.12 * np.exp(-(((xx / w - 0.6) ** 2 + (yy / h - 0.4) ** 2) / 0.05))
        return uv

    class Stub:  # predicts the smooth field at whatever resolution it is given
        work_side = 160

        def colorize(self, gray):
            seen.append(gray.shape)
            uv = true_uv(*gray.shape)
            return Colorized(recombine(gray, uv), uv)

    yy, xx = np.mgrid[0:400, 0:600].astype(np.float32)
    gray = (0.5 + 0.2 * np.sin(xx / 37.0) * np.cos(yy / 23.0)).astype(np.float32)  # smooth luminance
    gray += np.random.default_rng(0).normal(0, 0.02, gray.shape).astype(np.float32)  # and fine grain
    out = colorize_image(Stub(), gray)  # the colorizer's own working side
    assert seen == [(107, 160)] and out.rgb.shape == (400, 600, 3) and out.rgb.dtype == np.float32
    assert out.uv.shape == (107, 160, 2) and out.work_scale == 160 / 600
    np.testing.assert_allclose(luminance(out.rgb), gray, atol=2e-5)  # the detail stays in full-resolution Y
    full = colorize_image(Stub(), gray, work_side=0)  # forced full resolution
    assert seen[-1] == (400, 600) and full.work_scale == 1.0
    uv_work, uv_full = rgb_to_yuv(out.rgb)[..., 1:], rgb_to_yuv(full.rgb)[..., 1:]
    assert np.abs(uv_work - uv_full).mean() < 0.002 and np.abs(uv_work - uv_full).max() < 0.02
    as8 = colorize_image(Stub(), gray, dtype=np.uint8)  # quantised in blocks: no float image
    assert as8.rgb.dtype == np.uint8 and np.abs(as8.rgb / 255.0 - out.rgb).max() <= 0.5 / 255 + 1e-6
    small = colorize_image(Stub(), gray[:50, :60])  # small enough: full resolution
    assert seen[-1] == (50, 60) and small.rgb.shape == (50, 60, 3) and small.work_scale == 1.0


def test_guided_upsampling_follows_luminance_edges_and_is_blockwise_exact():
    import cv2

    from colorize_tf import upsample
    from colorize_tf.color import luminance, recombine

    rng = np.random.default_rng(3)
    h, w = 300, 420
    gray = np.full((h, w), 0.3, np.float32)
    gray[:, 200:] = 0.7  # a vertical edge, not on the small grid's cell borders
    gray += rng.normal(0, 0.005, gray.shape).astype(np.float32)
    uv = np.zeros((h, w, 2), np.float32)
    uv[:, 200:, 0] = 0.15  # colour that changes at the same edge
    small_gray = cv2.resize(gray, (70, 50), interpolation=cv2.INTER_AREA)
    small_uv = cv2.resize(uv, (70, 50), interpolation=cv2.INTER_AREA)
    coef = upsample.guided_coefficients(small_gray, small_uv, upsample.GuidedUpsampling(radius=3, eps=1e-4))
    guided = upsample.upsample_chroma(gray, coef)
    plain = cv2.resize(small_uv, (w, h), interpolation=cv2.INTER_LINEAR)
    band = slice(190, 210)  # around the edge: guided keeps it, bilinear smears it over a small-grid cell
    err_guided, err_plain = np.abs(guided[:, band] - uv[:, band]).mean(), np.abs(plain[:, band] - uv[:, band]).mean()
    assert err_guided < 0.3 * err_plain, (err_guided, err_plain)
    # radius 0 is plain bilinear upsampling, the same sampling as OpenCV's
    flat = upsample.guided_coefficients(small_gray, small_uv, upsample.GuidedUpsampling(radius=0))
    np.testing.assert_allclose(upsample.upsample_chroma(gray, flat), plain, atol=1e-5)
    # row blocks of any height give the whole-image result, and Y is kept
    whole = upsample.render(gray, coef, rows=h)
    for rows in (1, 7, 64):
        np.testing.assert_array_equal(upsample.render(gray, coef, rows=rows), whole)
    np.testing.assert_allclose(whole, recombine(gray, guided), atol=1e-6)
    np.testing.assert_allclose(luminance(whole), gray, atol=2e-5)
    as16 = upsample.render(gray, coef, np.uint16, rows=13)
    assert as16.dtype == np.uint16 and np.abs(as16 / 65535.0 - whole).max() <= 0.5 / 65535 + 1e-6
    with pytest.raises(ValueError, match="radius"):
        upsample.GuidedUpsampling(radius=-1)
