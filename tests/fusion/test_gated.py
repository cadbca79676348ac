"""GatedFusion: the layer contract, softmax gates per unit, and gates that select a modality."""

import numpy as np
import pytest

from mmtask.errors import SpecError
from mmtask.fusion import GatedFusion
from mmtask.testing import run_layer_test

UNITS = 6


def modality_vectors(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "text": rng.normal(size=(n, 5)).astype("float32"),
        "image": rng.normal(size=(n, 7)).astype("float32"),
    }


def softmax(logits, axis):
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_layer_contract():
    run_layer_test(GatedFusion, {"units": UNITS, "dropout": 0.1}, modality_vectors(), (4, UNITS))


def test_output_is_the_gated_sum_of_tanh_projections():
    x = modality_vectors()
    layer = GatedFusion(units=UNITS, dropout=0.5)
    fused = np.asarray(layer(x, training=False))

    # The gated multimodal unit written out in numpy, modalities in sorted order.
    def dense(sublayer, inputs):
        kernel, bias = (np.asarray(w) for w in sublayer.get_weights())
        return inputs @ kernel + bias

    joint = np.concatenate([x["image"], x["text"]], axis=-1)
    gates = softmax(dense(layer.gate, joint).reshape(4, 2, UNITS), axis=1)
    projected = np.stack(
        [np.tanh(dense(layer.projections[m], x[m])) for m in ("image", "text")], axis=1
    )
    np.testing.assert_allclose(fused, (gates * projected).sum(axis=1), rtol=1e-5, atol=1e-6)

    computed = layer.compute_gates(x)
    assert sorted(computed) == ["image", "text"]
    np.testing.assert_allclose(np.asarray(computed["image"]), gates[:, 0], rtol=1e-5)
    total = np.asarray(computed["image"]) + np.asarray(computed["text"])
    np.testing.assert_allclose(total, np.ones((4, UNITS)), rtol=1e-6)
    assert all(((g > 0) & (g < 1)).all() for g in map(np.asarray, computed.values()))


def test_a_saturated_gate_ignores_the_other_modality():
    x = modality_vectors()
    no_image = {**x, "image": np.zeros_like(x["image"])}
    layer = GatedFusion(units=UNITS, dropout=0.0)
    layer(x)
    # With learned gates, what the image says changes the fused vector.
    assert not np.allclose(layer(x), layer(no_image), atol=1e-4)

    # Gates that always open on text (logits image -20, text +20) make the image irrelevant.
    kernel, _ = layer.gate.get_weights()
    bias = np.concatenate([np.full(UNITS, -20.0), np.full(UNITS, 20.0)]).astype("float32")
    layer.gate.set_weights([np.zeros_like(kernel), bias])
    text_only = np.asarray(layer.projections["text"](x["text"]))  # tanh is its activation
    np.testing.assert_allclose(layer(x), text_only, atol=1e-6)
    np.testing.assert_allclose(layer(no_image), text_only, atol=1e-6)


def test_needs_two_modalities_and_valid_options():
    with pytest.raises(ValueError, match="at least two"):
        GatedFusion(units=4)({"text": np.ones((2, 3), "float32")})
    with pytest.raises(ValueError, match="units=0"):
        GatedFusion(units=0)
    with pytest.raises(ValueError, match="dropout=1.5"):
        GatedFusion(dropout=1.5)


def test_chosen_by_name_in_a_spec_and_saved(spec_round_trip):
    model = spec_round_trip({"name": "gated", "options": {"units": 5, "dropout": 0.0}})
    assert isinstance(model.fusion, GatedFusion)
    assert model.fusion.units == 5


def test_bad_option_in_a_spec_is_a_spec_error(spec_round_trip):
    with pytest.raises(SpecError, match="Invalid options for fusion 'gated'"):
        spec_round_trip({"name": "gated", "options": {"units": 0}})
