"""Encoder: the optional projection every encoder shares, and the declared outputs."""

import keras
import numpy as np
import pytest

from mmtask.encoders import PrecomputedEncoder


def test_encoder_frozen_before_build_keeps_its_projection_frozen():
    encoder = PrecomputedEncoder(feature_dim=4, output_dim=3)
    encoder.trainable = False
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(encoder(inputs)["vector"]))
    assert [v.path for v in model.trainable_variables] == ["head/kernel", "head/bias"]
    frozen = [w.copy() for w in encoder.get_weights()]
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=2, verbose=0)
    for before, after in zip(frozen, encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("output_dim", [None, 0])
def test_no_projection(output_dim):
    encoder = PrecomputedEncoder(feature_dim=4, output_dim=output_dim)
    assert encoder.output_width == 4
    assert tuple(encoder(np.ones((2, 4), "float32"))["vector"].shape) == (2, 4)
    assert encoder.weights == []


def test_bad_output_dim():
    with pytest.raises(ValueError, match="output_dim"):
        PrecomputedEncoder(feature_dim=4, output_dim=-1)


def test_the_model_takes_encoders_and_fusions_by_their_bases_only():
    from mmtask.fusion import ConcatFusion
    from mmtask.heads import ClassificationHead
    from mmtask.models import MultiTaskModel

    def model(encoder, fusion):
        return MultiTaskModel(
            encoders={"image": encoder},
            fusion=fusion,
            heads={"t": ClassificationHead(2)},
            task_inputs={"t": "fused"},
            label_names={"t": ["a", "b"]},
        )

    with pytest.raises(TypeError, match="expected `mmtask.encoders.Encoder`"):
        model(keras.layers.Dense(3), ConcatFusion())
    with pytest.raises(TypeError, match="expected a `mmtask.fusion.Fusion`"):
        model(PrecomputedEncoder(feature_dim=4), keras.layers.Dense(3))
