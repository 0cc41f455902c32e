"""Training samples as TFRecords of ``tf.train.Example``.

One Example per image holds all its sampled pixels (far fewer, larger
records than one per pixel; tf.data unbatches them into pixel rows):

=========  ===========  ================================================
key        type         content
=========  ===========  ================================================
image_id   bytes        stable id of the source image
x          float_list   n * dim descriptor values, row-major (n, dim)
uv         float_list   n * 2 ground-truth U, V (BT.601)
yx         int64_list   n * 2 pixel (row, col)
n, dim     int64        sample count and descriptor width
height     int64        image height (pixels)
width      int64        image width
=========  ===========  ================================================

TensorFlow is imported inside the functions: this module is imported by
Beam code that must stay light on the launching machine.
"""

from __future__ import annotations

import numpy as np


def encode_example(image_id, x, uv, yx, height, width):
    """Serialise one image's samples into a ``tf.train.Example`` (bytes)."""
    import tensorflow as tf

    x = np.asarray(x, dtype=np.float32)
    n, dim = x.shape
    feats = {
        "image_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_id.encode()])),
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=x.ravel())),
        "uv": tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(uv, np.float32).ravel())),
        "yx": tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(yx, np.int64).ravel())),
        "n": tf.train.Feature(int64_list=tf.train.Int64List(value=[n])),
        "dim": tf.train.Feature(int64_list=tf.train.Int64List(value=[dim])),
        "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(height)])),
        "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(width)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def _feature_spec():
    import tensorflow as tf

    return {
        "image_id": tf.io.FixedLenFeature([], tf.string),
        "x": tf.io.VarLenFeature(tf.float32),
        "uv": tf.io.VarLenFeature(tf.float32),
        "yx": tf.io.VarLenFeature(tf.int64),
        "n": tf.io.FixedLenFeature([], tf.int64),
        "dim": tf.io.FixedLenFeature([], tf.int64),
        "height": tf.io.FixedLenFeature([], tf.int64),
        "width": tf.io.FixedLenFeature([], tf.int64),
    }


def parse_example(serialized):
    """Parse one serialised Example into a dict of dense tensors (x: (n, dim), uv: (n, 2), yx: (n, 2))."""
    import tensorflow as tf

    ex = tf.io.parse_single_example(serialized, _feature_spec())
    n, dim = ex["n"], ex["dim"]
    return {
        "image_id": ex["image_id"],
        "x": tf.reshape(tf.sparse.to_dense(ex["x"]), tf.stack([n, dim])),
        "uv": tf.reshape(tf.sparse.to_dense(ex["uv"]), tf.stack([n, 2])),
        "yx": tf.reshape(tf.sparse.to_dense(ex["yx"]), tf.stack([n, 2])),
        "height": ex["height"],
        "width": ex["width"],
    }


def list_shards(features_dir):
    """Sorted TFRecord shard paths of a feature-job output directory (local, or a filesystem TensorFlow reads;
    Beam jobs list with ``transforms.fs.match_paths`` instead)."""
    import tensorflow as tf

    pattern = features_dir.rstrip("/") + "/samples/samples-*.tfrecord.gz"
    paths = sorted(tf.io.gfile.glob(pattern))
    if not paths:
        raise FileNotFoundError(f"no TFRecord shards match {pattern}")
    return paths


def image_dataset(paths, image_ids=None):
    """tf.data dataset of per-image sample dicts from gzip TFRecord shards.

    Parameters
    ----------
    paths : list of str
        Shard paths (local or any filesystem TensorFlow can read).
    image_ids : iterable of str, optional
        Keep only these images (e.g. one cluster's).
    """
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(list(paths), compression_type="GZIP", num_parallel_reads=tf.data.AUTOTUNE)
    if image_ids is not None:
        ids = tf.constant(sorted(set(image_ids)), dtype=tf.string)
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(ids, tf.ones_like(ids, dtype=tf.int32)), 0
        )
        spec = {"image_id": tf.io.FixedLenFeature([], tf.string)}
        ds = ds.filter(lambda s: table.lookup(tf.io.parse_single_example(s, spec)["image_id"]) > 0)
    return ds.map(parse_example, num_parallel_calls=tf.data.AUTOTUNE)


def example_image_id(serialized):
    """The ``image_id`` of a serialised Example (protobuf parse, no tensors)."""
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    return ex.features.feature["image_id"].bytes_list.value[0].decode()


def samples_from_serialized(serialized, image_ids=None):
    """Like `load_samples`, from serialised Examples already in memory (e.g. grouped by cluster in Beam)."""
    import tensorflow as tf

    keep = None if image_ids is None else set(image_ids)
    xs, uvs, ids, rows = [], [], [], []
    for s in serialized:
        ex = parse_example(tf.constant(s))
        iid = ex["image_id"].numpy().decode()
        if keep is not None and iid not in keep:
            continue
        xs.append(ex["x"].numpy())
        uvs.append(ex["uv"].numpy())
        ids.append(iid)
        rows.append(len(xs[-1]))
    return _stack(xs, uvs, ids, rows)


def _stack(xs, uvs, ids, rows):
    if not xs:
        raise ValueError("no samples found")
    order = np.argsort(ids, kind="stable")  # deterministic whatever order the records arrived in
    xs, uvs = [xs[i] for i in order], [uvs[i] for i in order]
    return (
        np.concatenate(xs).astype(np.float32),
        np.concatenate(uvs).astype(np.float32),
        np.array(ids)[order],
        np.array(rows, dtype=np.int64)[order],
    )


def load_samples(paths, image_ids=None):
    """Read every sample into memory.

    Returns
    -------
    x : ndarray of float32, shape (N, dim)
    uv : ndarray of float32, shape (N, 2)
    image_ids : ndarray of str, shape (N_images,)
    rows : ndarray of int64, shape (N_images,)
        Samples per image, in the order of `image_ids`.
    """
    xs, uvs, ids, rows = [], [], [], []
    for ex in image_dataset(paths, image_ids).as_numpy_iterator():
        xs.append(ex["x"])
        uvs.append(ex["uv"])
        ids.append(ex["image_id"].decode())
        rows.append(len(ex["x"]))
    return _stack(xs, uvs, ids, rows)
