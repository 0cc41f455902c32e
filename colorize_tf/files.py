"""Local files written atomically, and the JSON metadata files that describe model directories.

One writer for the whole project: bytes go to a temporary sibling ``PATH.partial-XXXXXXXX`` that is
renamed into place, so a reader never sees a half-written file and a killed writer leaves only a
``.partial-`` file behind (`transforms.fs.write_atomically` does the same on any Beam filesystem).
"""

from __future__ import annotations

import json
import os
import uuid

from .checksums import check_regular_file

#: Marker in the name of a file being written.
PARTIAL = ".partial-"


def partial_name(path):
    """A fresh temporary sibling of `path`."""
    return f"{path}{PARTIAL}{uuid.uuid4().hex[:8]}"


def write_atomic(path, data: bytes):
    """Write `data` to local `path` through a temporary sibling renamed into place (parents created)."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = partial_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def json_bytes(obj) -> bytes:
    """The project's JSON layout (indent 1, UTF-8)."""
    return json.dumps(obj, indent=1).encode("utf-8")


def write_json(path, obj):
    """`write_atomic` of `obj` as JSON."""
    write_atomic(path, json_bytes(obj))


def read_json_meta(directory, filename, fmt, what):
    """Read ``directory/filename`` and check its ``format`` field; clear errors for a missing or foreign file."""
    path = os.path.join(directory, filename)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{directory} is not a {what}: {filename} missing")
    check_regular_file(path, 64 << 20)
    with open(path) as fh:
        try:
            meta = json.load(fh)
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} file")
    return meta
