"""The per-pixel chrominance regressor (Sec. III-A) and its model directory.

Network: input (descriptor, standardised) -> 3 x Dense(input/2, ReLU) ->
Dense(2, linear) = (U, V); least squares loss (eq. 1).

A model directory holds ``regressor.keras`` (weights and architecture; the input
standardisation lives only in its Normalization layer) and ``model.json``
(descriptor blocks, training record, default refinement, versions, SHA-256 of
the Keras file). Nothing is pickled.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time

import numpy as np

from .checksums import load_verified_keras, sha256_file
from .files import read_json_meta, write_json

log = logging.getLogger(__name__)

MODEL_FILE = "regressor.keras"
META_FILE = "model.json"
FORMAT = "colorize_tf.regressor"
FORMAT_VERSION = 1
#: Rows per inference call: large enough to amortise call overhead, small enough for bounded memory.
CHUNK_ROWS = 65536


def build_model(input_dim, mean, std, hidden_layers=3, hidden_units=None):
    """Keras regressor: Normalization -> hidden_layers x Dense(ReLU) -> Dense(2).

    Parameters
    ----------
    input_dim : int
    mean, std : ndarray, shape (input_dim,)
        Input standardisation statistics.
    hidden_units : int, optional
        Default ``input_dim // 2`` (the paper's choice).
    """
    import keras

    units = hidden_units or max(2, input_dim // 2)
    std = np.where(np.asarray(std) > 1e-6, std, 1.0)
    layers = [
        keras.Input(shape=(input_dim,), name="descriptor"),
        keras.layers.Normalization(mean=np.asarray(mean), variance=np.square(std), name="standardise"),
    ]
    for i in range(hidden_layers):
        layers.append(keras.layers.Dense(units, activation="relu", name=f"hidden{i + 1}"))
    layers.append(keras.layers.Dense(2, name="uv"))
    return keras.Sequential(layers, name="chroma_regressor")


def standardisation(x):
    """Per-column mean and standard deviation (float64 accumulation)."""
    x = np.asarray(x)
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), std.astype(np.float32)


def train_regressor(
    x,
    uv,
    val=None,
    epochs=10,
    batch_size=1024,
    learning_rate=1e-3,
    hidden_layers=3,
    seed=0,
    patience=3,
    log_dir=None,
    verbose=0,
    log_prefix="",
    init_model=None,
):
    """Fit a regressor on in-memory samples.

    Parameters
    ----------
    x : ndarray, shape (N, dim)
    uv : ndarray, shape (N, 2)
    val : tuple (x_val, uv_val), optional
        Held-out images' samples: early stopping restores the best epoch.
    log_dir : str, optional
        TensorBoard log directory (used when the tensorboard package is installed).
    log_prefix : str
        Prepended to the per-epoch log lines (e.g. the cluster id).
    init_model : keras.Model, optional
        Start from a copy of this trained network (its input standardisation included) instead of a
        random initialisation: a cluster's regressor fine-tunes the all-images one. If no epoch beats
        the starting weights on `val`, the starting weights are kept.

    Returns
    -------
    model : keras.Model
    record : dict
        Loss history and settings, for the model metadata.
    """
    import keras

    keras.utils.set_random_seed(seed)
    if init_model is None:
        mean, std = standardisation(x)
        model = build_model(x.shape[1], mean, std, hidden_layers=hidden_layers)
    else:  # the starting network's standardisation (its Normalization layer) is kept
        model = keras.models.clone_model(init_model)
        model.set_weights(init_model.get_weights())
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    start_val = None
    if init_model is not None and val is not None:
        start_val = float(model.evaluate(val[0], val[1], batch_size=65536, verbose=0))
    callbacks = [epoch_progress(epochs, log_prefix)]
    if val is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        )
    if log_dir and _has_tensorboard():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False))
    t0 = time.time()
    hist = model.fit(
        x,
        uv,
        validation_data=val,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    record = {
        "samples": int(len(x)),
        "val_samples": int(len(val[0])) if val is not None else 0,
        "epochs_run": len(history.get("loss", [])),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "history": history,
        "seconds": round(time.time() - t0, 2),
    }
    for key in ("loss", "val_loss"):
        if history.get(key):
            record[f"best_{key}"] = min(history[key])
    if init_model is not None:
        record["warm_start"] = {"start_val_loss": start_val, "kept_start": False}
        if start_val is not None and record.get("best_val_loss", np.inf) >= start_val:
            model.set_weights(init_model.get_weights())
            record["warm_start"]["kept_start"] = True
            record["best_val_loss"] = start_val
    return model, record


def epoch_progress(epochs, log_prefix=""):
    """Keras callback logging each epoch: loss, validation loss, seconds so far and at most how many are left
    (every Keras-trained family uses it)."""
    import keras

    start = {}

    def on_epoch_end(epoch, logs):
        done = time.time() - start["t"]
        log.info(
            "%sepoch %d/%d loss %.5f val_loss %s (%.0f s, at most %.0f s left)",
            log_prefix,
            epoch + 1,
            epochs,
            logs.get("loss", float("nan")),
            "%.5f" % logs["val_loss"] if "val_loss" in logs else "-",
            done,
            done / (epoch + 1) * (epochs - epoch - 1),
        )

    return keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: start.update(t=time.time()), on_epoch_end=on_epoch_end
    )


def cosine_rate(learning_rate, epoch, epochs, floor=0.02):
    """The learning rate of epoch ``epoch`` (0-based) of ``epochs`` on a half-cosine from ``learning_rate``
    down to ``floor * learning_rate``, taken at the epoch's middle (Loshchilov & Hutter's SGDR without
    restarts): the first epoch runs near the full rate, the last near the floor."""
    t = (epoch + 0.5) / max(epochs, 1)
    return float(learning_rate * (floor + (1.0 - floor) * 0.5 * (1.0 + np.cos(np.pi * min(t, 1.0)))))


def schedule_callbacks(learning_rate, epochs, schedule, patience, has_val):
    """Keras callbacks of a learning-rate schedule: ``plateau`` lowers the rate 0.3x when the validation
    loss stalls for half the patience; ``cosine`` follows `cosine_rate` over the planned epochs; early
    stopping (best weights restored) on the validation loss either way."""
    import keras

    if schedule not in ("plateau", "cosine"):
        raise ValueError(f"learning-rate schedule {schedule!r}: expected 'plateau' or 'cosine'")
    out = []
    if schedule == "cosine":
        out.append(keras.callbacks.LearningRateScheduler(lambda e: cosine_rate(learning_rate, e, epochs)))
    if has_val:
        if schedule == "plateau":
            out.append(
                keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=max(1, patience // 2))
            )
        out.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True))
    return out


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401  (tensorflow-cpu does not ship it)
    except ImportError:
        return False
    return True


def versions():
    """Library versions recorded in model metadata."""
    out = {"python": platform.python_version()}
    for mod in ("numpy", "keras", "tensorflow", "cv2", "skimage"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional module
            pass
    return out


def write_model_dir(model_dir, family, training, refine=None, keras_files=None, data_files=None, **fields):
    """The one writer of model directories, for every family: saves each ``{file name: keras model}`` in
    `keras_files` and each ``{file name: bytes}`` in `data_files`, then ``model.json`` (format, family,
    `fields`, training record, refinement as a dict, versions, SHA-256 of every saved file) atomically, last —
    a directory with ``model.json`` is complete."""
    import dataclasses

    from .files import write_atomic

    os.makedirs(model_dir, exist_ok=True)
    files = {}
    for name, model in (keras_files or {}).items():
        path = os.path.join(model_dir, name)
        model.save(path)
        files[name] = sha256_file(path)
    for name, data in (data_files or {}).items():
        path = os.path.join(model_dir, name)
        write_atomic(path, data)
        files[name] = sha256_file(path)
    if dataclasses.is_dataclass(refine):
        refine = dataclasses.asdict(refine)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "family": family,
        **fields,
        "training": training,
        "refine": refine or {},
        "versions": versions(),
        "files": files,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(os.path.join(model_dir, META_FILE), meta)
    return meta


def save_model_dir(model_dir, model, descriptor_config, training, refine=None):
    """Write ``regressor.keras`` + ``model.json`` into `model_dir` (created if needed)."""
    return write_model_dir(
        model_dir,
        "regressor",
        training,
        refine,
        {MODEL_FILE: model},
        descriptor=descriptor_config,
        input_dim=int(model.input_shape[-1]),
    )


def read_metadata(model_dir):
    """``model.json`` of a model directory (no TensorFlow needed)."""
    return read_json_meta(model_dir, META_FILE, FORMAT, "model directory")


class Regressor:
    """A trained regressor ready for inference.

    Parameters
    ----------
    model : keras.Model
    meta : dict
        Contents of ``model.json``.
    """

    def __init__(self, model, meta):
        from .tracing import Traced

        self.model = model
        self.meta = meta
        self.input_dim = int(meta["input_dim"])
        self._fn = Traced(lambda t: model(t, training=False), any_rows=True)  # one trace for any rows

    @classmethod
    def load(cls, model_dir, verify=True):
        """Load a model directory, checking the Keras file against its recorded checksum."""
        meta = read_metadata(model_dir)
        model = load_verified_keras(
            os.path.join(model_dir, MODEL_FILE), meta.get("files", {}).get(MODEL_FILE), META_FILE, verify
        )
        return cls(model, meta)

    def predict(self, x, chunk_rows=CHUNK_ROWS):
        """U, V for descriptor rows.

        Parameters
        ----------
        x : ndarray, shape (N, input_dim)

        Returns
        -------
        uv : ndarray of float32, shape (N, 2)
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"expected (N, {self.input_dim}) descriptors, got {x.shape}")
        out = np.empty((len(x), 2), dtype=np.float32)
        for s in range(0, len(x), chunk_rows):
            out[s : s + chunk_rows] = self._fn(x[s : s + chunk_rows]).numpy()
        return out


_START_MODELS = {}
_START_LOCK = threading.Lock()


def _start_model(init_dir):
    """The network a cluster fine-tunes, loaded once per process (thread-safe)."""
    with _START_LOCK:
        if init_dir not in _START_MODELS:
            _START_MODELS[init_dir] = Regressor.load(init_dir).model
        return _START_MODELS[init_dir]


def train_family(x, uv, val, settings, init_dir=None, log_dir=None, log_prefix=""):
    """Registry entry: fit a regressor (fine-tuning the one in `init_dir` if given) -> (Regressor, record)."""
    init = _start_model(init_dir) if init_dir else None
    model, record = train_regressor(
        x,
        uv,
        val=val,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        patience=settings.patience,
        seed=settings.seed,
        log_dir=log_dir,
        log_prefix=log_prefix,
        init_model=init,
    )
    return Regressor(model, {"input_dim": x.shape[1]}), record


def save_family(model_dir, predictor, descriptor_config, record, refine):
    """Registry entry: write the model directory; `refine` is a RefineParams."""

    return save_model_dir(model_dir, predictor.model, descriptor_config, record, refine=refine)


def _register():
    from .colorize import PixelColorizer
    from .registry import Family, register

    register(
        Family(
            "regressor",
            "the paper's per-pixel network (Sec. III-A)",
            colorizer=PixelColorizer.load,
            load=lambda model_dir, meta, verify: Regressor.load(model_dir, verify=verify),
            train=train_family,
            save=save_family,
        )
    )


_register()
