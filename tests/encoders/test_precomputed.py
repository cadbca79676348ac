"""PrecomputedEncoder: reads feature vectors or zero-padded sequences in place of raw inputs."""

import numpy as np
import pytest

from mmtask.encoders import PrecomputedEncoder
from mmtask.errors import SpecError
from mmtask.registry import IMAGE_ENCODERS, TEXT_ENCODERS
from mmtask.testing import run_layer_test


def test_vector_features_pass_through_and_serialize():
    features = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    layer = run_layer_test(
        PrecomputedEncoder, {"feature_dim": 6, "output_dim": 3}, features, {"vector": (4, 3)}
    )
    assert layer.feature_shape == (6,) and layer.reads == "features"
    plain = PrecomputedEncoder(feature_dim=6)
    np.testing.assert_allclose(plain(features)["vector"], features)


def test_sequence_vector_is_the_mean_over_non_padding_positions():
    sequence = np.zeros((2, 4, 3), "float32")
    sequence[0, :2] = [[1, 2, 3], [3, 4, 5]]
    sequence[1, :3] = [[1, 1, 1], [2, 2, 2], [6, 6, 6]]
    layer = PrecomputedEncoder(feature_dim=3, sequence_length=4, modality="text")
    assert layer.feature_shape == (4, 3)
    np.testing.assert_allclose(layer(sequence)["vector"], [[2, 3, 4], [3, 3, 3]], rtol=1e-6)
    out = layer(sequence)
    np.testing.assert_array_equal(out["mask"], [[1, 1, 0, 0], [1, 1, 1, 0]])


def test_vector_features_give_a_one_position_sequence():
    out = PrecomputedEncoder(feature_dim=5)(np.ones((3, 5), "float32"))
    assert tuple(out["sequence"].shape) == (3, 1, 5)
    assert np.asarray(out["mask"]).all()


def test_registered_for_both_modalities_by_name():
    assert TEXT_ENCODERS.build("precomputed", feature_dim=4).modality == "text"
    assert IMAGE_ENCODERS.build("precomputed", feature_dim=4).modality == "image"
    with pytest.raises(SpecError, match="feature_dim"):
        IMAGE_ENCODERS.build("precomputed", feature_dim=0)


def test_bad_modality_is_rejected():
    with pytest.raises(ValueError, match="modality"):
        PrecomputedEncoder(feature_dim=4, modality="audio")
