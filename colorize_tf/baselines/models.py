"""Comparator systems' models (see the package docstring); each registers as a model family."""

from __future__ import annotations

import os
import time

import numpy as np

from ..checksums import load_verified_keras
from ..regressor import META_FILE, write_model_dir
from . import hog  # noqa: F401  (registers the luma / hog descriptor blocks)


class MeanChroma:
    """Predicts the training mean U, V everywhere."""

    def __init__(self, uv_mean, input_dim):
        self.uv_mean = np.asarray(uv_mean, np.float32)
        self.input_dim = int(input_dim)

    def predict(self, x):
        return np.broadcast_to(self.uv_mean, (len(x), 2)).astype(np.float32)

    def state(self):
        return {"uv_mean": self.uv_mean.tolist()}

    @classmethod
    def fit(cls, x, uv, **_):
        return cls(np.asarray(uv, np.float64).mean(0), x.shape[1]), {}


class LinearSVRChroma:
    """One linear SVR per chroma channel on standardised descriptors."""

    def __init__(self, coef, intercept, mean, std):
        self.coef = np.asarray(coef, np.float32)  # (2, D)
        self.intercept = np.asarray(intercept, np.float32)  # (2,)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.input_dim = self.coef.shape[1]

    def predict(self, x):
        z = (np.asarray(x, np.float32) - self.mean) / self.std
        return (z @ self.coef.T + self.intercept).astype(np.float32)

    def state(self):
        return {
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def fit(cls, x, uv, max_samples=400_000, C=0.1, seed=0, **_):
        from sklearn.svm import LinearSVR

        rng = np.random.default_rng(seed)
        idx = rng.permutation(len(x))[:max_samples]
        xs, ys = np.asarray(x)[idx], np.asarray(uv)[idx]
        mean = xs.mean(0)
        std = np.where(xs.std(0) > 1e-6, xs.std(0), 1.0)
        z = (xs - mean) / std
        coef, icpt = [], []
        for c in range(2):
            svr = LinearSVR(
                C=C, epsilon=0.0, loss="squared_epsilon_insensitive", dual=False, max_iter=5000, random_state=seed
            ).fit(z, ys[:, c])
            coef.append(svr.coef_)
            icpt.append(float(np.ravel(svr.intercept_)[0]))
        return cls(coef, icpt, mean, std), {"svr_samples": int(len(idx)), "C": C}


class RichartClassifier:
    """Colour-class MLP: predicted class -> that class's U, V."""

    def __init__(self, model, centres):
        import tensorflow as tf

        self.model = model
        self.centres = np.asarray(centres, np.float32)
        self.input_dim = int(model.input_shape[-1])
        from ..tracing import Traced

        self._fn = Traced(lambda t: tf.argmax(model(t, training=False), axis=-1), any_rows=True)

    def predict(self, x, chunk_rows=65536):
        x = np.asarray(x, np.float32)
        out = np.empty((len(x), 2), np.float32)
        for s in range(0, len(x), chunk_rows):
            out[s : s + chunk_rows] = self.centres[self._fn(x[s : s + chunk_rows]).numpy()]
        return out

    def state(self):
        return {"centres": self.centres.tolist()}

    @classmethod
    def fit(cls, x, uv, val=None, n_colours=9, hidden=(50, 50), epochs=10, batch_size=1024, seed=0, **_):
        import keras

        from ..clustering import kmeans

        keras.utils.set_random_seed(seed)
        rng = np.random.default_rng(seed)
        sub = rng.permutation(len(uv))[:200_000]
        _, centres = kmeans(uv[sub], n_colours, seed)
        labels = np.argmin(((uv[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        mean, std = x.mean(0), np.where(x.std(0) > 1e-6, x.std(0), 1.0)
        layers = [keras.Input(shape=(x.shape[1],)), keras.layers.Normalization(mean=mean, variance=std**2)]
        layers += [keras.layers.Dense(h, activation="relu") for h in hidden]
        layers.append(keras.layers.Dense(n_colours, activation="softmax"))
        model = keras.Sequential(layers, name="richart_mlp")
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        val_data = None
        if val is not None:
            val_data = (val[0], np.argmin(((val[1][:, None, :] - centres[None]) ** 2).sum(-1), axis=1))
        hist = model.fit(x, labels, validation_data=val_data, epochs=epochs, batch_size=batch_size, verbose=0)
        return cls(model, centres), {k: [float(v) for v in vs] for k, vs in hist.history.items()}


BASELINES = {"mean_chroma": MeanChroma, "hog_svr": LinearSVRChroma, "richart": RichartClassifier}


def train_baseline(family, x, uv, val=None, seed=0, **kwargs):
    """Fit a baseline; returns (predictor, record)."""
    t0 = time.time()
    predictor, info = BASELINES[family].fit(x, uv, val=val, seed=seed, **kwargs)
    record = {"family": family, "samples": int(len(x)), "seconds": round(time.time() - t0, 2), **info}
    if val is not None:
        err = predictor.predict(val[0]) - val[1]
        record["best_val_loss"] = float(np.mean(err**2))
    return predictor, record


def save_baseline(model_dir, family, predictor, descriptor_config, record, refine):
    """Model directory for a baseline: ``model.json`` (+ ``classifier.keras`` for richart); `refine` is a
    RefineParams."""
    keras_files = {"classifier.keras": predictor.model} if family == "richart" else {}
    return write_model_dir(
        model_dir,
        family,
        record,
        refine,
        keras_files,
        descriptor=descriptor_config,
        input_dim=int(predictor.input_dim),
        state=predictor.state(),
    )


def _loader(family):
    def load(model_dir, meta, verify=True):
        st = meta["state"]
        if family == "mean_chroma":
            return MeanChroma(st["uv_mean"], meta["input_dim"])
        if family == "hog_svr":
            return LinearSVRChroma(st["coef"], st["intercept"], st["mean"], st["std"])
        model = load_verified_keras(
            os.path.join(model_dir, "classifier.keras"), meta["files"].get("classifier.keras"), META_FILE, verify
        )
        return RichartClassifier(model, st["centres"])

    return load


def _trainer(family):
    def train(x, uv, val, settings, init_dir=None, log_dir=None, log_prefix=""):
        kwargs = {"epochs": settings.epochs} if family == "richart" else {}
        return train_baseline(family, x, uv, val=val, seed=settings.seed, **kwargs)

    return train


def _saver(family):
    def save(model_dir, predictor, descriptor_config, record, refine):
        return save_baseline(model_dir, family, predictor, descriptor_config, record, refine)

    return save


def _register():
    from ..colorize import PixelColorizer
    from ..registry import Family, register

    summaries = {
        "mean_chroma": "every pixel gets the mean training U, V",
        "hog_svr": "Zhu, Zhao, Guo: luminance + HOG, linear SVR per channel",
        "richart": "Richart et al.: 9 colour classes, MLP on the 3x3 patch",
    }
    blocks = {"hog_svr": "luma,hog", "richart": "patch", "mean_chroma": "patch"}
    for name in BASELINES:
        register(
            Family(
                name,
                summaries[name],
                colorizer=PixelColorizer.load,
                load=_loader(name),
                train=_trainer(name),
                save=_saver(name),
                blocks=blocks[name],
            )
        )


_register()
