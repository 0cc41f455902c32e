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
  ``ARCHIVE_STEM/`` (see `transforms.sources`).

Local folders are walked with `os.walk` (hidden files included); symbolic links are
refused like archive links unless ``follow_symlinks`` (then followed, without loops).
Paths under an ``exclude`` prefix (the archive job's own output folder) are not inputs.
Every candidate ends either as an `ImageFile` on the main output or as a
dead letter (``{"path", "stage", "reason"}``) on the ``dead`` output.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from typing import List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from .fs import is_remote, read_bytes
from .sources import Limits, MemberError, chain_key, chain_rel, is_archive_name, walk_archive

#: File names taken as images (the content decides the format; see colorize_tf.imageio.DECODE_FORMATS).
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".tif",
    ".tiff",
    ".bmp",
    ".dib",
    ".gif",
    ".webp",
    ".pgm",
    ".ppm",
    ".pbm",
    ".pnm",
    ".jp2",
    ".j2k",
    ".jpf",
    ".jpx",
)
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


def display(text):
    """A string safe for Beam's coders, Parquet and CSV: bytes of file names that are not UTF-8 (which
    Python keeps as surrogates) shown as backslash escapes."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def wire(path):
    """A path as it can travel between Beam steps: unchanged, or as bytes when it is not valid UTF-8."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def unwire(path):
    """The inverse of `wire`."""
    return os.fsdecode(path) if isinstance(path, bytes) else path


def dead_letter(path, stage, reason):
    return {"path": display(path), "stage": stage, "reason": display(reason)}


def decode_colour(data, path, stage, max_pixels=None):
    """A colour photo to learn from or score against.

    Returns
    -------
    (Picture, None)
        When `data` decodes and has colour.
    (None, dict)
        Otherwise a dead letter: stage ``decode`` with the decoder's reason, or `stage` with
        ``no colour ground truth (...)`` for gray modes and for colour-typed files with gray content.
    """
    from colorize_tf.imageio import DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image

    try:
        pic = decode_image(data, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    except ImageDecodeError as exc:
        return None, dead_letter(path, "decode", exc)
    from colorize_tf.metrics import has_colour

    if pic.rgb is None or not has_colour(pic.rgb):
        return None, dead_letter(path, stage, f"no colour ground truth (mode {pic.mode}, gray content)")
    return pic, None


def _is_glob(spec):
    return any(c in spec for c in GLOB_CHARS)


def _glob_root(pattern):
    """The directory part of a pattern before its first wildcard."""
    cut = min(pattern.index(c) for c in GLOB_CHARS if c in pattern)
    return pattern[:cut].rsplit("/", 1)[0] if "/" in pattern[:cut] else ""


def relative_to(path, root):
    """`path` relative to folder `root`, or None when it is not under it."""
    root = root.rstrip("/")
    return path[len(root) + 1 :] if root and path.startswith(root + "/") else None


def _rel(path, root):
    inside = relative_to(path, root) if root else None
    return posixpath.basename(path) if inside is None else inside


def _match(pattern):
    return [m.path for m in FileSystems.match([pattern])[0].metadata_list]


def is_image_name(path):
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _under(path, prefixes):
    return any(path == p or relative_to(path, p) is not None for p in prefixes)


def _walk_local(root, follow_symlinks):
    """Files under a local folder: (paths, dead letters for refused links). Hidden files are included;
    with `follow_symlinks`, linked folders are entered once each (no loops)."""
    files, dead, seen = [], [], set()
    for d, dirs, names in os.walk(root, followlinks=follow_symlinks):
        if follow_symlinks:
            real = os.path.realpath(d)
            if real in seen:
                dirs[:] = []
                continue
            seen.add(real)
        for n in sorted(dirs):
            p = os.path.join(d, n)
            if os.path.islink(p) and not follow_symlinks:
                dead.append(
                    dead_letter(p, "list", "symbolic link to a folder refused (--follow_symlinks follows links)")
                )
        for n in sorted(names):
            p = os.path.join(d, n)
            if os.path.islink(p) and not follow_symlinks:
                dead.append(dead_letter(p, "list", "symbolic link refused (--follow_symlinks follows links)"))
            elif os.path.islink(p) and not os.path.exists(p):
                dead.append(dead_letter(p, "list", "broken symbolic link"))
            else:
                files.append(p)
    return sorted(files), dead


def _link_reason(path, follow_symlinks):
    """Why a local path named explicitly (glob match, list entry) is refused under the link policy, or None."""
    if follow_symlinks or is_remote(path) or not os.path.islink(path):
        return None
    return "symbolic link refused (--follow_symlinks follows links)"


def expand_spec(
    spec: str, list_root: Optional[str] = None, exclude: Sequence[str] = (), follow_symlinks: bool = True
) -> Tuple[List[Tuple[str, str]], List[dict]]:
    """Resolve an input SPEC into files.

    Parameters
    ----------
    spec, list_root
        See the module docstring.
    exclude : sequence of str
        Paths (folders) whose contents are not inputs (e.g. the job's output folder).
    follow_symlinks : bool
        False: local symbolic links become dead letters instead of being read.

    Returns
    -------
    files : list of (path, rel)
    dead : list of dead-letter dicts (list entries that match nothing,
        non-image files inside a directory, refused links)
    """
    files, dead, seen = [], [], set()
    spec = spec.rstrip("/") if len(spec) > 1 else spec

    def take(path, rel):
        if _under(path, exclude):
            return
        reason = _link_reason(path, follow_symlinks)
        if path in seen:  # a list naming one file twice: one input, and a row for the repeat
            dead.append(dead_letter(path, "list", "skipped: listed more than once (read once)"))
        elif reason:
            dead.append(dead_letter(path, "list", reason))
        else:
            seen.add(path)
            files.append((path, rel))

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
                found = [p for p in _match(full + ".*") if is_image_name(p)]
            else:
                found = [full] if (FileSystems.exists(full) or os.path.islink(full)) else []
            if not found:
                dead.append(dead_letter(full, "list", f"list entry {entry!r} matches no image file"))
            elif len(found) > 1 and not _is_glob(full):
                dead.append(dead_letter(full, "list", f"list entry {entry!r} is ambiguous: {sorted(found)}"))
            else:
                for p in sorted(found):
                    take(p, _rel(p, root))
        return files, dead
    if _is_glob(spec):
        root = _glob_root(spec)
        found = sorted(_match(spec))
        if not found:
            raise FileNotFoundError(f"no file matches {spec!r}")
        for p in found:
            take(p, _rel(p, root))
        return files, dead
    if not is_remote(spec) and os.path.isdir(spec):
        if os.path.islink(spec) and not follow_symlinks:
            raise ValueError(f"input {spec!r} is a symbolic link to a folder (--follow_symlinks follows links)")
        inside, dead = _walk_local(spec, follow_symlinks)
    else:
        inside = _match(spec + "/**") if is_remote(spec) else []
    if inside:  # a directory
        for p in inside:
            if _under(p, exclude):
                continue
            if is_image_name(p) or is_archive_name(p):
                files.append((p, _rel(p, spec)))
            else:
                dead.append(dead_letter(p, "list", "skipped: not an image file name"))
        return files, dead
    if not is_remote(spec) and os.path.isdir(spec):
        return files, dead  # an empty folder
    if FileSystems.exists(spec):
        take(spec, posixpath.basename(spec))
        return files, dead
    raise FileNotFoundError(f"input {spec!r} is not a file, directory, glob or list file")


class ReadFileDoFn(beam.DoFn):
    """(path, rel) -> `ImageFile`; archives (.tar*, .zip) -> one `ImageFile` per safe member.

    Unsafe archive members (absolute paths, '..', links, devices, over the
    size limit), damaged members and regions, and unreadable files go to the
    ``dead`` output with the reason (`transforms.sources.walk_archive`).
    Used by the feature, evaluation and parser jobs, whose images are small; the
    archive job reaches its inputs without holding them (`transforms.colorize`).
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.read_ok = Metrics.counter("io", "files_read")
        self.read_failed = Metrics.counter("io", "files_unreadable")

    def process(self, item):
        path, rel = map(unwire, item)
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

    def _archive(self, path, rel):
        try:
            yield from self._members(path, rel)
        except Exception as exc:  # the archive cannot be opened at all
            self.read_failed.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(path, "archive", f"{type(exc).__name__}: {exc}"))

    def _members(self, path, rel):
        import tempfile

        limits = Limits(max_bytes=self.max_bytes or Limits().max_bytes)
        with (
            tempfile.TemporaryDirectory(prefix="colorize-read-") as tmp,
            FileSystems.open(path, compression_type="uncompressed") as fh,
        ):
            for m in walk_archive(fh, path, limits, tmpdir=tmp):
                where = chain_key(path, m.chain)
                if m.kind in ("refused", "failed"):
                    self.read_failed.inc()
                    yield beam.pvalue.TaggedOutput(DEAD, dead_letter(where, "archive", m.reason))
                elif m.kind == "end" and not m.count and not m.reason:
                    yield beam.pvalue.TaggedOutput(DEAD, dead_letter(where, "archive", "skipped: empty archive"))
                elif m.kind == "file":
                    try:
                        local = m.spool(tmp)
                    except MemberError as exc:
                        self.read_failed.inc()
                        yield beam.pvalue.TaggedOutput(DEAD, dead_letter(where, "archive", str(exc)))
                        continue
                    with open(local, "rb") as f:
                        data = f.read()
                    os.unlink(local)
                    self.read_ok.inc()
                    yield ImageFile(path=where, rel=chain_rel(rel, m.chain), data=data)


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

    def __init__(self, exclude=(), follow_symlinks=True):
        self.exclude, self.follow_symlinks = tuple(exclude), follow_symlinks
        self.listed = Metrics.counter("io", "files_listed")

    def process(self, item):
        spec, list_root = item
        files, dead = expand_spec(spec, list_root, self.exclude, self.follow_symlinks)
        self.listed.inc(len(files))
        for path, rel in files:
            yield wire(path), wire(rel)
        for d in dead:
            yield beam.pvalue.TaggedOutput(DEAD, d)


class ListFiles(beam.PTransform):
    """SPEC -> PCollection of ``(path, rel)`` (rebalanced across workers), plus dead letters under ``dead``."""

    def __init__(self, spec, list_root=None, exclude=(), follow_symlinks=True):
        super().__init__()
        self.spec, self.list_root = spec, list_root
        self.exclude, self.follow_symlinks = tuple(exclude), follow_symlinks

    def expand(self, pbegin):
        check_input(self.spec)
        listed = (
            pbegin
            | "Spec" >> beam.Create([(self.spec, self.list_root)])
            | "Expand"
            >> beam.ParDo(ExpandSpecDoFn(self.exclude, self.follow_symlinks)).with_outputs(DEAD, main="files")
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
            DEAD, main="files"
        )
        all_dead = (listed[DEAD], read[DEAD]) | "MergeDead" >> beam.Flatten()
        return {"files": read.files, DEAD: all_dead}


def read_jsonl(pattern):
    """All JSON lines of the files matching `pattern` (any Beam filesystem)."""
    import json

    rows = []
    for m in FileSystems.match([pattern])[0].metadata_list:
        rows += [json.loads(line) for line in read_bytes(m.path).decode().splitlines() if line.strip()]
    return rows


def write_jsonl(pcoll, prefix, label, one_file=False):
    """Write dicts as JSON lines (sorted keys) to ``PREFIX-*.jsonl`` (``PREFIX.jsonl`` with `one_file`)."""
    import json

    kwargs = {"shard_name_template": ""} if one_file else {}
    return (
        pcoll
        | f"{label}ToJson" >> beam.Map(json.dumps, sort_keys=True)
        | f"Write{label}" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl", **kwargs)
    )


def write_record_outputs(out, records_name, records, images, image_schema, dead, num_shards=0):
    """The outputs every record job writes under `out`: ``RECORDS_NAME/RECORDS_NAME-*.tfrecord.gz`` (step
    ``Write<Name>``), the per-image table ``images/images-*.parquet`` (``WriteImageTable``) and the dead
    letters of `dead` (PCollections, flattened) as ``dead_letters/dead-*.jsonl`` (``WriteDeadLetters``).
    Returns the flattened dead letters."""
    records | f"Write{records_name.title()}" >> beam.io.WriteToTFRecord(
        FileSystems.join(out, records_name, records_name), file_name_suffix=".tfrecord.gz", num_shards=num_shards
    )
    images | "WriteImageTable" >> beam.io.WriteToParquet(
        FileSystems.join(out, "images", "images"), image_schema, file_name_suffix=".parquet"
    )
    dead = tuple(dead) | "AllDeadLetters" >> beam.Flatten()
    write_jsonl(dead, FileSystems.join(out, "dead_letters", "dead"), "DeadLetters")
    return dead
