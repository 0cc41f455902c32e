"""Family ``fusion`` (Iizuka et al.'s global + local CNN) with the l2 and classification losses."""

import json

import numpy as np
import pytest
from conftest import synthetic_scene, write_png


def test_architecture_predicts_at_a_quarter_of_the_input():
    from colorize_tf.fusion import FusionConfig, build_model

    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 48, 1)).astype(np.float32)
    assert build_model(FusionConfig(base=8))(x).shape == (2, 16, 12, 2)
    assert build_model(FusionConfig(loss="classification", base=8), n_bins=475)(x).shape == (2, 16, 12, 475)
    with pytest.raises(ValueError, match="loss"):
        FusionConfig(loss="l1")
    with pytest.raises(ValueError, match="scene"):
        FusionConfig(scenes=("only",), scene_weight=0.1)


def test_parser_encoder_variant_is_frozen_and_has_a_scene_head():
    from colorize_tf.fusion import FusionConfig, build_model, parser_encoder
    from colorize_tf.parser import build_parser

    parser_model = build_parser(5, base=8)
    config = FusionConfig(base=8, encoder="parser", scenes=("a", "b", "c"), scene_weight=0.1)
    assert config.stride == 32
    with pytest.raises(ValueError, match="encoder"):
        build_model(config)
    model = build_model(config, encoder=parser_encoder(parser_model))
    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 96, 1)).astype(np.float32)
    uv, scene = model(x)
    assert uv.shape == (2, 16, 24, 2) and scene.shape == (2, 3)
    own = build_model(FusionConfig(base=8, segments=("sky", "tree"), segment_weight=0.5))
    assert [t.shape for t in own(x)] == [(2, 16, 24, 2), (2, 16, 24, 2)]  # chroma, then segment logits
    frozen = {id(w) for w in parser_model.weights}
    assert frozen and not frozen & {id(w) for w in model.trainable_weights}  # the parser's weights stay fixed
    assert len(model.trainable_weights) > 0


def test_warm_start_carries_trained_layers_into_another_loss():
    import dataclasses

    from colorize_tf.fusion import FusionConfig, build_model, parser_encoder, warm_start
    from colorize_tf.parser import build_parser

    x = np.random.default_rng(1).uniform(0, 1, (1, 64, 64, 1)).astype(np.float32)
    l2 = FusionConfig(base=8, encoder="parser")
    source = build_model(l2, encoder=parser_encoder(build_parser(5, base=8)))
    for layer in source.layers:  # distinct weights everywhere, so a copy is told from a fresh initialisation
        if layer.name != "encoder":
            layer.set_weights([w + 0.01 * (i + 1) for i, w in enumerate(layer.get_weights())])
    model, copied, fresh = warm_start(source, dataclasses.replace(l2, loss="classification"), n_bins=31)
    assert fresh == ["bins_norm", "logits"] and "uv" not in copied
    assert {"dec1_conv", "fusion_local", "global_vector"} <= set(copied)
    for name in copied:
        for a, b in zip(source.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert model(x).shape == (1, 16, 16, 31)
    assert not model.get_layer("encoder").trainable  # frozen until the trainer is told to fine-tune it
    same, copied, fresh = warm_start(source, l2)  # the same config: a continuation, identical outputs
    assert fresh == [] and np.allclose(same(x), source(x), atol=1e-6)


def test_bfloat16_copy_computes_in_bfloat16_and_converts_back_exactly():
    from colorize_tf.fusion import FusionConfig, build_model, parser_encoder, with_dtype_policy
    from colorize_tf.parser import build_parser

    config = FusionConfig(base=8, encoder="parser", scenes=("a", "b"), scene_weight=0.1)
    model = build_model(config, encoder=parser_encoder(build_parser(5, base=8)))
    x = np.random.default_rng(2).uniform(0, 1, (1, 64, 64, 1)).astype(np.float32)
    mixed = with_dtype_policy(model, "mixed_bfloat16")
    encoder = mixed.get_layer("encoder")
    inner = [layer for layer in encoder.layers if "Conv2D" in type(layer).__name__]
    assert inner and all(layer.compute_dtype == "bfloat16" for layer in inner)  # the nested encoder too
    assert mixed.get_layer("dec1_conv").compute_dtype == "bfloat16"
    assert mixed.get_layer("uv").compute_dtype == "float32" and mixed.get_layer("scene").compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in mixed.weights)  # the variables stay float32
    want, got = model(x), mixed(x)
    for a, b in zip(want, got):
        a, b = np.asarray(a), np.asarray(b)
        assert b.dtype == np.float32 and not np.array_equal(a, b)  # computed in bfloat16: close, not equal
        np.testing.assert_allclose(b, a, atol=0.05 * np.abs(a).max() + 1e-3)
    back = with_dtype_policy(mixed, "float32")
    assert back.get_layer("dec1_conv").compute_dtype == "float32"
    for a, b in zip(want, back(x)):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))  # the same network, exactly


def test_bins_decoder_starts_as_the_uv_path_and_is_all_the_bins_head_trains():
    import dataclasses

    import keras

    from colorize_tf.fusion import FusionConfig, build_model, parser_encoder, warm_start
    from colorize_tf.parser import build_parser

    x = np.random.default_rng(2).uniform(0, 1, (1, 64, 96, 1)).astype(np.float32)
    l2 = FusionConfig(base=8, encoder="parser")
    source = build_model(l2, encoder=parser_encoder(build_parser(5, base=8)))
    for layer in source.layers:
        if layer.name != "encoder":
            layer.set_weights([w + 0.01 * (i + 1) for i, w in enumerate(layer.get_weights())])
    joint = dataclasses.replace(l2, loss="joint", bins_decoder=True)
    model, copied, fresh = warm_start(source, joint, n_bins=31)
    assert fresh == ["bins_norm", "logits"]
    own = {n for n in copied if n.startswith("vivid_")}
    assert own == {f"vivid_{n}" for n in ("dec8_conv", "dec8_norm", "fusion_local", "fusion_global")} | {
        f"vivid_{n}" for n in ("dec1_conv", "dec1_norm", "dec2_conv", "dec2_norm")
    }
    for name in own:  # a copy of the uv path's layer of the same name
        for a, b in zip(source.get_layer(name[6:]).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    taps = keras.Model(model.input, [model.get_layer("dec2_relu").output, model.get_layer("vivid_dec2_relu").output])
    uv_features, bins_features = taps(x)
    np.testing.assert_allclose(uv_features, bins_features, atol=1e-6)  # the same features until trained apart
    uv, logits = model(x)
    np.testing.assert_allclose(uv, source(x), atol=1e-6)
    assert logits.shape == (1, 16, 24, 31)
    again, _, fresh = warm_start(model, joint, n_bins=31)  # continued: its own decoder, not the uv path's, is kept
    assert fresh == []
    with pytest.raises(ValueError, match="joint"):
        FusionConfig(bins_decoder=True)
    own_encoder = build_model(FusionConfig(base=8, loss="joint", bins_decoder=True), n_bins=31)
    assert {"vivid_fusion_local", "vivid_dec1_conv"} <= {layer.name for layer in own_encoder.layers}


def test_vivid_mode_from_the_faithful_head_and_chroma_gains():
    import dataclasses

    from colorize_tf.chroma_bins import bin_centres
    from colorize_tf.fusion import FusionColorizer, FusionConfig, build_model
    from colorize_tf.refine import RefineParams

    config = FusionConfig(base=8, loss="joint", vivid_head="uv", vivid_gain=1.5)
    model = build_model(config, n_bins=len(bin_centres(config.bin_step)))
    gray = np.random.default_rng(4).uniform(0, 1, (64, 96)).astype(np.float32)
    off = RefineParams(0, 0.1, 1.0)
    faithful = FusionColorizer(model, config, off, mode="faithful")
    vivid = FusionColorizer(model, config, off, mode="vivid")
    assert config.modes()["vivid"] == {"head": "uv", "gain": 1.5} and faithful.gain == 1.0 and vivid.gain == 1.5
    base = faithful.chroma(gray)
    assert np.abs(base.uv).max() > 0 and 0 < base.confidence < 1  # the bins head still scores confidence
    np.testing.assert_allclose(vivid.chroma(gray).uv, 1.5 * base.uv, rtol=1e-5, atol=1e-7)
    louder = FusionColorizer(model, config, off, mode="faithful", gain=2.0)  # a gain asked for: any mode
    np.testing.assert_allclose(louder.chroma(gray).uv, 2.0 * base.uv, rtol=1e-5, atol=1e-7)
    assert "chroma gain 1.5" in vivid.describe() and "chroma gain" not in faithful.describe()
    bins = FusionColorizer(model, dataclasses.replace(config, vivid_head="logits"), off, mode="vivid")
    assert bins.centres is not None and np.abs(bins.chroma(gray).uv - vivid.chroma(gray).uv).max() > 1e-4
    for bad in (dict(vivid_head="rgb"), dict(loss="l2", vivid_head="uv")):
        with pytest.raises(ValueError, match="vivid"):
            FusionConfig(**bad)


def test_colourfulness_gain_reaches_its_target_within_its_bounds():
    from colorize_tf.color import recombine
    from colorize_tf.fusion import colourfulness_gain, saturate
    from colorize_tf.metrics import colourfulness

    rng = np.random.default_rng(7)
    gray = rng.uniform(0.35, 0.65, (48, 64)).astype(np.float32)  # mid-gray: little gamut clipping
    uv = np.stack([np.full((48, 64), 0.02), rng.normal(0, 0.01, (48, 64))], -1).astype(np.float32)
    m1 = colourfulness(recombine(gray, uv))
    assert 2 < m1 < 10
    g = colourfulness_gain(gray, uv, 3 * m1, 6.0)
    assert 2.9 < g < 3.1  # about linear here: 3x the colourfulness needs about 3x the chroma
    assert colourfulness(recombine(gray, uv * g)) == pytest.approx(3 * m1, rel=0.01)
    assert colourfulness_gain(gray, uv, 100 * m1, 6.0) == 6.0  # the bound
    assert colourfulness_gain(gray, uv, 0.5 * m1, 6.0) == 1.0  # never desaturates
    assert colourfulness_gain(gray, np.zeros_like(uv), 30.0, 4.0) == 4.0  # a gray prediction: the bound
    g_half = colourfulness_gain(gray, uv, 3 * m1, 6.0, cast=0.5)
    assert g_half > g  # the tint grows less, so the spread must grow more to reach the same colourfulness
    assert colourfulness(recombine(gray, saturate(uv, g_half, 0.5))) == pytest.approx(3 * m1, rel=0.01)


def test_saturate_spreads_colours_around_the_photos_tint():
    from colorize_tf.fusion import saturate

    uv = np.array([[[0.02, 0.01], [0.04, -0.01]], [[0.00, 0.03], [0.02, 0.01]]], np.float32)  # mean (0.02, 0.01)
    np.testing.assert_allclose(saturate(uv, 3.0), 3 * uv, rtol=1e-6)  # cast 1: all chroma alike
    half = saturate(uv, 3.0, 0.5)
    np.testing.assert_allclose(half.reshape(-1, 2).mean(0), [0.04, 0.02], rtol=1e-5)  # tint x (1 + 2 * 0.5)
    np.testing.assert_allclose(half - half.reshape(-1, 2).mean(0), 3 * (uv - [0.02, 0.01]), atol=1e-7)  # spread x3
    np.testing.assert_allclose(saturate(uv, 3.0, 0.0).reshape(-1, 2).mean(0), [0.02, 0.01], rtol=1e-5)
    np.testing.assert_allclose(saturate(uv, 1.0, 0.3), uv, atol=1e-8)  # gain 1: unchanged, whatever the cast


def test_vivid_colourfulness_target_gives_each_image_its_own_gain():
    import dataclasses

    import keras

    from colorize_tf.chroma_bins import bin_centres
    from colorize_tf.color import recombine
    from colorize_tf.fusion import MAX_GAIN, FusionColorizer, FusionConfig, build_model
    from colorize_tf.metrics import colourfulness
    from colorize_tf.refine import RefineParams

    keras.utils.set_random_seed(0)  # one network, so the two photos' predictions differ the same way every run
    config = FusionConfig(base=8, loss="joint", vivid_head="uv", vivid_gain=5.0)
    model = build_model(config, n_bins=len(bin_centres(config.bin_step)))
    kernel, bias = model.get_layer("uv").get_weights()
    model.get_layer("uv").set_weights([kernel * 0.02, bias])  # an untrained net's chroma: muted like a trained one's
    off = RefineParams(0, 0.1, 1.0)
    faithful = FusionColorizer(model, config, off, mode="faithful")
    rng = np.random.default_rng(5)
    ramp = 0.45 + 0.1 * np.mgrid[0:64, 0:96][1] / 95 + rng.normal(0, 0.01, (64, 96))  # a smooth photo
    grays = [rng.uniform(0.3, 0.7, (64, 96)).astype(np.float32), ramp.astype(np.float32)]
    base = [faithful.chroma(g).uv for g in grays]
    m = [colourfulness(recombine(g, u)) for g, u in zip(grays, base)]
    assert min(m) > 0 and max(m) > 1.2 * min(m)  # one prediction clearly grayer than the other (9.2 and 13.8)
    target = 1.5 * max(m)  # both images below it: each gets the gain that brings it there
    vivid = FusionColorizer(model, dataclasses.replace(config, vivid_colourfulness=target), off, mode="vivid")
    assert vivid.modes["vivid"] == {"head": "uv", "gain": 5.0, "colourfulness": target}
    assert "towards colourfulness" in vivid.describe()
    gains = []
    for g, u in zip(grays, base):
        out = vivid.chroma(g).uv
        ratio = out / np.where(np.abs(u) > 1e-6, u, np.nan)
        gain = float(np.nanmedian(ratio))
        np.testing.assert_allclose(out, gain * u, rtol=1e-4, atol=1e-7)  # one multiplier per image
        gains.append(gain)
        assert colourfulness(recombine(g, out)) == pytest.approx(target, rel=0.15)  # measured at 1/4 size
    assert 1 < min(gains) and max(gains) <= 5.0 and abs(gains[0] - gains[1]) > 1e-3
    assert np.argmax(gains) == np.argmin(m)  # the grayer prediction gets more saturation
    fixed = FusionColorizer(model, dataclasses.replace(config, vivid_colourfulness=target), off, mode="vivid", gain=2.0)
    np.testing.assert_allclose(fixed.chroma(grays[0]).uv, 2.0 * base[0], rtol=1e-5, atol=1e-7)  # asked: fixed
    off_target = FusionColorizer(model, vivid.config, off, mode="vivid", colourfulness=0.0)
    np.testing.assert_allclose(off_target.chroma(grays[0]).uv, 5.0 * base[0], rtol=1e-5, atol=1e-7)  # 0: fixed
    asked = FusionColorizer(model, config, off, mode="faithful", colourfulness=target)  # any mode, on request
    assert asked.gain == MAX_GAIN and asked.target == target
    np.testing.assert_allclose(asked.chroma(grays[1]).uv, vivid.chroma(grays[1]).uv, rtol=1e-4, atol=1e-7)
    capped = FusionColorizer(model, config, off, mode="faithful", gain=1.2, colourfulness=target)
    np.testing.assert_allclose(capped.chroma(grays[1]).uv, 1.2 * base[1], rtol=1e-4, atol=1e-7)
    spread = FusionColorizer(model, dataclasses.replace(vivid.config, vivid_cast=0.5), off, mode="vivid")
    assert spread.modes["vivid"]["cast"] == 0.5 and "mean chroma by 0.5" in spread.describe()
    out = spread.chroma(grays[0]).uv
    assert colourfulness(recombine(grays[0], out)) == pytest.approx(target, rel=0.15)
    mean0 = base[0].reshape(-1, 2).mean(0)
    spread_gain = np.std(out - out.reshape(-1, 2).mean(0)) / np.std(base[0] - mean0)
    assert spread_gain > gains[0]  # more spread than with the whole chroma multiplied, for the same target
    for bad in (dict(vivid_colourfulness=-1.0), dict(vivid_gain=7.0), dict(vivid_cast=1.5)):
        with pytest.raises(ValueError, match="vivid"):
            FusionConfig(**bad)


def test_log_rgb_loss_is_each_images_log_squared_rgb_error():
    import tensorflow as tf

    from colorize_tf.fusion import LOG_RGB_EPS, FusionConfig, log_rgb_loss

    truth = np.zeros((2, 4, 4, 2), np.float32)
    pred = truth.copy()
    pred[0, ..., 0] = 0.1  # image 0: U off by 0.1 everywhere -> G off by 0.039465, B by 0.203211, R exact
    pred[1, :2, :, 1] = 0.2  # image 1: V off by 0.2 on half the pixels -> R by 0.227966, G by 0.116120
    got = log_rgb_loss()(tf.constant(truth), tf.constant(pred)).numpy()
    want0 = np.log((0.039465**2 + 0.203211**2) / 3 + LOG_RGB_EPS)
    want1 = np.log(0.5 * (0.227966**2 + 0.116120**2) / 3 + LOG_RGB_EPS)
    np.testing.assert_allclose(got, [want0, want1], rtol=1e-4)
    assert log_rgb_loss()(tf.constant(truth), tf.constant(truth)).numpy() == pytest.approx([np.log(LOG_RGB_EPS)] * 2)
    assert FusionConfig().uv_loss == "mse"
    with pytest.raises(ValueError, match="uv loss"):
        FusionConfig(uv_loss="l1")


def test_cosine_schedule_runs_from_the_full_rate_to_its_floor():
    from colorize_tf.regressor import cosine_rate, schedule_callbacks

    rates = [cosine_rate(1e-3, e, 8) for e in range(8)]
    assert np.all(np.diff(rates) < 0)  # strictly falling
    assert rates[0] == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi / 16))))  # epoch middle
    assert rates[-1] == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * 15 / 16))))
    assert rates[3] + rates[4] == pytest.approx(1e-3 * 1.02)  # symmetric about the half rate
    assert cosine_rate(1e-3, 20, 8) == pytest.approx(2e-5)  # beyond the plan: the floor
    names = [type(c).__name__ for c in schedule_callbacks(1e-3, 8, "cosine", 3, True)]
    assert names == ["LearningRateScheduler", "EarlyStopping"]
    names = [type(c).__name__ for c in schedule_callbacks(1e-3, 8, "plateau", 4, True)]
    assert names == ["ReduceLROnPlateau", "EarlyStopping"]
    assert schedule_callbacks(1e-3, 8, "plateau", 4, False) == []
    with pytest.raises(ValueError, match="schedule"):
        schedule_callbacks(1e-3, 8, "step", 4, True)
    import keras  # the callbacks drive a real fit: the optimizer ends at the last epoch's rate

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    seen = []
    log_rate = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    )
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=8, verbose=0, callbacks=schedule_callbacks(1e-3, 8, "cosine", 3, False) + [log_rate])
    np.testing.assert_allclose(seen, rates, rtol=1e-5)


def test_tensorflow_soft_targets_equal_the_numpy_encoding():
    from colorize_tf import chroma_bins as B
    from colorize_tf.fusion import soft_targets

    centres = B.bin_centres()
    uv = np.random.default_rng(1).uniform(-0.2, 0.2, (1, 3, 4, 2)).astype(np.float32)
    got = soft_targets(uv, centres).numpy().reshape(-1, len(centres))
    want = B.dense(*B.soft_encode(uv.reshape(-1, 2), centres), len(centres))
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    from PIL import Image

    from pipelines import extract_images

    root = tmp_path_factory.mktemp("fusion")
    src = root / "images"  # a labelled dataset (images/ + masks/): sky, ground, disc
    src.mkdir()
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("sky\nground\ndisc\n")
    for i in range(16):  # two scene types, for the auxiliary scene head
        rgb = synthetic_scene(96, 128, seed=500 + i)
        name = f"{('field', 'coast')[i % 2]}_{i:02d}"
        write_png(str(src / f"{name}.png"), rgb)
        mask = np.where(rgb[..., 2] > 0.7, 0, 1).astype(np.uint8)
        mask[(rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.3)] = 2
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    extract_images.run(
        [f"--input={src}", f"--output={root / 'records'}", "--side=64", f"--labels={root}", "--runner=FnApiRunner"]
    )
    return root / "records"


@pytest.mark.slow
def test_fusion_trains_on_whole_photos_of_mixed_shapes(tmp_path):
    from colorize_tf.color import luminance
    from colorize_tf.metrics import gray_baseline, psnr
    from colorize_tf.registry import load_colorizer
    from pipelines import extract_images, train_images

    src = tmp_path / "images"
    src.mkdir()
    for i in range(12):  # landscape and portrait photos: 48x64 and 64x48 at side 64
        h, w = (96, 128) if i % 2 else (128, 96)
        write_png(str(src / f"scene_{i:02d}.png"), synthetic_scene(h, w, seed=700 + i))
    extract_images.run([f"--input={src}", f"--output={tmp_path / 'records'}", "--side=64", "--runner=FnApiRunner"])
    out = tmp_path / "whole"
    train_images.run(
        [
            f"--records={tmp_path / 'records'}",
            f"--output={out}",
            "--base_channels=8",
            "--epochs=30",
            "--patience=30",
            "--crop=0",  # whole photos, batched by shape, eager steps
            "--batch_size=4",
            "--learning_rate=3e-3",
            "--val_fraction=0.2",
            "--tune_images=2",
        ]
    )
    history = json.loads((out / "model.json").read_text())["training"]["history"]
    assert min(history["loss"]) < 0.5 * history["loss"][0]
    col = load_colorizer(str(out))
    for h, w in ((120, 160), (160, 120)):
        truth = synthetic_scene(h, w, seed=h + 1)  # held back
        assert psnr(col.colorize(luminance(truth)).rgb, truth) > psnr(gray_baseline(truth), truth) + 0.5


@pytest.fixture(scope="module")
def untrained_parser(tmp_path_factory):
    """A scene parser with random weights: the ``parser`` encoder's plumbing, not its semantic value."""
    import keras

    from colorize_tf.parser import SceneParser, build_parser

    keras.utils.set_random_seed(7)  # the same random encoder whatever ran before
    out = tmp_path_factory.mktemp("parser") / "parser"
    SceneParser(build_parser(3, base=8), {"classes": ["a", "b", "c"], "work_size": 64}).save(str(out))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss,variant,precision",
    [
        ("l2", "own", "float32"),
        ("classification", "own", "float32"),
        ("joint", "parser", "float32"),
        ("l2", "own", "bfloat16"),
    ],
)
def test_fusion_trains_beats_gray_and_round_trips(records, untrained_parser, loss, variant, precision, tmp_path):
    from PIL import Image

    from colorize_tf.color import luminance
    from colorize_tf.fusion import FusionColorizer, entropy
    from colorize_tf.metrics import colourfulness, gray_baseline, psnr
    from colorize_tf.registry import family_of, load_colorizer
    from pipelines import train_images
    from pipelines.options import UsageError

    out = tmp_path / f"fusion_{loss}"
    train_images.run(
        [
            f"--records={records}",
            f"--output={out}",
            f"--loss={loss}",
            "--base_channels=8",
            "--epochs=40",
            "--patience=40",
            "--crop=48",
            "--batch_size=8",
            "--learning_rate=3e-3",
            "--val_fraction=0.2",
            "--tune_images=2",
            "--source_balance=0.5",
            f"--precision={precision}",
            *(["--uv_loss=log_rgb"] if precision == "bfloat16" else []),  # a custom loss through the precision swap
            "--work_dir=" + str(tmp_path / "work"),
        ]
        + (
            [
                "--encoder=parser",
                f"--parser={untrained_parser}",
                "--crop=64",
                "--scene_weight=0.1",
                "--segment_weight=0.1",
            ]
            * (variant == "parser")
        )
    )
    meta = json.loads((out / "model.json").read_text())
    assert family_of(str(out)) == "fusion" and meta["fusion"]["loss"] == loss
    assert meta["training"]["precision"] == precision
    import zipfile

    saved = zipfile.ZipFile(out / "fusion.keras").read("config.json").decode()
    assert '"float32"' in saved and "bfloat16" not in saved  # saved to compute in float32 whatever the training
    assert meta["training"]["source_balance"] == 0.5 and sum(meta["training"]["epoch_by_source"].values()) == 13
    assert (tmp_path / "work" / "checkpoint.keras").is_file() and (tmp_path / "work" / "best.keras").is_file()
    if variant == "parser":
        assert meta["fusion"]["encoder"] == "parser" and meta["fusion"]["scenes"] == ["coast", "field"]
        assert meta["training"]["encoder_from"]["files"]["parser.keras"]
        assert meta["fusion"]["segments"] == ["sky", "ground", "disc"]
        history = meta["training"]["history"]
        assert "scene_loss" in history  # (the two synthetic "scene types" are alike: nothing to learn there)
        # the head learns the labels: its cross entropy falls, and well below predicting the classes'
        # frequencies (their entropy over the masks; measured 0.67x of it)
        masks = [np.asarray(Image.open(m)) for m in sorted((records.parent / "masks").glob("*.png"))]
        freq = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=3) / sum(m.size for m in masks)
        prior = float(entropy(freq))
        seg = history["segments_loss"]
        assert min(seg) < seg[0] and min(seg) < 0.75 * prior, (seg, prior)
    assert len(json.loads((out / "split.json").read_text())["validation"]) == 3  # 20 % of 16, stratified
    col = load_colorizer(str(out))
    assert isinstance(col, FusionColorizer)
    # the NumPy export beside the Keras file is the same network (checksummed like it)
    from colorize_tf.npnet import NumpyNet

    assert set(meta["files"]) == {"fusion.keras", "fusion.npz"}
    x = np.random.default_rng(5).uniform(0, 1, (64, 96, 1)).astype(np.float32)
    want, got = col._fn(x[None]), NumpyNet.load((out / "fusion.npz").read_bytes())(x)
    want, got = (want if isinstance(want, (list, tuple)) else [want]), (got if isinstance(got, list) else [got])
    for k, g in zip(want, got):
        np.testing.assert_allclose(g, k.numpy()[0], rtol=1e-3, atol=1e-4)
    truth = synthetic_scene(120, 160, seed=999)  # held back: seen in no form
    result = col.colorize(luminance(truth))
    assert result.rgb.shape == (120, 160, 3)
    np.testing.assert_allclose(luminance(result.rgb), luminance(truth), atol=2e-3)  # Y kept
    from colorize_tf.registry import ColorizeSettings

    fast = load_colorizer(str(out), ColorizeSettings(tile=0, runtime="numpy"))  # no TensorFlow on this path
    assert fast.runtime == "numpy" and col.runtime == "keras" and "numpy runtime" in fast.describe()
    np.testing.assert_allclose(fast.colorize(luminance(truth)).rgb, result.rgb, atol=2e-3)
    assert psnr(result.rgb, truth) > psnr(gray_baseline(truth), truth) + 0.5
    assert colourfulness(result.rgb) > 0.2 * colourfulness(truth)
    # predicted at the working side: a 4x larger scan of the same scene gets the same chroma, upsampled
    import cv2

    big = cv2.resize(truth, (640, 480), interpolation=cv2.INTER_CUBIC)
    big_uv = col.chroma(luminance(big)).uv
    assert big_uv.shape == (480, 640, 2)
    small_uv = col.chroma(luminance(truth)).uv
    back = cv2.resize(big_uv, (160, 120), interpolation=cv2.INTER_AREA)
    assert np.abs(back - small_uv).mean() < 0.005, np.abs(back - small_uv).mean()
    for h, w in ((50, 100), (130, 40), (64, 64)):  # other aspects: other working shapes, one colorizer
        assert col.colorize(luminance(synthetic_scene(h, w, seed=h))).rgb.shape == (h, w, 3)
    if loss == "joint":  # two modes from one forward pass: the uv head (default) and the bins head
        from colorize_tf.registry import ColorizeSettings

        assert col.mode == "faithful" and set(col.modes) == {"faithful", "vivid"}
        assert 0.0 < result.confidence < 1.0  # from the bins head, in either mode
        vivid = load_colorizer(str(out), ColorizeSettings(tile=0, mode="vivid"))
        assert vivid.mode == "vivid" and "T=0.38" in vivid.describe()
        vivid_rgb = vivid.colorize(luminance(truth)).rgb
        assert psnr(vivid_rgb, truth) > psnr(gray_baseline(truth), truth)
        assert np.abs(vivid_rgb - result.rgb).mean() > 1e-3  # another head, another answer
        louder = load_colorizer(str(out), ColorizeSettings(tile=0, mode="vivid", chroma_gain=1.5))
        gray = luminance(truth)
        # the vivid head's gain was calibrated on validation (the smallest reaching 0.85x the truth's
        # colourfulness above gray, else the most colourful above gray); a chroma gain given replaces it
        tuning = meta["training"]["vivid_gain_tuning"]
        gain = meta["fusion"]["vivid_gain"]
        assert tuning["target"] == 0.85 and gain in [row["gain"] for row in tuning["grid"]]
        above = [row for row in tuning["grid"] if row["mean_psnr"] > row["gray_psnr"]]
        reach = [row["gain"] for row in above if row["colourfulness_ratio"] >= 0.85]
        assert gain == (min(reach) if reach else max(above, key=lambda r: r["colourfulness_ratio"])["gain"])
        assert vivid.config.vivid_gain == gain
        np.testing.assert_allclose(louder.chroma(gray).uv, 1.5 / gain * vivid.chroma(gray).uv, rtol=1e-5, atol=1e-6)
        assert "chroma gain 1.5" in louder.describe()
    else:
        from colorize_tf.registry import ColorizeSettings

        assert (result.confidence is None) == (loss == "l2")  # only a distribution over bins measures it
        other = "vivid" if loss == "l2" else "faithful"
        with pytest.raises(ValueError, match=f"no '{other}' mode"):
            load_colorizer(str(out), ColorizeSettings(mode=other))
    if loss == "l2":  # a vivid mode added as the release does: a bins head with its own block on the frozen net
        both = tmp_path / "both"
        args = [f"--records={records}", f"--output={both}", f"--init={out}", "--loss=joint", "--bins_only"]
        args += ["--bins_decoder", "--bins_hidden=16", "--epochs=40", "--patience=40", "--crop=48", "--batch_size=8"]
        train_images.run(
            args
            + [
                "--learning_rate=3e-3",
                "--tune_images=2",
                f"--refine={col.refine.diameter},{col.refine.sigma_color},{col.refine.sigma_space},{col.refine.scale}",
            ]
        )
        trained = json.loads((both / "model.json").read_text())["training"]["trained_layers"]
        assert {"vivid_fusion_local", "vivid_dec1_conv", "bins_hidden_conv", "logits"} <= set(trained)
        assert not {"dec1_conv", "fusion_local", "uv"} & set(trained)  # the uv path stays stage B's
        gray = luminance(truth)
        faithful = load_colorizer(str(both), ColorizeSettings(tile=0, mode="faithful"))
        np.testing.assert_allclose(faithful.colorize(gray).rgb, result.rgb, atol=1e-5)  # stage B's net, unchanged
        vivid_rgb = load_colorizer(str(both), ColorizeSettings(tile=0, mode="vivid")).colorize(gray).rgb
        # not left gray (the first release's head gave 0.02-0.1 of the truth's colourfulness; this gives ~0.38
        # after the refinement tuned for the faithful head, ~0.77 without it)
        assert colourfulness(vivid_rgb) > 0.25 * colourfulness(truth)
        assert psnr(vivid_rgb, truth) > psnr(gray_baseline(truth), truth)
    if variant == "parser":  # continued with the encoder's convolutions learning, its normalisation frozen
        from colorize_tf.fusion import load_model_file

        tuned = tmp_path / "tuned"
        args = [f"--records={records}", f"--output={tuned}", "--epochs=2", "--crop=64", "--batch_size=8"]
        train_images.run(args + [f"--init={out}", "--finetune_encoder", "--learning_rate=1e-3", "--tune_images=2"])
        before, _ = load_model_file(str(out))
        after, config = load_model_file(str(tuned))
        assert config == FusionColorizer.load(str(out)).config  # architecture and heads from --init
        enc0, enc1 = before.get_layer("encoder"), after.get_layer("encoder")
        conv0, conv1 = enc0.get_layer("enc1a_conv").get_weights()[0], enc1.get_layer("enc1a_conv").get_weights()[0]
        assert not np.allclose(conv0, conv1)
        for w0, w1 in zip(enc0.get_layer("enc1a_bn").get_weights(), enc1.get_layer("enc1a_bn").get_weights()):
            np.testing.assert_array_equal(w0, w1)
        assert json.loads((tuned / "model.json").read_text())["training"]["init_from"] == str(out)
        with pytest.raises(UsageError, match="parser encoder"):
            train_images.run(args + ["--finetune_encoder"])
    if variant == "parser":  # the jobs take the family unchanged
        from pipelines import colorize, colorize_archive

        scans = tmp_path / "scans"
        scans.mkdir()
        for i in range(2):
            write_png(
                str(scans / f"old{i}.png"),
                np.repeat(luminance(synthetic_scene(70, 90, seed=800 + i))[..., None], 3, -1),
            )
        assert colorize.main([str(scans / "old0.png"), "--model", str(out), "--output", str(tmp_path / "one")]) == 0
        summary = colorize_archive.run(
            [f"--input={scans}", f"--model={out}", f"--output={tmp_path / 'arch'}", "--runner=FnApiRunner"]
        )
        assert summary["done"] == 2 and summary["failed"] == 0
        from pipelines import evaluate

        held = tmp_path / "held"
        held.mkdir()
        for i in range(3):
            write_png(str(held / f"coast_{i}.png"), synthetic_scene(80, 100, seed=900 + i))
        report = evaluate.run(
            [f"--input={held}", f"--model={out}", f"--output={tmp_path / 'eval'}", "--runner=FnApiRunner"]
        )
        assert report["images"] == 3 and report["mean_psnr"] > report["mean_psnr_gray"]
    with open(out / "fusion.keras", "ab") as fh:
        fh.write(b"!")
    with pytest.raises(ValueError, match="checksum"):
        load_colorizer(str(out))
