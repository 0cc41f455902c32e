"""What one input is, and how its bytes are reached without holding them in memory.

An input (`Source`) is a file on any Beam filesystem, or a member of a ``.zip`` / ``.tar``
(``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) archive, possibly nested in another
archive up to `Limits.max_depth` levels. Its ``chain`` names the member hops from the
top-level file: ``()`` for a file, ``((3, "photos/a.jpg"),)`` for the fourth entry of an
archive, ``((0, "inner.zip"), (2, "x.png"))`` for a member of a nested archive.

`walk_archive` reads an archive as a stream of `Member` events (listing, and later reading
only the wanted members): nothing but the member being read is held, and that one is
spooled to a local temporary file with a byte cap. Unsafe names ('..', absolute), links,
devices, members over the byte limit, encrypted or damaged members, damaged tar headers
(skipped regions are reported), truncated archives and archives nested too deep each come
out as an event with the reason, so every entry is accounted for.

Reading cost: a ``.zip`` is read member by member (random access: members are spread over
workers); a tar is a stream, so one worker reads a whole tar (and any archive nested in a
member) in one pass.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import stat
import tempfile
from typing import Callable, Iterator, Optional, Tuple

ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-input limits.

    Attributes
    ----------
    max_bytes : int
        Largest file or member (bytes read, whatever a header claims).
    max_depth : int
        Archives nested deeper than this are refused (1 = archives hold no archives).
    max_members : int
        Entries read from one archive (their listing is held while the archive is expanded); the rest are
        reported as one row.
    """

    max_bytes: int = 384 << 20
    max_depth: int = 3
    max_members: int = 250_000


@dataclasses.dataclass(frozen=True)
class Source:
    """One input image: a file, or an archive member reached through `chain`."""

    key: str  # unique id shown in the manifest: the path, or PATH!member[#index][!member...]
    rel: str  # path relative to the input root (output names mirror it)
    path: str  # the top-level file on its filesystem
    chain: Tuple[Tuple[int, str], ...] = ()
    size: int = -1  # declared bytes (-1: unknown)
    unit: str = ""  # what one worker reads in one go (see transforms.colorize.reading_unit); "" = the file

    @property
    def is_member(self):
        return bool(self.chain)


@dataclasses.dataclass
class Member:
    """One event of `walk_archive`.

    kind is ``file`` (readable with `spool`), ``archive`` (a nested archive being entered),
    ``refused`` (the entry is not read: `reason` says why), ``failed`` (reading stopped or a
    region was lost: `reason`), ``end`` (the archive at `chain` ended; `count` entries seen;
    `reason` set when it ended because it could not be read).
    """

    chain: tuple
    kind: str
    size: int = -1
    reason: str = ""
    count: int = 0
    spool: Optional[Callable[[str], str]] = None  # (tmpdir) -> path of a local copy (caller deletes)


class MemberError(Exception):
    """A member cannot be read; the message is the reason."""


def is_archive_name(path):
    return str(path).lower().endswith(ARCHIVE_EXTENSIONS)


def archive_stem(rel):
    """``scans/box1.tar.gz`` -> ``scans/box1`` (members are mirrored under it)."""
    low = rel.lower()
    for ext in sorted(ARCHIVE_EXTENSIONS, key=len, reverse=True):
        if low.endswith(ext):
            return rel[: -len(ext)]
    return rel


def unsafe_member_reason(name):
    """Why an archive member name may not be written anywhere, or None if it is safe."""
    if not name or "\x00" in name:
        return "empty or NUL in member name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return f"absolute path {name!r} refused"
    if ".." in norm.split("/"):
        return f"path with '..' {name!r} refused"
    return None


def clean_member_name(name):
    """A member name as a relative path: '\\' -> '/', empty and '.' segments dropped (dots in names kept)."""
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def member_rel(archive_rel, name):
    """Relative path of a member: under the archive's stem."""
    return f"{archive_stem(archive_rel)}/{clean_member_name(name)}"


def chain_rel(rel, chain):
    """Relative path of the member reached by `chain` from the archive at `rel` (nested archives by their stems)."""
    for _, name in chain:
        rel = member_rel(rel, name)
    return rel


def chain_key(path, chain, duplicated=()):
    """Manifest key of a member: ``PATH!name`` per hop, ``#index`` added where a name repeats in its archive."""
    parts = [path]
    for depth, (index, name) in enumerate(chain):
        dup = (chain[:depth], name) in duplicated
        parts.append(f"{name}#{index}" if dup else name)
    return "!".join(parts)


def _copy_capped(reader, dest, cap, what):
    """Copy a stream to `dest` in chunks; MemberError past `cap` bytes (headers may lie)."""
    total = 0
    with open(dest, "wb") as out:
        while True:
            block = reader.read(CHUNK)
            if not block:
                return total
            total += len(block)
            if total > cap:
                raise MemberError(f"too large: {what} holds more than the {cap}-byte limit (--max_file_bytes)")
            out.write(block)


def spool_stream(reader, tmpdir, cap, what="the member", suffix=""):
    """Copy `reader` into a new temporary file under `tmpdir` (at most `cap` bytes); returns its path."""
    fd, path = tempfile.mkstemp(dir=tmpdir, suffix=suffix)
    os.close(fd)
    try:
        _copy_capped(reader, path, cap, what)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _zip_reason(exc, info):
    text = str(exc)
    if isinstance(exc, RuntimeError) and "encrypted" in text.lower() or (info.flag_bits & 0x1):
        return "encrypted member (a password is needed): not read"
    if isinstance(exc, NotImplementedError):
        return f"unsupported zip compression method {info.compress_type}: {text}"
    if "crc" in text.lower():
        return f"damaged member: its data fails the CRC check ({text})"
    return f"damaged member ({type(exc).__name__}: {text})"


def _spool_zip_member(zf, info, cap):
    def spool(tmpdir):
        if info.file_size > cap:
            raise MemberError(f"too large: {info.file_size} bytes > the {cap}-byte limit (--max_file_bytes)")
        try:
            with zf.open(info) as reader:
                # a header that understates the size is caught by the cap on bytes actually read
                return spool_stream(
                    reader, tmpdir, min(cap, info.file_size), "the member", posixpath.splitext(info.filename)[1][:16]
                )
        except MemberError:
            raise
        except Exception as exc:
            raise MemberError(_zip_reason(exc, info)) from None

    return spool


def _walk_zip(fh, chain, limits, depth, descend, tmpdir):
    import zipfile

    try:
        zf = zipfile.ZipFile(fh)
    except Exception as exc:
        yield Member(
            chain, "failed", reason=f"unreadable zip archive ({type(exc).__name__}: {exc}); no member can be listed"
        )
        yield Member(chain, "end", reason="unreadable")
        return
    count = 0
    with zf:
        for index, info in enumerate(zf.infolist()):
            if index >= limits.max_members:
                yield Member(chain, "failed", reason=f"more than {limits.max_members} entries: the rest not read")
                break
            if info.is_dir():
                continue
            count += 1
            here = chain + ((index, info.filename),)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                yield Member(here, "refused", info.file_size, reason="symbolic link refused")
                continue
            reason = unsafe_member_reason(info.filename)
            if reason:
                yield Member(here, "refused", info.file_size, reason=reason)
                continue
            spool = _spool_zip_member(zf, info, limits.max_bytes)
            yield from _member_or_nested(here, info.filename, info.file_size, spool, limits, depth, descend, tmpdir)
    yield Member(chain, "end", count=count)


def _tar_kind(m):
    if m.isfile():
        return "file"
    if m.issym() or m.islnk():
        return "link"
    if m.isdev() or m.isfifo():
        return "device"
    return "special"


def _decompressed(fh):
    """A plain stream of a tar that may be gzip / bzip2 / xz compressed (by its magic bytes).

    The standard decompressing readers are used instead of tarfile's own ``r|gz`` stream, whose
    buffer handling turns highly compressed members quadratic (1000 MiB of zeros: 25 s to skip).
    """
    import bz2
    import gzip
    import lzma

    head = fh.read(6)
    fh.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if head[:3] == b"BZh":
        return bz2.BZ2File(fh)
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(fh)
    return fh


def _walk_tar(fh, chain, limits, depth, descend, tmpdir):
    import tarfile

    count = 0
    expected = 0  # offset where the next header should start in the uncompressed stream
    try:
        # ignore_zeros: a damaged header does not end the listing; the skipped region is reported below
        with tarfile.open(fileobj=_decompressed(fh), mode="r|", ignore_zeros=True) as tf:
            for index, m in enumerate(tf):
                if index >= limits.max_members:
                    yield Member(chain, "failed", reason=f"more than {limits.max_members} entries: the rest not read")
                    break
                if m.offset > expected and count:
                    yield Member(
                        chain + ((-1, f"@{expected}"),),
                        "failed",
                        reason=(
                            f"damaged archive region: {m.offset - expected} bytes at offset {expected} skipped "
                            "(a damaged header; the member stored there is lost)"
                        ),
                    )
                expected = m.offset_data + ((m.size + 511) // 512) * 512 if m.isreg() else m.offset_data
                if m.isdir():
                    continue
                count += 1
                here = chain + ((index, m.name),)
                kind = _tar_kind(m)
                if kind != "file":
                    yield Member(
                        here, "refused", m.size, reason=f"{'symbolic link' if m.issym() else kind} entry refused"
                    )
                    continue
                reason = unsafe_member_reason(m.name)
                if reason:
                    yield Member(here, "refused", m.size, reason=reason)
                    continue

                def spool(tmpdir, m=m):
                    if m.size > limits.max_bytes:
                        raise MemberError(
                            f"too large: {m.size} bytes > the {limits.max_bytes}-byte limit (--max_file_bytes)"
                        )
                    try:
                        return spool_stream(
                            tf.extractfile(m), tmpdir, m.size, "the member", posixpath.splitext(m.name)[1][:16]
                        )
                    except MemberError:
                        raise
                    except Exception as exc:
                        raise MemberError(f"damaged member ({type(exc).__name__}: {exc})") from None

                yield from _member_or_nested(here, m.name, m.size, spool, limits, depth, descend, tmpdir)
    except Exception as exc:  # truncated / corrupt stream: what was read stays, the rest is named here
        what = "unreadable tar archive" if not count else f"archive damaged or truncated after {count} entries"
        yield Member(chain, "failed", reason=f"{what} ({type(exc).__name__}: {exc}); the rest cannot be read")
        yield Member(chain, "end", count=count, reason="unreadable")
        return
    yield Member(chain, "end", count=count)


def _member_or_nested(here, name, size, spool, limits, depth, descend, tmpdir):
    """A file member, or (for an archive name) the nested archive's own events."""
    if not is_archive_name(name):
        yield Member(here, "file", size, spool=spool)
        return
    if depth + 1 > limits.max_depth:
        yield Member(here, "refused", size, reason=f"archive nested deeper than {limits.max_depth} levels refused")
        return
    yield Member(here, "archive", size)
    if not descend(here):
        return
    try:
        local = spool(tmpdir)
    except MemberError as exc:
        yield Member(here, "failed", size, reason=f"nested archive not read: {exc}")
        return
    try:
        with open(local, "rb") as fh:
            yield from walk_archive(fh, name, limits, here, depth + 1, descend, tmpdir)
    finally:
        os.unlink(local)


def walk_archive(
    fh, name, limits=Limits(), chain=(), depth=1, descend=lambda chain: True, tmpdir=None
) -> Iterator[Member]:
    """Events for the entries of the archive open in `fh` (a binary file object; seekable for zip).

    Parameters
    ----------
    fh : binary file object
    name : str
        The archive's name (its extension picks zip or tar).
    limits : Limits
    chain : tuple
        The hops that lead to this archive (``()`` at top level).
    depth : int
        Nesting level of this archive (1 = top level).
    descend : callable(chain) -> bool
        Whether to enter a nested archive (listing: always; reading: only where a wanted member is).
    tmpdir : str
        Where nested archives are spooled.
    """
    walker = _walk_zip if name.lower().endswith(".zip") else _walk_tar
    yield from walker(fh, chain, limits, depth, descend, tmpdir or tempfile.gettempdir())


def walk_zip_members(fh, indices, limits=Limits(), descend=lambda chain: True, tmpdir=None) -> Iterator[Member]:
    """Events for the entries `indices` of the zip open in `fh` (random access: the others are not read),
    and what is nested in them."""
    import zipfile

    with zipfile.ZipFile(fh) as zf:
        infos = zf.infolist()
        for index in sorted(indices):
            info = infos[index]
            yield from _member_or_nested(
                ((index, info.filename),),
                info.filename,
                info.file_size,
                _spool_zip_member(zf, info, limits.max_bytes),
                limits,
                1,
                descend,
                tmpdir or tempfile.gettempdir(),
            )


def copy_to_local(fs_open, path, tmpdir, cap):
    """A local copy of `path` opened by `fs_open` (at most `cap` bytes)."""
    with fs_open(path) as reader:
        return spool_stream(reader, tmpdir, cap, "the file", posixpath.splitext(path)[1][:16])


def remove_quietly(path):
    """Delete a local temporary file; one already gone is no error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
