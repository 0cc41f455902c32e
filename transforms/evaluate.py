"""Beam DoFn of the evaluation job: colour image -> gray -> colorized -> scores and pictures."""
from __future__ import annotations

import posixpath
import time

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from colorize_tf.imageio import ImageDecodeError, decode_image, encode_image

from .fs import write_atomically
from .io import DEAD, dead_letter


class EvaluateDoFn(beam.DoFn):
    """`ImageFile` -> per-image record (psnr, psnr_gray, l_uv, l_uv_gray, cluster, seconds) + pictures.

    Writes ``REPORT/images/<id>_{gray,ours,truth}.jpg`` for the HTML page when
    `pictures` is on. Images without colour cannot be scored: dead letter.
    """

    def __init__(self, model_dir, report_dir, refine=None, tile=512, parser_dir=None, selection_k=None,
                 pictures=True, picture_side=320, baselines=None):
        self.model_dir, self.report_dir, self.refine, self.tile = model_dir, report_dir, refine, tile
        self.parser_dir, self.selection_k, self.pictures, self.picture_side = parser_dir, selection_k, pictures, \
            picture_side
        self.baselines = dict(baselines or {})  # name -> model directory, scored in the same pass
        self.scored = Metrics.counter("evaluate", "images_scored")
        self.bad = Metrics.counter("evaluate", "images_failed")

    def setup(self):
        from colorize_tf.colorize import load_colorizer
        from colorize_tf.refine import RefineParams

        from .fs import local_copy

        refine = RefineParams.parse(self.refine)
        parser_dir = local_copy(self.parser_dir)
        self.colorizer = load_colorizer(local_copy(self.model_dir), refine=refine, tile=self.tile,
                                        parser_dir=parser_dir, k=self.selection_k)
        self.others = {name: load_colorizer(local_copy(d), tile=self.tile, parser_dir=parser_dir)
                       for name, d in self.baselines.items()}

    def _picture(self, name, rgb):
        import cv2

        h, w = rgb.shape[:2]
        s = min(1.0, self.picture_side / float(max(h, w)))
        small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        rel = f"images/{name}.jpg"
        write_atomically(FileSystems.join(self.report_dir, rel), encode_image(small, "JPEG", quality=90))
        return rel

    def process(self, item):
        from colorize_tf.metrics import gray_baseline, l_uv, psnr, uv_of

        try:
            pic = decode_image(item.data)
        except ImageDecodeError as exc:
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(item.path, "decode", exc))
            return
        if pic.rgb is None:
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(item.path, "evaluate", "no colour ground truth"))
            return
        info = {}
        t0 = time.perf_counter()
        rgb, uv = self.colorizer.colorize(pic.gray, info=info)
        seconds = time.perf_counter() - t0
        truth_uv = uv_of(pic.rgb)
        gray_rgb = gray_baseline(pic.rgb)
        rec = {
            "image_id": item.image_id,
            "path": item.path,
            "height": int(pic.shape[0]),
            "width": int(pic.shape[1]),
            "cluster": info.get("cluster"),
            "psnr": psnr(rgb, pic.rgb),
            "psnr_gray": psnr(gray_rgb, pic.rgb),
            "l_uv": l_uv(uv, truth_uv),
            "l_uv_gray": l_uv(np.zeros_like(truth_uv), truth_uv),
            "seconds": seconds,
        }
        for name, col in self.others.items():
            b_rgb, b_uv = col.colorize(pic.gray)
            rec[f"psnr_{name}"] = psnr(b_rgb, pic.rgb)
            rec[f"l_uv_{name}"] = l_uv(b_uv, truth_uv)
        if self.pictures:
            safe = posixpath.normpath(item.image_id).replace("/", "__").replace("..", "_")
            rec["gray_image"] = self._picture(f"{safe}_gray", gray_rgb)
            rec["ours_image"] = self._picture(f"{safe}_ours", rgb)
            rec["truth_image"] = self._picture(f"{safe}_truth", pic.rgb)
        self.scored.inc()
        yield rec
