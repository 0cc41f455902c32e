"""Beam steps of the archive colorization job.

An image's way through them (``pipelines/colorize_archive.py`` composes them):

1. `ExpandInputsDoFn`: a listed file is one `Source`; an archive is listed (headers only, nested
   archives entered) into one `Source` per member, and a manifest row for every entry that
   cannot be an input (unsafe name, link, device, damaged region, too deep, empty archive).
2. `AssignOutputs`: every source gets an output path; two sources never share one. Sources
   whose natural outputs collide (``a.jpg`` + ``a.png`` with ``--format png``, ``x.gif`` next
   to ``x.png``, duplicate member names, names differing only in case, an input file at an
   output path) are disambiguated deterministically: the owner recorded by a previous run's
   manifest keeps the plain name, else the smallest input key; the others get
   ``STEM~HASH8.EXT`` (hash of the input key). The manifest records it.
3. `SkipFinishedDoFn`: an output that exists is complete (outputs appear only by rename
   after verification), so its source is skipped unless ``--force``.
4. `ColorizeDoFn`, per reading unit (a file, a zip member, or a whole tar): the bytes are
   reached without holding them (`transforms.sources`), decoded (allow-listed formats,
   pixel limit, memory reserved from a per-process budget before any pixel is decoded),
   colorized, encoded, checked (`colorize_tf.imageio.verify_encoded`), written under the
   run's temporary folder, re-read and compared, then renamed into place. Any exception
   becomes a ``failed`` row naming the stage.

Every input ends as exactly one manifest row (`MANIFEST_SCHEMA`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
import os
import posixpath
import shutil
import tempfile
import threading
import time
import typing

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from colorize_tf.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    OutputCheckError,
    decode_image,
    encode_image,
    normalise_format,
    output_bits,
    output_extension,
    provenance_kept,
    verify_encoded,
    work_bytes,
)
from colorize_tf.provenance import Provenance

from .io import display, is_image_name, relative_to, unwire
from .sources import (
    Limits,
    MemberError,
    Source,
    chain_key,
    chain_rel,
    clean_member_name,
    copy_to_local,
    is_archive_name,
    remove_quietly,
    unsafe_member_reason,
    walk_archive,
    walk_zip_members,
)

log = logging.getLogger(__name__)

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
OCCUPIED = "occupied"
ROWS = "rows"

#: One row per input in the manifest (Parquet and CSV).
MANIFEST_SCHEMA = pa.schema(
    [
        ("input", pa.string()),  # the input's key: its path, or ARCHIVE!member[#index][!member...]
        ("rel", pa.string()),
        ("status", pa.string()),  # done / skipped / failed
        ("output", pa.string()),
        ("output_rel", pa.string()),
        ("stage", pa.string()),  # where a failure or skip happened: list, archive, name, read, decode, ...
        ("error", pa.string()),  # the reason, for failed and skipped rows
        ("notes", pa.string()),  # what changed on the way (renamed output, metadata dropped, frames, bits)
        ("cluster", pa.string()),
        ("format", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("mode", pa.string()),
        ("bits", pa.int64()),
        ("seconds", pa.float64()),
        ("model", pa.string()),  # NAME@SHA12 of the model that made a done row's output (its provenance)
        ("confidence", pa.float64()),  # the model's confidence in its colours, 0..1 (null: no such measure)
    ]
)
MANIFEST_COLUMNS = [f.name for f in MANIFEST_SCHEMA]


@dataclasses.dataclass(frozen=True)
class Assignment:
    """A source and its output path relative to the output folder (one object, so that names which are not
    UTF-8 travel between steps pickled whole)."""

    source: Source
    rel: str
    notes: tuple = ()


def manifest_row(
    input_key,
    rel,
    status,
    output="",
    output_rel="",
    stage="",
    error="",
    notes=(),
    cluster="",
    fmt="",
    width=0,
    height=0,
    mode="",
    bits=0,
    seconds=0.0,
    model="",
    confidence=None,
):
    return {
        "input": display(input_key),
        "rel": display(rel),
        "status": status,
        "output": display(output),
        "output_rel": display(output_rel),
        "stage": stage,
        "error": display(error),
        "notes": display("; ".join(notes)),
        "cluster": cluster or "",
        "format": fmt or "",
        "width": int(width),
        "height": int(height),
        "mode": mode or "",
        "bits": int(bits),
        "seconds": round(float(seconds), 4),
        "model": model or "",
        "confidence": None if confidence is None else round(float(confidence), 4),
    }


def dead_to_row(dead):
    """A dead letter from listing as a manifest row (``skipped`` for non-image names and empty archives)."""
    reason = dead["reason"]
    status = SKIPPED if reason.startswith("skipped") else FAILED
    return manifest_row(dead["path"], "", status, stage=dead["stage"], error=reason)


def output_rel(rel, fmt=None):
    """Natural relative output path: same folders and stem; extension from colorize_tf.imageio.output_extension."""
    stem, ext = posixpath.splitext(rel)
    return stem + output_extension(ext, fmt)


def renamed_rel(rel, key):
    """``a/b.png`` -> ``a/b~1a2b3c4d.png``: a name no other input's natural output has, from its key."""
    stem, ext = posixpath.splitext(rel)
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{stem}~{digest}{ext}"


def name_key(rel):
    """Collision key of a relative output path: case-insensitive, so outputs stay distinct when copied to
    case-insensitive filesystems (macOS, Windows)."""
    return display(rel).casefold()


def safe_output_path(output_dir, rel):
    """Join `rel` under `output_dir`, refusing anything that could escape it."""
    reason = unsafe_member_reason(rel)
    if reason:
        raise ValueError(reason)
    return FileSystems.join(output_dir, *clean_member_name(rel).split("/"))


#: A zip's members are read in at most this many units (each opens the zip and reads its directory).
ZIP_UNITS = 256


def reading_unit(path, index, members):
    """What one worker reads in one go: a file or a whole tar (a stream) is one unit; a zip's members are
    spread over up to `ZIP_UNITS` units of consecutive entries (random access), so its directory is read
    a bounded number of times however many members it has."""
    if not path.lower().endswith(".zip"):
        return display(path)
    return display(f"{path}!#{index // max(1, -(-members // ZIP_UNITS))}")


def unit_key(source):
    return source.unit or display(source.path)


class ExpandInputsDoFn(beam.DoFn):
    """(path, rel) -> `Source` per image (main), manifest rows for entries that are not (``rows``), and
    ``occupied`` keys for input files lying inside the output folder (no output may land on them)."""

    def __init__(self, output_dir, limits: Limits):
        self.output_dir, self.limits = output_dir, limits
        self.members = Metrics.counter("archive", "archive_members")
        self.refused = Metrics.counter("archive", "members_refused")

    def process(self, item):
        path, rel = map(unwire, item)
        inside = relative_to(path, self.output_dir)
        if inside is not None:
            yield beam.pvalue.TaggedOutput(OCCUPIED, name_key(inside))
        if not is_archive_name(path):
            yield Source(key=path, rel=rel, path=path)
            return
        try:
            events = self._list(path)
        except Exception as exc:  # the archive cannot even be opened
            reason = f"unreadable archive ({type(exc).__name__}: {exc})"
            yield beam.pvalue.TaggedOutput(ROWS, manifest_row(path, rel, FAILED, stage="archive", error=reason))
            return
        files = [m for m in events if m.kind in ("file", "refused")]
        top = sum(1 for m in files if len(m.chain) == 1) or 1
        seen, duplicated = set(), set()
        for m in files:  # names that repeat inside one archive get '#index' in their keys
            ident = (m.chain[:-1], m.chain[-1][1])
            (duplicated if ident in seen else seen).add(ident)
        for m in events:
            key = chain_key(path, m.chain, duplicated)
            if m.kind == "file" and not is_image_name(m.chain[-1][1]):  # as in folders
                yield beam.pvalue.TaggedOutput(
                    ROWS, manifest_row(key, "", SKIPPED, stage="list", error="skipped: not an image file name")
                )
            elif m.kind == "file":
                self.members.inc()
                yield Source(
                    key=key,
                    rel=chain_rel(rel, m.chain),
                    path=path,
                    chain=m.chain,
                    size=m.size,
                    unit=reading_unit(path, m.chain[0][0], top),
                )
            elif m.kind in ("refused", "failed"):
                self.refused.inc()
                yield beam.pvalue.TaggedOutput(ROWS, manifest_row(key, "", FAILED, stage="archive", error=m.reason))
            elif m.kind == "end" and not m.count and not m.reason:
                yield beam.pvalue.TaggedOutput(
                    ROWS, manifest_row(key, rel, SKIPPED, stage="archive", error="skipped: empty archive (no members)")
                )

    def _list(self, path):
        tmp = tempfile.mkdtemp(prefix="colorize-list-")
        try:
            with FileSystems.open(path, compression_type="uncompressed") as fh:
                # metadata only (no spool functions kept): the events of one archive are small
                return [
                    m.__class__(m.chain, m.kind, m.size, m.reason, m.count)
                    for m in walk_archive(fh, path, self.limits, tmpdir=tmp)
                ]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _resolve_names(item, fmt):
    """(name key, [("src", source) | ("occ", None) | ("own", stamp, input)]) -> (source, out_rel, notes)."""
    _, values = item
    sources = sorted((v[1] for v in values if v[0] == "src"), key=lambda s: s.key)
    occupied = any(v[0] == "occ" for v in values)
    owners = sorted((v for v in values if v[0] == "own"), key=lambda v: v[1])
    owner = owners[-1][2] if owners else None  # the newest manifest's owner
    keys = {display(s.key) for s in sources}  # (manifests hold keys as displayed)
    if occupied:
        plain = None
    elif owner is not None:
        plain = owner if owner in keys else None
    else:
        plain = display(sources[0].key) if sources else None
    for s in sources:
        natural = output_rel(s.rel, fmt)
        if display(s.key) == plain:
            yield Assignment(s, natural)
        else:
            why = (
                "an input file lies at that path"
                if occupied
                else f"a previous run's output for {plain} has that name"
                if owner is not None and owner in keys
                else "a previous run's output of an input not in this run has that name"
                if owner is not None
                else f"{len(sources)} inputs map to that name; {plain} keeps it"
            )
            note = f"output renamed: {display(natural)!r} is taken ({why})"
            yield Assignment(s, renamed_rel(natural, s.key), (note,))


def _check_unique(item, output_dir):
    """Second line of defence: final names that still collide fail (all but the smallest key)."""
    _, named = item
    named = sorted(named, key=lambda a: a.source.key)
    yield named[0]
    for a in named[1:]:
        yield beam.pvalue.TaggedOutput(
            ROWS,
            manifest_row(
                a.source.key,
                a.source.rel,
                FAILED,
                FileSystems.join(output_dir, a.rel),
                a.rel,
                stage="name",
                error=f"output name {display(a.rel)!r} collides with {display(named[0].source.key)!r} after renaming",
            ),
        )


class AssignOutputs(beam.PTransform):
    """Sources -> `Assignment` with injective output names; ``rows`` for the unresolvable.

    Parameters
    ----------
    output_dir : str
    fmt : str or None
        Output extension for every input, or None to keep each input's (`output_rel`).
    occupied : PCollection of name keys, optional
        Relative paths (inside the output folder) of input files.
    owners : PCollection of (name key, (stamp, input key)), optional
        Output names recorded by previous runs' manifests.
    """

    def __init__(self, output_dir, fmt=None, occupied=None, owners=None):
        super().__init__()
        self.output_dir, self.fmt, self.occupied, self.owners = output_dir, fmt, occupied, owners

    def expand(self, sources):
        fmt, out = self.fmt, self.output_dir
        parts = [sources | "ByNaturalName" >> beam.Map(lambda s: (name_key(output_rel(s.rel, fmt)), ("src", s)))]
        if self.occupied is not None:
            parts.append(self.occupied | "Occupied" >> beam.Map(lambda k: (k, ("occ", None))))
        if self.owners is not None:
            parts.append(self.owners | "Owners" >> beam.Map(lambda kv: (kv[0], ("own",) + tuple(kv[1]))))
        named = (
            parts
            | "AllNames" >> beam.Flatten()
            | "GroupByName" >> beam.GroupByKey()
            | "Resolve" >> beam.FlatMap(_resolve_names, fmt)
            | "ByFinalName" >> beam.Map(lambda a: (name_key(a.rel), a))
            | "GroupByFinalName" >> beam.GroupByKey()
            | "Unique" >> beam.FlatMap(_check_unique, out).with_outputs(ROWS, main="named")
        )
        return {"named": named.named, ROWS: named[ROWS]}


def owners_from_manifest(filename_and_row, output_dir):
    """(manifest file, row) -> (name key, (manifest file, input key)) for rows that own an output."""
    filename, row = filename_and_row
    rel = row.get("output_rel") or (relative_to(row.get("output") or "", output_dir) or "")
    if rel and row.get("status") in (DONE, SKIPPED) and row.get("output"):
        yield name_key(rel), (posixpath.basename(filename), row["input"])


@beam.typehints.with_output_types(typing.Tuple[str, typing.Any])
class SkipFinishedDoFn(beam.DoFn):
    """`Assignment` -> (reading unit, same) (main) or a ``skipped`` row when the output already exists.

    Outputs only ever appear by rename after verification, so an existing output is complete.
    """

    def __init__(self, output_dir, force=False):
        self.output_dir, self.force = output_dir, force
        self.skipped = Metrics.counter("archive", "images_skipped")

    def process(self, named):
        source, rel, notes = named.source, named.rel, named.notes
        try:
            out = safe_output_path(self.output_dir, rel)
        except ValueError as exc:
            yield beam.pvalue.TaggedOutput(
                ROWS, manifest_row(source.key, source.rel, FAILED, stage="name", error=f"unsafe output path: {exc}")
            )
            return
        try:
            exists = FileSystems.exists(out)
        except Exception as exc:  # e.g. a name the output filesystem cannot hold
            yield beam.pvalue.TaggedOutput(
                ROWS,
                manifest_row(
                    source.key,
                    source.rel,
                    FAILED,
                    out,
                    rel,
                    stage="output",
                    error=f"output path unusable ({type(exc).__name__}: {exc})",
                    notes=notes,
                ),
            )
            return
        if not self.force and exists:
            self.skipped.inc()
            yield beam.pvalue.TaggedOutput(
                ROWS,
                manifest_row(
                    source.key, source.rel, SKIPPED, out, rel, stage="output", error="output exists", notes=notes
                ),
            )
            return
        yield unit_key(source), named


class MemoryBudget:
    """Bytes of image work in flight in one worker process, shared by its threads.

    `reserve(n)` blocks until `n` bytes fit under the budget (an image larger than the whole
    budget waits until it is alone); `release(n)` gives them back.
    """

    _instances = {}
    _lock = threading.Lock()

    def __init__(self, total):
        self.total, self.used = int(total), 0
        self._cond = threading.Condition()

    @classmethod
    def shared(cls, total):
        with cls._lock:
            if total not in cls._instances:
                cls._instances[total] = cls(total)
            return cls._instances[total]

    def reserve(self, n):
        n = min(int(n), self.total)
        with self._cond:
            self._cond.wait_for(lambda: self.used + n <= self.total)
            self.used += n
        return n

    def release(self, n):
        with self._cond:
            self.used -= n
            self._cond.notify_all()


_COLORIZERS = {}
_COLORIZERS_LOCK = threading.Lock()


def model_identity_of(model_dir):
    """(name, SHA-256 of ``bundle.json`` or ``model.json``) of a model on any filesystem: its provenance."""
    from colorize_tf.provenance import META_FILES, model_identity
    from colorize_tf.registry import resolve_model

    from .fs import read_bytes

    model_dir = resolve_model(model_dir)
    for meta in META_FILES:
        path = FileSystems.join(model_dir, meta)
        if FileSystems.exists(path):
            return model_identity(model_dir, read_bytes(path))
    raise FileNotFoundError(f"{model_dir}: no {' or '.join(META_FILES)}")


def shared_colorizer(model_dir, settings):
    """A colorizer loaded once per process for these `settings` (a frozen ColorizeSettings; its threads
    share it, TensorFlow functions are safe to call concurrently). The launcher's check loads it too, so
    in-process runners reuse it."""
    import dataclasses

    key = (model_dir, settings)
    with _COLORIZERS_LOCK:
        if key not in _COLORIZERS:
            from colorize_tf.registry import load_colorizer

            from .fs import local_copy

            local = dataclasses.replace(settings, parser_dir=local_copy(settings.parser_dir))
            _COLORIZERS[key] = load_colorizer(local_copy(model_dir), local)
        return _COLORIZERS[key]


class _Failure(Exception):
    def __init__(self, stage, reason):
        super().__init__(reason)
        self.stage, self.reason = stage, reason


class ColorizeDoFn(beam.DoFn):
    """(unit, [`Assignment`]) -> one manifest row per source; colorized outputs written.

    Parameters
    ----------
    model_dir : str
    settings : colorize_tf.registry.ColorizeSettings
        The model and how it colorizes (`shared_colorizer`).
    output_dir : str
    tmp_dir : str
        This run's temporary folder (inside the output folder's ``_manifest``): outputs are written
        there, verified and renamed into place; nothing else is ever deleted.
    quality : int
        JPEG / WebP quality.
    max_pixels : int
        Larger images fail before decoding.
    limits : transforms.sources.Limits
    work_side : int or None
        Longer side at which chroma is predicted (`colorize_tf.colorize.colorize_image`; None: the
        family's default, 0: full resolution).
    memory_budget : int
        Bytes of image work in flight per worker process (`MemoryBudget`).
    """

    def __init__(
        self,
        model_dir,
        settings,
        output_dir,
        tmp_dir,
        quality=95,
        max_pixels=DEFAULT_MAX_PIXELS,
        limits=Limits(),
        work_side=None,
        memory_budget=1600 << 20,
        log_every=50,
    ):
        self.model_dir, self.settings, self.output_dir, self.tmp_dir = model_dir, settings, output_dir, tmp_dir
        self.quality, self.max_pixels, self.limits, self.work_side = quality, max_pixels, limits, work_side
        self.memory_budget, self.log_every = memory_budget, log_every
        self.done = Metrics.counter("archive", "images_done")
        self.failed = Metrics.counter("archive", "images_failed")
        self.pixels = Metrics.counter("archive", "pixels_done")

    def setup(self):
        self.colorizer = shared_colorizer(self.model_dir, self.settings)
        self.identity = model_identity_of(self.model_dir)
        self.budget = MemoryBudget.shared(self.memory_budget)
        self.local_tmp = tempfile.mkdtemp(prefix="colorize-work-")
        self._count, self._t0 = 0, time.time()

    def teardown(self):
        shutil.rmtree(getattr(self, "local_tmp", ""), ignore_errors=True)

    # -- reading units ---------------------------------------------------------------------------

    def process(self, element):
        _, assigned = element
        items = sorted(((a.source, a.rel, a.notes) for a in assigned), key=lambda n: n[0].key)
        first = items[0][0]
        if not first.is_member:
            for source, rel, notes in items:
                yield self._one(source, rel, notes, self._open_file)
            return
        want = {s.chain: (s, rel, notes) for s, rel, notes in items}
        prefixes = {chain[:i] for chain in want for i in range(1, len(chain))}
        seen = set()
        try:
            with FileSystems.open(first.path, compression_type="uncompressed") as fh:
                for m in self._members(fh, first, prefixes, want):
                    if m.kind == "file" and m.chain in want:
                        seen.add(m.chain)
                        s, rel, notes = want[m.chain]
                        yield self._one(s, rel, notes, lambda _s, m=m: m.spool(self.local_tmp))
        except Exception as exc:  # the archive became unreadable since it was listed
            reason = f"archive unreadable on the second read ({type(exc).__name__}: {exc})"
            for chain in set(want) - seen:
                s, rel, notes = want[chain]
                seen.add(chain)
                self.failed.inc()
                yield manifest_row(s.key, s.rel, FAILED, output_rel=rel, stage="read", error=reason, notes=notes)
        for chain in set(want) - seen:
            s, rel, notes = want[chain]
            self.failed.inc()
            yield manifest_row(
                s.key,
                s.rel,
                FAILED,
                output_rel=rel,
                stage="read",
                notes=notes,
                error="member not found on the second read (the archive changed during the run?)",
            )

    def _members(self, fh, first, prefixes, want):
        """Events of the archive holding `first`'s unit, entering only nested archives with wanted members."""
        descend = prefixes.__contains__
        if first.path.lower().endswith(".zip"):  # random access: only this unit's entries (and their nests)
            yield from walk_zip_members(fh, {c[0][0] for c in want}, self.limits, descend, self.local_tmp)
            return
        yield from walk_archive(fh, first.path, self.limits, descend=descend, tmpdir=self.local_tmp)

    def _open_file(self, source):
        """A local path with the file's bytes: the file itself when local, else a capped local copy."""
        from .fs import is_remote

        if not is_remote(source.path):
            size = os.path.getsize(source.path)
            if size > self.limits.max_bytes:
                raise MemberError(
                    f"too large: {size} bytes > the {self.limits.max_bytes}-byte limit (--max_file_bytes)"
                )
            return None
        return copy_to_local(
            lambda p: FileSystems.open(p, compression_type="uncompressed"),
            source.path,
            self.local_tmp,
            self.limits.max_bytes,
        )

    # -- one image -------------------------------------------------------------------------------

    def _one(self, source, rel, notes, opener):
        """Colorize one source into `rel`; always returns its manifest row."""
        t0 = time.perf_counter()
        notes = list(notes)
        out = safe_output_path(self.output_dir, rel)  # (checked already by SkipFinishedDoFn)
        meta = {}
        local, reserved = None, 0
        try:
            try:
                local = opener(source)
            except MemberError as exc:
                raise _Failure("read", str(exc)) from None
            except Exception as exc:
                raise _Failure("read", f"{type(exc).__name__}: {exc}") from None

            def reserve(w, h, mode=None):
                nonlocal reserved
                reserved = self.budget.reserve(work_bytes(w, h, mode))

            try:
                pic = decode_image(local or source.path, max_pixels=self.max_pixels, need_rgb=False, on_size=reserve)
            except ImageDecodeError as exc:
                raise _Failure("decode", str(exc)) from None
            except MemoryError:
                raise _Failure("decode", "too large: out of memory while decoding") from None
            if local:
                remove_quietly(local)
                local = None
            notes += pic.notes
            h, w = pic.shape
            meta = {"fmt": pic.format, "width": w, "height": h, "mode": pic.mode, "bits": pic.bits}
            fmt = normalise_format(posixpath.splitext(rel)[1] or "png")
            if output_bits(pic.bits, fmt) < pic.bits:
                notes.append(f"16-bit source written as 8-bit {fmt}")
            if pic.alpha is not None and fmt not in ("PNG", "TIFF", "WEBP"):
                notes.append(f"transparency dropped: {fmt} has no alpha channel")
            try:
                from colorize_tf.colorize import colorize_image

                depth = np.uint16 if output_bits(pic.bits, fmt) == 16 else np.uint8  # no float image made
                result = colorize_image(self.colorizer, pic.gray, self.work_side, dtype=depth)
                rgb, cluster, confidence = result.rgb, result.cluster, result.confidence
                del result
            except MemoryError:
                raise _Failure("colorize", "too large: out of memory while colorizing") from None
            except Exception as exc:
                raise _Failure("colorize", f"{type(exc).__name__}: {exc}") from None
            try:
                provenance = Provenance(*self.identity)  # stamped now
                if not provenance_kept(fmt, pic.bits):
                    notes.append(f"provenance not embedded: {fmt} at {output_bits(pic.bits, fmt)} bits has no place")
                data = encode_image(
                    rgb, fmt, alpha=pic.alpha, bits=pic.bits, info=pic.info, quality=self.quality, provenance=provenance
                )
                del rgb
                verify_encoded(data, pic.gray, pic.alpha, pic.bits, fmt, self.quality)
            except OutputCheckError as exc:
                raise _Failure("verify", str(exc)) from None
            except Exception as exc:
                raise _Failure("encode", f"{type(exc).__name__}: {exc}") from None
            del pic
            self._write_verified(out, data)
        except _Failure as f:
            self.failed.inc()
            return manifest_row(
                source.key,
                source.rel,
                FAILED,
                output_rel=rel,
                stage=f.stage,
                error=f.reason,
                notes=notes,
                seconds=time.perf_counter() - t0,
                **_meta_args(meta),
            )
        except Exception as exc:  # anything unforeseen still becomes a row, never a crashed job
            self.failed.inc()
            return manifest_row(
                source.key,
                source.rel,
                FAILED,
                output_rel=rel,
                stage="internal",
                error=f"{type(exc).__name__}: {exc}",
                notes=notes,
                seconds=time.perf_counter() - t0,
                **_meta_args(meta),
            )
        finally:
            if local:
                remove_quietly(local)
            if reserved:
                self.budget.release(reserved)
        self.done.inc()
        self.pixels.inc(meta["width"] * meta["height"])
        self._count += 1
        if self.log_every and self._count % self.log_every == 0:
            log.info(
                "worker colorized %d images (%.2f images/s)",
                self._count,
                self._count / max(time.time() - self._t0, 1e-9),
            )
        return manifest_row(
            source.key,
            source.rel,
            DONE,
            out,
            rel,
            notes=notes,
            cluster=cluster,
            seconds=time.perf_counter() - t0,
            model=provenance.model_id,
            confidence=confidence,
            **_meta_args(meta),
        )

    def _write_verified(self, out, data):
        """Write under the run's temporary folder, re-read and compare, then rename into place."""
        from .fs import is_remote

        digest = hashlib.sha256(data).hexdigest()
        tmp = FileSystems.join(
            self.tmp_dir,
            hashlib.sha1(out.encode("utf-8", "surrogateescape")).hexdigest()[:20] + posixpath.splitext(out)[1],
        )
        try:
            with FileSystems.create(tmp, compression_type="uncompressed") as fh:
                fh.write(data)
            h = hashlib.sha256()
            with FileSystems.open(tmp, compression_type="uncompressed") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            if h.hexdigest() != digest:
                raise _Failure("write", "the written output reads back different from what was encoded")
            parent = posixpath.dirname(out)
            if not is_remote(out) and parent:
                os.makedirs(parent, exist_ok=True)
            FileSystems.rename([tmp], [out])
        except _Failure:
            _delete_quietly(tmp)
            raise
        except Exception as exc:
            _delete_quietly(tmp)
            raise _Failure("write", _cause(exc)) from None


def _cause(exc):
    """``Class: message`` of an exception, or of the first one a Beam filesystem error wraps."""
    details = getattr(exc, "exception_details", None)
    if isinstance(details, dict) and details:
        exc = next(iter(details.values()))
    while isinstance(exc, OSError) and not exc.strerror and exc.args and isinstance(exc.args[0], OSError):
        exc = exc.args[0]  # Beam wraps the OSError in another
    if isinstance(exc, OSError) and exc.strerror:  # name the destination, not this run's temporary file
        where = exc.filename2 or exc.filename
        return f"{type(exc).__name__}: {exc.strerror}" + (f" ({where})" if where else "")
    return f"{type(exc).__name__}: {exc}"


def _delete_quietly(path):
    try:
        FileSystems.delete([path])
    except Exception:
        pass


def _meta_args(meta):
    return {k: meta[k] for k in ("fmt", "width", "height", "mode", "bits") if k in meta}


def csv_line(row):
    """One manifest row as a CSV record (RFC 4180 quoting: commas, quotes and line breaks in names survive)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([row[c] for c in MANIFEST_COLUMNS])
    return buf.getvalue()[:-2]
