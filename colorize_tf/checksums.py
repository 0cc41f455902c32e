"""File checksums recorded in model metadata and verified on load, and checks of the files they name."""

import hashlib
import os
import re
import stat

#: Largest file a model directory may hold (a checksum over anything bigger is refused, not attempted).
MAX_MODEL_FILE_BYTES = 4 << 30
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def check_regular_file(path, max_bytes=MAX_MODEL_FILE_BYTES):
    """Raise ValueError unless `path` is a regular file (not a link, device or FIFO) of at most `max_bytes`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file (links, devices and pipes are refused)")
    if st.st_size > max_bytes:
        raise ValueError(f"{path} is {st.st_size} bytes, more than a model file may hold ({max_bytes})")


def file_inside(root, rel):
    """``root/rel`` after checking that `rel` is a relative path of plain names that stays inside `root`
    and names a regular file."""
    parts = str(rel).split("/")
    if not rel or any(not _SAFE_COMPONENT.match(p) for p in parts):
        raise ValueError(f"file entry {rel!r} is not a plain relative path inside {root}")
    path = os.path.join(root, *parts)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise ValueError(f"file entry {rel!r} leads outside {root}")
    check_regular_file(path)
    return path


def check_component(name, what):
    """`name` as one safe path component (cluster ids become folder names)."""
    if not isinstance(name, str) or not _SAFE_COMPONENT.match(name):
        raise ValueError(f"{what} {name!r} is not a plain name")
    return name


def sha256_file(path):
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path, expected_sha256, meta_name="model.json"):
    """Raise unless `path` is a regular file matching the checksum recorded in `meta_name`."""
    check_regular_file(path)
    if expected_sha256 != sha256_file(path):
        raise ValueError(f"{path} does not match the checksum in {meta_name}: altered or corrupt")
    return path


def load_verified_keras(path, expected_sha256, meta_name, verify=True):
    """Load a ``.keras`` file after checking it exists and matches the checksum recorded in `meta_name`."""
    import keras

    if verify:
        verify_file(path, expected_sha256, meta_name)
    else:
        check_regular_file(path)
    return keras.saving.load_model(path, compile=False, safe_mode=True)
