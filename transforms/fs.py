"""Model and data directories on any Beam filesystem (local, ``gs://``, ``s3://``, ``hdfs://``, ...).

The library (`colorize_tf`) reads models from local paths. Workers and
launchers call `local_copy` first: a local path is returned unchanged, a
remote directory or file is copied once per process into a cache under the
temporary directory and that copy's path is returned. Outputs go the other
way with `copy_tree`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading

from apache_beam.io.filesystems import FileSystems

from colorize_tf.files import PARTIAL, json_bytes, partial_name, write_atomic  # noqa: F401  (PARTIAL re-exported)

_LOCK = threading.Lock()
_CACHE = {}


def is_remote(path):
    """True for a path with a URL scheme (``gs://b/x``), i.e. one that only Beam's FileSystems can open."""
    return "://" in str(path)


def read_bytes(path):
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        return fh.read()


def write_atomically(path, data):
    """Write bytes to a temporary sibling (``PATH.partial-XXXXXXXX``), then rename it into place, on any
    filesystem: readers never see a half-written file, and a killed writer leaves only a partial to clean
    (local paths: colorize_tf.files.write_atomic)."""
    if not is_remote(path):
        return write_atomic(path, data)
    tmp = partial_name(path)
    with FileSystems.create(tmp, compression_type="uncompressed") as fh:
        fh.write(data)
    FileSystems.rename([tmp], [path])


def delete_tree(path):
    """Delete a folder and everything under it on any filesystem (object stores have no folders: every
    object under the prefix goes). A missing folder is no error."""
    if not is_remote(path):
        if os.path.isdir(path):
            shutil.rmtree(path)
        return
    found = [m.path for m in FileSystems.match([FileSystems.join(path, "**")])[0].metadata_list]
    if found:
        FileSystems.delete(found)


def read_json(path):
    return json.loads(read_bytes(path).decode("utf-8"))


def write_json(path, obj):
    """JSON (the project's layout) written atomically on any filesystem."""
    write_atomically(path, json_bytes(obj))


def match_paths(pattern, what="files"):
    """Sorted paths matching a glob on any filesystem; FileNotFoundError naming `what` when none do."""
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    if not paths:
        raise FileNotFoundError(f"no {what} match {pattern}")
    return paths


def list_tree(root):
    """Relative '/'-separated paths of the files under `root` (recursive), sorted."""
    root = root.rstrip("/")
    if not is_remote(root):
        out = []
        for d, _, names in os.walk(root):
            out += [os.path.relpath(os.path.join(d, n), root).replace(os.sep, "/") for n in names]
        return sorted(out)
    found = FileSystems.match([FileSystems.join(root, "**")])[0].metadata_list
    return sorted(m.path[len(root) + 1 :] for m in found if m.path.startswith(root + "/"))


def copy_tree(src, dst, last=("model.json", "bundle.json")):
    """Copy every file under `src` to the same relative path under `dst` (any filesystems); returns the count.

    Top-level files named in `last` are copied after everything else, so a
    reader that waits for them never sees a half-copied directory.
    """
    rels = sorted(list_tree(src), key=lambda r: r in last)
    for rel in rels:
        s, d = FileSystems.join(src, *rel.split("/")), FileSystems.join(dst, *rel.split("/"))
        if not is_remote(d):
            os.makedirs(os.path.dirname(d), exist_ok=True)
        with (
            FileSystems.open(s, compression_type="uncompressed") as fin,
            FileSystems.create(d, compression_type="uncompressed") as fout,
        ):
            shutil.copyfileobj(fin, fout, 1 << 20)
    return len(rels)


def cache_root():
    return os.path.join(tempfile.gettempdir(), f"colorize-cache-{os.getuid() if hasattr(os, 'getuid') else 0}")


def local_copy(path, refresh=False):
    """A local path with the content of `path` (file or directory) on any filesystem.

    Local paths come back unchanged. A remote path is downloaded once per
    process (thread-safe; ``refresh=True`` downloads again) into
    ``cache_root()/<sha1 of the path>`` via a temporary folder renamed into place,
    so a killed download never looks complete.
    """
    if path is None or not is_remote(path):
        return path
    path = path.rstrip("/")
    with _LOCK:
        if path in _CACHE and not refresh:
            return _CACHE[path]
        key = hashlib.sha1(path.encode()).hexdigest()[:16]
        os.makedirs(cache_root(), exist_ok=True)
        dest = os.path.join(cache_root(), key)
        tmp = tempfile.mkdtemp(prefix=key + ".", dir=cache_root())
        try:
            if FileSystems.match([path])[0].metadata_list:  # a single file
                name = path.rsplit("/", 1)[-1]
                with (
                    FileSystems.open(path, compression_type="uncompressed") as fin,
                    open(os.path.join(tmp, name), "wb") as fout,
                ):
                    shutil.copyfileobj(fin, fout, 1 << 20)
                target = os.path.join(dest, name)
            else:
                if not copy_tree(path, tmp):
                    raise FileNotFoundError(f"nothing found at {path}")
                target = dest
            if os.path.exists(dest):
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _CACHE[path] = target
        return target


class OutputLockError(RuntimeError):
    """Another run holds the output folder."""


class OutputLock:
    """One run at a time per output folder: ``LOCK_PATH`` names the run holding it.

    Acquired with an exclusive create on local folders (best effort on object stores: create, then
    read back). A lock is stale, and taken over, when its process is gone (same host) or its
    heartbeat (refreshed every `heartbeat_s` while the run lives) is older than `stale_s`.

    Parameters
    ----------
    path : str
        The lock file.
    run_id : str
    """

    def __init__(self, path, run_id, stale_s=1800.0, heartbeat_s=60.0):
        self.path, self.run_id, self.stale_s, self.heartbeat_s = path, run_id, stale_s, heartbeat_s
        self._stop = threading.Event()
        self._thread = None
        self.taken_over = None  # the stale lock's content, when one was replaced

    def _content(self):
        import socket
        import time

        return {"run_id": self.run_id, "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}

    def _stale(self, held):
        import socket
        import time

        try:
            silent = time.time() - float(held.get("heartbeat", 0)) > self.stale_s
        except (TypeError, ValueError):
            silent = True
        if held.get("host") == socket.gethostname() and isinstance(held.get("pid"), int):
            try:
                os.kill(held["pid"], 0)
            except ProcessLookupError:
                return True  # the holder is gone
            except PermissionError:
                pass
            # alive: a live run refreshes its heartbeat; a silent one is another process that reused the pid
        return silent

    def _read(self):
        try:
            return json.loads(read_bytes(self.path).decode("utf-8"))
        except Exception:  # unreadable lock file: treat as stale
            return {}

    def _create(self):
        data = json.dumps(self._content()).encode()
        if is_remote(self.path):
            if FileSystems.exists(self.path):
                return False
            with FileSystems.create(self.path) as fh:
                fh.write(data)
            return self._read().get("run_id") == self.run_id
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return True

    def acquire(self):
        """Take the lock or raise `OutputLockError` naming the holder."""
        for _ in range(3):
            if self._create():
                self._thread = threading.Thread(target=self._beat, daemon=True)
                self._thread.start()
                return self
            held = self._read()
            if held and not self._stale(held):
                raise OutputLockError(
                    f"another run ({held.get('run_id')}, pid {held.get('pid')} on {held.get('host')}) is writing "
                    f"to this output folder; wait for it, or delete {self.path} if that run is gone"
                )
            self.taken_over = held
            FileSystems.delete([self.path])
        raise OutputLockError(f"could not take {self.path}: other runs keep taking it")

    def _beat(self):
        while not self._stop.wait(self.heartbeat_s):
            try:
                if self._read().get("run_id") == self.run_id:
                    write_atomically(self.path, json.dumps(self._content()).encode())
            except Exception:  # a missed heartbeat only makes the lock look older
                pass

    def release(self):
        self._stop.set()
        try:
            if self._read().get("run_id") == self.run_id:
                FileSystems.delete([self.path])
        except Exception:
            pass
