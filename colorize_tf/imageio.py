"""Image files: safe decoding of untrusted bytes, encoding with valid metadata, and output verification.

Decoding reads only an allow-list of raster formats that archives hold (`DECODE_FORMATS`:
JPEG, PNG, TIFF, BMP, GIF, WebP, PNM, JPEG 2000); every other format, however Pillow could
read it (EPS via Ghostscript, ICO, PSD, ...), is refused with its name. The decoded size is
checked against a pixel limit before any pixel is allocated, and Pillow's own
decompression-bomb guard stays on (its limit follows ours). Every failure is an
`ImageDecodeError` whose message says what a user can act on: empty, truncated, corrupt,
unsupported format (which), decoder not installed (which), or too large (with the limit).

Encoding carries metadata only as the formats define it: an RGB ICC profile, the
resolution, and the descriptive EXIF tags (never a TIFF's structural tags, which would
override the writer's own). `verify_encoded` re-decodes an output and checks its size,
alpha and that its luminance matches the input's within the format's quantisation.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import threading
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

from .color import luminance, to_uint

#: Pillow format names this project decodes (JPEG also covers camera MPO files).
DECODE_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "GIF", "WEBP", "PPM", "JPEG2000")
#: Pillow format names this project writes.
ENCODE_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
#: Formats that keep pixels exactly (luminance checked to quantisation).
LOSSLESS_FORMATS = ("PNG", "TIFF", "BMP")
#: Formats whose outputs keep an alpha channel.
ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")

#: Default limit on decoded pixels (width * height); see `pixel_limit_for_budget`.
DEFAULT_MAX_PIXELS = 40_000_000
#: Bytes of working memory per pixel of the colorization path (decode, luminance, chroma at the working side,
#: guided upsampling and recombination in row blocks straight into the output's integer array, encoded bytes,
#: verification), measured by ``benchmarks/archive_memory.py``: 12.6 for 8-bit gray scans (fit over 4-36 M
#: pixels) and 22.4 for a 36 M-pixel 16-bit RGB TIFF, rounded up: `BYTES_PER_PIXEL_GRAY` for 8-bit
#: single-channel sources, `BYTES_PER_PIXEL` for every other kind. Used to turn a memory budget into a pixel
#: limit and to bound the pixels in flight per worker.
BYTES_PER_PIXEL = 24
BYTES_PER_PIXEL_GRAY = 14
#: Resident size of a worker with TensorFlow, Beam and a model loaded, plus the fixed work of one image:
#: 803 MB in the same measurement, rounded up.
BASE_RSS_BYTES = 900 << 20
#: Fixed work of each further image in flight in the same process (working-side copies, network, refinement).
PER_IMAGE_BYTES = 256 << 20

_PIL_LIMIT_LOCK = threading.Lock()
# Pillow's guard warns above MAX_IMAGE_PIXELS and refuses above twice that. Ours refuses above the
# caller's limit before decoding; Pillow's follows it (raised, never switched off).
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS


class ImageDecodeError(ValueError):
    """Raised when bytes cannot be turned into an image; the message is the reason."""


class OutputCheckError(ValueError):
    """Raised when an encoded output does not decode back to the image it should hold."""


def pixel_limit_for_budget(budget_bytes, base_bytes=BASE_RSS_BYTES, bytes_per_pixel=BYTES_PER_PIXEL):
    """Largest image (pixels) one worker can colorize within `budget_bytes` of resident memory."""
    return max(0, int((budget_bytes - base_bytes - PER_IMAGE_BYTES) // bytes_per_pixel))


#: Pillow modes of 8-bit single-channel sources (their decode and luminance cost least).
GRAY8_MODES = ("1", "L", "LA", "La", "P", "PA")


def work_bytes(width, height, mode=None):
    """Memory to reserve for colorizing one image of `width` x `height` whose decoder reports Pillow `mode`
    (see `BYTES_PER_PIXEL`; an unknown mode counts as the costlier kind)."""
    per_pixel = BYTES_PER_PIXEL_GRAY if mode in GRAY8_MODES else BYTES_PER_PIXEL
    return width * height * per_pixel + PER_IMAGE_BYTES


# Magic numbers of formats seen in archives, to name what is refused ("unsupported format: ICO").
_SIGNATURES = [
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (0, b"II+\x00", "BigTIFF"),
    (0, b"MM\x00+", "BigTIFF"),
    (0, b"GIF8", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"),
    (0, b"\xff\x4f\xff\x51", "JPEG2000"),
    (0, b"8BPS", "PSD"),
    (0, b"%!PS", "PostScript/EPS"),
    (0, b"\xc5\xd0\xd3\xc6", "EPS"),
    (0, b"%PDF", "PDF"),
    (0, b"gimp xcf", "GIMP XCF"),
    (0, b"DDS ", "DDS"),
    (0, b"icns", "ICNS"),
    (0, b"qoif", "QOI"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (0, b"AT&TFORM", "DjVu"),
    (0, b"SIMPLE  =", "FITS"),
    (0, b"\x59\xa6\x6a\x95", "Sun raster"),
    (0, b"\x01\xda", "SGI"),
    (0, b"FORM", "IFF"),
    (0, b"PK\x03\x04", "ZIP archive"),
    (0, b"\x1f\x8b", "gzip data"),
    (0, b"BZh", "bzip2 data"),
    (0, b"\xfd7zXZ\x00", "xz data"),
    (0, b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (0, b"Rar!", "RAR archive"),
    (257, b"ustar", "tar archive"),
    (0, b"<svg", "SVG"),
    (0, b"<?xml", "XML/SVG"),
    (0, b"\xd7\xcd\xc6\x9a", "WMF"),
    (0, b"\x01\x00\x00\x00", "EMF"),
]


def sniff_format(head):
    """Name of the format whose signature starts `head` (first 512 bytes), or None."""
    head = bytes(head[:512])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"):
            return "HEIF/HEIC"
        return "ISO media (" + brand.decode("latin-1", "replace").strip() + ")"
    if len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"1234567fF":
        return "PPM"
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and len(head) >= 22 and head[4] | head[5] and not head[9]:
        return "ICO" if head[2] == 1 else "CUR"  # (TGA files can start alike, with a zero count)
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


@dataclasses.dataclass
class Picture:
    """A decoded image, normalised for colorization.

    Attributes
    ----------
    gray : ndarray of float32, shape (H, W)
        Luminance in [0, 1] (the input of colorization).
    rgb : ndarray of float32, shape (H, W, 3) or None
        Colour in [0, 1] when the source had colour and it was asked for (ground truth for
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
        Metadata valid to carry to an output: ``exif`` (descriptive tags only), ``icc_profile``
        (RGB profiles only), ``dpi``.
    notes : list of str
        What was dropped or changed on the way (malformed EXIF, gray ICC profile, extra frames).
    """

    gray: np.ndarray
    rgb: Optional[np.ndarray]
    alpha: Optional[np.ndarray]
    bits: int
    mode: str
    format: Optional[str]
    info: dict
    notes: list = dataclasses.field(default_factory=list)

    @property
    def shape(self):
        return self.gray.shape


# Descriptive EXIF tags of IFD0 that are safe to carry into any format; structural tags (sizes,
# strips, tiles, compression, photometric, bits, planar configuration, resolution) never are.
_EXIF_IFD0_TAGS = (
    0x010E,  # ImageDescription
    0x010F,  # Make
    0x0110,  # Model
    0x0131,  # Software
    0x0132,  # DateTime
    0x013B,  # Artist
    0x8298,  # Copyright
    0x9C9B,
    0x9C9C,
    0x9C9D,
    0x9C9E,
    0x9C9F,  # XPTitle, XPComment, XPAuthor, XPKeywords, XPSubject
)
_EXIF_SUB_IFDS = (0x8769, 0x8825)  # Exif IFD, GPS IFD
_EXIF_DROP_IN_SUB = (0x927C, 0xA005)  # MakerNote (vendor offsets break when moved), Interoperability pointer
_EXIF_MAX_BYTES = 60000  # a JPEG APP1 segment holds at most 64 KB


def _safe_exif(img, notes):
    """EXIF bytes holding only descriptive tags of `img`, or None; never raises."""
    try:
        src = img.getexif()
        if not src:
            return None
        out = Image.Exif()
        for tag in _EXIF_IFD0_TAGS:
            if tag in src:
                out[tag] = src[tag]
        for ifd_tag in _EXIF_SUB_IFDS:
            sub = {k: v for k, v in src.get_ifd(ifd_tag).items() if k not in _EXIF_DROP_IN_SUB}
            if sub:
                out[ifd_tag] = sub
        if not out:
            return None
        data = out.tobytes()
    except Exception as exc:  # malformed EXIF (strings for rationals, bad offsets, ...): drop it, keep the image
        notes.append(f"EXIF dropped: malformed ({type(exc).__name__}: {exc})"[:300])
        return None
    if len(data) > _EXIF_MAX_BYTES:
        notes.append(f"EXIF dropped: {len(data)} bytes is more than a JPEG segment holds")
        return None
    return data


def _safe_info(img, notes):
    """Metadata of `img` that is valid on an RGB output of any format."""
    info = {}
    icc = img.info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        space = icc[16:20] if len(icc) >= 128 else b""
        if space == b"RGB ":
            info["icc_profile"] = icc
        else:  # a gray or CMYK profile would misdescribe the RGB output
            notes.append(
                f"ICC profile not carried: it describes {space.decode('latin-1').strip() or 'unknown'} "
                "data, the output is RGB"
            )
    dpi = img.info.get("dpi")
    try:
        dpi = tuple(float(v) for v in dpi) if dpi is not None else None
        if dpi and len(dpi) == 2 and all(math.isfinite(v) and 0 < v < 100000 for v in dpi):
            info["dpi"] = (round(dpi[0], 3), round(dpi[1], 3))
        elif dpi is not None:
            notes.append(f"resolution dropped: invalid {img.info.get('dpi')!r}"[:200])
    except (TypeError, ValueError):
        notes.append("resolution dropped: malformed")
    exif = _safe_exif(img, notes)
    if exif:
        info["exif"] = exif
    return info


def _to_float(arr, bits):
    return arr.astype(np.float32) / float((1 << bits) - 1)


def _luma(arr, bits, rows=256):
    """BT.601 luminance (H, W) float32 in [0, 1] of an (H, W, 3+) integer RGB array, in row blocks (no float
    copy of the whole colour image)."""
    out = np.empty(arr.shape[:2], np.float32)
    weights = np.array([0.299, 0.587, 0.114], np.float32) / float((1 << bits) - 1)
    for r in range(0, arr.shape[0], rows):
        out[r : r + rows] = arr[r : r + rows, :, :3] @ weights
    return out


def _transpose(img, notes):
    """Apply the EXIF orientation; a malformed orientation leaves the pixels as stored."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:
        notes.append(f"EXIF orientation ignored: {type(exc).__name__}: {exc}"[:200])
        return img


def picture_from_pil(img, fmt=None, need_rgb=True):
    """Normalise a loaded PIL image of any mode into a `Picture` (EXIF orientation applied).

    `need_rgb=False` skips the float colour copy of colour sources (colorization needs only Y).
    """
    notes = []
    info = _safe_info(img, notes)
    img = _transpose(img, notes)
    mode = img.mode
    alpha = None
    rgb = None
    bits = 8
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        gray = _to_float(np.asarray(img).astype(np.uint16), 16)
        bits = 16
    elif mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        bits = 16 if arr.max(initial=0) > 255 else 8
        gray = _to_float(np.clip(arr, 0, (1 << bits) - 1), bits)
    elif mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        peak = 1.0 if arr.max(initial=0.0) <= 1.0 else (255.0 if arr.max() <= 255 else 65535.0)
        gray = np.clip(arr / peak, 0.0, 1.0)
        bits = 16
    elif mode in ("1", "L"):
        gray = _to_float(np.asarray(img.convert("L")), 8)
    elif mode in ("LA", "La", "PA", "P", "RGBA", "RGBa"):
        has_alpha = mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in img.info
        if mode in ("LA", "La"):
            arr = np.asarray(img.convert("LA"))
            gray, alpha = _to_float(arr[..., 0], 8), _to_float(arr[..., 1], 8)
        else:
            arr = np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
            gray = _luma(arr, 8)
            rgb = _to_float(arr[..., :3], 8) if need_rgb else None
            alpha = _to_float(arr[..., 3], 8) if has_alpha else None
    else:  # RGB, CMYK, YCbCr, LAB, HSV, ...
        arr = np.asarray(img.convert("RGB"))
        gray = _luma(arr, 8)
        rgb = _to_float(arr, 8) if need_rgb else None
    return Picture(
        gray=np.ascontiguousarray(gray, dtype=np.float32),
        rgb=None if rgb is None else np.ascontiguousarray(rgb, dtype=np.float32),
        alpha=alpha,
        bits=bits,
        mode=mode,
        format=fmt,
        info=info,
        notes=notes,
    )


def _pillow_guard(max_pixels):
    """Keep Pillow's bomb guard on and at least at our limit (it refuses above twice its value)."""
    if max_pixels and max_pixels > (Image.MAX_IMAGE_PIXELS or 0):
        with _PIL_LIMIT_LOCK:
            Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, int(max_pixels))


def _reason(exc, fmt):
    """A user-facing reason for an exception raised while decoding a `fmt` image."""
    text = str(exc).strip()
    low = text.lower()
    what = fmt or "image"
    if isinstance(exc, Image.DecompressionBombError):
        return f"too large (decompression bomb refused): {text}"
    if isinstance(exc, MemoryError):
        return f"too large: out of memory decoding the {what}"
    if "decoder" in low and "not available" in low:
        name = text.split("decoder", 1)[1].split("not available")[0].strip() or what
        return f"decoder not installed: {name} (needed for this {what} variant)"
    if "truncated" in low or isinstance(exc, EOFError) or "premature end" in low or "unexpected end" in low:
        return f"truncated {what} file: {text}" if text else f"truncated {what} file"
    if isinstance(exc, NotImplementedError) or "not supported" in low or "unsupported" in low:
        return f"unsupported {what} variant: {text or type(exc).__name__}"
    if "decoder error" in low or "broken data stream" in low:
        return f"corrupt {what} data (the decoder stopped: {text})"
    return f"corrupt {what} file ({type(exc).__name__}: {text})"


def _open_source(source):
    """A binary file object for bytes, a local path, or a file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source), True
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb"), True
    return source, False


def decode_image(source, max_pixels=DEFAULT_MAX_PIXELS, need_rgb=True, on_size=None):
    """Decode an image (bytes, a local path or a binary file object) into a `Picture`.

    Only `DECODE_FORMATS` are read. Multi-frame files (TIFF pages, GIF/WebP animations) give
    their first frame. 16-bit colour PNG / TIFF keep 16-bit precision. `on_size(width, height, mode)`,
    if given, is called once the header is read and checked, before any pixel is decoded (e.g.
    to reserve memory; it may raise to refuse).

    Raises
    ------
    ImageDecodeError
        With a human-readable reason (see the module docstring).
    """
    fh, owned = _open_source(source)
    try:
        head = fh.read(512)
        if not head:
            raise ImageDecodeError("empty file (0 bytes)")
        fh.seek(0)
        _pillow_guard(max_pixels)
        try:
            img = Image.open(fh, formats=DECODE_FORMATS)
        except Image.UnidentifiedImageError:
            name = sniff_format(head)
            if name in DECODE_FORMATS:
                raise ImageDecodeError(f"corrupt {name} file: its header cannot be read") from None
            if name:
                raise ImageDecodeError(
                    f"unsupported format: {name} (this job reads {', '.join(DECODE_FORMATS)})"
                ) from None
            raise ImageDecodeError("not an image (format not recognised)") from None
        except Exception as exc:  # header parsers raise anything on hostile bytes
            raise ImageDecodeError(_reason(exc, sniff_format(head))) from None
        with img:
            fmt = img.format
            w, h = img.size
            if w <= 0 or h <= 0:
                raise ImageDecodeError(f"invalid image size {w}x{h}")
            if max_pixels and w * h > max_pixels:
                raise ImageDecodeError(
                    f"too large: {w}x{h} = {w * h} pixels > limit {max_pixels} (raise --max_pixels to allow)"
                )
            if on_size is not None:
                on_size(w, h, img.mode)
            try:
                if _is_16bit_colour(head, img):
                    fh.seek(0)
                    return _decode_16bit_colour(fh.read(), img, fmt, need_rgb)
                img.load()
                if img.size != (w, h):  # a plugin that changed its mind (e.g. a larger frame)
                    raise ImageDecodeError(f"corrupt {fmt} file: frame size {img.size} differs from header {w}x{h}")
                pic = picture_from_pil(img, fmt, need_rgb)
            except ImageDecodeError:
                raise
            except Exception as exc:
                raise ImageDecodeError(_reason(exc, fmt)) from None
            try:  # (is_animated looks one frame ahead; counting frames could walk a crafted file for long)
                several = bool(getattr(img, "is_animated", False))
            except Exception:
                several = False
            if several:
                pic.notes.append("first frame used (the file holds several)")
            return pic
    finally:
        if owned:
            fh.close()


def decode_thumbnail(source, side, max_pixels=DEFAULT_MAX_PIXELS):
    """A small uint8 RGB copy of an image, longer side at most `side`, for review pages.

    JPEG is decoded at reduced size (DCT scaling, `Image.draft`), other formats at full size in their own
    8-bit form and reduced at once, so no full-size float image is made (a 24-megapixel output costs ~72 MB
    here instead of ~300). Formats Pillow cannot reduce this way (16-bit colour TIFF) go through
    `decode_image`.

    Returns
    -------
    rgb : ndarray of uint8, shape (h, w, 3)
    """
    fh, owned = _open_source(source)
    try:
        _pillow_guard(max_pixels)
        try:
            with Image.open(fh, formats=DECODE_FORMATS) as img:
                w, h = img.size
                if max_pixels and w * h > max_pixels:
                    raise ImageDecodeError(f"too large: {w}x{h} = {w * h} pixels > limit {max_pixels}")
                if img.format == "JPEG":
                    img.draft("RGB", (side, side))
                if img.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                    raise ValueError(f"mode {img.mode}")
                img = img.convert("RGB")
                img.thumbnail((side, side), Image.Resampling.BOX)
                return np.asarray(img)
        except ImageDecodeError:
            raise
        except Exception:  # anything Pillow cannot reduce directly: the full decoder, then reduce
            fh.seek(0)
            from .review import thumbnails

            return thumbnails(decode_image(fh, max_pixels).rgb, side)[1]
    finally:
        if owned:
            fh.close()


def _is_16bit_colour(head, img):
    """16-bit-per-channel colour PNG / TIFF, which PIL would reduce to 8 bits."""
    if img.format == "PNG" and len(head) > 26 and head[12:16] == b"IHDR":
        return head[24] == 16 and head[25] in (2, 6)  # bit depth 16, colour type RGB / RGBA
    if img.format == "TIFF" and img.mode in ("RGB", "RGBA", "RGBX"):
        bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None
        try:
            return bool(bits) and max(bits) == 16
        except TypeError:
            return bits == 16
    return False


def _read_16bit_colour(data, img, fmt):
    """(H, W, 3 or 4) uint16 RGB[A] of a 16-bit colour PNG / TIFF.

    OpenCV reads PNG and chunky TIFF; planar TIFF (PlanarConfiguration 2), which OpenCV decodes
    into wrong pixels without an error, is read with tifffile (uncompressed or deflate).
    """
    if fmt == "TIFF" and img.tag_v2.get(284) == 2:
        import tifffile

        try:
            arr = tifffile.imread(io.BytesIO(data), key=0)
        except Exception as exc:
            raise ImageDecodeError(
                f"unsupported 16-bit colour TIFF variant: planar, compression "
                f"{img.tag_v2.get(259)} ({type(exc).__name__}: {exc})"
            ) from None
        if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[1:] == (img.size[1], img.size[0]):
            arr = np.moveaxis(arr, 0, -1)
        return arr if arr.dtype == np.uint16 else None
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        return None
    return arr[..., [2, 1, 0, 3][: arr.shape[2]]]


def _decode_16bit_colour(data, img, fmt, need_rgb):
    arr = _read_16bit_colour(data, img, fmt)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[:2] != (img.size[1], img.size[0]):
        raise ImageDecodeError(f"unsupported 16-bit colour {fmt} variant (cannot be decoded at 16 bits)")
    alpha = _to_float(arr[..., 3], 16) if arr.shape[2] == 4 else None
    if need_rgb:
        rgb = _to_float(arr[..., :3], 16)
        gray = None
    else:  # luminance in row blocks: no float colour copy of a large scan
        rgb, gray = None, _luma(arr, 16)
    del arr
    notes = []
    info = _safe_info(img, notes)
    try:
        orientation = img.getexif().get(0x0112)
    except Exception:
        orientation = None
    k = {6: 3, 8: 1, 3: 2}.get(orientation, 0)  # EXIF rotation applied to the 16-bit pixels
    if k:
        rgb = None if rgb is None else np.rot90(rgb, k)
        gray = None if gray is None else np.rot90(gray, k)
        alpha = None if alpha is None else np.rot90(alpha, k)
    gray = np.ascontiguousarray(luminance(rgb) if gray is None else gray)
    return Picture(
        gray=gray,
        rgb=None if rgb is None else np.ascontiguousarray(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        bits=16,
        mode=img.mode + ";16",
        format=fmt,
        info=info,
        notes=notes,
    )


def load_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Read and decode an image file from a local path into a `Picture`."""
    return decode_image(path, max_pixels=max_pixels)


def normalise_format(fmt):
    """PIL format name for a user's format or extension (``jpg``, ``.TIF``, ``jpeg``); ValueError otherwise."""
    name = str(fmt).upper().lstrip(".")
    name = {"JPG": "JPEG", "JPE": "JPEG", "JFIF": "JPEG", "TIF": "TIFF"}.get(name, name)
    if name not in ENCODE_FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (choose from jpg, png, tif, webp, bmp)")
    return name


#: Output extension per input extension when the format is kept (formats that cannot hold colour well, or
#: that we do not write, become PNG). The one naming table of the `colorize` command and the archive job.
KEEP_EXTENSION = {
    ".jpg": ".jpg",
    ".jpeg": ".jpeg",
    ".jpe": ".jpg",
    ".jfif": ".jpg",
    ".png": ".png",
    ".tif": ".tif",
    ".tiff": ".tiff",
    ".bmp": ".bmp",
    ".dib": ".bmp",
    ".webp": ".webp",
}


def output_extension(ext, fmt=None):
    """Extension of an output for an input extension `ext`: ``.FMT`` when a format is asked for, else the
    input's own where we write it (spelling kept: ``.jpeg`` stays ``.jpeg``), else its KEEP_EXTENSION."""
    if fmt:
        return "." + str(fmt).lower().lstrip(".")
    kept = KEEP_EXTENSION.get(ext.lower(), ".png")
    return ext if kept == ext.lower() else kept


def output_bits(bits, fmt):
    """Bits per sample an output of `fmt` gets for a source of `bits`: 16 only where the format holds it."""
    return 16 if bits == 16 and fmt in ("PNG", "TIFF") else 8


def provenance_kept(fmt, bits=8):
    """Whether `encode_image` can write provenance into this format (BMP and 16-bit TIFF have no place)."""
    fmt = normalise_format(fmt)
    return fmt in ("JPEG", "PNG", "WEBP") or (fmt == "TIFF" and output_bits(bits, fmt) == 8)


def _png_chunk(kind, payload):
    import zlib

    return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")


def _png_with_provenance(data, exif, xmp):
    """PNG bytes with an ``eXIf`` and an iTXt ``XML:com.adobe.xmp`` chunk after IHDR (OpenCV writes none)."""
    ihdr_end = 8 + 4 + 4 + 13 + 4
    extra = _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    extra += _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    return data[:ihdr_end] + extra + data[ihdr_end:]


def encode_image(rgb, fmt="PNG", alpha=None, bits=8, info=None, quality=95, provenance=None):
    """Encode an RGB float image in [0, 1] to bytes.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
    fmt : str
        Format name (PNG, JPEG, TIFF, WEBP, BMP; ``jpg`` / ``tif`` accepted).
    alpha : ndarray, shape (H, W), optional
        Kept where the format supports it (`ALPHA_FORMATS`).
    bits : int
        8, or 16 for PNG / TIFF (written with OpenCV).
    info : dict, optional
        ``exif``, ``icc_profile``, ``dpi`` as `Picture.info` holds them (already made safe).
    quality : int
        JPEG / WebP quality, 1-100.
    provenance : colorize_tf.provenance.Provenance, optional
        Written as EXIF ``Software`` / ``ImageDescription`` and an XMP packet where the format has room
        (`provenance_kept`), next to the carried EXIF.
    """
    fmt = normalise_format(fmt)
    info = dict(info or {})
    xmp = None
    if provenance is not None and provenance_kept(fmt, bits):
        from .provenance import with_exif, xmp_packet

        info["exif"] = with_exif(info.get("exif"), provenance)
        xmp = xmp_packet(provenance)
    if alpha is not None and fmt not in ALPHA_FORMATS:
        alpha = None
    if output_bits(bits, fmt) == 16:
        import cv2

        arr = to_uint(rgb[..., ::-1], 16)  # BGR for OpenCV, quantised in row blocks
        if alpha is not None:
            arr = np.dstack([arr, to_uint(alpha, 16)])
        ok, buf = cv2.imencode(".png" if fmt == "PNG" else ".tif", arr)
        if not ok:
            raise ValueError(f"could not encode 16-bit {fmt}")
        if xmp is not None and fmt == "PNG":
            return _png_with_provenance(buf.tobytes(), info["exif"], xmp)
        return buf.tobytes()
    arr = to_uint(rgb, 8)
    if alpha is not None:
        img = Image.fromarray(np.dstack([arr, to_uint(alpha, 8)]), "RGBA")
    else:
        img = Image.fromarray(arr, "RGB")
    del arr
    kwargs = {k: v for k, v in info.items() if k in ("exif", "icc_profile", "dpi")}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = int(quality)
    if fmt == "BMP":
        kwargs = {k: v for k, v in kwargs.items() if k == "dpi"}
    if xmp is not None:
        if fmt in ("JPEG", "WEBP"):
            kwargs["xmp"] = xmp
        elif fmt == "PNG":
            from PIL import PngImagePlugin

            text = PngImagePlugin.PngInfo()
            text.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
            kwargs["pnginfo"] = text
        elif fmt == "TIFF":
            tags = Image.Exif()
            tags.load(kwargs["exif"])
            tags[700] = xmp  # XMP tag
            kwargs["exif"] = tags
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _luma_tolerance(fmt, bits, quality):
    """(max, mean) absolute luminance error allowed after encoding: quantisation for lossless formats,
    a bound that still catches wrong pixels (orientation, channels, bit depth) for lossy ones."""
    if fmt in LOSSLESS_FORMATS:
        level = 1.0 / ((1 << bits) - 1)
        return 1.01 * level, 0.6 * level
    # JPEG / WebP: errors grow as quality falls; a wrong image is off by ~0.2 on average
    return 1.0, 0.012 + 0.06 * (1.0 - min(max(quality, 1), 100) / 100.0)


def verify_encoded(data, gray, alpha=None, bits=8, fmt="PNG", quality=95, rows=512):
    """Check that encoded bytes decode to an image of `gray`'s size whose luminance (and alpha) match.

    Parameters
    ----------
    data : bytes
        What `encode_image` produced.
    gray : ndarray, shape (H, W)
        The luminance the output must keep, in [0, 1].
    alpha : ndarray, shape (H, W), optional
        Compared where the format keeps alpha.
    bits, fmt, quality
        As given to `encode_image`.

    Raises
    ------
    OutputCheckError
        Naming what differs. Memory: the decoded output plus one block of `rows` rows.
    """
    fmt = normalise_format(fmt)
    obits = output_bits(bits, fmt)
    h, w = gray.shape
    try:
        if obits == 16:
            import cv2

            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise OutputCheckError(f"the {fmt} output does not decode")
            arr = arr[..., [2, 1, 0] + ([3] if arr.ndim == 3 and arr.shape[2] == 4 else [])]
        else:
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                img.load()
                if img.mode not in ("RGB", "RGBA"):
                    raise OutputCheckError(f"the {fmt} output decodes as mode {img.mode}, not RGB")
                arr = np.asarray(img)
    except OutputCheckError:
        raise
    except Exception as exc:
        raise OutputCheckError(f"the {fmt} output does not decode ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 3 or arr.shape[:2] != (h, w):
        raise OutputCheckError(f"the {fmt} output is {arr.shape[1::-1]} pixels, the input {w}x{h}")
    peak = float((1 << obits) - 1)
    max_tol, mean_tol = _luma_tolerance(fmt, obits, quality)
    worst, total = 0.0, 0.0
    for r in range(0, h, rows):
        y = arr[r : r + rows, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / peak
        diff = np.abs(y - np.clip(gray[r : r + rows], 0.0, 1.0))
        worst, total = max(worst, float(diff.max(initial=0.0))), total + float(diff.sum())
    mean = total / max(1, h * w)
    if worst > max_tol or mean > mean_tol:
        raise OutputCheckError(
            f"the {fmt} output's luminance differs from the input's (max {worst:.4f}, "
            f"mean {mean:.4f}; allowed {max_tol:.4f} / {mean_tol:.4f})"
        )
    if alpha is not None and fmt in ALPHA_FORMATS:
        if arr.shape[2] != 4:
            raise OutputCheckError(f"the {fmt} output lost its alpha channel")
        err = max(
            float(np.abs(arr[r : r + rows, :, 3].astype(np.float32) / peak - alpha[r : r + rows]).max(initial=0.0))
            for r in range(0, h, rows)
        )
        if err > 2.01 / peak:
            raise OutputCheckError(f"the {fmt} output's alpha differs from the input's (max {err:.4f})")
