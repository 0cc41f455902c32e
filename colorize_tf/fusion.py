"""Family ``fusion``: a convolutional colorizer after Iizuka, Simo-Serra, Ishikawa (2016), "Let there be color!".

Shared low-level convolutions (stride 8 in total) feed a mid-level path and a global path; the global path
sees the low-level features resized to a fixed grid and ends in one vector per image, which is fused into
every mid-level location (Iizuka's fusion layer: concatenation followed by a 1x1 convolution, written here as
its equal sum ``W1 * mid + W2 * global``); a decoder upsamples to 1/4 of the input, where chroma is predicted
(as Zhang et al.). Two losses:

``l2``
    Regression of U, V (the paper's and the SFU nets' objective).
``classification``
    Zhang et al.: soft-encoded chroma bins (`colorize_tf.chroma_bins`), class rebalancing, annealed-mean
    decoding at a temperature (`--temperature`, default 0.38).
``joint``
    Both heads on one decoder, trained together (the bins' loss weighted by ``bins_weight``): the ``uv``
    head is the ``faithful`` mode (PSNR-optimal), the bins head decoded at the temperature the ``vivid``
    mode (colourful) — or, with ``vivid_head="uv"``, the vivid mode is the uv head's chroma times
    ``vivid_gain``; one forward pass serves either.

Group normalisation (the same computation in training and inference) instead of batch normalisation. At
colorization the gray image is resized to the network side (``side``, 256), the chroma predicted and upsampled
bilinearly to the image it was given, refined by the joint bilateral filter and recombined with its Y; for
scans larger than the working side, `colorize_tf.colorize.colorize_image` gives it a reduced copy and carries
the chroma to full resolution by guided upsampling, so the cost hardly grows with the scan size.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from .colorize import Colorized, Timing, finish
from .refine import RefineParams

log = logging.getLogger(__name__)

MODEL_FILE = "fusion.keras"
#: The same network exported for the NumPy runtime (`colorize_tf.npnet`): inference without TensorFlow.
NPZ_FILE = "fusion.npz"
#: Output stride of the chroma map relative to the input.
OUT_STRIDE = 4


@dataclasses.dataclass(frozen=True)
class FusionConfig:
    """Architecture and objective of a fusion model (stored in ``model.json``).

    ``encoder="own"`` learns the low-level path from scratch (stride 8); ``"parser"`` takes the trained
    grayscale scene parser's encoder (`colorize_tf.parser`, stride 32, kept frozen with its batch
    normalisation in inference mode), so the colorizer starts from features that already separate sky,
    foliage, people and buildings: the paper's semantic insight carried into the CNN. ``scenes`` names the
    classes of the optional auxiliary scene-classification head on the global vector (Iizuka's joint
    training), weighted by ``scene_weight`` (alpha); ``segments`` the classes of the optional auxiliary
    semantic-segmentation head at the chroma resolution (trained where the records carry labels), weighted by
    ``segment_weight``.
    """

    loss: str = "l2"  # or "classification", "joint"
    base: int = 16  # channels of the first stage
    global_grid: int = 8  # the global path sees the low-level features resized to this grid
    bin_step: float = 0.04
    temperature: float = 0.38
    side: int = 256  # working resolution (longer side) at colorization
    encoder: str = "own"  # or "parser"
    scenes: tuple = ()
    scene_weight: float = 0.0
    segments: tuple = ()
    segment_weight: float = 0.0
    bins_weight: float = 0.01  # joint: weight of the bins' cross entropy next to the U, V squared error
    bins_hidden: int = 0  # channels of a 3x3 block of the bins head's own before its readout (0 = none)
    default_mode: str = ""  # the mode used when none is asked for ("" = the first of `modes`)
    vivid_gain: float = 1.0  # the vivid mode's chroma multiplier (a saturation calibrated on validation)
    # the vivid mode's colourfulness target (Hasler-Suesstrunk M of the output at the network side; 0 = none):
    # each image's chroma is multiplied by the gain that brings it there, at least 1 and at most vivid_gain
    # (`colourfulness_gain`), so grayish predictions get more saturation than colourful ones
    vivid_colourfulness: float = 0.0
    # the vivid mode's share of its gain for each image's mean chroma (`saturate`): 1 = all chroma alike;
    # below 1 the colours within a photo are spread further than its overall tint is deepened
    vivid_cast: float = 1.0
    uv_loss: str = "mse"  # the uv head's loss: "mse" (per pixel) or "log_rgb" (per image, see `log_rgb_loss`)
    # the bins head reads a decoder of its own from the 1/8 block on (layers named "vivid_*", warm-started from
    # the uv path's): features shaped for the U, V regression leave a readout of them gray
    bins_decoder: bool = False
    # joint models: the head the vivid mode reads — "logits" (the bins, annealed mean) or "uv" (the faithful
    # head's chroma, saturated by vivid_gain: chosen on validation when it beats the bins at equal colour)
    vivid_head: str = "logits"

    def __post_init__(self):
        object.__setattr__(self, "scenes", tuple(self.scenes))
        object.__setattr__(self, "segments", tuple(self.segments))
        if self.loss not in LOSSES:
            raise ValueError(f"fusion loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        if self.encoder not in ("own", "parser"):
            raise ValueError(f"fusion encoder {self.encoder!r}: expected 'own' or 'parser'")
        if not 4 <= self.base <= 256 or not 2 <= self.global_grid <= 64 or not 32 <= self.side <= 4096:
            raise ValueError(f"fusion config out of range: {self}")
        if not self.temperature > 0:
            raise ValueError(f"temperature {self.temperature}: expected > 0")
        if not 0 <= self.bins_hidden <= 1024:
            raise ValueError(f"bins_hidden {self.bins_hidden}: expected 0..1024 channels")
        if not 0.5 <= self.vivid_gain <= MAX_GAIN:
            raise ValueError(f"vivid gain {self.vivid_gain}: expected 0.5 .. {MAX_GAIN:g}")
        if not 0 <= self.vivid_cast <= 1:
            raise ValueError(f"vivid cast {self.vivid_cast}: expected 0 .. 1")
        if not 0 <= self.vivid_colourfulness <= 150:
            raise ValueError(f"vivid colourfulness {self.vivid_colourfulness}: expected 0 (none) .. 150")
        if self.uv_loss not in UV_LOSSES:
            raise ValueError(f"uv loss {self.uv_loss!r}: expected one of {', '.join(UV_LOSSES)}")
        if self.scene_weight < 0 or (self.scene_weight > 0 and len(self.scenes) < 2):
            raise ValueError("scene_weight > 0 needs at least two scene classes")
        if self.segment_weight < 0 or (self.segment_weight > 0 and len(self.segments) < 2):
            raise ValueError("segment_weight > 0 needs at least two segment classes")
        if self.bins_decoder and self.loss != "joint":
            raise ValueError("bins_decoder gives the bins head of a joint model its own decoder: needs loss 'joint'")
        if self.vivid_head not in ("logits", "uv"):
            raise ValueError(f"vivid head {self.vivid_head!r}: expected 'logits' or 'uv'")
        if self.vivid_head == "uv" and self.loss != "joint":
            raise ValueError("vivid_head 'uv' is the vivid mode of a joint model (its faithful head, saturated)")
        if self.default_mode and self.default_mode not in self.modes():
            raise ValueError(f"default mode {self.default_mode!r}: this model offers {', '.join(self.modes())}")

    @property
    def stride(self):
        """Input sides must be multiples of this."""
        return 32 if self.encoder == "parser" else 8

    @property
    def heads(self):
        """Output names in the model's output order."""
        chroma = {"l2": ("uv",), "classification": ("logits",), "joint": ("uv", "logits")}[self.loss]
        return chroma + ("scene",) * (self.scene_weight > 0) + ("segments",) * (self.segment_weight > 0)

    def modes(self):
        """The colorization modes this model offers: name -> settings (``head``, ``temperature`` for the bins,
        ``gain``: the chroma multiplier, or with ``colourfulness`` its bound; ``cast`` where not 1)."""
        target = {"colourfulness": self.vivid_colourfulness} if self.vivid_colourfulness > 0 else {}
        if self.vivid_cast != 1:
            target["cast"] = self.vivid_cast
        bins = {"head": "logits", "temperature": self.temperature, "gain": self.vivid_gain, **target}
        if self.loss == "joint":
            vivid = bins if self.vivid_head == "logits" else {"head": "uv", "gain": self.vivid_gain, **target}
            return {"faithful": {"head": "uv"}, "vivid": vivid}
        return {"faithful": {"head": "uv"}} if self.loss == "l2" else {"vivid": bins}


LOSSES = ("l2", "classification", "joint")
#: Largest vivid-mode chroma multiplier a model may store.
MAX_GAIN = 6.0
UV_LOSSES = ("mse", "log_rgb")
#: `log_rgb_loss`'s floor on an image's squared RGB error (about 40 dB): a perfect crop's log stays finite.
LOG_RGB_EPS = 1e-4


#: Layers of the scene parser (`colorize_tf.parser.build_parser`) the ``parser`` encoder exposes.
PARSER_TAPS = ("enc2b_relu", "enc3b_relu", "enc4b_relu", "context_add", "context_pool")


def parser_encoder(parser_model):
    """The scene parser's encoder as a frozen Keras model: gray -> features at 1/4, 1/8, 1/16, 1/32 and the
    global-average vector (B, 1, 1, C)."""
    import keras

    enc = keras.Model(parser_model.input, [parser_model.get_layer(n).output for n in PARSER_TAPS], name="encoder")
    enc.trainable = False  # frozen: batch normalisation runs in inference mode, as at colorization
    return enc


def _block(x, ch, stride, name):
    from keras import layers

    x = layers.Conv2D(ch, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.GroupNormalization(groups=4, name=f"{name}_norm")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _fuse(local, vector, ch, p=""):
    """Iizuka's fusion layer: the global vector joined to every location (concatenation + 1x1 convolution,
    written as its equal sum); ``p`` prefixes the layer names."""
    from keras import layers

    fused = layers.Add(name=f"{p}fusion")(
        [
            layers.Conv2D(ch, 1, name=f"{p}fusion_local")(local),
            layers.Reshape((1, 1, ch), name=f"{p}fusion_broadcast")(layers.Dense(ch, name=f"{p}fusion_global")(vector)),
        ]
    )
    return layers.ReLU(name=f"{p}fusion_relu")(fused)


#: Name prefix of the bins head's own decoder layers (``FusionConfig.bins_decoder``).
BINS_DECODER = "vivid_"


def _parser_tail(x16, eighth, quarter, g, b, p=""):
    """The parser-encoder decoder from the 1/16 block's output to the 1/4 features (B, H/4, W/4, 4b)."""
    from keras import layers

    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{p}up8")(x16)
    x = _block(layers.Concatenate(name=f"{p}cat8")([x, eighth]), 8 * b, 1, f"{p}dec8")
    x = _fuse(x, g, 8 * b, p)
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{p}up")(x)  # 1/4
    x = _block(layers.Concatenate(name=f"{p}cat4")([x, quarter]), 4 * b, 1, f"{p}dec1")
    return _block(x, 4 * b, 1, f"{p}dec2")


def _own_tail(mid, g, b, p=""):
    """The own-encoder decoder from the mid-level features to the 1/4 features (B, H/4, W/4, 2b)."""
    from keras import layers

    x = _fuse(mid, g, 4 * b, p)
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{p}up")(x)  # 1/4
    return _block(x, 2 * b, 1, f"{p}dec1")


def build_model(config: FusionConfig, n_bins=0, encoder=None):
    """Keras model: gray (B, H, W, 1) in [0, 1] -> one output per name in ``config.heads``, in that order:
    ``uv`` (B, H/4, W/4, 2) chroma, ``logits`` (B, H/4, W/4, n_bins) over chroma bins, ``scene`` (B,
    n_scenes) logits from the global vector (with a positive ``scene_weight``), ``segments`` (B, H/4, W/4,
    n_segments) logits (with a positive ``segment_weight``); a single output is returned bare.
    ``encoder`` (`parser_encoder`) is required for ``config.encoder == "parser"``.
    """
    import keras
    from keras import layers

    b = config.base
    gray = keras.Input((None, None, 1), name="gray")
    if config.encoder == "parser":
        if encoder is None:
            raise ValueError("fusion encoder 'parser' needs the trained parser's encoder")
        quarter, eighth, sixteenth, deep, pooled = encoder(gray)
        g = layers.Flatten(name="global_flat")(pooled)
        g = layers.Dense(16 * b, activation="relu", name="global_vector")(g)
        x = layers.UpSampling2D(2, interpolation="bilinear", name="up16")(deep)
        x16 = _block(layers.Concatenate(name="cat16")([x, sixteenth]), 8 * b, 1, "dec16")

        def tail(p=""):
            return _parser_tail(x16, eighth, quarter, g, b, p)

    else:
        x = layers.Rescaling(1.0, offset=-0.5, name="centre")(gray)
        low = _block(x, b, 2, "low1")
        low = _block(low, 2 * b, 2, "low2")
        low = _block(low, 4 * b, 2, "low3")  # 1/8
        mid = _block(low, 4 * b, 1, "mid1")
        mid = _block(mid, 4 * b, 1, "mid2")
        g = layers.Resizing(config.global_grid, config.global_grid, interpolation="bilinear", name="global_grid")(low)
        g = _block(g, 8 * b, 2, "global1")
        g = _block(g, 8 * b, 2, "global2")
        g = layers.GlobalAveragePooling2D(name="global_pool")(g)
        g = layers.Dense(8 * b, activation="relu", name="global_vector")(g)

        def tail(p=""):
            return _own_tail(mid, g, b, p)

    x = tail()
    outputs = []
    if "uv" in config.heads:
        outputs.append(layers.Conv2D(2, 1, name="uv")(x))
    if "logits" in config.heads:
        # per-pixel normalisation first: decoder features shaped for the small U, V targets are tiny (std ~0.04
        # in the first release), and a readout of them needs logits weights Adam reaches only after many epochs
        # (that bins head stayed gray); normalised, the same readout is within a few hundred steps
        bins = tail(BINS_DECODER) if config.bins_decoder else x
        bins = _block(bins, config.bins_hidden, 1, "bins_hidden") if config.bins_hidden else bins
        bins = layers.LayerNormalization(epsilon=1e-5, name="bins_norm")(bins)
        outputs.append(layers.Conv2D(n_bins, 1, name="logits")(bins))
    if config.scene_weight > 0:
        outputs.append(layers.Dense(len(config.scenes), name="scene")(g))
    if config.segment_weight > 0:
        outputs.append(layers.Conv2D(len(config.segments), 1, name="segments")(x))
    return keras.Model(gray, outputs if len(outputs) > 1 else outputs[0], name=f"fusion_{config.loss}")


def log_rgb_loss(eps=LOG_RGB_EPS):
    """The ``uv`` head's loss aligned with the evaluation: mean RGB PSNR over images is -10 log10 of each
    image's RGB squared error, averaged, so the loss is each crop's log(mean squared RGB error + eps) (the
    U, V error carried into R, G, B through BT.601; Y is exact), averaged over the batch.

    Per-pixel MSE weighs an image by how much colour error it has, so colourful photos dominate and the net
    learns to gamble on colour; in the log, a near-neutral photo's error counts as much as a colourful
    one's, and guessing colour where the truth is neutral costs what it costs the PSNR.
    """
    import tensorflow as tf

    from .color import YUV_TO_RGB

    to_rgb = tf.constant(YUV_TO_RGB[:, 1:].T, tf.float32)  # (2, 3)

    def log_rgb(y_true, y_pred):
        err = tf.tensordot(y_pred - y_true, to_rgb, axes=1)  # (B, h, w, 3)
        return tf.math.log(tf.reduce_mean(tf.square(err), axis=[1, 2, 3]) + eps)

    return log_rgb


def pool_targets(uv):
    """Chroma targets at the output stride: (B, H, W, 2) -> (B, H/4, W/4, 2) means (TensorFlow)."""
    import tensorflow as tf

    return tf.nn.avg_pool2d(uv, OUT_STRIDE, OUT_STRIDE, "VALID")


def soft_targets(uv, centres, k=5):
    """TensorFlow soft encoding (as `chroma_bins.soft_encode`): (B, h, w, 2) -> (B, h, w, Q) distributions."""
    import tensorflow as tf

    centres = np.asarray(centres, np.float32)
    step = float(np.min(np.diff(np.unique(centres[:, 0]))))  # bin side: sigma = step / 2, as soft_encode
    d2 = tf.reduce_sum((uv[..., None, :] - tf.constant(centres)) ** 2, -1)
    neg, idx = tf.math.top_k(-d2, k)
    w = tf.exp((neg - neg[..., :1]) / (2 * (step / 2) ** 2))
    w = w / tf.reduce_sum(w, -1, keepdims=True)
    return tf.reduce_sum(tf.one_hot(idx, len(centres)) * w[..., None], -2)


def train_fusion(
    train_ds,
    val_ds,
    config: FusionConfig,
    settings,
    log_prefix="",
    class_counts_batches=20,
    encoder=None,
    work_dir=None,
    init_model=None,
    finetune_encoder=False,
    bins_only=False,
    precision="float32",
    eager=False,
):
    """Fit a fusion model on ``(gray, uv)`` or ``(gray, uv, extras)`` batches
    (`colorize_tf.image_records.dataset`; extras ``scene`` when ``config.scene_weight > 0``, ``labels`` when
    ``config.segment_weight > 0``).

    ``classification`` trains on soft-encoded targets scaled by each pixel's rebalancing weight (the cross
    entropy of Zhang et al.'s eq. 2 with its weight folded into the target, which is linear in it).
    ``work_dir`` receives ``checkpoint.keras`` after every epoch and ``best.keras`` at each validation best
    (a long run stopped early keeps its progress), and TensorBoard logs under ``tensorboard/`` when the
    tensorboard package is installed. ``init_model`` (a fusion Keras model of the same architecture, any
    loss and heads) gives its weights to every layer that matches (`warm_start`); ``finetune_encoder`` lets
    the ``parser`` encoder's convolutions learn too (its batch normalisation stays in inference mode).
    ``bins_only`` trains the bins head alone (its own decoder with ``config.bins_decoder``, its hidden block,
    normalisation and readout) on the frozen network of ``init_model``: the ``uv`` head, and so the faithful
    mode, stay exactly as they were. ``precision`` ``"bfloat16"`` trains under Keras' ``mixed_bfloat16``
    policy (float32 weights and outputs, bfloat16 arithmetic: 0.4-0.6x the time per step, 0.6-0.7x per epoch,
    measured on a CPU with AVX512-BF16; emulated and slower on CPUs without bfloat16 instructions or AMX);
    the returned model computes in float32 either way (`with_dtype_policy`). ``eager`` runs the training
    steps eagerly: batches whose shapes differ (whole photos, `colorize_tf.image_records.dataset` with
    ``multiple``) cannot share one traced step, as bilinear upsampling needs static sizes.

    Returns
    -------
    model : keras.Model
    record : dict
        History, settings, and for ``classification`` the bins' rebalancing weights.
    """
    import keras
    import tensorflow as tf

    from . import chroma_bins
    from .regressor import _has_tensorboard, epoch_progress, schedule_callbacks

    check_precision(precision)
    keras.utils.set_random_seed(settings.seed)
    record = {"config": dataclasses.asdict(config), "precision": precision}
    scene_table = None
    if config.scene_weight > 0:
        keys = tf.constant(list(config.scenes))
        scene_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(config.scenes), dtype=tf.int64)), -1
        )
    losses, loss_weights, pixel_targets = [], [], []
    n_bins = 0
    if "uv" in config.heads:
        losses.append(keras.losses.MeanSquaredError(name="uv_loss") if config.uv_loss == "mse" else log_rgb_loss())
        loss_weights.append(1.0)
        pixel_targets.append(pool_targets)
    if "logits" in config.heads:
        centres = chroma_bins.bin_centres(config.bin_step)
        n_bins = len(centres)
        counts = np.zeros(n_bins)
        for batch in train_ds.take(class_counts_batches):
            counts += soft_targets(pool_targets(batch[1]), centres).numpy().reshape(-1, n_bins).sum(0)
        weights = tf.constant(
            chroma_bins.rebalancing_weights(counts + 1e-3, lam=0.5, smooth=config.bin_step * 1.25, centres=centres)
        )
        record["class_weights"] = weights.numpy().tolist()
        losses.append(keras.losses.CategoricalCrossentropy(from_logits=True, name="bins_loss"))
        if config.loss == "joint":  # the ratio bins_weight, written as (1 / bins_weight, 1) so that no term is
            # tiny next to Adam's epsilon
            loss_weights[0] = 1.0 / config.bins_weight
        loss_weights.append(1.0)

        def bins_target(uv):
            target = soft_targets(pool_targets(uv), centres)
            return target * tf.gather(weights, tf.argmax(target, -1))[..., None]  # rebalanced cross entropy

        pixel_targets.append(bins_target)

    if init_model is None:
        model = build_model(config, n_bins, encoder=encoder)
    else:
        model, copied, fresh = warm_start(init_model, config, n_bins)
        record["warm_start"] = {"copied": copied, "fresh": fresh}
        log.info("warm start: %d layers with weights taken over, new: %s", len(copied), fresh or "none")
    if precision != "float32":
        float_model, model = model, with_dtype_policy(model, PRECISIONS[precision])
        if config.encoder == "parser":
            model.get_layer("encoder").trainable = False  # as built; --finetune_encoder opens it below
    if finetune_encoder:
        unfreeze_encoder(model)
    if bins_only:
        if "logits" not in config.heads or init_model is None:
            raise ValueError("bins_only trains the bins head of a model continued from another (--init)")
        for layer in model.layers:
            layer.trainable = layer.name.startswith(("bins_", "logits", BINS_DECODER))
        record["trained_layers"] = [layer.name for layer in model.layers if layer.trainable]
    if scene_table is not None:
        losses.append(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        loss_weights.append(config.scene_weight)
    if config.segment_weight > 0:
        from .parser_train import weighted_ignore_loss

        losses.append(weighted_ignore_loss(np.ones(len(config.segments))))  # unlabeled pixels count zero
        loss_weights.append(config.segment_weight)
    if bins_only:  # every other head is frozen: its loss is a constant that would swamp the logged one
        loss_weights = [w if head == "logits" else 0.0 for head, w in zip(config.heads, loss_weights)]

    def targets(*batch):
        ys = [target(batch[1]) for target in pixel_targets]
        if scene_table is not None:
            ys.append(tf.maximum(scene_table.lookup(batch[2]["scene"]), 0))
        if config.segment_weight > 0:  # the label under each output cell's centre
            half = OUT_STRIDE // 2
            ys.append(batch[2]["labels"][:, half::OUT_STRIDE, half::OUT_STRIDE, None])
        return batch[0], ys[0] if len(ys) == 1 else tuple(ys)

    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss=losses[0] if len(losses) == 1 else losses,
        loss_weights=None if len(losses) == 1 else loss_weights,
        run_eagerly=eager,
    )
    train = train_ds.map(targets)
    val = None if val_ds is None else val_ds.map(targets)
    callbacks = [epoch_progress(settings.epochs, log_prefix)]
    callbacks += schedule_callbacks(
        settings.learning_rate, settings.epochs, settings.lr_schedule, settings.patience, val is not None
    )
    if work_dir:
        os.makedirs(work_dir, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(os.path.join(work_dir, "checkpoint.keras")))
        if val is not None:
            callbacks.append(keras.callbacks.ModelCheckpoint(os.path.join(work_dir, "best.keras"), save_best_only=True))
        if _has_tensorboard():
            callbacks.append(
                keras.callbacks.TensorBoard(log_dir=os.path.join(work_dir, "tensorboard"), write_graph=False)
            )
    t0 = time.time()
    hist = model.fit(train, validation_data=val, epochs=settings.epochs, callbacks=callbacks, verbose=0)
    history = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
    record.update(
        history=history,
        epochs_run=len(history.get("loss", [])),
        seconds=round(time.time() - t0, 2),
        learning_rate=settings.learning_rate,
        lr_schedule=settings.lr_schedule,
        final_learning_rate=float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        seed=settings.seed,
        best_loss=min(history["loss"]),
        best_val_loss=min(history["val_loss"]) if "val_loss" in history else None,
        parameters=int(model.count_params()),
        trainable_parameters=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    )
    if precision != "float32":  # the trained weights in the float32 network they were copied from
        float_model.set_weights(model.get_weights())
        model = float_model
    return model, record


def warm_start(init_model, config: FusionConfig, n_bins=0):
    """A new model of ``config`` that takes ``init_model``'s weights in every layer whose name and weight
    shapes agree: the same config continues where it stopped; an ``l2`` model starts a ``classification`` one
    (or the reverse) with its encoder, fusion and decoder trained and only the output layer new. The bins
    head's own decoder (``config.bins_decoder``, layers ``vivid_*``) starts as a copy of the uv path's layers
    of the same names when ``init_model`` has none of its own.

    Returns
    -------
    model : keras.Model
    copied, fresh : list of str
        Names of the layers with weights that were taken over and of those that start from initialisation.
    """
    encoder = None
    if config.encoder == "parser":
        encoder = init_model.get_layer("encoder")  # the same weights; trainability is set by the trainer
        encoder.trainable = False
    model = build_model(config, n_bins, encoder=encoder)
    source = {layer.name: layer for layer in init_model.layers}
    copied, fresh = [], []
    for layer in model.layers:
        mine = layer.get_weights()
        if not mine or layer is encoder:
            continue
        name = layer.name
        if name not in source and name.startswith(BINS_DECODER):  # the bins head's decoder starts as the uv one
            name = name[len(BINS_DECODER) :]
        theirs = source[name].get_weights() if name in source else []
        if len(theirs) == len(mine) and all(a.shape == b.shape for a, b in zip(theirs, mine)):
            layer.set_weights(theirs)
            copied.append(layer.name)
        else:
            fresh.append(layer.name)
    return model, copied, fresh


#: Training precisions of `train_fusion`: Keras dtype policy of every layer but the outputs.
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
#: The ``--precision`` choices of the training jobs: a name of `PRECISIONS`, or ``auto`` (`resolve_precision`).
PRECISION_CHOICES = ("auto", *sorted(PRECISIONS))
#: CPU flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic: without them it is emulated, slower.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_precision(precision, cpuinfo="/proc/cpuinfo"):
    """A training precision of `PRECISIONS`: ``"auto"`` is ``"bfloat16"`` where the CPU has bfloat16
    instructions (`BFLOAT16_FLAGS` in ``cpuinfo``), else ``"float32"``; other names are returned checked."""
    if precision == "auto":
        try:
            with open(cpuinfo) as fh:
                flags = {f for line in fh if line.startswith("flags") for f in line.split(":", 1)[1].split()}
        except OSError:
            flags = set()
        return "bfloat16" if flags & set(BFLOAT16_FLAGS) else "float32"
    return check_precision(precision)


def check_precision(precision):
    """``precision`` if it names one of `PRECISIONS`, else a ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {sorted(PRECISIONS)}")
    return precision


#: Output layers, kept in float32 whatever the precision (losses, bins and decoded chroma read them).
OUTPUT_LAYERS = ("uv", "logits", "scene", "segments")


def with_dtype_policy(model, policy):
    """A copy of an uncompiled ``model`` (same layers, names and weights) whose layers, the nested encoder's included,
    compute under the Keras dtype ``policy`` (``"float32"``, ``"mixed_bfloat16"``); the output layers
    (`OUTPUT_LAYERS`) stay float32. Under a mixed policy the weights stay float32 variables, so converting
    back to ``"float32"`` gives the trained network exactly. Trainability is that of the layers' configs:
    callers set it afterwards."""
    import keras

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32" if layer.name in OUTPUT_LAYERS else policy
        return layer.__class__.from_config(config)

    out = keras.models.clone_model(model, clone_function=clone, recursive=True)
    out.set_weights(model.get_weights())
    return out


def unfreeze_encoder(model):
    """Make the nested ``encoder``'s convolutions trainable, keeping its batch normalisation frozen."""
    enc = model.get_layer("encoder")
    enc.trainable = True
    for layer in enc.layers:
        if "BatchNormalization" in type(layer).__name__:
            layer.trainable = False


def load_model_file(model_dir, meta=None):
    """(Keras model, FusionConfig) of a fusion model directory, checksum verified; ``meta`` is its
    ``model.json`` when the caller has read it already."""
    from .checksums import load_verified_keras
    from .regressor import META_FILE, read_metadata

    meta = meta or read_metadata(model_dir)
    model = load_verified_keras(os.path.join(model_dir, MODEL_FILE), meta.get("files", {}).get(MODEL_FILE), META_FILE)
    return model, FusionConfig(**meta["fusion"])


def save_fusion(model_dir, model, config: FusionConfig, record, refine=RefineParams(121, 0.05, 80.0, 0.25)):
    """Model directory: ``fusion.keras``, ``fusion.npz`` (the same network for the NumPy runtime,
    `colorize_tf.npnet`) and ``model.json`` (family ``fusion``, config, checksums)."""
    from .npnet import export
    from .regressor import write_model_dir

    return write_model_dir(
        model_dir,
        "fusion",
        record,
        refine,
        {MODEL_FILE: model},
        {NPZ_FILE: export(model)},
        fusion=dataclasses.asdict(config),
    )


def saturate(uv, gain, cast=1.0):
    """Chroma saturated by ``gain`` around the image's mean chroma (its cast), the cast itself by ``cast`` of it.

    ``mean * (1 + (gain - 1) * cast) + (uv - mean) * gain``: ``cast = 1`` multiplies all chroma by ``gain``;
    ``cast < 1`` makes the colours within the photo differ more while its overall tint (a warm wash where the
    model is unsure) grows less.

    Parameters
    ----------
    uv : ndarray, shape (H, W, 2)
    gain, cast : float

    Returns
    -------
    ndarray, shape (H, W, 2), float32
    """
    uv = np.asarray(uv, np.float32)
    if cast == 1.0:
        return uv * np.float32(gain)
    mean = uv.reshape(-1, 2).mean(0)
    return (mean * np.float32(1 + (gain - 1) * cast) + (uv - mean) * np.float32(gain)).astype(np.float32)


def colourfulness_gain(gray, uv, target, max_gain, cast=1.0, steps=4):
    """The multiplier of `saturate` that brings an image's colourfulness to ``target``, within [1, max_gain].

    Colourfulness (`colorize_tf.metrics.colourfulness`) grows about linearly with the multiplier until the
    gamut fit of `colorize_tf.color.recombine` bends it, so the multiplier is found by a few fixed-point
    steps ``g <- g * target / M(g)``; an output already at or above the target keeps gain 1.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Luminance in [0, 1].
    uv : ndarray, shape (H, W, 2)
        Predicted chroma.
    target : float
        Colourfulness to reach (Hasler & Suesstrunk M, 0..255 scale; everyday photos ~30-60).
    max_gain, cast, steps : float, float, int
        Upper bound of the multiplier; `saturate`'s share of it for the mean chroma; fixed-point steps.

    Returns
    -------
    float
        The multiplier, in [1, max_gain].
    """
    from .color import recombine
    from .metrics import colourfulness

    gain = 1.0
    for _ in range(steps):
        m = colourfulness(recombine(gray, saturate(uv, gain, cast)))
        new = float(np.clip(gain * target / max(m, 1e-6), 1.0, max_gain))
        if abs(new - gain) < 1e-3 * gain:
            return new
        gain = new
    return gain


def softmax(logits):
    """Probabilities over the last axis (numerically stable)."""
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def entropy(probs):
    """Entropy in nats over the last axis: (..., Q) -> (...)."""
    return -np.sum(probs * np.log(np.maximum(probs, 1e-12)), -1)


class FusionColorizer:
    """A fusion model directory loaded for colorization: ``colorize(gray) -> Colorized``."""

    #: Working side (`colorize_tf.colorize.colorize_image`): the network always sees 256 pixels; on photos
    #: enlarged 4x (`benchmarks/work_side.py`, shipped model, 60 validation images) 512 / 768 / 1024 scored
    #: +0.026 / +0.011 / +0.002 dB over full resolution; 1024 keeps the full-resolution colourfulness.
    work_side = 1024

    def __init__(
        self,
        model,
        config: FusionConfig,
        refine: RefineParams,
        tile=0,
        mode=None,
        gain=None,
        colourfulness=None,
        cast=None,
    ):
        """``model``: a Keras model, or a `colorize_tf.npnet.NumpyNet` of the same network (no TensorFlow);
        ``gain``: the chroma multiplier (None = the mode's: 1 for faithful, the calibrated one for vivid);
        ``colourfulness``: a per-image target (`colourfulness_gain`; ``gain`` then bounds the multiplier, by
        default the mode's bound or `MAX_GAIN`; 0 = a fixed multiplier; None = the mode's own target);
        ``cast``: `saturate`'s share of the multiplier for the mean chroma (None = the mode's own)."""
        from . import chroma_bins
        from .npnet import NumpyNet
        from .registry import resolve_mode

        self.model, self.config, self.refine, self.tile = model, config, refine, tile
        self.runtime = "numpy" if isinstance(model, NumpyNet) else "keras"
        self.modes = config.modes()
        self.mode = resolve_mode(self.modes, mode, config.default_mode)
        head = self.modes[self.mode]["head"]
        own = self.modes[self.mode]
        if colourfulness is None:  # the mode's target, unless a fixed gain is asked for
            self.target = float(own.get("colourfulness", 0.0)) if gain is None else 0.0
        else:
            self.target = float(colourfulness)
        if gain is not None:
            self.gain = float(gain)
        elif self.target > 0 and not own.get("colourfulness"):
            self.gain = MAX_GAIN  # a target asked of a mode without one: bounded only by the largest gain
        else:
            self.gain = float(own.get("gain", 1.0))
        # with a target, self.gain bounds the per-image multiplier (`colourfulness_gain`); else it is fixed
        self.cast = float(own.get("cast", 1.0) if cast is None else cast)
        self.output = config.heads.index(head) if len(config.heads) > 1 else None
        self.centres = chroma_bins.bin_centres(config.bin_step) if head == "logits" else None
        # the bins head, read for the confidence score in either mode
        self.bins_output = config.heads.index("logits") if "logits" in config.heads else None
        if self.runtime == "keras":
            from .tracing import Traced

            # One trace per working shape: the longer side is fixed and sides are multiples of the stride, so
            # a handful; a shape-generic trace (reduce_retracing) fails in bilinear UpSampling2D, which needs
            # static spatial sizes
            self._fn = Traced(lambda t: model(t, training=False))

    @classmethod
    def load(cls, model_dir, settings=None):
        from .registry import ColorizeSettings
        from .regressor import read_metadata

        settings = settings or ColorizeSettings()
        meta = read_metadata(model_dir)
        runtime = settings.runtime or "keras"
        if runtime == "numpy" and NPZ_FILE not in meta.get("files", {}):
            runtime = "keras"  # made before the NumPy export existed
        if runtime == "numpy":
            from .checksums import verify_file
            from .npnet import NumpyNet

            path = os.path.join(model_dir, NPZ_FILE)
            verify_file(path, meta["files"][NPZ_FILE])
            model, config = NumpyNet.load(path), FusionConfig(**meta["fusion"])
        else:
            model, config = load_model_file(model_dir, meta)
        if settings.temperature is not None:
            config = dataclasses.replace(config, temperature=settings.temperature)
        refine = settings.refine or RefineParams(**meta.get("refine", {}))
        return cls(
            model,
            config,
            refine,
            settings.tile,
            settings.mode,
            settings.chroma_gain,
            settings.colourfulness,
            settings.cast,
        )

    def describe(self):
        """One line for logs: what predicts and how."""
        c = self.config
        extra = f", T={c.temperature}" if self.centres is not None else ""
        if self.target > 0:
            extra += f", chroma gain up to {self.gain:g} towards colourfulness {self.target:g}"
        elif self.gain != 1:
            extra += f", chroma gain {self.gain:g}"
        if self.cast != 1 and (self.target > 0 or self.gain != 1):
            extra += f" (the photo's mean chroma by {self.cast:g} of it)"
        enc = "parser encoder" if c.encoder == "parser" else "own encoder"
        return (
            f"fusion CNN ({enc}), {c.loss} loss, mode {self.mode}{extra}, network side {c.side}, "
            f"refinement {self.refine}, {self.runtime} runtime"
        )

    def chroma(self, gray, temperature=None):
        """Chroma (H, W, 2) for luminance (H, W), predicted at the network side and upsampled bilinearly."""
        import cv2

        from . import chroma_bins
        from .image_records import image_shape

        gray = np.asarray(gray, np.float32)
        timing = Timing()
        t0 = time.perf_counter()
        h, w = image_shape(*gray.shape, self.config.side, multiple=self.config.stride)
        small = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
        outputs = self._predict(small)
        out = outputs[self.output or 0]  # the mode's head
        confidence = None
        if self.bins_output is not None:
            logits = outputs[self.bins_output]
            probs = softmax(logits)
            confidence = 1.0 - float(np.mean(entropy(probs))) / np.log(probs.shape[-1])
            if self.centres is not None:
                out = chroma_bins.annealed_mean(probs, self.centres, temperature or self.config.temperature)
        if self.target > 0:  # the gain is measured on the luminance at the chroma map's size
            y = cv2.resize(small, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_AREA)
            out = saturate(out, colourfulness_gain(y, out, self.target, self.gain, self.cast), self.cast)
        elif self.gain != 1:
            out = saturate(out, self.gain, self.cast)
        uv = cv2.resize(out.astype(np.float32), (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
        timing.inference += time.perf_counter() - t0  # network, decoding and upsampling: no descriptor stage
        return Colorized(None, uv, None, timing, confidence)

    def _predict(self, small):
        """The network's outputs for one (h, w) gray image, each without the batch axis."""
        if self.runtime == "numpy":
            outs = self.model(small[:, :, None])
            return outs if isinstance(outs, list) else [outs]
        outs = self._fn(small[None, :, :, None])
        return [o.numpy()[0] for o in (outs if isinstance(outs, (list, tuple)) else [outs])]

    def colorize(self, gray):
        raw = self.chroma(gray)
        raw.rgb, raw.uv = finish(np.asarray(gray, np.float32), raw.uv, self.refine, self.tile, raw.timing)
        return raw


def _register():
    from .registry import Family, register

    register(
        Family(
            "fusion",
            "Iizuka et al. 2016: global + local fusion CNN (l2 or Zhang classification loss)",
            colorizer=FusionColorizer.load,
            train=train_fusion,
            save=save_fusion,
            data="images",
        )
    )


_register()
