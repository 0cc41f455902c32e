"""Inference of a trained Keras functional model in NumPy and OpenCV, without importing TensorFlow.

TensorFlow takes ~5 s and ~600 MB to import; colorizing one photo from the command line should not. A
model trained with Keras is exported once (`export`: its functional graph as JSON and its weights as arrays,
one ``.npz`` file) and run here layer by layer on one image (H, W, C), with the layer kinds the project's
networks use (`OPS`): convolutions as one matrix product over shifted views (TensorFlow's ``same`` padding),
batch and group normalisation in inference form, bilinear resizing as TensorFlow's (half-pixel centres,
which OpenCV's ``INTER_LINEAR`` also uses), dense layers and nested models (the scene parser's encoder).
`tests/test_npnet.py` checks outputs against Keras.
"""

from __future__ import annotations

import io
import json
from typing import Dict, List

import numpy as np

GRAPH_KEY = "__graph__"


# -- export (needs Keras) -----------------------------------------------------------------------------------


def export(model) -> bytes:
    """A Keras functional model as ``.npz`` bytes: the graph (``get_config()``, JSON) and every layer's
    weights (``LAYER/I``, nested models' layers as ``MODEL/LAYER/I``)."""
    arrays: Dict[str, np.ndarray] = {}

    def collect(m, prefix):
        for layer in m.layers:
            if hasattr(layer, "layers") and layer.__class__.__name__ == "Functional":
                collect(layer, f"{prefix}{layer.name}/")
                continue
            for i, w in enumerate(layer.get_weights()):
                arrays[f"{prefix}{layer.name}/{i}"] = np.asarray(w, np.float32)

    collect(model, "")
    graph = json.dumps(model.get_config()).encode("utf-8")
    arrays[GRAPH_KEY] = np.frombuffer(graph, np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# -- inference (NumPy + OpenCV) --------------------------------------------------------------------------------


def _same_pad(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def conv2d(x, kernel, bias=None, strides=(1, 1)):
    """TensorFlow's ``Conv2D(padding="same")`` on one image: x (H, W, Cin), kernel (kh, kw, Cin, Cout)."""
    kh, kw, cin, cout = kernel.shape
    sh, sw = strides
    h, w, _ = x.shape
    if kh == kw == 1 and sh == sw == 1:
        y = x.reshape(-1, cin) @ kernel.reshape(cin, cout)
        y = y.reshape(h, w, cout)
    else:
        oh, pt, pb = _same_pad(h, kh, sh)
        ow, pl, pr = _same_pad(w, kw, sw)
        xp = np.pad(x, ((pt, pb), (pl, pr), (0, 0)))
        cols = np.empty((oh, ow, kh, kw, cin), x.dtype)
        for i in range(kh):
            for j in range(kw):
                cols[:, :, i, j, :] = xp[i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
        y = (cols.reshape(oh * ow, kh * kw * cin) @ kernel.reshape(kh * kw * cin, cout)).reshape(oh, ow, cout)
    if bias is not None:
        y += bias
    return y


def resize_bilinear(x, height, width):
    """TensorFlow's bilinear resize (half-pixel centres, no antialiasing) of (H, W, C), any C."""
    import cv2

    if x.shape[0] == height and x.shape[1] == width:
        return x
    chunks = [
        cv2.resize(np.ascontiguousarray(x[..., c : c + 128]), (width, height), interpolation=cv2.INTER_LINEAR)
        for c in range(0, x.shape[-1], 128)  # OpenCV takes at most 255 channels per call
    ]
    chunks = [c[..., None] if c.ndim == 2 else c for c in chunks]
    return np.concatenate(chunks, -1) if len(chunks) > 1 else chunks[0]


def _activation(name, y):
    if name in (None, "linear"):
        return y
    if name == "relu":
        return np.maximum(y, 0.0)
    raise ValueError(f"activation {name!r} is not supported by the NumPy runtime")


def _conv(cfg, w, args):
    kernel = w[0]
    bias = w[1] if cfg.get("use_bias", True) else None
    pointwise = kernel.shape[:2] == (1, 1) and tuple(cfg["strides"]) == (1, 1)  # 'valid' = 'same' there
    if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1) or cfg.get("groups", 1) != 1:
        raise ValueError(f"Conv2D {cfg['name']}: dilation and groups are not supported")
    if cfg["padding"] != "same" and not pointwise:
        raise ValueError(f"Conv2D {cfg['name']}: only padding='same' (or a 1x1 convolution)")
    return _activation(cfg.get("activation"), conv2d(args[0], kernel, bias, tuple(cfg["strides"])))


def _batch_norm(cfg, w, args):
    k = 0
    gamma = beta = None
    if cfg.get("scale", True):
        gamma, k = w[k], k + 1
    if cfg.get("center", True):
        beta, k = w[k], k + 1
    mean, var = w[k], w[k + 1]
    inv = 1.0 / np.sqrt(var + cfg["epsilon"])
    if gamma is not None:
        inv = inv * gamma
    y = (args[0] - mean) * inv
    return y + beta if beta is not None else y


def _scale_centre(cfg, w, y):
    """A normalisation layer's learnt gamma, then beta, where its config has them (weights in that order)."""
    k = 0
    if cfg.get("scale", True):
        y, k = y * w[k], k + 1
    if cfg.get("center", True):
        y = y + w[k]
    return y


def _group_norm(cfg, w, args):
    x = args[0]
    h, wd, c = x.shape
    g = cfg["groups"]
    xg = x.reshape(h, wd, g, c // g)
    mean = xg.mean(axis=(0, 1, 3), keepdims=True)
    var = xg.var(axis=(0, 1, 3), keepdims=True)
    return _scale_centre(cfg, w, ((xg - mean) / np.sqrt(var + cfg["epsilon"])).reshape(h, wd, c))


def _layer_norm(cfg, w, args):
    axis = cfg.get("axis", -1)
    if axis not in (-1, [-1], [2], 2, [3], 3):
        raise ValueError(f"LayerNormalization {cfg['name']}: only over the channel axis")
    x = args[0]
    mean = x.mean(axis=-1, keepdims=True)
    return _scale_centre(cfg, w, (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + cfg["epsilon"]))


def _relu(cfg, w, args):
    if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
        raise ValueError(f"ReLU {cfg['name']}: only the plain form is supported")
    return np.maximum(args[0], 0.0)


def _upsample(cfg, w, args):
    x = args[0]
    if cfg.get("interpolation") != "bilinear":
        raise ValueError(f"UpSampling2D {cfg['name']}: only bilinear")
    sh, sw = cfg["size"]
    return resize_bilinear(x, x.shape[0] * sh, x.shape[1] * sw)


def _resizing(cfg, w, args):
    if cfg.get("interpolation") != "bilinear" or cfg.get("crop_to_aspect_ratio") or cfg.get("pad_to_aspect_ratio"):
        raise ValueError(f"Resizing {cfg['name']}: only plain bilinear")
    return resize_bilinear(args[0], cfg["height"], cfg["width"])


def _gap(cfg, w, args):
    y = args[0].mean(axis=(0, 1))
    return y[None, None, :] if cfg.get("keepdims") else y


def _dense(cfg, w, args):
    y = args[0] @ w[0]
    if cfg.get("use_bias", True):
        y = y + w[1]
    return _activation(cfg.get("activation"), y)


OPS = {
    "Conv2D": _conv,
    "BatchNormalization": _batch_norm,
    "GroupNormalization": _group_norm,
    "LayerNormalization": _layer_norm,
    "ReLU": _relu,
    "UpSampling2D": _upsample,
    "Resizing": _resizing,
    "GlobalAveragePooling2D": _gap,
    "Dense": _dense,
    "Add": lambda cfg, w, args: sum(args[1:], args[0]),
    "Concatenate": lambda cfg, w, args: np.concatenate(args, axis=cfg.get("axis", -1)),
    "Flatten": lambda cfg, w, args: args[0].reshape(-1),
    "Reshape": lambda cfg, w, args: args[0].reshape(tuple(cfg["target_shape"])),
    "Rescaling": lambda cfg, w, args: args[0] * cfg["scale"] + cfg["offset"],
}


def _refs(spec):
    """``input_layers`` / ``output_layers`` of a config: one [name, node, index] or a list of them."""
    return [spec] if spec and isinstance(spec[0], str) else list(spec)


def _inputs(node):
    """Names and output indices of the tensors a layer's (single) call takes."""
    refs = []

    def walk(v):
        if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
            name, _, index = v["config"]["keras_history"]
            refs.append((name, index))
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item)

    walk(node["args"])
    return refs


class NumpyNet:
    """A Keras functional model exported by `export`, run on one image: ``net(x)`` with x (H, W, C) float32
    returns the model's outputs (a list when it has several).

    The batch axis is dropped throughout: (H, W, C) feature maps, (C,) vectors.
    """

    def __init__(self, graph: dict, weights: Dict[str, np.ndarray], prefix: str = ""):
        self.graph, self.prefix = graph, prefix
        self.layers: List[dict] = graph["layers"]
        self.weights = weights
        self.subnets = {}
        for layer in self.layers:
            if len(layer["inbound_nodes"]) > 1:
                raise ValueError(f"layer {layer['name']} is called more than once; not supported")
            cls = layer["class_name"]
            if cls in ("Functional", "Model"):
                self.subnets[layer["name"]] = NumpyNet(layer["config"], weights, f"{prefix}{layer['name']}/")
            elif cls != "InputLayer" and cls not in OPS:
                raise ValueError(f"layer kind {cls} ({layer['name']}) is not supported by the NumPy runtime")

    @classmethod
    def load(cls, path_or_bytes):
        data = np.load(io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes)
        arrays = {k: data[k] for k in data.files}
        graph = json.loads(arrays.pop(GRAPH_KEY).tobytes().decode("utf-8"))
        return cls(graph, arrays)

    def _weights(self, name):
        out, i = [], 0
        while f"{self.prefix}{name}/{i}" in self.weights:
            out.append(self.weights[f"{self.prefix}{name}/{i}"])
            i += 1
        return out

    def __call__(self, *inputs):
        values: Dict[str, list] = {}
        for (name, _, _), x in zip(_refs(self.graph["input_layers"]), inputs):
            values[name] = [np.asarray(x, np.float32)]
        for layer in self.layers:
            name, cls = layer["name"], layer["class_name"]
            if cls == "InputLayer":
                continue
            args = [values[n][i] for n, i in _inputs(layer["inbound_nodes"][0])]
            if name in self.subnets:
                out = self.subnets[name](*args)
                values[name] = out if isinstance(out, list) else [out]
            else:
                values[name] = [OPS[cls](layer["config"], self._weights(name), args).astype(np.float32, copy=False)]
        outs = [values[n][i] for n, _, i in _refs(self.graph["output_layers"])]
        return outs if len(outs) > 1 else outs[0]
