"""Cutting a keras-hub image backbone where training begins: stem then top equals the encoder."""

import numpy as np
import pytest
from tiny_models import tiny_efficientnet_backbone, trained_from

from mmtask.encoders import KerasHubImageEncoder

SIZE = 16


@pytest.fixture(scope="module")
def encoder():
    encoder = KerasHubImageEncoder(backbone=tiny_efficientnet_backbone(), output_dim=4)
    encoder.build((None, SIZE, SIZE, 3))
    return encoder


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype("float32")


def through_split(split, images):
    stem, top = split
    return top(np.asarray(stem(images)["sequence"]))


@pytest.mark.parametrize(
    "first_trained, first_above_cut",
    [
        ("top_conv", "top_conv"),
        # Block 1 adds its input back: no single tensor separates its layers,
        # so the cut goes below the block.
        ("block1a_project", "block1a_dwconv_pad"),
        ("block2a_dwconv", "block2a_dwconv"),
    ],
)
@pytest.mark.parametrize("sequence", [False, True])
def test_stem_then_top_gives_the_encoders_outputs(
    encoder, images, first_trained, first_above_cut, sequence
):
    split = encoder.split_frozen_stem(trained_from(encoder, first_trained), (SIZE, SIZE), sequence)
    assert split[1].first_layer_above_cut == first_above_cut
    got, expected = through_split(split, images), encoder(images)
    for key in ("vector", "sequence", "mask"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=key)
    # The top shares the encoder's layers: what trains is the encoder's.
    top_variables = {id(v) for v in split[1].trainable_variables}
    assert {id(v) for v in encoder.projection.weights} <= top_variables


def test_only_the_projection_trains_caches_the_pooled_vector(encoder, images):
    trained = {id(v) for v in encoder.projection.weights}
    stem, top = encoder.split_frozen_stem(trained, (SIZE, SIZE), sequence=False)
    assert top.first_layer_above_cut == ""
    assert np.asarray(stem(images)["sequence"]).shape == (3, 1, encoder.feature_dim)
    np.testing.assert_allclose(
        through_split((stem, top), images)["vector"], encoder(images)["vector"], atol=1e-5
    )
    # With a fusion reading patches, the stem keeps the whole feature map.
    stem, top = encoder.split_frozen_stem(trained, (SIZE, SIZE), sequence=True)
    np.testing.assert_allclose(
        through_split((stem, top), images)["sequence"], encoder(images)["sequence"], atol=1e-5
    )


def test_a_backbone_cut_again_in_the_same_process_keeps_its_cache_key():
    # The second backbone's input is `input_layer_1`, and the stem's config
    # refers to it by name: the next seed's stem must still find the cache.
    import keras

    from mmtask.transfer.feature_cache import encoder_fingerprint

    stems = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        encoder = KerasHubImageEncoder(
            backbone=tiny_efficientnet_backbone(), output_dim=4, name="image_encoder"
        )
        encoder.build((None, SIZE, SIZE, 3))
        trained = trained_from(encoder, "top_conv")
        stems.append(encoder.split_frozen_stem(trained, (SIZE, SIZE), False)[0])
    assert encoder_fingerprint(stems[0]) == encoder_fingerprint(stems[1])
