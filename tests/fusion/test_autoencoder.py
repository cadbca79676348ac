"""AutoencoderFusion: the reconstruction loss as an auxiliary task, denoising, and History."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import NAMES, TASKS, WORDS, make_batch

from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder
from mmtask.fusion import AutoencoderFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.testing import run_layer_test
from mmtask.weighting import StaticWeighting

SMALL = {"bottleneck_dim": 3, "hidden_units": 6}


def modality_vectors(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "text": rng.normal(size=(n, 5)).astype("float32"),
        "image": rng.normal(size=(n, 7)).astype("float32"),
    }


def mse_by_hand(reconstructions, targets):
    """Mean squared error per modality, averaged over modalities."""
    return np.mean(
        [np.mean((np.asarray(reconstructions[m]) - targets[m]) ** 2) for m in sorted(targets)]
    )


def nonzero(gradient):
    return gradient is not None and np.any(np.asarray(tf.convert_to_tensor(gradient)))


def test_layer_contract_and_gradient_flow():
    x = modality_vectors()
    layer = run_layer_test(
        AutoencoderFusion,
        {**SMALL, "denoising": True, "dropout": 0.1, "seed": 1},
        x,
        expected_output_shape=(4, 3),
        # The decoders are trained by the reconstruction loss only, checked below.
        expect_all_gradients=False,
    )
    variables = layer.trainable_variables
    decoders = {v.path for v in variables if "decoder" in v.path}
    assert len(decoders) == 8  # two dense layers per modality, kernel and bias each

    projection = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    with tf.GradientTape(persistent=True) as tape:
        fused = layer(x, training=True)
        from_output = tf.reduce_sum(fused * projection)
        from_losses = tf.add_n(layer.losses)
    output_gradients = tape.gradient(from_output, variables)
    loss_gradients = tape.gradient(from_losses, variables)
    for v, from_out, from_loss in zip(variables, output_gradients, loss_gradients, strict=True):
        assert nonzero(from_loss), f"the reconstruction loss does not reach {v.path}"
        if v.path in decoders:
            assert from_out is None, f"the fused output depends on {v.path}"
        else:
            assert nonzero(from_out), f"the fused output does not reach {v.path}"


def test_loss_in_training_only_and_equal_to_weighted_mse():
    x = modality_vectors()
    layer = AutoencoderFusion(**SMALL, reconstruction_weight=2.5)
    fused = layer(x, training=True)
    assert len(layer.losses) == 1
    mse = mse_by_hand(layer.reconstruct(fused), x)
    np.testing.assert_allclose(float(layer.losses[0]), 2.5 * mse, rtol=1e-5)
    # The metric tracks the loss before weighting.
    np.testing.assert_allclose(float(layer.reconstruction_tracker.result()), mse, rtol=1e-5)

    inferred = layer(x, training=False)
    assert layer.losses == []
    np.testing.assert_allclose(inferred, fused, rtol=1e-6)
    np.testing.assert_allclose(float(layer.reconstruction_tracker.result()), mse, rtol=1e-5)


def test_reconstruction_targets_are_constants():
    x = {m: tf.constant(v) for m, v in modality_vectors().items()}
    layer = AutoencoderFusion(**SMALL)
    layer(x)

    def input_gradients(loss_fn):
        with tf.GradientTape() as tape:
            tape.watch(list(x.values()))
            loss = loss_fn()
        return [np.asarray(g) for g in tape.gradient(loss, [x["image"], x["text"]])]

    def by_hand(stop):
        reconstructions = layer.reconstruct(layer.encode(x))
        targets = {m: tf.stop_gradient(v) if stop else v for m, v in x.items()}
        errors = [tf.reduce_mean((reconstructions[m] - targets[m]) ** 2) for m in sorted(x)]
        return tf.reduce_mean(errors)

    def from_layer():
        layer(x, training=True)
        return layer.losses[0]

    from_the_layer = input_gradients(from_layer)
    constant_targets = input_gradients(lambda: by_hand(stop=True))
    moving_targets = input_gradients(lambda: by_hand(stop=False))
    for actual, expected, other in zip(
        from_the_layer, constant_targets, moving_targets, strict=True
    ):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7)
        assert not np.allclose(actual, other, atol=1e-4)


def test_denoising_zeroes_one_modality_of_about_p_of_the_examples():
    n, p = 2000, 0.3
    x = modality_vectors(n)
    layer = AutoencoderFusion(**SMALL, denoising=True, mask_probability=p, seed=7)
    layer(x)
    masked = {m: np.asarray(v) for m, v in layer.drop_modalities(x).items()}
    zeroed = {m: ~np.any(masked[m], axis=1) for m in x}
    for m in x:
        # A modality is zeroed whole or passed through unchanged.
        np.testing.assert_array_equal(masked[m][~zeroed[m]], x[m][~zeroed[m]])
    assert not np.any(zeroed["image"] & zeroed["text"])
    assert abs(np.mean(zeroed["image"] | zeroed["text"]) - p) < 0.04
    for m in x:
        assert abs(np.mean(zeroed[m]) - p / 2) < 0.04

    always = AutoencoderFusion(**SMALL, denoising=True, mask_probability=1.0, seed=7)
    always(x)
    masked = always.drop_modalities(x)
    zeroed = {m: ~np.any(np.asarray(masked[m]), axis=1) for m in x}
    np.testing.assert_array_equal(zeroed["image"] ^ zeroed["text"], np.ones(n, bool))


def test_a_training_call_encodes_the_masked_vectors_and_reconstructs_the_clean_ones():
    x = modality_vectors(16)
    layer = AutoencoderFusion(**SMALL, denoising=True, mask_probability=0.5, seed=3)
    clean = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(clean, layer.encode(x), rtol=1e-6)

    state = np.asarray(layer.seed_generator.state)
    fused = np.asarray(layer(x, training=True))
    layer.seed_generator.state.assign(state)
    masked = layer.drop_modalities(x)
    np.testing.assert_allclose(fused, layer.encode(masked), rtol=1e-6)
    assert not np.allclose(fused, clean, atol=1e-4)
    np.testing.assert_allclose(
        float(layer.losses[0]), mse_by_hand(layer.reconstruct(fused), x), rtol=1e-5
    )


def test_denoising_needs_two_modalities_and_valid_options():
    with pytest.raises(ValueError, match="at least two"):
        AutoencoderFusion(denoising=True)({"text": np.ones((2, 3), "float32")})
    # Without denoising one modality is fine.
    assert AutoencoderFusion(**SMALL)({"text": np.ones((2, 3), "float32")}).shape == (2, 3)
    with pytest.raises(ValueError, match="mask_probability=1.5"):
        AutoencoderFusion(mask_probability=1.5)
    with pytest.raises(ValueError, match="bottleneck_dim=0"):
        AutoencoderFusion(bottleneck_dim=0)


WEIGHTS = {"text_task": 0.5, "image_task": 1.0, "post_task": 2.0}


def joint_model():
    keras.utils.set_random_seed(0)
    return MultiTaskModel(
        encoders={
            "text": TransformerTextEncoder(
                max_tokens=32,
                sequence_length=6,
                embed_dim=8,
                intermediate_dim=8,
                vocabulary=WORDS,
                dropout=0.0,
            ),
            "image": SmallCNNImageEncoder(filters=(4,), output_dim=8, dropout=0.0),
        },
        # A bottleneck as wide as the 16 input features can reconstruct them exactly.
        fusion=AutoencoderFusion(bottleneck_dim=16, hidden_units=32, reconstruction_weight=3.0),
        heads={t: ClassificationHead(3, name=t) for t in TASKS},
        task_inputs=TASKS,
        label_names={t: NAMES for t in TASKS},
        weighting=StaticWeighting(list(TASKS), WEIGHTS),
        image_size=(16, 16),
    )


def test_history_has_the_reconstruction_loss_and_the_total_includes_it():
    model = joint_model()
    weights = WEIGHTS
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = make_batch(12)
    history = model.fit(x, y, epochs=10, batch_size=12, verbose=0).history

    # The targets move as the encoders train, so the fall is not monotonic; over
    # seeds 0-5 the last epoch's loss was 0.05-0.64 times the first's.
    reconstruction = np.array(history["reconstruction_loss"])
    assert reconstruction[-1] < 0.75 * reconstruction[0], reconstruction
    # One batch per epoch: every History value comes from the same forward pass.
    task_total = sum(weights[t] * np.array(history[f"{t}_loss"]) for t in TASKS)
    np.testing.assert_allclose(history["loss"], task_total + 3.0 * reconstruction, rtol=1e-4)


def test_validation_reports_the_reconstruction_error_of_validation_data():
    model = joint_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = make_batch(12)
    val_x, val_y = make_batch(12, seed=1)
    history = model.fit(
        x, y, validation_data=(val_x, val_y), epochs=3, batch_size=12, verbose=0
    ).history
    # The fused inputs are the encoders' vectors (every post has both modalities).
    vectors = {m: model.encoders[m](val_x[m], training=False)["vector"] for m in ("text", "image")}
    fusion = model.fusion
    expected = mse_by_hand(fusion.reconstruct(fusion.encode(vectors)), vectors)
    assert expected > 0
    np.testing.assert_allclose(history["val_reconstruction_loss"][-1], expected, rtol=1e-4)
    assert history["val_reconstruction_loss"][-1] != history["reconstruction_loss"][-1]


def test_chosen_by_name_in_a_spec_and_saved(spec_round_trip):
    options = {"bottleneck_dim": 4, "hidden_units": 8, "denoising": True, "seed": 5}
    model = spec_round_trip({"name": "autoencoder", "options": options})
    assert isinstance(model.fusion, AutoencoderFusion)
    assert {k: model.fusion.get_config()[k] for k in options} == options
