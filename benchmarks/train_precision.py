"""Seconds per training step of the shipped fusion network in float32 and in bfloat16 (Keras'
mixed_bfloat16 policy, what ``pipelines.train_images --precision bfloat16`` trains under).

    python benchmarks/train_precision.py [--batch 16 --crop 192 --steps 30]

Two cases, as in the release recipe: the parser encoder frozen (stage A, stage C) and fine-tuned (stage B's
rounds). The network is the shipped model's uv path (`colorize_tf/models/general`), trained with the squared
error on random batches held in memory, so the figures are the network's arithmetic alone: a real epoch adds
reading, augmentation and validation (the release's three fine-tuned rounds took 0.69x their float32 time in
all, where this prints about 0.4x for a step). bfloat16 is fast only on CPUs with AVX512-BF16 or AMX;
elsewhere it is emulated and slower.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def step_seconds(model, batch, crop, steps, warmup=5):
    """Mean seconds per step of ``model.fit`` on one random batch repeated (after ``warmup``)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch, crop, crop, 1)).astype(np.float32)
    y = rng.normal(0, 0.04, (batch, crop // 4, crop // 4, 2)).astype(np.float32)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - t) / steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=192, help="Crop side (multiple of 32).")
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)

    import keras

    from colorize_tf.fusion import PRECISIONS, load_model_file, unfreeze_encoder, with_dtype_policy
    from colorize_tf.registry import SHIPPED_MODEL, resolve_model

    shipped, _ = load_model_file(resolve_model(SHIPPED_MODEL))
    uv_path = keras.Model(shipped.input, shipped.get_layer("uv").output, name="uv_path")
    print(f"{'encoder':10s} {'precision':10s} {'s/step':>8s} {'vs float32':>11s}")
    for case in ("frozen", "fine-tuned"):
        base = None
        for precision, policy in PRECISIONS.items():
            model = with_dtype_policy(uv_path, policy)
            for layer in model.layers:  # the shipped model was saved with its uv path frozen (stage C)
                layer.trainable = True
            model.get_layer("encoder").trainable = False
            if case == "fine-tuned":
                unfreeze_encoder(model)
            model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
            s = step_seconds(model, args.batch, args.crop, args.steps)
            base = base or s
            print(f"{case:10s} {precision:10s} {s:8.3f} {s / base:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
