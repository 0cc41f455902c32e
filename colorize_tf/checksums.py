"""File checksums recorded in model metadata and verified on load."""
import hashlib


def sha256_file(path):
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_verified_keras(path, expected_sha256, meta_name, verify=True):
    """Load a ``.keras`` file after checking it exists and matches the checksum recorded in `meta_name`."""
    import os

    import keras

    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} missing")
    if verify and expected_sha256 != sha256_file(path):
        raise ValueError(f"{path} does not match the checksum in {meta_name}: altered or corrupt")
    return keras.saving.load_model(path, compile=False)


def write_json_atomic(path, obj):
    """Write JSON to a temporary sibling and rename it into place."""
    import json
    import os

    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1)
    os.replace(tmp, path)


def read_json_meta(directory, filename, fmt, what):
    """Read ``directory/filename`` and check its ``format`` field; clear errors for a missing or foreign file."""
    import json
    import os

    path = os.path.join(directory, filename)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{directory} is not a {what}: {filename} missing")
    with open(path) as fh:
        meta = json.load(fh)
    if meta.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} file")
    return meta
