"""Cutting a text backbone where training begins: stem then top equals the encoder (BERT, MPNet)."""

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from stand_ins import BERT_VOCAB, MPNET_SPECIAL_TOKENS, hugging_face_mpnet_folder
from tiny_models import WORDS, tiny_bert_backbone, trained_from

from mmtask.encoders import KerasHubTextEncoder, MPNetTextEncoder

TEXTS = tf.constant(["good sun", "bad rain cat dog sun", "", "sun"])


def bert_encoder(_):
    backbone = tiny_bert_backbone(len(BERT_VOCAB), num_layers=3)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=BERT_VOCAB, lowercase=True)
    return KerasHubTextEncoder(
        tokenizer=tokenizer, backbone=backbone, sequence_length=8, output_dim=4
    )


def mpnet_encoder(folder):
    vocabulary = MPNET_SPECIAL_TOKENS + WORDS
    hugging_face_mpnet_folder(
        folder, vocabulary, num_hidden_layers=3, hidden_size=8, intermediate_size=16
    )
    return MPNetTextEncoder(preset=str(folder), sequence_length=8, output_dim=4)


@pytest.fixture(scope="module", params=[bert_encoder, mpnet_encoder], ids=["bert", "mpnet"])
def encoder(request, tmp_path_factory):
    encoder = request.param(tmp_path_factory.mktemp("text"))
    encoder(TEXTS)
    return encoder


def through_split(split, texts):
    """The top on the stem's states zeroed at padding, as the feature cache stores them."""
    stem, top = split
    outputs = stem(texts)
    mask = np.asarray(outputs["mask"])[..., None]
    return top(np.asarray(outputs["sequence"]) * mask)


def assert_same_outputs(got, expected):
    mask = np.asarray(expected["mask"])
    np.testing.assert_array_equal(got["mask"], mask)
    np.testing.assert_allclose(got["vector"], expected["vector"], atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(got["sequence"])[mask], np.asarray(expected["sequence"])[mask], atol=1e-5
    )


@pytest.mark.parametrize(
    "first_trained, first_above_cut",
    [
        ("transformer_layer_2", "transformer_layer_2"),
        ("transformer_layer_1", "transformer_layer_1"),
        # All the layers train: the cut is at the embeddings' output.
        ("transformer_layer_0", "transformer_layer_0"),
    ],
)
def test_stem_then_top_gives_the_encoders_outputs(encoder, first_trained, first_above_cut):
    split = encoder.split_frozen_stem(trained_from(encoder, first_trained), (8, 8), True)
    assert split[1].first_layer_above_cut == first_above_cut
    assert_same_outputs(through_split(split, TEXTS), encoder(TEXTS))
    # The top shares the encoder's layers: what trains is the encoder's.
    assert trained_from(encoder, first_trained) <= {id(v) for v in split[1].weights}
    # A schedule's `top_n` skips the same unused layers (the pooler) in both.
    assert split[1].unused_sublayers == encoder.unused_sublayers == ("backbone/pooled_dense",)
    # The stem holds nothing that trains.
    assert not trained_from(encoder, first_trained) & {id(v) for v in split[0].weights}


def test_only_the_projection_trains_caches_the_last_hidden_states(encoder):
    stem, top = encoder.split_frozen_stem({id(v) for v in encoder.projection.weights}, (8, 8), True)
    assert top.first_layer_above_cut == ""
    assert_same_outputs(through_split((stem, top), TEXTS), encoder(TEXTS))


def test_trained_embeddings_leave_nothing_to_cut(encoder):
    trained = {id(v) for v in encoder.backbone.weights}
    assert encoder.split_frozen_stem(trained, (8, 8), True) is None
