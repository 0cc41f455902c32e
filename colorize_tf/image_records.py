"""Image-level training records for convolutional families: a colour photo at a working resolution as
``tf.train.Example`` (gray input as uint8, target chroma as float16, scene label, and per-pixel class labels
where the dataset has them), so a Keras model reads whole images with tf.data while the per-pixel families keep
their sampled-pixel records (`colorize_tf.records`).
"""

from __future__ import annotations

import numpy as np

from .color import rgb_to_yuv, to_uint
from .datasets import IGNORE, map_mask
from .splits import stratum

#: Longer side of the stored images: the working resolution the convolutional families train at.
DEFAULT_SIDE = 256
#: Stored sides are multiples of this (the nets downsample by powers of 2).
MULTIPLE = 8


def image_shape(height, width, side=DEFAULT_SIDE, multiple=MULTIPLE):
    """(h, w) with the longer side at most `side` (never upsampled), aspect kept, multiples of `multiple`."""
    scale = min(1.0, side / float(max(height, width)))
    h = max(multiple, int(round(height * scale / multiple)) * multiple)
    w = max(multiple, int(round(width * scale / multiple)) * multiple)
    return h, w


def prepare(rgb, side=DEFAULT_SIDE):
    """A colour photo (H, W, 3) in [0, 1] at the working resolution.

    Returns
    -------
    gray : ndarray of uint8, shape (h, w)
        BT.601 luminance of the resized photo.
    uv : ndarray of float16, shape (h, w, 2)
        Its chrominance.
    """
    import cv2

    h, w = image_shape(*rgb.shape[:2], side)
    small = cv2.resize(np.asarray(rgb, np.float32), (w, h), interpolation=cv2.INTER_AREA)
    yuv = rgb_to_yuv(np.clip(small, 0, 1))
    return to_uint(np.clip(yuv[..., 0], 0, 1), 8), yuv[..., 1:].astype(np.float16)


def prepare_labels(mask, lut, shape):
    """A dataset's label mask at the working resolution.

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        Raw mask values, the size of the source photo.
    lut : ndarray of uint8, shape (256,)
        Raw value -> class index or `IGNORE` (`colorize_tf.datasets.LabelledSet.lut`).
    shape : (h, w)
        The working resolution (`image_shape`).

    Returns
    -------
    labels : ndarray of uint8, shape (h, w)
        Nearest-neighbour resized class indices, `IGNORE` where unlabeled.
    """
    import cv2

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"label mask must have one channel, got shape {mask.shape}")
    return cv2.resize(map_mask(mask, lut), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def encode(image_id, gray, uv, scene=None, labels=None):
    """One image's Example (bytes): ``image_id``, ``scene`` (default: its stratum, e.g. SIFT Flow's category),
    ``gray`` (uint8 bytes), ``uv`` (float16 bytes), ``labels`` (uint8 bytes, empty when the image has none),
    ``height``, ``width``."""
    import tensorflow as tf

    gray = np.ascontiguousarray(gray, np.uint8)
    uv = np.ascontiguousarray(uv, np.float16)
    if uv.shape != gray.shape + (2,):
        raise ValueError(f"uv shape {uv.shape} does not match gray {gray.shape}")
    if labels is not None and np.shape(labels) != gray.shape:
        raise ValueError(f"labels shape {np.shape(labels)} does not match gray {gray.shape}")
    labels = b"" if labels is None else np.ascontiguousarray(labels, np.uint8).tobytes()
    scene = stratum(image_id) if scene is None else scene

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    feats = {
        "image_id": b(image_id.encode()),
        "scene": b(scene.encode()),
        "gray": b(gray.tobytes()),
        "uv": b(uv.tobytes()),
        "labels": b(labels),
        "height": i(gray.shape[0]),
        "width": i(gray.shape[1]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def parse(serialized):
    """Parse one Example into tensors: gray float32 (h, w, 1) in [0, 1], uv float32 (h, w, 2), labels uint8
    (h, w, 1) (`IGNORE` everywhere for an image without labels), ids as strings."""
    import tensorflow as tf

    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("image_id", "scene", "gray", "uv")}
    spec["labels"] = tf.io.FixedLenFeature([], tf.string, default_value=b"")  # records of older jobs have none
    spec.update({k: tf.io.FixedLenFeature([], tf.int64) for k in ("height", "width")})
    ex = tf.io.parse_single_example(serialized, spec)
    h, w = ex["height"], ex["width"]
    gray = tf.reshape(tf.io.decode_raw(ex["gray"], tf.uint8), tf.stack([h, w, 1]))
    uv = tf.reshape(tf.io.decode_raw(ex["uv"], tf.float16), tf.stack([h, w, 2]))
    labels = tf.cond(
        tf.strings.length(ex["labels"]) > 0,
        lambda: tf.reshape(tf.io.decode_raw(ex["labels"], tf.uint8), tf.stack([h, w, 1])),
        lambda: tf.fill(tf.stack([h, w, 1]), tf.constant(IGNORE, tf.uint8)),
    )
    return {
        "labels": labels,
        "image_id": ex["image_id"],
        "scene": ex["scene"],
        "gray": tf.cast(gray, tf.float32) / 255.0,
        "uv": tf.cast(uv, tf.float32),
    }


def dataset(
    paths,
    crop=None,
    batch_size=16,
    image_ids=None,
    augment=False,
    jitter=False,
    seed=0,
    shuffle=0,
    extras=(),
    repeats=None,
    multiple=None,
):
    """tf.data over image records: batches of ``(gray (B, c, c, 1), uv (B, c, c, 2))``, or
    ``(gray, uv, {name: tensor})`` with `extras`.

    Parameters
    ----------
    paths : list of str
        ``examples-*.tfrecord.gz`` shards (local, or any filesystem TensorFlow reads).
    crop : int, optional
        Square crop side (random with `augment`, else central; an image whose shorter side is under it
        is first enlarged until that side equals it, never padded). None keeps whole images (then
        `batch_size` must be 1 unless sizes agree, or `multiple` is given).
    image_ids : collection of str, optional
        Keep only these images (a split).
    augment : bool
        Random crops and horizontal flips, applied to gray and chroma together.
    jitter : bool
        Tone jitter of the gray input only (gamma, contrast, brightness: old photos vary in tone curve).
    seed : int
        Seeds the shuffle and the augmentation: the same seed gives the same batches, epoch by epoch.
    shuffle : int
        Shuffle buffer in images (0 = file order). Records are stored in listing order, so training wants a
        buffer as large as the training set (`train_images` uses that): about 0.33 MB of memory per image at
        side 256.
    extras : tuple of str
        Also yield, in a dict as third element, ``"scene"`` (string (B,)) and/or ``"labels"`` (uint8
        (B, c, c), cropped and flipped with the image, `IGNORE` where unlabeled).
    repeats : dict, optional
        Image id -> times per epoch (default 1; `colorize_tf.splits.source_repeats` balances sources). Each
        repetition gets its own crop, flip and jitter.
    multiple : int, optional
        Without `crop`: whole images resized to sides that are multiples of this (`image_shape`: the input
        shape a fusion network sees at colorization, so its global path sees the whole photo as then), and
        batched with images of the same shape (a batch may be smaller than `batch_size`).
    """
    import tensorflow as tf

    whole = not crop and bool(multiple)  # whole photos at sides that are multiples of `multiple`

    def image_id(serialized):
        return tf.io.parse_single_example(serialized, {"image_id": tf.io.FixedLenFeature([], tf.string)})["image_id"]

    # split, repeats and shuffle act on the serialized records (about 0.33 MB each at side 256), parsed after:
    # the records are in listing order (one source, one scene type after another), so only a buffer that
    # spans the sources mixes them; a small buffer would train on one source after the other
    ds = tf.data.TFRecordDataset(list(paths), compression_type="GZIP")
    if image_ids is not None:
        keys = tf.constant(sorted(image_ids) or [""])
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, tf.ones_like(keys, tf.int32)), 0)
        ds = ds.filter(lambda s: table.lookup(image_id(s)) > 0)
    if repeats:
        ids = sorted(repeats)
        counts = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(ids), tf.constant([int(repeats[i]) for i in ids], tf.int64)
            ),
            1,
        )
        ds = ds.flat_map(lambda s: tf.data.Dataset.from_tensors(s).repeat(counts.lookup(image_id(s))))
    if shuffle:
        ds = ds.shuffle(shuffle, seed=seed)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # one random int64 per image, new each epoch but fixed by `seed`: stateless ops stay reproducible under a
    # parallel map (a shared stateful generator would hand out draws in thread order)
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True))

    unknown = set(extras) - {"scene", "labels"}
    if unknown:
        raise ValueError(f"unknown extras {sorted(unknown)}: expected 'scene' and/or 'labels'")

    def enlarge(both, size):
        """An image whose shorter side is under the crop, enlarged until it equals it (aspect kept): padding
        it instead taught the network a cue that only narrow (portrait) photos carry."""
        shape = tf.cast(tf.shape(both)[:2], tf.float32)
        new = tf.cast(tf.math.ceil(shape * (float(size) / tf.reduce_min(shape))), tf.int32)
        pixels = tf.image.resize(both[..., :3], new, method="bilinear")
        labels = tf.image.resize(both[..., 3:], new, method="nearest")
        return tf.concat([pixels, labels], -1)

    def shape(ex, draw):
        # (h, w, 4): gray, U, V and labels crop and flip together
        both = tf.concat([ex["gray"], ex["uv"], tf.cast(ex["labels"], tf.float32)], -1)
        key = tf.stack([draw, tf.constant(seed, tf.int64)])
        if whole:
            sides = tf.cast(tf.shape(both)[:2], tf.float32) / float(multiple)
            new = tf.maximum(multiple, tf.cast(tf.round(sides), tf.int32) * multiple)
            both = tf.concat(
                [
                    tf.image.resize(both[..., :3], new, method="bilinear"),
                    tf.image.resize(both[..., 3:], new, method="nearest"),
                ],
                -1,
            )
        if crop:
            short = tf.reduce_min(tf.shape(both)[:2])
            both = tf.cond(short < crop, lambda: enlarge(both, crop), lambda: both)
            if augment:
                both = tf.image.stateless_random_crop(both, [crop, crop, 4], seed=key)
            else:
                both = tf.image.resize_with_crop_or_pad(both, crop, crop)
        if augment:
            both = tf.image.stateless_random_flip_left_right(both, seed=key + [1, 0])
        gray, uv = both[..., :1], both[..., 1:3]
        if jitter:
            s = tf.random.stateless_uniform([3], seed=key + [2, 0])
            gamma = tf.exp((s[0] - 0.5) * 0.6)  # 0.74 .. 1.35
            gray = tf.clip_by_value(gray, 0.0, 1.0) ** gamma
            gray = tf.clip_by_value((gray - 0.5) * (0.8 + 0.4 * s[1]) + 0.5 + (s[2] - 0.5) * 0.2, 0.0, 1.0)
        if not extras:
            return gray, uv
        more = {"scene": ex["scene"], "labels": tf.cast(tf.round(both[..., 3]), tf.uint8)}
        return gray, uv, {k: more[k] for k in extras}

    ds = ds.map(shape, num_parallel_calls=tf.data.AUTOTUNE)
    if whole:

        def by_shape(gray, *rest):
            size = tf.shape(gray, out_type=tf.int64)
            return size[0] * 100000 + size[1]

        ds = ds.group_by_window(by_shape, lambda _, window: window.batch(batch_size), window_size=batch_size)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(2)
