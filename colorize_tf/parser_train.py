"""Training and evaluating the grayscale scene parser.

Examples are prepared once (gray image and class-index mask resized so the
longer side is the parser's working size) into TFRecords; training reads them
with tf.data, augments (random crops, horizontal flips, brightness /
contrast / gamma jitter on the gray image) and minimises a class-weighted
cross entropy that ignores unlabeled pixels.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Tuple

import cv2
import numpy as np

from .datasets import IGNORE, decode_mask
from .imageio import decode_image
from .parser import SceneParser, build_parser, class_weights, working_shape

log = logging.getLogger(__name__)


def prepare_pair(image_bytes, mask_bytes, lut, work_size):
    """Decode an image and its mask, map labels, resize to the working size.

    Returns
    -------
    gray : ndarray of uint8, shape (h, w)
    label : ndarray of uint8, shape (h, w)
        Class indices, `IGNORE` where unlabeled.

    Raises
    ------
    ValueError
        When the mask does not match the image.
    """
    pic = decode_image(image_bytes)
    mask = decode_mask(mask_bytes, pic.gray.shape)
    label = lut[np.clip(mask, 0, 255).astype(np.uint8)] if mask.dtype != np.uint8 else lut[mask]
    h, w = working_shape(*pic.gray.shape, work_size)
    gray = cv2.resize(pic.gray, (w, h), interpolation=cv2.INTER_AREA)
    label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.rint(gray * 255).astype(np.uint8), label


def encode_pair(name, gray, label):
    import tensorflow as tf

    f = tf.train.Feature
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "name": f(bytes_list=tf.train.BytesList(value=[name.encode()])),
                "gray": f(bytes_list=tf.train.BytesList(value=[gray.tobytes()])),
                "label": f(bytes_list=tf.train.BytesList(value=[label.tobytes()])),
                "height": f(int64_list=tf.train.Int64List(value=[gray.shape[0]])),
                "width": f(int64_list=tf.train.Int64List(value=[gray.shape[1]])),
            }
        )
    ).SerializeToString()


def _parse(serialized):
    import tensorflow as tf

    ex = tf.io.parse_single_example(
        serialized,
        {
            "name": tf.io.FixedLenFeature([], tf.string),
            "gray": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.string),
            "height": tf.io.FixedLenFeature([], tf.int64),
            "width": tf.io.FixedLenFeature([], tf.int64),
        },
    )
    shape = tf.stack([ex["height"], ex["width"], 1])
    gray = tf.reshape(tf.io.decode_raw(ex["gray"], tf.uint8), shape)
    label = tf.reshape(tf.io.decode_raw(ex["label"], tf.uint8), shape)
    return gray, label


def load_pairs(paths):
    """All prepared (gray uint8 (h, w), label uint8 (h, w)) pairs from TFRecord shards."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(list(paths), compression_type="GZIP").map(_parse)
    return [(g[..., 0], lab[..., 0]) for g, lab in ds.as_numpy_iterator()]


def label_counts(pairs, num_classes):
    counts = np.zeros(num_classes, np.int64)
    for _, lab in pairs:
        counts += np.bincount(lab[lab != IGNORE].ravel(), minlength=num_classes)[:num_classes]
    return counts


def training_dataset(pairs, crop, batch_size, seed=0):
    """tf.data pipeline of augmented (gray float (crop, crop, 1), label int32 (crop, crop, 1)) batches."""
    import tensorflow as tf

    grays = [p[0] for p in pairs]
    labels = [p[1] for p in pairs]

    def gen():
        for g, lab in zip(grays, labels):
            yield g[..., None], lab[..., None]

    ds = (
        tf.data.Dataset.from_generator(
            gen, output_signature=(tf.TensorSpec([None, None, 1], tf.uint8), tf.TensorSpec([None, None, 1], tf.uint8))
        )
        .apply(tf.data.experimental.assert_cardinality(len(pairs)))
        .cache()
    )

    def augment(g, lab):
        g = tf.cast(g, tf.float32)
        lab = tf.cast(lab, tf.float32)
        # pad small images with IGNORE so a crop always fits
        h, w = tf.shape(g)[0], tf.shape(g)[1]
        ph, pw = tf.maximum(crop - h, 0), tf.maximum(crop - w, 0)
        g = tf.pad(g, [[0, ph], [0, pw], [0, 0]])
        lab = tf.pad(lab, [[0, ph], [0, pw], [0, 0]], constant_values=float(IGNORE))
        both = tf.image.random_crop(tf.concat([g, lab], -1), [crop, crop, 2])
        both = tf.image.random_flip_left_right(both)
        g, lab = both[..., :1] / 255.0, both[..., 1:]
        # photometric jitter: old photos vary in exposure, contrast and tone curve
        g = tf.clip_by_value(g, 0.0, 1.0) ** tf.random.uniform([], 0.75, 1.33)
        g = (g - 0.5) * tf.random.uniform([], 0.75, 1.25) + 0.5 + tf.random.uniform([], -0.1, 0.1)
        return tf.clip_by_value(g, 0.0, 1.0), tf.cast(lab, tf.int32)

    return (
        ds.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=False)
        .prefetch(tf.data.AUTOTUNE)
    )


def weighted_ignore_loss(weights):
    """Cross entropy over labelled pixels, each weighted by its class weight; `IGNORE` pixels count zero."""
    import tensorflow as tf

    w = tf.constant(np.asarray(weights, np.float32))

    def loss(y_true, logits):
        y = tf.cast(tf.squeeze(y_true, -1), tf.int32)
        valid = tf.not_equal(y, IGNORE)
        y0 = tf.where(valid, y, 0)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y0, logits=logits)
        pw = tf.gather(w, y0) * tf.cast(valid, tf.float32)
        return tf.reduce_sum(ce * pw) / tf.maximum(tf.reduce_sum(pw), 1e-6)

    return loss


def fit_parser(
    pairs,
    classes,
    epochs=20,
    batch_size=16,
    crop=192,
    base=24,
    learning_rate=2e-3,
    weighting_power=0.5,
    seed=0,
    work_size=256,
    smoothing=None,
    precision="float32",
):
    """Train a parser on prepared pairs.

    ``precision`` ``"bfloat16"`` trains under Keras' ``mixed_bfloat16`` policy (float32 weights, the
    ``logits`` output in float32) and returns the same network computing in float32
    (`colorize_tf.fusion.with_dtype_policy`).

    Returns
    -------
    parser : SceneParser
    record : dict
        Class counts and weights, loss history, settings, seconds.
    """
    import keras

    keras.utils.set_random_seed(seed)
    n = len(classes)
    counts = label_counts(pairs, n)
    weights = class_weights(counts, power=weighting_power)
    from .fusion import PRECISIONS, check_precision, with_dtype_policy

    check_precision(precision)
    model = float_model = build_parser(n, base=base)
    if precision != "float32":
        model = with_dtype_policy(float_model, PRECISIONS[precision])
    steps = max(1, int(np.ceil(len(pairs) / batch_size))) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=weighted_ignore_loss(weights))
    ds = training_dataset(pairs, crop, batch_size, seed)
    t0 = time.time()
    cb = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: log.info(
            "parser epoch %d/%d loss %.4f (%.0f s)", e + 1, epochs, logs["loss"], time.time() - t0
        )
    )
    hist = model.fit(ds, epochs=epochs, callbacks=[cb], verbose=0)
    if model is not float_model:  # the trained float32 weights, in the float32 network
        float_model.set_weights(model.get_weights())
    meta = {
        "classes": list(classes),
        "work_size": work_size,
        "smoothing": smoothing or {"sigma_spatial": 8.0, "sigma_color": 0.1},
        "architecture": {"base": base, "stride": 32},
    }
    record = {
        "images": len(pairs),
        "epochs": epochs,
        "batch_size": batch_size,
        "crop": crop,
        "learning_rate": learning_rate,
        "precision": precision,
        "class_pixels": counts.tolist(),
        "class_weights": weights.tolist(),
        "loss": [float(v) for v in hist.history["loss"]],
        "seconds": round(time.time() - t0, 1),
    }
    return SceneParser(float_model, meta), record


def confusion(pred, truth, num_classes):
    """Confusion matrix (truth x pred) over labelled pixels."""
    valid = truth != IGNORE
    idx = truth[valid].astype(np.int64) * num_classes + pred[valid].astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(conf):
    """Pixel accuracy, mean class accuracy (over classes present in the truth) and mean IoU."""
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    truth = conf.sum(1)
    predicted = conf.sum(0)
    present = truth > 0
    iou = tp[present] / np.maximum(truth[present] + predicted[present] - tp[present], 1)
    return {
        "pixel_accuracy": float(tp.sum() / max(conf.sum(), 1)),
        "mean_class_accuracy": float(np.mean(tp[present] / truth[present])) if present.any() else 0.0,
        "mean_iou": float(np.mean(iou)) if present.any() else 0.0,
        "classes_present": int(present.sum()),
    }


def evaluate_parser(parser, items: Iterable[Tuple[np.ndarray, np.ndarray]], smooth=True):
    """Scores of `parser` on (gray float (H, W), label uint8 (H, W)) pairs at their own resolution."""
    n = parser.num_classes
    conf = np.zeros((n, n), np.int64)
    t = []
    count = 0
    for gray, label in items:
        t0 = time.perf_counter()
        pred = parser.labels(gray, smooth=smooth)
        t.append(time.perf_counter() - t0)
        conf += confusion(pred, label, n)
        count += 1
    out = scores(conf)
    out.update(images=count, smooth=smooth, ms_per_image=float(1000 * np.median(t)) if t else None)
    return out
