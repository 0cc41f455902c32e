"""A generated hostile corpus for the archive job: what real storage holds, and what attackers craft.

`build(root)` writes ``root/corpus/`` (about 140 files: every decodable format and mode, TIFF
layouts, malformed EXIF, refused formats disguised as images, header and small-file bombs,
zips with 1000 MiB members, damaged / truncated / empty / nested archives, name collisions
of every kind, names with newlines and quotes, links) and returns `EXPECT`-style
expectations: ``{relative path or member path: (status, reason substring)}``.
`pack(corpus, path)` packs it as ``.tar.gz`` or ``.zip`` (links kept as link entries).

Nothing here is read from the network or ../shared; everything is made in memory.
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
import zlib

import numpy as np
from PIL import Image

MIB = 1 << 20


def photo(h=48, w=64, seed=0):
    """A small colour picture with structure (sky, ground, disc)."""
    from conftest import synthetic_scene

    return (synthetic_scene(h, w, seed=seed) * 255).astype(np.uint8)


def _save(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _tiff(arr, **kw):
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


# ---- EXIF -----------------------------------------------------------------------------------------


def _ifd(entries, base, extra=b""):
    """Little-endian IFD at offset `base` of a TIFF blob: entries (tag, type, count, value bytes)."""
    out, data = struct.pack("<H", len(entries)), b""
    data_at = base + 2 + 12 * len(entries) + 4
    for tag, typ, count, value in entries:
        if len(value) <= 4:
            out += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
        else:
            out += struct.pack("<HHII", tag, typ, count, data_at + len(data))
            data += value + (b"\x00" if len(value) % 2 else b"")
    return out + struct.pack("<I", 0) + data + extra


def exif_blob(entries, exif_ifd=None):
    """APP1 EXIF payload (``Exif\\0\\0`` + TIFF) with IFD0 `entries` and an optional Exif sub-IFD."""
    entries = list(entries)
    if exif_ifd is not None:
        # the sub-IFD goes after IFD0; its offset is patched in once IFD0's size is known
        probe = _ifd(entries + [(0x8769, 4, 1, struct.pack("<I", 0))], 8)
        sub_at = 8 + len(probe)
        entries.append((0x8769, 4, 1, struct.pack("<I", sub_at)))
        body = _ifd(entries, 8)
        body += _ifd(exif_ifd, 8 + len(body))
    else:
        body = _ifd(entries, 8)
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + body


def _jpeg_with_exif(exif):
    return _save(Image.fromarray(photo(seed=11)), "JPEG", exif=exif, quality=90)


# ---- bombs and crafted headers ----------------------------------------------------------------------


def _png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png_header_bomb(w=60000, h=60000):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def png_zero_image(w, h, bits=8):
    """A valid, highly compressible gray PNG of w x h (a small-file / large-decode bomb)."""
    row = b"\x00" + b"\x00" * (w * bits // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, bits, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def gif_header_bomb():
    small = _save(Image.fromarray(np.zeros((1, 1), np.uint8)), "GIF")
    return small[:6] + struct.pack("<HH", 65535, 65535) + small[10:]


def bmp_header_bomb(w=50000, h=50000):
    size = 54 + 16
    return (
        b"BM"
        + struct.pack("<IHHI", size, 0, 0, 54)
        + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
        + b"\x00" * 16
    )


def tiff_header_bomb(w=100000, h=100000):
    entries = [
        (256, 4, 1, struct.pack("<I", w)),
        (257, 4, 1, struct.pack("<I", h)),
        (258, 3, 1, b"\x08\x00"),
        (259, 3, 1, b"\x01\x00"),
        (262, 3, 1, b"\x01\x00"),
        (273, 4, 1, struct.pack("<I", 8)),
        (277, 3, 1, b"\x01\x00"),
        (278, 4, 1, struct.pack("<I", h)),
        (279, 4, 1, struct.pack("<I", 16)),
    ]
    return b"II*\x00" + struct.pack("<I", 8 + 16) + b"\x00" * 16 + _ifd(entries, 24)


def jpeg_header_bomb():
    data = bytearray(_save(Image.fromarray(photo(16, 16)), "JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def webp_header_bomb():
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16382).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pgm_header_bomb():
    return b"P5\n50000 50000\n255\n" + b"\x80" * 100


def ico_with_huge_png():
    """An icon whose directory says 256x256 but whose embedded PNG claims 40000 x 40000."""
    png = png_header_bomb(40000, 40000)
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 22) + png


# ---- zips and tars ------------------------------------------------------------------------------------


def _deflate_zeros(total):
    """(raw deflate stream of `total` zero bytes, crc32) built from one repeated full-flush block: fast."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(b"\x00" * MIB) + comp.flush(zlib.Z_FULL_FLUSH)
    n = total // MIB
    stream = block * n + comp.flush(zlib.Z_FINISH)
    crc = 0
    zero = b"\x00" * MIB
    for _ in range(n):
        crc = zlib.crc32(zero, crc)
    return stream, crc & 0xFFFFFFFF


def raw_zip(members):
    """A zip from (name, compressed bytes, method, crc, uncompressed size, flags, external attr) tuples."""
    out, central = b"", b""
    for name, comp, method, crc, size, flags, attr in members:
        nb = name.encode()
        local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, len(comp), size, len(nb), 0)
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0x031E,
                20,
                flags,
                method,
                0,
                0x21,
                crc,
                len(comp),
                size,
                len(nb),
                0,
                0,
                0,
                0,
                attr,
                len(out),
            )
            + nb
        )
        out += local + nb + comp
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return out + central + end


def zip_with_big_members(count, size=1000 * MIB, lie=False):
    """`count` members of `size` zero bytes (about 1 MB compressed each). `lie`: headers say 1000 bytes."""
    stream, crc = _deflate_zeros(size)
    bmp_like = [(f"big{i:02d}.bmp", stream, 8, crc, 1000 if lie else size, 0, 0o100644 << 16) for i in range(count)]
    return raw_zip(bmp_like)


def tgz_with_big_member(size=1000 * MIB):
    """A .tar.gz holding one member of `size` zero bytes then a small image (gzip framing by hand)."""
    header = tarfile.TarInfo("huge.png")
    header.size = size
    small = _save(Image.fromarray(photo(seed=31)), "PNG")
    after = tarfile.TarInfo("after_huge.png")
    after.size = len(small)
    pad = lambda n: b"\x00" * ((512 - n % 512) % 512)  # noqa: E731
    head = header.tobuf(format=tarfile.USTAR_FORMAT)
    tail = after.tobuf(format=tarfile.USTAR_FORMAT) + small + pad(len(small)) + b"\x00" * 1024
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    parts = [comp.compress(head), comp.flush(zlib.Z_FULL_FLUSH)]
    block = comp.compress(b"\x00" * MIB) + comp.flush(zlib.Z_FULL_FLUSH)
    parts += [block] * (size // MIB)
    parts += [comp.compress(tail), comp.flush(zlib.Z_FINISH)]
    crc = zlib.crc32(head)
    zero = b"\x00" * MIB
    for _ in range(size // MIB):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(tail, crc)
    total = len(head) + size + len(tail)
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        + b"".join(parts)
        + struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF)
    )


def make_zip(files, compression=zipfile.ZIP_DEFLATED):
    import warnings

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are the point
        for name, data in files:
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def make_tar(files, mode="w"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def zip_damaged_data():
    a, b, c = (_save(Image.fromarray(photo(seed=s)), "PNG") for s in (41, 42, 43))
    data = bytearray(make_zip([("m1.png", a), ("m2.png", b), ("m3.png", c)], zipfile.ZIP_STORED))
    i = data.index(b"m2.png") + 6 + 200  # inside m2's stored data: its CRC no longer matches
    data[i : i + 40] = bytes(40)
    return bytes(data)


def zip_damaged_header():
    a, b, c = (_save(Image.fromarray(photo(seed=s)), "PNG") for s in (44, 45, 46))
    data = bytearray(make_zip([("h1.png", a), ("h2.png", b), ("h3.png", c)]))
    i = data.index(b"PK\x03\x04", 10)  # the second local header
    data[i : i + 4] = b"XX\x03\x04"
    return bytes(data)


def tar_damaged_header():
    a, b, c = (_save(Image.fromarray(photo(seed=s)), "PNG") for s in (47, 48, 49))
    data = bytearray(make_tar([("t1.png", a), ("t2.png", b), ("t3.png", c)]))
    second = 512 + ((len(a) + 511) // 512) * 512
    data[second + 148 : second + 156] = b"9999999\x00"  # a wrong header checksum
    return bytes(data)


def zip_flagged(flag=0, method=8):
    img = _save(Image.fromarray(photo(seed=50)), "PNG")
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(img) + comp.flush()
    return raw_zip([("x.png", raw, method, zlib.crc32(img), len(img), flag, 0o100644 << 16)])


def zip_with_links():
    img = _save(Image.fromarray(photo(seed=51)), "PNG")
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(img) + comp.flush()
    target = b"/etc/passwd"
    return raw_zip(
        [
            ("ok.png", raw, 8, zlib.crc32(img), len(img), 0, 0o100644 << 16),
            ("link.png", target, 0, zlib.crc32(target), len(target), 0, 0o120777 << 16),
            ("../up.png", raw, 8, zlib.crc32(img), len(img), 0, 0o100644 << 16),
            ("/abs.png", raw, 8, zlib.crc32(img), len(img), 0, 0o100644 << 16),
        ]
    )


def tar_with_specials():
    img = _save(Image.fromarray(photo(seed=52)), "PNG")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("ok.png", "../up.png", "/abs.png"):
            ti = tarfile.TarInfo(name)
            ti.size = len(img)
            tf.addfile(ti, io.BytesIO(img))
        for name, typ in (
            ("sym.png", tarfile.SYMTYPE),
            ("hard.png", tarfile.LNKTYPE),
            ("dev", tarfile.CHRTYPE),
            ("fifo", tarfile.FIFOTYPE),
        ):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = typ, "ok.png" if typ == tarfile.LNKTYPE else "/etc/passwd"
            tf.addfile(ti)
    return buf.getvalue()


def nested(depth_names=("n2.tar.gz", "n3.zip")):
    """n1.zip > (a.png, n2.tar.gz > (b.png, n3.zip > (c.png)))."""
    c = make_zip([("c.png", _save(Image.fromarray(photo(seed=61)), "PNG"))])
    b = make_tar([("b.png", _save(Image.fromarray(photo(seed=62)), "PNG")), (depth_names[1], c)], "w:gz")
    return make_zip([("a.png", _save(Image.fromarray(photo(seed=63)), "PNG")), (depth_names[0], b)])


# ---- the corpus -------------------------------------------------------------------------------------


def files():
    """(relative path, bytes or ("link", target)) for every corpus entry, and expectations per entry.

    Expectations: relative path (members: ``ARCHIVE!member``) -> (status, reason substring or "").
    A status of ``"done|failed"`` accepts either (decoders that may or may not handle a variant).
    """
    rgb = photo()
    gray = rgb.mean(-1).astype(np.uint8)
    img, g = Image.fromarray(rgb), Image.fromarray(gray)
    out, expect = [], {}

    def add(rel, data, status="done", reason=""):
        out.append((rel, data))
        if status is not None:
            expect[rel] = (status, reason)

    # every decodable format and mode
    add("ok/rgb.jpg", _save(img, "JPEG", quality=92))
    add("ok/progressive.jpg", _save(img, "JPEG", progressive=True))
    add("ok/gray.jpg", _save(g, "JPEG"))
    add("ok/cmyk.jpg", _save(img.convert("CMYK"), "JPEG"))
    add("ok/gray.png", _save(g, "PNG"))
    add("ok/rgba.png", _save(Image.fromarray(np.dstack([rgb, np.full(gray.shape, 90, np.uint8)])), "PNG"))
    add("ok/la.png", _save(g.convert("LA"), "PNG"))
    add("ok/palette.png", _save(img.convert("P"), "PNG"))
    add("ok/palette_trns.png", _save(img.convert("P"), "PNG", transparency=3))
    add("ok/gray16.png", _save(Image.fromarray(gray.astype(np.uint16) * 257), "PNG"))
    import cv2

    add("ok/rgb16.png", cv2.imencode(".png", rgb[..., ::-1].astype(np.uint16) * 257)[1].tobytes())
    add("ok/rgba16.png", cv2.imencode(".png", np.dstack([rgb[..., ::-1], gray]).astype(np.uint16) * 257)[1].tobytes())
    add("ok/bilevel.png", _save(g.convert("1"), "PNG"))
    add("ok/rgb.bmp", _save(img, "BMP"))
    add("ok/gray.bmp", _save(g, "BMP"))
    add("ok/still.gif", _save(img.convert("P"), "GIF"))
    add(
        "ok/anim.gif",
        _save(img.convert("P"), "GIF", save_all=True, append_images=[Image.fromarray(photo(seed=2)).convert("P")]),
    )
    add("ok/rgb.webp", _save(img, "WEBP", quality=90))
    add("ok/lossless.webp", _save(Image.fromarray(np.dstack([rgb, gray])), "WEBP", lossless=True))
    add("ok/gray.pgm", _save(g, "PPM"))
    add("ok/rgb.ppm", _save(img, "PPM"))
    add("ok/bits.pbm", _save(g.convert("1"), "PPM"))
    add("ok/gray16.pgm", b"P5\n64 48\n65535\n" + (gray.astype(">u2") * 257).tobytes())
    add("ok/rgb.jp2", _save(img, "JPEG2000"))
    add("ok/apng.png", _save(img, "PNG", save_all=True, append_images=[Image.fromarray(photo(seed=3))]))
    exif = Image.Exif()
    exif[0x0112] = 6
    add("ok/rotated.jpg", _save(img, "JPEG", exif=exif.tobytes()))
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    add("ok/dpi_icc.jpg", _save(img, "JPEG", dpi=(600, 600), icc_profile=srgb))
    gray_icc = bytearray(srgb)
    gray_icc[16:20] = b"GRAY"  # a gray profile (as scanners attach): must not describe the RGB output
    add("ok/gray_icc.png", _save(g, "PNG", icc_profile=bytes(gray_icc)))
    add("ok/UPPER.JPG", _save(img, "JPEG"))
    add("ok/wrong_extension.png", _save(img, "JPEG"))  # a JPEG named .png: written as the PNG its name says

    # TIFF layouts (outputs are TIFF: the writer's own tags must win)
    add("tiff/gray8.tif", _save(g, "TIFF"))
    add("tiff/g4.tif", _save(g.convert("1"), "TIFF", compression="group4"))
    add("tiff/g3.tif", _save(g.convert("1"), "TIFF", compression="group3"))
    add("tiff/bilevel_raw.tif", _save(g.convert("1"), "TIFF"))
    add("tiff/rgb_lzw.tif", _save(img, "TIFF", compression="tiff_lzw"))
    add("tiff/rgb_deflate.tif", _save(img, "TIFF", compression="tiff_adobe_deflate"))
    add("tiff/rgb_jpeg.tif", _save(img, "TIFF", compression="jpeg"))
    add("tiff/planar_rgb.tif", _tiff(np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate"))
    add(
        "tiff/planar_rgb16.tif",
        _tiff(np.moveaxis(rgb.astype(np.uint16) * 257, -1, 0), photometric="rgb", planarconfig="separate"),
    )
    add("tiff/rgb16.tif", _tiff(rgb.astype(np.uint16) * 257, photometric="rgb"))
    add("tiff/gray16.tif", _save(Image.fromarray(gray.astype(np.uint16) * 257), "TIFF"))
    add("tiff/tiled.tif", _tiff(rgb, photometric="rgb", tile=(16, 16)))
    add("tiff/bigtiff.tif", _tiff(rgb, photometric="rgb", bigtiff=True))
    add("tiff/float32.tif", _tiff(gray.astype(np.float32) / 255.0, photometric="minisblack"))
    add("tiff/cmyk.tif", _save(img.convert("CMYK"), "TIFF"))
    add("tiff/palette.tif", _save(img.convert("P"), "TIFF"))
    add("tiff/rgba.tif", _save(Image.fromarray(np.dstack([rgb, gray])), "TIFF"))
    add("tiff/multipage.tif", _save(g, "TIFF", save_all=True, append_images=[img]))
    tif_exif = Image.Exif()
    tif_exif[0x010E] = "Box 3, print 12"
    tif_exif[0x8298] = "City archive"
    add("tiff/described.tif", _save(g, "TIFF", exif=tif_exif, dpi=(300, 300)))
    add("tiff/minisblack_jpeg_exif.tif", _save(g, "TIFF", compression="tiff_deflate", exif=tif_exif))

    # malformed EXIF
    add("exif/xres_string.jpg", _jpeg_with_exif(exif_blob([(282, 2, 4, b"abc\x00"), (296, 3, 1, b"\x02\x00")])))
    add(
        "exif/xres_missing.jpg",
        _jpeg_with_exif(exif_blob([(283, 5, 1, struct.pack("<II", 300, 1)), (296, 3, 1, b"\x02\x00")])),
    )
    add("exif/orientation_string.jpg", _jpeg_with_exif(exif_blob([(274, 2, 2, b"x\x00")])))
    add("exif/orientation_99.jpg", _jpeg_with_exif(exif_blob([(274, 3, 1, b"\x63\x00")])))
    add(
        "exif/subifd_rational_string.jpg",
        _jpeg_with_exif(
            exif_blob(
                [(0x010F, 2, 6, b"Kodak\x00")],
                exif_ifd=[(0x829A, 2, 5, b"1/60\x00"), (0x9003, 5, 1, b"\x01\x00\x00\x00")],
            )
        ),
    )
    add(
        "exif/offset_past_end.jpg",
        _jpeg_with_exif(
            b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x1a\x01\x05\x00\x01\x00\x00\x00\xff\xff\x00\x00\x00\x00\x00\x00"
        ),
    )
    add("exif/description_rational.jpg", _jpeg_with_exif(exif_blob([(0x010E, 5, 1, b"\x01\x00\x00\x00")])))
    add("exif/garbage.jpg", _jpeg_with_exif(b"Exif\x00\x00" + os.urandom(200)))

    # refused formats dressed as images, and things that are not images
    add("odd/icon.png", _save(img, "ICO"), "failed", "unsupported format: ICO")
    add("odd/icon_bomb.png", ico_with_huge_png(), "failed", "unsupported format: ICO")
    add("odd/icon_bomb.ico", ico_with_huge_png(), "skipped", "not an image file name")
    add("odd/postscript.jpg", _save(img, "EPS"), "failed", "unsupported format: PostScript/EPS")
    add("odd/document.png", _save(img, "PDF"), "failed", "unsupported format: PDF")
    add("odd/photoshop.tif", b"8BPS\x00\x01" + bytes(20), "failed", "unsupported format: PSD")
    add("odd/iphone.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "failed", "HEIF")
    add(
        "odd/vector.png",
        b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>",
        "failed",
        "unsupported format: SVG",
    )
    add("odd/quite_ok.png", _save(img, "QOI"), "failed", "unsupported format: QOI")
    add("odd/targa.png", _save(img, "TGA"), "failed", "not an image")
    add("odd/pcx.gif", _save(img, "PCX"), "failed", "not an image")
    add("odd/sgi.bmp", _save(img, "SGI"), "failed", "unsupported format: SGI")
    add("odd/dds.jpg", _save(img, "DDS"), "failed", "unsupported format: DDS")
    add("odd/text.jpg", b"hello, this is a letter, not a photograph\n" * 5, "failed", "not an image")
    add("odd/random.png", np.random.default_rng(9).bytes(3000), "failed", "not an image")
    add("odd/empty.png", b"", "failed", "empty")
    add("odd/zip_named.jpg", make_zip([("a.txt", b"x")]), "failed", "unsupported format: ZIP")
    add("odd/notes.txt", b"not an image", "skipped", "not an image file name")
    add("odd/truncated.png", _save(img, "PNG")[:300], "failed", "truncated")
    add("odd/truncated.jpg", _save(img, "JPEG")[:700], "failed", "truncated")
    add("odd/header_only.png", _save(img, "PNG")[:33], "failed", "")
    add("odd/bad_crc.png", _save(img, "PNG")[:40] + b"\x00\x00" + _save(img, "PNG")[42:], "failed", "")
    add("odd/truncated.tif", _save(img, "TIFF")[:2000], "failed", "")
    add("odd/truncated.webp", _save(img, "WEBP")[:200], "failed", "")
    add("odd/truncated.gif", _save(img.convert("P"), "GIF")[:300], "failed", "")

    # header bombs and small-file / large-decode bombs
    add("bombs/huge.png", png_header_bomb(), "failed", "too large")
    add("bombs/huge.gif", gif_header_bomb(), "failed", "too large")
    add("bombs/huge.bmp", bmp_header_bomb(), "failed", "too large")
    add("bombs/huge.tif", tiff_header_bomb(), "failed", "too large")
    add("bombs/huge.jpg", jpeg_header_bomb(), "failed", "too large")
    add("bombs/huge.webp", webp_header_bomb(), "failed", "")
    add("bombs/huge.pgm", pgm_header_bomb(), "failed", "too large")
    add("bombs/valid_81mp.png", png_zero_image(9000, 9000), "failed", "too large")
    add("bombs/valid_225mp_16bit.png", png_zero_image(15000, 15000, 16), "failed", "too large")

    # archives: big members, damage, emptiness, nesting, links
    add("archives/one_1000mib_member.zip", zip_with_big_members(1), None)
    expect["archives/one_1000mib_member.zip!big00.bmp"] = ("failed", "too large")
    add("archives/many_1000mib_members.zip", zip_with_big_members(12), None)
    for i in range(12):
        expect[f"archives/many_1000mib_members.zip!big{i:02d}.bmp"] = ("failed", "too large")
    add("archives/lying_sizes.zip", zip_with_big_members(2, 64 * MIB, lie=True), None)
    for i in range(2):
        expect[f"archives/lying_sizes.zip!big{i:02d}.bmp"] = ("failed", "")
    add("archives/huge_member.tar.gz", tgz_with_big_member(), None)
    expect["archives/huge_member.tar.gz!huge.png"] = ("failed", "too large")
    expect["archives/huge_member.tar.gz!after_huge.png"] = ("done", "")
    add("archives/damaged_data.zip", zip_damaged_data(), None)
    expect.update(
        {
            "archives/damaged_data.zip!m1.png": ("done", ""),
            "archives/damaged_data.zip!m2.png": ("failed", "damaged"),
            "archives/damaged_data.zip!m3.png": ("done", ""),
        }
    )
    add("archives/damaged_header.zip", zip_damaged_header(), None)
    expect.update(
        {
            "archives/damaged_header.zip!h1.png": ("done", ""),
            "archives/damaged_header.zip!h2.png": ("failed", "damaged"),
            "archives/damaged_header.zip!h3.png": ("done", ""),
        }
    )
    add("archives/damaged_header.tar", tar_damaged_header(), None)
    expect.update(
        {"archives/damaged_header.tar!t1.png": ("done", ""), "archives/damaged_header.tar!t3.png": ("done", "")}
    )
    good_tgz = make_tar([(f"tr{i}.png", _save(Image.fromarray(photo(seed=70 + i)), "PNG")) for i in range(4)], "w:gz")
    add("archives/truncated.tar.gz", good_tgz[: len(good_tgz) * 2 // 3], None)
    expect["archives/truncated.tar.gz!tr0.png"] = ("done", "")
    good_zip = make_zip([(f"zt{i}.png", _save(Image.fromarray(photo(seed=80 + i)), "PNG")) for i in range(3)])
    add("archives/truncated.zip", good_zip[: len(good_zip) - 60], "failed", "unreadable zip")
    add("archives/empty.zip", make_zip([]), "skipped", "empty archive")
    add("archives/empty.tar", make_tar([]), "skipped", "empty archive")
    add("archives/empty.tar.gz", make_tar([], "w:gz"), "skipped", "empty archive")
    add("archives/dirs_only.zip", make_zip([("a/", b""), ("a/b/", b"")]), "skipped", "empty archive")
    add("archives/zero_bytes.zip", b"", "failed", "unreadable zip")
    add("archives/not_really.tar.gz", b"this is not gzip data at all" * 10, "failed", "")
    add("archives/encrypted.zip", zip_flagged(flag=1), None)
    expect["archives/encrypted.zip!x.png"] = ("failed", "encrypted")
    add("archives/deflate64.zip", zip_flagged(method=9), None)
    expect["archives/deflate64.zip!x.png"] = ("failed", "compression method")
    add("archives/links.zip", zip_with_links(), None)
    expect.update(
        {
            "archives/links.zip!ok.png": ("done", ""),
            "archives/links.zip!link.png": ("failed", "link"),
            "archives/links.zip!../up.png": ("failed", "'..'"),
            "archives/links.zip!/abs.png": ("failed", "absolute"),
        }
    )
    add("archives/specials.tar", tar_with_specials(), None)
    expect.update(
        {
            "archives/specials.tar!ok.png": ("done", ""),
            "archives/specials.tar!sym.png": ("failed", "link"),
            "archives/specials.tar!hard.png": ("failed", "link"),
            "archives/specials.tar!dev": ("failed", "device"),
            "archives/specials.tar!fifo": ("failed", "device"),
            "archives/specials.tar!../up.png": ("failed", "'..'"),
            "archives/specials.tar!/abs.png": ("failed", "absolute"),
        }
    )
    add("archives/n1.zip", nested(), None)
    expect.update(
        {
            "archives/n1.zip!a.png": ("done", ""),
            "archives/n1.zip!n2.tar.gz!b.png": ("done", ""),
            "archives/n1.zip!n2.tar.gz!n3.zip!c.png": ("done", ""),
        }
    )  # depth 3 from a folder
    a1, a2 = (_save(Image.fromarray(photo(seed=s)), "PNG") for s in (90, 91))
    add(
        "archives/duplicates.zip",
        make_zip(
            [
                ("dup.png", a1),
                ("dup.png", a2),
                ("./dot.png", a1),
                ("dot.png", a2),
                (".hidden.png", a1),
                ("hidden.png", a2),
            ]
        ),
        None,
    )
    expect.update(
        {
            "archives/duplicates.zip!dup.png#0": ("done", ""),
            "archives/duplicates.zip!dup.png#1": ("done", ""),
            "archives/duplicates.zip!./dot.png": ("done", ""),
            "archives/duplicates.zip!dot.png": ("done", ""),
            "archives/duplicates.zip!.hidden.png": ("done", ""),
            "archives/duplicates.zip!hidden.png": ("done", ""),
        }
    )
    add("archives/duplicates.tar", make_tar([("dup.png", a1), ("dup.png", a2)]), None)
    expect.update(
        {"archives/duplicates.tar!dup.png#0": ("done", ""), "archives/duplicates.tar!dup.png#1": ("done", "")}
    )
    add("archives/long_name.tar", make_tar([("x" * 300 + ".png", _save(Image.fromarray(photo(seed=92)), "PNG"))]), None)
    expect["archives/long_name.tar!" + "x" * 300 + ".png"] = ("failed", "name too long")
    add(
        "archives/many_small.zip",
        make_zip([(f"s{i:03d}.png", _save(Image.fromarray(photo(12, 16, seed=i)), "PNG")) for i in range(60)]),
        None,
    )
    for i in range(60):
        expect[f"archives/many_small.zip!s{i:03d}.png"] = ("done", "")

    # name collisions: every kind maps two inputs to one natural output name
    add("collide/x.gif", _save(img.convert("P"), "GIF"))
    add("collide/x.png", _save(img, "PNG"))
    add("collide/y.pgm", _save(g, "PPM"))
    add("collide/y.ppm", _save(img, "PPM"))
    add("collide/y.png", _save(g, "PNG"))
    add("collide/Case.png", _save(img, "PNG"))
    add("collide/case.png", _save(g, "PNG"))
    add("collide/z.jfif", _save(img, "JPEG"))
    add("collide/z.jpg", _save(g, "JPEG"))
    add("collide/.hidden.png", _save(img, "PNG"))
    add("collide/hidden.png", _save(g, "PNG"))
    add("collide/box.zip", make_zip([("a.png", _save(img, "PNG"))]), None)
    expect["collide/box.zip!a.png"] = ("done", "")
    add("collide/box/a.png", _save(g, "PNG"))

    # names that break naive CSV / path handling
    for name in (
        "new\nline.png",
        'quote"s.png',
        "comma,name.png",
        "tab\tname.png",
        "café ß 日本.png",
        "semi;colon.png",
        "sp ace.png",
        "wedding.partial-1950.png",
        "-dash.png",
        "'single'.png",
    ):
        add(f"names/{name}", _save(img, "PNG"))
    return out, expect


def write(root, entries, links=True):
    """Write `entries` under `root`; a few symbolic links too (pointing outside the tree, and dangling)."""
    for rel, data in entries:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
    with open(os.path.join(root, "names", os.fsdecode(b"undecodable-\xff.png")), "wb") as fh:
        fh.write(_save(Image.fromarray(photo(seed=99)), "PNG"))
    if links:
        outside = os.path.join(os.path.dirname(root), "outside")
        os.makedirs(outside, exist_ok=True)
        with open(os.path.join(outside, "secret.png"), "wb") as fh:
            fh.write(_save(Image.fromarray(photo(seed=98)), "PNG"))
        os.makedirs(os.path.join(root, "links"), exist_ok=True)
        os.symlink(os.path.join(outside, "secret.png"), os.path.join(root, "links", "to_outside.png"))
        os.symlink(outside, os.path.join(root, "links", "to_outside_dir"))
        os.symlink(os.path.join(root, "nowhere.png"), os.path.join(root, "links", "dangling.png"))


def pack(corpus, path):
    """Pack the corpus folder as ``.tar.gz`` or ``.zip``; links become link entries (refused by the job)."""
    entries = []
    for d, dirs, names in os.walk(corpus):
        for n in sorted(dirs + names):
            p = os.path.join(d, n)
            if os.path.isdir(p) and not os.path.islink(p):
                continue
            entries.append((os.path.relpath(p, corpus), p))
    entries.sort()
    if path.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, p in entries:
                try:
                    rel.encode("utf-8")
                except UnicodeEncodeError:  # a zip holds UTF-8 names: an undecodable file name cannot go in
                    continue
                if os.path.islink(p):
                    info = zipfile.ZipInfo(rel)
                    info.external_attr = 0o120777 << 16
                    zf.writestr(info, os.readlink(p))
                else:
                    zf.write(p, rel)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for rel, p in entries:
                tf.add(p, rel, recursive=False)
    return path
