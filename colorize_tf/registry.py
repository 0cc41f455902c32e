"""Model families and the one loader for any model directory.

A family is a way to turn training data into a model directory and a model directory into a
colorizer. Each family registers four entries with one signature per entry (`Family`); callers never
branch on family names:

>>> from colorize_tf import registry
>>> col = registry.load_colorizer("runs/sf_bundle")          # any model directory or bundle
>>> out = col.colorize(gray)                                 # -> colorize_tf.colorize.Colorized
>>> out.rgb, out.uv, out.cluster, out.timing.total

Adding a family (e.g. a convolutional net trained on whole images)::

    registry.register(registry.Family(
        name="fusion", summary="Iizuka et al. 2016", blocks=None,
        train=train_fusion,        # (x, uv, val, settings: TrainSettings, init_dir) -> (predictor, record)
        save=save_fusion,          # (model_dir, predictor, descriptor_config, record, refine) -> meta
        load=load_fusion,          # (model_dir, meta, verify) -> predictor
        colorizer=FusionColorizer.load,  # (path, settings: ColorizeSettings) -> object with colorize(gray)
    ))

``model.json`` names its family (``"family"``; absent = ``"regressor"``); a folder with ``bundle.json``
is the ``"bundle"`` family (clusters of regressors, Algorithm 3). Built-in families register when
their modules are imported; `get` imports them on first use.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from typing import Callable, Dict, Optional, Tuple

from .refine import RefineParams


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How a family fits one model (one cluster's samples)."""

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 1e-3
    patience: int = 3
    seed: int = 0
    lr_schedule: str = "plateau"


@dataclasses.dataclass(frozen=True)
class ColorizeSettings:
    """How a loaded model colorizes (None = what the model directory stores).

    Attributes
    ----------
    refine : RefineParams, optional
        Overrides the stored (tuned) refinement.
    tile : int
        Tile side in pixels (0 = whole image at once).
    parser_dir : str, optional
        Scene parser to use instead of the one stored with the model.
    selection_k : int, optional
        Bundles: top-k clusters by GIST, then the semantic histogram decides.
    selection_layers : tuple of int, optional
        Bundles: layers whose clusters are candidates (empty tuple = all layers).
    stride : int, optional
        Prediction stride (`colorize_tf.colorize.predict_uv`).
    temperature : float, optional
        Classification models: annealed-mean temperature (1 = mean, lower = more vivid, -> 0 = mode).
    mode : str, optional
        ``faithful`` (PSNR-optimal) or ``vivid`` (colourful), where the model offers it (`resolve_mode`);
        None = the model's default.
    chroma_gain : float, optional
        Models with modes: the chosen mode's chroma multiplier (None = the mode's own: 1 for faithful, the
        vivid mode's calibrated on validation); with ``colourfulness``, the largest per-image multiplier.
    colourfulness : float, optional
        Models with modes: bring each image's chroma to this colourfulness (Hasler & Suesstrunk M; everyday
        photos ~30-45), multiplying by 1 .. ``chroma_gain`` (`colorize_tf.fusion.colourfulness_gain`); 0 = a
        fixed multiplier; None = the mode's own (the vivid mode's target calibrated on validation, if any).
    cast : float, optional
        Models with modes: the share of the multiplier for each image's mean chroma (`colorize_tf.fusion.saturate`:
        1 = all chroma alike, 0.5 = the overall tint grows half as fast as the spread); None = the mode's own.
    runtime : str, optional
        ``"numpy"`` runs a network exported for `colorize_tf.npnet` without importing TensorFlow (fast
        start-up, slower per image); ``"keras"`` or None: Keras / TensorFlow.
    """

    refine: Optional[RefineParams] = None
    tile: int = 512
    parser_dir: Optional[str] = None
    selection_k: Optional[int] = None
    selection_layers: Optional[Tuple[int, ...]] = None
    stride: Optional[int] = None
    temperature: Optional[float] = None
    mode: Optional[str] = None
    chroma_gain: Optional[float] = None
    colourfulness: Optional[float] = None
    cast: Optional[float] = None
    runtime: Optional[str] = None


#: Colorization modes: ``faithful`` predicts the chroma that minimises the expected squared error (PSNR-optimal,
#: muted where the colour is uncertain); ``vivid`` commits to likely colours (colourfulness near the truth's).
MODES = ("faithful", "vivid")


def resolve_mode(modes, requested=None, default=""):
    """The mode to use: ``requested`` if the model offers it, else its ``default`` (or first) mode.

    Parameters
    ----------
    modes : dict or sequence of str
        The modes a model offers.
    requested : str, optional
    default : str

    Raises
    ------
    ValueError
        When ``requested`` is not among ``modes``.
    """
    names = list(modes)
    if requested:
        if requested not in names:
            raise ValueError(f"this model has no {requested!r} mode; it offers: {', '.join(names)}")
        return requested
    return default or names[0]


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family's entries (see the module docstring for their signatures)."""

    name: str
    summary: str
    colorizer: Callable
    load: Optional[Callable] = None
    train: Optional[Callable] = None
    save: Optional[Callable] = None
    blocks: Optional[str] = None  # descriptor blocks the family's paper uses (None: any)
    data: str = "samples"  # what `train` learns from: sampled pixels (feature job) or "images" (image records)

    @property
    def trainable(self):
        return self.train is not None


_FAMILIES: Dict[str, Family] = {}
_BUILTINS = ("colorize_tf.regressor", "colorize_tf.baselines", "colorize_tf.colorize", "colorize_tf.fusion")


def register(family: Family):
    """Add (or replace) a family."""
    _FAMILIES[family.name] = family
    return family


@functools.lru_cache(maxsize=1)
def _import_builtins():
    import importlib

    for module in _BUILTINS:
        importlib.import_module(module)
    return True


def families() -> Dict[str, Family]:
    """All registered families by name."""
    _import_builtins()
    return dict(_FAMILIES)


def trainable_names(data="samples"):
    """Families trained from `data`: ``pipelines.train --family`` (sampled pixels) or
    ``pipelines.train_images`` (image records)."""
    return sorted(n for n, f in families().items() if f.trainable and f.data == data)


def get(name) -> Family:
    fams = families()
    if name not in fams:
        raise ValueError(f"unknown model family {name!r} (known: {', '.join(sorted(fams))})")
    return fams[name]


def family_of(path) -> str:
    """The family of a local model directory or bundle."""
    from .bundle import is_bundle
    from .regressor import read_metadata

    if is_bundle(path):
        return "bundle"
    return read_metadata(path).get("family", "regressor")


def load_predictor(model_dir, verify=True):
    """The per-pixel predictor of a model directory (``predict(x) -> (N, 2)``, ``input_dim``, ``meta``)."""
    from .regressor import read_metadata

    meta = read_metadata(model_dir)
    fam = get(meta.get("family", "regressor"))
    if fam.load is None:
        raise ValueError(f"{model_dir}: family {fam.name} has no per-pixel predictor")
    predictor = fam.load(model_dir, meta, verify)
    predictor.meta = meta
    return predictor


#: The model every command uses when ``--model`` is not given: ``colorize_tf/models/general``, shipped as
#: package data (made by ``python -m pipelines.release``; see its ``MODEL.md``).
SHIPPED_MODEL = "shipped:general"
_SHIPPED_PREFIX = "shipped:"


def resolve_model(spec):
    """The local directory of a model spec: ``"shipped:NAME"`` is the model shipped in the package
    (``colorize_tf/models/NAME``, wherever the package is installed: on a remote worker too); any other spec
    is a path and comes back unchanged.

    Raises
    ------
    FileNotFoundError
        When the shipped model is not in this installation.
    """
    if not isinstance(spec, str) or not spec.startswith(_SHIPPED_PREFIX):
        return spec
    name = spec[len(_SHIPPED_PREFIX) :]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", name)
    if not os.path.isfile(os.path.join(path, "model.json")):
        known = sorted(os.listdir(os.path.dirname(path))) if os.path.isdir(os.path.dirname(path)) else []
        raise FileNotFoundError(
            f"no shipped model {name!r} in this installation ({path}); shipped: {', '.join(known) or 'none'}"
        )
    return path


def load_colorizer(path, settings: ColorizeSettings = ColorizeSettings()):
    """A colorizer for any local model directory or bundle (or `SHIPPED_MODEL`): ``colorize(gray) ->
    Colorized``.

    Families without modes of their own (regressors, bundles, baselines) are ``faithful``; asking them for
    another mode is a ValueError.
    """
    path = resolve_model(path)
    colorizer = get(family_of(path)).colorizer(path, settings)
    if not hasattr(colorizer, "modes"):
        resolve_mode(("faithful",), settings.mode)
        if settings.chroma_gain is not None or settings.colourfulness is not None or settings.cast is not None:
            raise ValueError(
                "a chroma gain or colourfulness target applies to models with a vivid mode; this one has none"
            )
    return colorizer


_PARSER_LOCK = threading.Lock()
_PARSERS: Dict[str, object] = {}


def load_parser(directory):
    """The scene parser in `directory`, loaded once per process (thread-safe)."""
    from .parser import SceneParser

    key = os.path.realpath(directory)
    with _PARSER_LOCK:
        if key not in _PARSERS:
            _PARSERS[key] = SceneParser.load(directory)
        return _PARSERS[key]


def load_descriptor(config, parser_dir=None):
    """The `Descriptor` of a stored block configuration; a semantic block gets the parser in `parser_dir`
    (one per process). The only place that wires parsers into descriptors."""
    from .features import Descriptor
    from .parser import needs_parser

    context = {}
    if needs_parser(config):
        if not parser_dir:
            raise ValueError("the descriptor has a semantic block but no scene parser was given")
        context["parser"] = load_parser(parser_dir)
    return Descriptor.from_config(config, **context)


def stored_parser(model_dir, parser_dir=None):
    """`parser_dir` if given, else the parser a model directory carries (``MODEL/parser``)."""
    return parser_dir or os.path.join(model_dir, "parser")
