"""Beam DoFn training one chrominance regressor per element (a cluster of images)."""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import socket
import tempfile

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from colorize_tf.imageio import decode_image
from colorize_tf.parser import PARSER_FILE, PARSER_META

from .fs import copy_tree, local_copy, read_bytes

log = logging.getLogger(__name__)


def worker_id():
    """``host:pid`` of this worker process (recorded with each trained model)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class TrainRegressorDoFn(beam.DoFn):
    """Cluster spec -> trained model directory; yields a summary dict.

    An element is ``{"cluster_id", "train_ids", "val_ids", "val_paths", "model_dir"}``.
    A descriptor with a semantic block needs `parser_dir`; the parser is
    stored inside the model directory (``parser/``) so the model is self-contained.
    Samples are read from the feature job's TFRecords with tf.data; the
    refinement filter is tuned on the held-out images' PSNR.
    """

    def __init__(self, shards, descriptor_config, train_kwargs, tune_images=32, refine=None, parser_dir=None,
                 family="regressor", columns=None):
        self.shards = shards
        self.family = family
        self.columns = None if columns is None else list(columns)  # block ablation: descriptor columns kept
        self.parser_dir = parser_dir
        self.descriptor_config = descriptor_config
        self.train_kwargs = train_kwargs
        self.tune_images = tune_images
        self.refine = refine
        self.trained = Metrics.counter("training", "models_trained")
        self.samples = Metrics.counter("training", "samples_seen")

    def setup(self):
        from colorize_tf.parser import SceneParser, needs_parser

        self.context = {}
        self._start_models = {}  # model dir -> network that clusters fine-tune (loaded once per worker)
        if needs_parser(self.descriptor_config):  # the descriptor's semantic block, for tuning
            self.context["parser"] = SceneParser.load(local_copy(self.parser_dir))

    def _load(self, serialized, ids):
        from colorize_tf import records

        if serialized is None:
            return records.load_samples([local_copy(s) for s in self.shards], ids)  # tf.data reads local files
        return records.samples_from_serialized(serialized, ids)

    def process(self, element, specs=None):
        """`element` is a spec (samples read from the shards) or ``(cluster_id, serialised examples)``
        grouped by cluster upstream, with the specs by id in `specs`."""
        from colorize_tf import regressor, tuning
        from colorize_tf.features import Descriptor
        from colorize_tf.refine import RefineParams

        if isinstance(element, dict):
            spec, serialized = element, None
        else:
            spec, serialized = specs[element[0]], list(element[1])
        load = functools.partial(self._load, serialized)
        cid = spec["cluster_id"]
        x, uv, ids, _ = load(spec["train_ids"])
        if self.columns is not None:
            x = np.ascontiguousarray(x[:, self.columns])
        val = None
        if spec.get("val_ids"):
            vx, vuv, _, _ = load(spec["val_ids"])
            val = (vx if self.columns is None else np.ascontiguousarray(vx[:, self.columns]), vuv)
        log.info("cluster %s: training on %d images / %d samples (%d val samples)",
                 cid, len(ids), len(x), 0 if val is None else len(val[0]))
        tmp = tempfile.mkdtemp(prefix=f"train-{cid}-")
        try:
            if self.family == "regressor":
                init = None
                if spec.get("init_model_dir"):  # fine-tune the all-images regressor
                    init_dir = spec["init_model_dir"]
                    if init_dir not in self._start_models:
                        self._start_models[init_dir] = regressor.Regressor.load(local_copy(init_dir)).model
                    init = self._start_models[init_dir]
                kwargs = dict(self.train_kwargs)
                if init is not None and spec.get("learning_rate"):
                    kwargs["learning_rate"] = spec["learning_rate"]
                model, record = regressor.train_regressor(
                    x, uv, val=val, log_dir=os.path.join(tmp, "tensorboard"), log_prefix=f"cluster {cid}: ",
                    init_model=init, **kwargs
                )
                predictor = regressor.Regressor(model, {"input_dim": x.shape[1]})
            else:
                from colorize_tf.baselines import train_baseline

                kwargs = {"epochs": self.train_kwargs.get("epochs", 10)} if self.family == "richart" else {}
                predictor, record = train_baseline(self.family, x, uv, val=val, seed=self.train_kwargs.get("seed", 0),
                                                   **kwargs)
                record.setdefault("epochs_run", record.get("epochs", 0))
            record.update(images=int(len(ids)), cluster_id=cid)
            log.info("cluster %s (%s): %s epochs, best loss %.5f val %.5f", cid, self.family, record.get("epochs_run"),
                     record.get("best_loss", float("nan")), record.get("best_val_loss", float("nan")))
            refine = RefineParams(**self.refine) if self.refine else RefineParams()
            paths = list(spec.get("val_paths") or [])[: self.tune_images]
            if self.refine is None and paths:
                pics = [decode_image(read_bytes(p)) for p in paths]
                desc = Descriptor.from_config(self.descriptor_config, **self.context)
                refine, table = tuning.tune_refinement(
                    [p.gray for p in pics], [p.rgb for p in pics], predictor, desc
                )
                record["refine_tuning"] = {"images": len(pics), "grid": table}
                log.info("cluster %s: refinement tuned on %d held-out images: %s", cid, len(pics), refine)
            if self.family == "regressor":
                meta = regressor.save_model_dir(os.path.join(tmp, "model"), model, self.descriptor_config, record,
                                                refine=dataclasses.asdict(refine))
            else:
                from colorize_tf.baselines import save_baseline

                meta = save_baseline(os.path.join(tmp, "model"), self.family, predictor, self.descriptor_config,
                                     record, refine=dataclasses.asdict(refine))
            if spec.get("with_parser", True) and self.context.get("parser") is not None:
                # the model carries its parser, byte for byte
                os.makedirs(os.path.join(tmp, "model", "parser"))
                for name in (PARSER_FILE, PARSER_META):
                    with open(os.path.join(tmp, "model", "parser", name), "wb") as fout:
                        fout.write(read_bytes(FileSystems.join(self.parser_dir, name)))
            if os.path.isdir(os.path.join(tmp, "tensorboard")):
                copy_tree(os.path.join(tmp, "tensorboard"), FileSystems.join(spec["model_dir"], "tensorboard"))
            copy_tree(os.path.join(tmp, "model"), spec["model_dir"])  # model.json last: present = complete
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.trained.inc()
        self.samples.inc(len(x))
        yield {
            "cluster_id": cid,
            "model_dir": spec["model_dir"],
            "images": int(len(ids)),
            "samples": int(len(x)),
            "best_loss": record.get("best_loss"),
            "best_val_loss": record.get("best_val_loss"),
            "refine": meta["refine"],
            "worker": worker_id(),
        }


class MeasurePSNRDoFn(beam.DoFn):
    """(cluster_id, model_dir, image_id, path) -> {"cluster_id", "image_id", "psnr"}.

    Colorizes a reference image with its cluster's model (training error
    E(I) = -PSNR of Algorithm 3). Models are small (tens of kB) and cached per
    worker (images arrive in any order, so the cache holds a layer's models);
    the scene parser, if the descriptor needs one, is loaded once in `setup()`.
    """

    def __init__(self, parser_dir=None, cache_size=256):
        self.parser_dir = parser_dir
        self.cache_size = cache_size
        self.measured = Metrics.counter("training", "psnr_measured")
        self.failed = Metrics.counter("training", "psnr_failed")

    def setup(self):
        self._cache = {}
        self._parser = None
        if self.parser_dir:
            from colorize_tf.parser import SceneParser

            self._parser = SceneParser.load(local_copy(self.parser_dir))

    def _colorizer(self, model_dir):
        from colorize_tf.colorize import Colorizer

        if model_dir not in self._cache:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[model_dir] = Colorizer.load(local_copy(model_dir), tile=0, parser=self._parser)
        return self._cache[model_dir]

    def process(self, item):
        from colorize_tf.metrics import psnr

        cluster_id, model_dir, image_id, path = item
        try:
            pic = decode_image(read_bytes(path))
            rgb, _ = self._colorizer(model_dir).colorize(pic.gray)
            value = psnr(rgb, pic.rgb)
        except Exception as exc:  # an unreadable reference image must not stop the layer
            self.failed.inc()
            log.warning("PSNR of %s failed: %s", path, exc)
            value = float("nan")
        self.measured.inc()
        yield {"cluster_id": cluster_id, "image_id": image_id, "psnr": value}


class KeyByClusterDoFn(beam.DoFn):
    """Serialised Example -> (cluster_id, example) for images in a cluster of this layer; others dropped."""

    def __init__(self, cluster_of):
        self.cluster_of = cluster_of  # image_id -> cluster_id

    def process(self, serialized):
        from colorize_tf.records import example_image_id

        cid = self.cluster_of.get(example_image_id(serialized))
        if cid is not None:
            yield cid, serialized
