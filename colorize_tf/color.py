"""Colour spaces, image decoding and encoding.

The paper works in YUV (BT.601): the network sees luminance features and
predicts the two chrominance channels U and V. All arrays here are float32
in [0, 1] for RGB and Y, and U in [-U_MAX, U_MAX], V in [-V_MAX, V_MAX].
"""
from __future__ import annotations

import dataclasses
import io
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

# BT.601 analogue YUV (the paper's colour space), RGB in [0, 1].
RGB_TO_YUV = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14713, -0.28886, 0.436],
        [0.615, -0.51499, -0.10001],
    ],
    dtype=np.float64,
)
# The exact inverse, so that (Y, 0, 0) maps to gray and chroma adds no luma.
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV)
U_MAX = 0.436
V_MAX = 0.615
UV_SCALE = np.array([U_MAX, V_MAX], dtype=np.float32)

#: Default limit on decoded pixels (width * height); larger images are refused.
DEFAULT_MAX_PIXELS = 250_000_000
# The pixel limit is enforced explicitly (`decode_image(max_pixels=...)`), before decoding.
Image.MAX_IMAGE_PIXELS = None


class ImageDecodeError(ValueError):
    """Raised when bytes cannot be turned into an image; the message is the reason."""


def rgb_to_yuv(rgb):
    """Convert RGB to YUV (BT.601).

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        RGB in [0, 1].

    Returns
    -------
    yuv : ndarray of float32, shape (..., 3)
        Y in [0, 1], U in [-0.436, 0.436], V in [-0.615, 0.615].
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    return (rgb @ RGB_TO_YUV.T.astype(np.float32)).astype(np.float32)


def yuv_to_rgb(yuv):
    """Convert YUV (BT.601) to RGB without clipping; inverse of `rgb_to_yuv`."""
    yuv = np.asarray(yuv, dtype=np.float32)
    return (yuv @ YUV_TO_RGB.T.astype(np.float32)).astype(np.float32)


def luminance(rgb):
    """Return Y (BT.601) of an RGB array in [0, 1], shape (...,)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return rgb @ RGB_TO_YUV[0].astype(np.float32)


def recombine(y, uv):
    """Combine luminance with chrominance into RGB, keeping Y exactly.

    Where Y + chroma would leave the RGB cube, the chroma of that pixel is
    scaled towards zero just enough to fit (hue kept, saturation reduced),
    instead of clipping channels, which would change the luminance.

    Parameters
    ----------
    y : ndarray, shape (H, W)
        Luminance in [0, 1].
    uv : ndarray, shape (H, W, 2)
        Chrominance.

    Returns
    -------
    rgb : ndarray of float32, shape (H, W, 3)
        In [0, 1], with ``luminance(rgb) == y`` up to float rounding.
    """
    y = np.asarray(y, dtype=np.float32)
    uv = np.asarray(uv, dtype=np.float32)
    rows = max(1, (1 << 21) // max(1, y.shape[-1])) if y.ndim == 2 else 0
    if rows and y.shape[0] > rows:  # bound the temporaries for large images: ~2 M pixels at a time
        out = np.empty(y.shape + (3,), dtype=np.float32)
        for r in range(0, y.shape[0], rows):
            out[r : r + rows] = recombine(y[r : r + rows], uv[r : r + rows])
        return out
    y = np.clip(y, 0.0, 1.0)
    # Chroma contribution to each RGB channel: it has zero luminance.
    delta = uv @ YUV_TO_RGB[:, 1:].T.astype(np.float32)  # (H, W, 3)
    yy = y[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        room_up = np.where(delta > 0, (1.0 - yy) / delta, np.inf)
        room_down = np.where(delta < 0, yy / -delta, np.inf)
    scale = np.minimum(1.0, np.minimum(room_up, room_down).min(axis=-1))
    rgb = yy + delta * scale[..., None]
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def to_uint(img, bits=8):
    """Quantise a [0, 1] float image to uint8 (bits=8) or uint16 (bits=16)."""
    peak = (1 << bits) - 1
    out = np.rint(np.clip(img, 0.0, 1.0) * peak)
    return out.astype(np.uint8 if bits == 8 else np.uint16)


@dataclasses.dataclass
class Picture:
    """A decoded image, normalised for colorization.

    Attributes
    ----------
    gray : ndarray of float32, shape (H, W)
        Luminance in [0, 1] (the input of colorization).
    rgb : ndarray of float32, shape (H, W, 3) or None
        Colour in [0, 1] when the source had colour (ground truth for
        training), None for gray sources.
    alpha : ndarray of float32, shape (H, W) or None
        Transparency, kept through colorization.
    bits : int
        8 or 16: precision of the source samples.
    mode : str
        PIL mode of the source (after EXIF orientation).
    format : str or None
        Source file format (JPEG, PNG, ...).
    info : dict
        Metadata worth carrying to an output: ``exif``, ``icc_profile``, ``dpi``.
    """

    gray: np.ndarray
    rgb: Optional[np.ndarray]
    alpha: Optional[np.ndarray]
    bits: int
    mode: str
    format: Optional[str]
    info: dict

    @property
    def shape(self):
        return self.gray.shape


def _to_float(arr, bits):
    return arr.astype(np.float32) / float((1 << bits) - 1)


def picture_from_pil(img, fmt=None):
    """Normalise a PIL image of any mode into a `Picture` (EXIF orientation applied)."""
    info = {}
    for key in ("icc_profile", "dpi"):
        if img.info.get(key):
            info[key] = img.info[key]
    try:
        exif = img.getexif()
    except Exception:  # malformed EXIF must not sink the image
        exif = None
    img = ImageOps.exif_transpose(img)
    if exif:
        exif.pop(0x0112, None)  # orientation now applied to the pixels
        info["exif"] = exif.tobytes()
    mode = img.mode
    alpha = None
    rgb = None
    bits = 8
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = _to_float(np.asarray(img, dtype=np.uint16), 16)
        bits = 16
    elif mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        bits = 16 if arr.max(initial=0) > 255 else 8
        gray = _to_float(np.clip(arr, 0, (1 << bits) - 1), bits)
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        peak = 1.0 if arr.max(initial=0.0) <= 1.0 else (255.0 if arr.max() <= 255 else 65535.0)
        gray = np.clip(arr / peak, 0.0, 1.0)
        bits = 16
    elif mode in ("1", "L"):
        gray = _to_float(np.asarray(img.convert("L")), 8)
    elif mode in ("LA", "La", "PA", "P", "RGBA", "RGBa"):
        has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in img.info
        conv = img.convert("RGBA" if has_alpha else "RGB")
        arr = _to_float(np.asarray(conv), 8)
        if mode in ("LA", "La"):
            gray, rgb = arr[..., 0], None
        else:
            rgb = arr[..., :3]
            gray = luminance(rgb)
        if has_alpha:
            alpha = arr[..., 3]
    else:  # RGB, CMYK, YCbCr, LAB, HSV, ...
        rgb = _to_float(np.asarray(img.convert("RGB")), 8)
        gray = luminance(rgb)
    return Picture(
        gray=np.ascontiguousarray(gray, dtype=np.float32),
        rgb=None if rgb is None else np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=alpha,
        bits=bits,
        mode=mode,
        format=fmt,
        info=info,
    )


def decode_image(data, max_pixels=DEFAULT_MAX_PIXELS):
    """Decode image bytes into a `Picture`.

    Raises
    ------
    ImageDecodeError
        With a human-readable reason: empty, not an image, truncated,
        corrupt, or larger than `max_pixels`.
    """
    if not data:
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w <= 0 or h <= 0:
                raise ImageDecodeError(f"invalid image size {w}x{h}")
            if max_pixels and w * h > max_pixels:
                raise ImageDecodeError(
                    f"image too large: {w}x{h} = {w * h} pixels > limit {max_pixels}"
                )
            fmt = img.format
            if _is_16bit_colour(data, img):
                return _decode_16bit_colour(data, img, fmt)
            img.load()
            return picture_from_pil(img, fmt)
    except ImageDecodeError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageDecodeError("not an image (format not recognised)") from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"decompression bomb refused: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        reason = "truncated image" if "truncated" in text.lower() else "corrupt image"
        raise ImageDecodeError(f"{reason}: {text}") from None


def _is_16bit_colour(data, img):
    """16-bit-per-channel colour PNG / TIFF, which PIL would reduce to 8 bits."""
    if img.format == "PNG" and len(data) > 26 and data[12:16] == b"IHDR":
        return data[24] == 16 and data[25] in (2, 6)  # bit depth 16, colour type RGB / RGBA
    if img.format == "TIFF" and img.mode in ("RGB", "RGBA", "RGBX"):
        bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None
        return bool(bits) and max(bits) == 16
    return False


def _decode_16bit_colour(data, img, fmt):
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise ImageDecodeError("corrupt 16-bit colour image")
    rgb = _to_float(arr[..., 2::-1], 16)
    alpha = _to_float(arr[..., 3], 16) if arr.shape[2] == 4 else None
    pic = picture_from_pil(img, fmt)  # metadata and orientation of the source
    if pic.gray.shape != rgb.shape[:2]:  # EXIF rotation: apply the same transpose to the 16-bit pixels
        k = {6: 3, 8: 1, 3: 2}.get(img.getexif().get(0x0112), 0)
        rgb = np.rot90(rgb, k)
        alpha = None if alpha is None else np.rot90(alpha, k)
    return Picture(gray=np.ascontiguousarray(luminance(rgb)), rgb=np.ascontiguousarray(rgb), alpha=alpha, bits=16,
                   mode=img.mode + ";16", format=fmt, info=pic.info)


def load_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Read and decode an image file from a local path into a `Picture`."""
    with open(path, "rb") as fh:
        return decode_image(fh.read(), max_pixels=max_pixels)


def encode_image(rgb, fmt="PNG", alpha=None, bits=8, info=None, quality=95):
    """Encode an RGB float image in [0, 1] to bytes.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
    fmt : str
        PIL format name (PNG, JPEG, TIFF, WEBP, BMP).
    alpha : ndarray, shape (H, W), optional
        Kept where the format supports it.
    bits : int
        8, or 16 for PNG / TIFF where 16-bit RGB is written with OpenCV.
    info : dict, optional
        ``exif``, ``icc_profile``, ``dpi`` carried from the source.
    """
    fmt = fmt.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    info = info or {}
    if bits == 16 and fmt in ("PNG", "TIFF"):
        import cv2

        chans = [rgb[..., 2], rgb[..., 1], rgb[..., 0]] + ([alpha] if alpha is not None else [])
        arr = to_uint(np.stack(chans, axis=-1), 16)
        ok, buf = cv2.imencode(".png" if fmt == "PNG" else ".tif", arr)
        if not ok:
            raise ValueError(f"could not encode 16-bit {fmt}")
        return buf.tobytes()
    arr = to_uint(rgb, 8)
    if alpha is not None and fmt in ("PNG", "TIFF", "WEBP"):
        img = Image.fromarray(np.dstack([arr, to_uint(alpha, 8)]), "RGBA")
    else:
        img = Image.fromarray(arr, "RGB")
    kwargs = {k: v for k, v in info.items() if k in ("exif", "icc_profile", "dpi")}
    if fmt == "JPEG":
        kwargs["quality"] = quality
    if fmt == "BMP":
        kwargs = {}
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()
