"""Finding and reading input images on any Beam filesystem.

An input SPEC is one of:

* a directory (searched recursively for image files),
* a glob (``images/*.jpg``, ``gs://bucket/scans/**``),
* a list file (``.txt`` / ``.lst`` / ``.list``): one path or glob per line,
  relative to the list's folder or to ``list_root``; entries without an
  extension match ``ENTRY.*`` (SIFT Flow's ``train.txt`` style),
* a single image file,
* a ``.tar`` / ``.tar.gz`` / ``.tgz`` / ``.zip`` archive (also when found inside
  a folder, glob or list): its members are read as if they were files under
  ``ARCHIVE_STEM/``.

Every candidate ends either as an `ImageFile` on the main output or as a
dead letter (``{"path", "stage", "reason"}``) on the ``dead`` output.
"""
from __future__ import annotations

import dataclasses
import posixpath
from typing import List, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from .fs import read_bytes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".jfif", ".pgm", ".ppm")
ARCHIVE_EXTENSIONS = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
LIST_EXTENSIONS = (".txt", ".lst", ".list")
DEAD = "dead"
GLOB_CHARS = "*?["


@dataclasses.dataclass
class ImageFile:
    """An input file's identity and bytes."""

    path: str  # full path as the filesystem names it
    rel: str  # path relative to the input root (ids and output mirroring)
    data: bytes

    @property
    def image_id(self):
        """Stable id: relative path without extension."""
        return posixpath.splitext(self.rel)[0]


def dead_letter(path, stage, reason):
    return {"path": path, "stage": stage, "reason": str(reason)}


def _is_glob(spec):
    return any(c in spec for c in GLOB_CHARS)


def _glob_root(pattern):
    """The directory part of a pattern before its first wildcard."""
    cut = min(pattern.index(c) for c in GLOB_CHARS if c in pattern)
    return pattern[:cut].rsplit("/", 1)[0] if "/" in pattern[:cut] else ""


def _rel(path, root):
    if root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return posixpath.basename(path)


def _match(pattern):
    return [m.path for m in FileSystems.match([pattern])[0].metadata_list]


def _is_image_name(path):
    return path.lower().endswith(IMAGE_EXTENSIONS)


def is_archive_name(path):
    return path.lower().endswith(ARCHIVE_EXTENSIONS)


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


def expand_spec(spec: str, list_root: Optional[str] = None) -> Tuple[List[Tuple[str, str]], List[dict]]:
    """Resolve an input SPEC into files.

    Returns
    -------
    files : list of (path, rel)
    dead : list of dead-letter dicts (list entries that match nothing,
        non-image files inside a directory)
    """
    files, dead = [], []
    spec = spec.rstrip("/") if len(spec) > 1 else spec
    if spec.lower().endswith(LIST_EXTENSIONS) and not _is_glob(spec) and FileSystems.exists(spec):
        root = list_root or posixpath.dirname(spec)
        with FileSystems.open(spec) as fh:
            entries = [ln.strip() for ln in fh.read().decode("utf-8").splitlines()]
        for entry in entries:
            if not entry or entry.startswith("#"):
                continue
            full = entry if (entry.startswith("/") or "://" in entry) else FileSystems.join(root, entry)
            if _is_glob(full):
                found = _match(full)
            elif posixpath.splitext(entry)[1] == "":
                found = [p for p in _match(full + ".*") if _is_image_name(p)]
            else:
                found = _match(full) if FileSystems.exists(full) else []
            if not found:
                dead.append(dead_letter(full, "list", f"list entry {entry!r} matches no image file"))
            elif len(found) > 1 and not _is_glob(full):
                dead.append(dead_letter(full, "list", f"list entry {entry!r} is ambiguous: {sorted(found)}"))
            else:
                files.extend((p, _rel(p, root)) for p in sorted(found))
        return files, dead
    if _is_glob(spec):
        root = _glob_root(spec)
        found = sorted(_match(spec))
        if not found:
            raise FileNotFoundError(f"no file matches {spec!r}")
        return [(p, _rel(p, root)) for p in found], dead
    inside = _match(spec + "/**")
    if inside:  # a directory
        for p in sorted(inside):
            if _is_image_name(p) or is_archive_name(p):
                files.append((p, _rel(p, spec)))
            else:
                dead.append(dead_letter(p, "list", "skipped: not an image file name"))
        return files, dead
    if FileSystems.exists(spec):
        return [(spec, posixpath.basename(spec))], dead
    raise FileNotFoundError(f"input {spec!r} is not a file, directory, glob or list file")


class ReadFileDoFn(beam.DoFn):
    """(path, rel) -> `ImageFile`; archives (.tar*, .zip) -> one `ImageFile` per safe member.

    Unsafe archive members (absolute paths, '..', links, devices, over the
    size limit) and unreadable files go to the ``dead`` output with the reason.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.read_ok = Metrics.counter("io", "files_read")
        self.read_failed = Metrics.counter("io", "files_unreadable")

    def process(self, item):
        path, rel = item
        if is_archive_name(path):
            yield from self._archive(path, rel)
            return
        try:
            with FileSystems.open(path, compression_type="uncompressed") as fh:
                data = fh.read(self.max_bytes + 1) if self.max_bytes else fh.read()
            if self.max_bytes and len(data) > self.max_bytes:
                raise ValueError(f"file larger than the {self.max_bytes}-byte limit")
        except Exception as exc:  # unreadable file: account for it, never crash
            self.read_failed.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(path, "read", f"{type(exc).__name__}: {exc}"))
            return
        self.read_ok.inc()
        yield ImageFile(path=path, rel=rel, data=data)

    def _member(self, archive, rel, name, kind, size, read):
        """Check one archive member; returns an ImageFile or a dead letter."""
        where = f"{archive}!{name}"
        reason = unsafe_member_reason(name)
        if reason is None and kind != "file":
            reason = f"{kind} entry refused"
        if reason is None and self.max_bytes and size > self.max_bytes:
            reason = f"member larger than the {self.max_bytes}-byte limit"
        if reason is not None:
            self.read_failed.inc()
            return beam.pvalue.TaggedOutput(DEAD, dead_letter(where, "archive", reason))
        self.read_ok.inc()
        return ImageFile(path=where, rel=f"{archive_stem(rel)}/{name.lstrip('./')}", data=read())

    def _archive(self, path, rel):
        import stat
        import tarfile
        import zipfile

        try:
            with FileSystems.open(path, compression_type="uncompressed") as fh:
                if path.lower().endswith(".zip"):
                    with zipfile.ZipFile(fh) as zf:
                        for info in zf.infolist():
                            if info.is_dir():
                                continue
                            mode = info.external_attr >> 16
                            kind = "symbolic link" if stat.S_ISLNK(mode) else "file"
                            yield self._member(path, rel, info.filename, kind, info.file_size,
                                               lambda info=info: zf.read(info))
                else:
                    with tarfile.open(fileobj=fh, mode="r|*") as tf:
                        for m in tf:
                            if m.isdir():
                                continue
                            kind = ("file" if m.isfile() else "link" if (m.issym() or m.islnk())
                                    else "device" if (m.isdev()) else "special")
                            yield self._member(path, rel, m.name, kind, m.size,
                                               lambda m=m: tf.extractfile(m).read())
        except Exception as exc:  # corrupt / truncated archive: what was read stays, the rest is reported
            self.read_failed.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(path, "archive", f"{type(exc).__name__}: {exc}"))


def check_input(spec: str) -> None:
    """Fail at launch, cheaply, when `spec` names nothing (the full listing runs later, on a worker)."""
    spec = spec.rstrip("/") if len(spec) > 1 else spec
    if FileSystems.exists(spec):
        return
    pattern = spec if _is_glob(spec) else spec + "/**"
    if FileSystems.match([pattern], limits=[1])[0].metadata_list:
        return
    raise FileNotFoundError(f"input {spec!r} is not a file, directory, glob or list file (nothing matches)")


class ExpandSpecDoFn(beam.DoFn):
    """(spec, list_root) -> ``(path, rel)`` per file, plus listing dead letters under ``dead``.

    Listing runs inside the pipeline, so a job over millions of files keeps a
    small job graph (Dataflow caps the submitted graph's size).
    """

    def __init__(self):
        self.listed = Metrics.counter("io", "files_listed")

    def process(self, item):
        spec, list_root = item
        files, dead = expand_spec(spec, list_root)
        self.listed.inc(len(files))
        yield from files
        for d in dead:
            yield beam.pvalue.TaggedOutput(DEAD, d)


class ListFiles(beam.PTransform):
    """SPEC -> PCollection of ``(path, rel)`` (rebalanced across workers), plus dead letters under ``dead``."""

    def __init__(self, spec, list_root=None):
        super().__init__()
        self.spec, self.list_root = spec, list_root

    def expand(self, pbegin):
        check_input(self.spec)
        listed = (
            pbegin
            | "Spec" >> beam.Create([(self.spec, self.list_root)])
            | "Expand" >> beam.ParDo(ExpandSpecDoFn()).with_outputs(DEAD, main="files")
        )
        return {"files": listed.files | "Spread" >> beam.Reshuffle(), DEAD: listed[DEAD]}


class ReadImages(beam.PTransform):
    """SPEC -> PCollection of `ImageFile`, plus dead letters under tag ``dead``.

    Listing runs on a worker (`ListFiles`); reading is parallel and rebalanced across workers.
    """

    def __init__(self, spec, list_root=None, max_bytes=1 << 30):
        super().__init__()
        self.spec, self.list_root, self.max_bytes = spec, list_root, max_bytes

    def expand(self, pbegin):
        listed = pbegin | "ListFiles" >> ListFiles(self.spec, self.list_root)
        read = listed["files"] | "ReadFiles" >> beam.ParDo(ReadFileDoFn(self.max_bytes)).with_outputs(
            DEAD, main="files")
        all_dead = (listed[DEAD], read[DEAD]) | "MergeDead" >> beam.Flatten()
        return {"files": read.files, DEAD: all_dead}


def read_jsonl(pattern):
    """All JSON lines of the files matching `pattern` (any Beam filesystem)."""
    import json

    rows = []
    for m in FileSystems.match([pattern])[0].metadata_list:
        rows += [json.loads(line) for line in read_bytes(m.path).decode().splitlines() if line.strip()]
    return rows
