"""Beam DoFn training one chrominance regressor per element (a cluster of images)."""

from __future__ import annotations

import dataclasses
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
from .io import DEAD, dead_letter, decode_colour

log = logging.getLogger(__name__)


def worker_id():
    """``host:pid`` of this worker process (recorded with each trained model)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class TrainRegressorDoFn(beam.DoFn):
    """Cluster spec -> trained model directory; yields a summary dict.

    An element is a spec ``{"cluster_id", "train_ids", "val_ids", "tune_paths", "model_dir", ...}``
    (samples read from the shards) or ``(cluster_id, serialised examples)`` grouped by cluster upstream,
    with the specs by id as side input `specs`. The family (colorize_tf.registry) fits the model; with
    `refine` None the joint bilateral refinement is tuned on the ``tune_paths`` images. A descriptor with
    a semantic block needs `parser_dir`; the root model stores a copy (``parser/``), so it is
    self-contained.

    Parameters
    ----------
    shards : list of str
    descriptor_config : list of dict
    settings : colorize_tf.registry.TrainSettings
    refine : colorize_tf.refine.RefineParams, optional
        Fixed refinement; None = tune.
    parser_dir : str, optional
    family : str
    columns : list of int, optional
        Descriptor columns kept (block ablations).
    """

    def __init__(
        self, shards, descriptor_config, settings, refine=None, parser_dir=None, family="regressor", columns=None
    ):
        self.shards = shards
        self.family = family
        self.columns = None if columns is None else list(columns)
        self.parser_dir = parser_dir
        self.descriptor_config = descriptor_config
        self.settings = settings
        self.refine = refine
        self.trained = Metrics.counter("training", "models_trained")
        self.samples = Metrics.counter("training", "samples_seen")

    def _samples(self, serialized, ids):
        """(x, uv, ids) of `ids`, with the kept columns only."""
        from colorize_tf import records

        if serialized is None:  # tf.data reads local files
            x, uv, found, _ = records.load_samples([local_copy(s) for s in self.shards], ids)
        else:
            x, uv, found, _ = records.samples_from_serialized(serialized, ids)
        if self.columns is not None:
            x = np.ascontiguousarray(x[:, self.columns])
        return x, uv, found

    def _tune(self, spec, predictor, record):
        """The refinement: fixed, or tuned on the spec's tuning images (recorded in `record`)."""
        from colorize_tf import tuning
        from colorize_tf.refine import RefineParams
        from colorize_tf.registry import load_descriptor

        paths = list(spec.get("tune_paths") or [])
        if self.refine is not None or not paths:
            return self.refine or RefineParams()
        pics = [decode_image(read_bytes(p)) for p in paths]
        desc = load_descriptor(self.descriptor_config, local_copy(self.parser_dir))
        refine, table = tuning.tune_refinement([p.gray for p in pics], [p.rgb for p in pics], predictor, desc)
        record["refine_tuning"] = {"images": len(pics), "grid": table}
        log.info("cluster %s: refinement tuned on %d validation images: %s", spec["cluster_id"], len(pics), refine)
        return refine

    def _write(self, spec, fam, predictor, record, refine, tmp):
        """Save into `tmp`, add the parser copy, then copy to the spec's model directory (model.json last)."""
        model_tmp = os.path.join(tmp, "model")
        meta = fam.save(model_tmp, predictor, self.descriptor_config, record, refine)
        if spec.get("with_parser", True) and self.parser_dir:
            os.makedirs(os.path.join(model_tmp, "parser"))
            for name in (PARSER_FILE, PARSER_META):  # the model carries its parser, byte for byte
                with open(os.path.join(model_tmp, "parser", name), "wb") as fout:
                    fout.write(read_bytes(FileSystems.join(self.parser_dir, name)))
        if os.path.isdir(os.path.join(tmp, "tensorboard")):
            copy_tree(os.path.join(tmp, "tensorboard"), FileSystems.join(spec["model_dir"], "tensorboard"))
        copy_tree(model_tmp, spec["model_dir"])
        return meta

    def process(self, element, specs=None):
        from colorize_tf import registry

        spec, serialized = (element, None) if isinstance(element, dict) else (specs[element[0]], list(element[1]))
        cid = spec["cluster_id"]
        x, uv, ids = self._samples(serialized, spec["train_ids"])
        val = self._samples(serialized, spec["val_ids"])[:2] if spec.get("val_ids") else None
        log.info(
            "cluster %s: training on %d images / %d samples (%d val samples)",
            cid,
            len(ids),
            len(x),
            0 if val is None else len(val[0]),
        )
        fam = registry.get(self.family)
        settings = self.settings
        if spec.get("init_model_dir") and spec.get("learning_rate"):
            settings = dataclasses.replace(settings, learning_rate=spec["learning_rate"])
        init_dir = local_copy(spec["init_model_dir"]) if spec.get("init_model_dir") else None
        tmp = tempfile.mkdtemp(prefix=f"train-{cid}-")
        try:
            predictor, record = fam.train(
                x,
                uv,
                val,
                settings,
                init_dir=init_dir,
                log_dir=os.path.join(tmp, "tensorboard"),
                log_prefix=f"cluster {cid}: ",
            )
            record.update(images=int(len(ids)), cluster_id=cid)
            log.info(
                "cluster %s (%s): %s epochs, best loss %.5f val %.5f",
                cid,
                self.family,
                record.get("epochs_run", "-"),
                record.get("best_loss", float("nan")),
                record.get("best_val_loss", float("nan")),
            )
            refine = self._tune(spec, predictor, record)
            meta = self._write(spec, fam, predictor, record, refine, tmp)
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


class ReferenceImageDoFn(beam.DoFn):
    """``(model_dir, image_id, path)`` -> ``(model_dir, ImageExample)`` for RunInference; an unreadable
    reference image is a dead letter (counted; Algorithm 3 reports it and goes on without it)."""

    def __init__(self):
        self.failed = Metrics.counter("training", "reference_images_unreadable")

    def process(self, item):
        from .inference import ImageExample

        model_dir, image_id, path = item
        try:
            pic, dead = decode_colour(read_bytes(path), path, "reference")
        except OSError as exc:  # vanished or unreadable since the feature job
            pic, dead = None, dead_letter(path, "read", exc)
        if dead is not None:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead)
            return
        yield model_dir, ImageExample(image_id, path, pic.gray, pic.rgb)


def psnr_row(result, cluster_of_dir):
    """RunInference's PredictionResult (model_id = the cluster's model directory) ->
    ``{"cluster_id", "image_id", "psnr"}``: the training error E(I) = -PSNR of Algorithm 3."""
    from colorize_tf.metrics import psnr

    pred = result
    ex = pred.example
    return {
        "cluster_id": cluster_of_dir[pred.model_id],
        "image_id": ex.image_id,
        "psnr": psnr(pred.inference.rgb, ex.rgb),
    }


class KeyByClusterDoFn(beam.DoFn):
    """Serialised Example -> (cluster_id, example) for images in a cluster of this layer; others dropped."""

    def __init__(self, cluster_of):
        self.cluster_of = cluster_of  # image_id -> cluster_id

    def process(self, serialized):
        from colorize_tf.records import example_image_id

        cid = self.cluster_of.get(example_image_id(serialized))
        if cid is not None:
            yield cid, serialized
