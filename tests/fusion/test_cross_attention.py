"""Cross-attention fusion: contract, masking, and use by name inside a model."""

import keras
import numpy as np
import pytest

from mmtask.fusion import CrossAttentionFusion
from mmtask.testing import run_layer_test


def encoded(seed=0, batch=3, text_len=5, patches=4):
    rng = np.random.default_rng(seed)
    text_mask = np.ones((batch, text_len), bool)
    text_mask[0, 3:] = False  # the first text has two padding positions
    return {
        "text": {
            "vector": rng.normal(size=(batch, 6)).astype("float32"),
            "sequence": rng.normal(size=(batch, text_len, 6)).astype("float32"),
            "mask": text_mask,
        },
        "image": {
            "vector": rng.normal(size=(batch, 7)).astype("float32"),
            "sequence": rng.normal(size=(batch, patches, 7)).astype("float32"),
            "mask": np.ones((batch, patches), bool),
        },
    }


def test_layer_contract():
    run_layer_test(
        CrossAttentionFusion,
        {"units": 8, "num_heads": 2, "dropout": 0.0},
        encoded(),
        expected_output_shape=(3, 8),
    )


def test_padding_positions_do_not_matter():
    keras.utils.set_random_seed(0)
    layer = CrossAttentionFusion(units=8, num_heads=2, dropout=0.0)
    inputs = encoded()
    before = np.asarray(layer(inputs))
    changed = encoded()
    changed["text"]["sequence"][0, 3:] = 100.0  # only padded positions change
    np.testing.assert_allclose(np.asarray(layer(changed)), before, rtol=1e-5, atol=1e-5)
    changed["text"]["sequence"][0, 0] = 100.0  # a real token changes
    assert not np.allclose(np.asarray(layer(changed))[0], before[0], atol=1e-4)
    # The image patches reach every post's output.
    other_image = encoded()
    other_image["image"]["sequence"] += 1.0
    assert not np.allclose(np.asarray(layer(other_image)), before, atol=1e-4)


def test_heads_must_divide_units():
    with pytest.raises(ValueError, match="must divide"):
        CrossAttentionFusion(units=10, num_heads=3)


def test_chosen_by_name_in_a_spec(spec_round_trip):
    spec_round_trip({"name": "cross_attention", "options": {"units": 8, "num_heads": 2}})
