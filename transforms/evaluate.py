"""Beam steps of the evaluation job: colour image -> example (gray + truth) -> [RunInference] -> scores and pictures."""

from __future__ import annotations

import posixpath

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from colorize_tf.imageio import encode_image

from .fs import write_atomically
from .io import DEAD, decode_colour


class ReadForEvaluationDoFn(beam.DoFn):
    """`ImageFile` -> `ImageExample` (luminance + colour truth); undecodable or colourless images are dead
    letters (they cannot be scored)."""

    def __init__(self):
        self.bad = Metrics.counter("evaluate", "images_failed")

    def process(self, item):
        from .inference import ImageExample

        pic, dead = decode_colour(item.data, item.path, "evaluate")
        if dead is not None:
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead)
            return
        yield ImageExample(item.image_id, item.path, pic.gray, pic.rgb)


class ScoreDoFn(beam.DoFn):
    """RunInference's PredictionResult(ImageExample, {name: Colorized}) -> per-image record (``psnr``,
    ``psnr_gray``, ``l_uv``, ``l_uv_gray``, ``colourfulness``, ``colourfulness_truth``, ``cluster``,
    ``seconds``, and ``psnr_NAME`` / ``l_uv_NAME`` per comparator) + pictures.

    Writes ``REPORT/images/<id>_{gray,ours,truth}.jpg`` for the HTML page when `pictures` is on.
    """

    def __init__(self, report_dir, main="model", pictures=True, picture_side=320):
        self.report_dir, self.main, self.pictures, self.picture_side = report_dir, main, pictures, picture_side
        self.scored = Metrics.counter("evaluate", "images_scored")

    def _picture(self, name, rgb):
        import cv2

        h, w = rgb.shape[:2]
        s = min(1.0, self.picture_side / float(max(h, w)))
        small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        rel = f"images/{name}.jpg"
        write_atomically(FileSystems.join(self.report_dir, rel), encode_image(small, "JPEG", quality=90))
        return rel

    def process(self, result):
        from colorize_tf.metrics import colourfulness, gray_baseline, l_uv, psnr, uv_of

        ex, outputs = result.example, result.inference
        ours = outputs[self.main]
        truth_uv = uv_of(ex.rgb)
        gray_rgb = gray_baseline(ex.rgb)
        rec = {
            "image_id": ex.image_id,
            "path": ex.path,
            "height": int(ex.gray.shape[0]),
            "width": int(ex.gray.shape[1]),
            "cluster": ours.cluster,
            "psnr": psnr(ours.rgb, ex.rgb),
            "psnr_gray": psnr(gray_rgb, ex.rgb),
            "l_uv": l_uv(ours.uv, truth_uv),
            "l_uv_gray": l_uv(np.zeros_like(truth_uv), truth_uv),
            "colourfulness": colourfulness(ours.rgb),
            "colourfulness_truth": colourfulness(ex.rgb),
            "seconds": ours.timing.total,
        }
        for name, out in outputs.items():
            if name != self.main:
                rec[f"psnr_{name}"] = psnr(out.rgb, ex.rgb)
                rec[f"l_uv_{name}"] = l_uv(out.uv, truth_uv)
                rec[f"colourfulness_{name}"] = colourfulness(out.rgb)
        if self.pictures:
            safe = posixpath.normpath(ex.image_id).replace("/", "__").replace("..", "_")
            rec["gray_image"] = self._picture(f"{safe}_gray", gray_rgb)
            rec["ours_image"] = self._picture(f"{safe}_ours", ours.rgb)
            rec["truth_image"] = self._picture(f"{safe}_truth", ex.rgb)
        self.scored.inc()
        yield rec
