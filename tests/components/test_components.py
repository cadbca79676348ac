"""Every built-in encoder, fusion module and head passes the common layer check."""

import numpy as np
import pytest

from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder
from mmtask.fusion import ConcatFusion
from mmtask.heads import ClassificationHead
from mmtask.testing import run_layer_test

TEXTS = np.array(["a happy sunny day", "a sad rainy night", "nothing much", "love it"], object)


def test_small_cnn_image_encoder():
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    run_layer_test(
        SmallCNNImageEncoder,
        {"filters": (4, 8), "output_dim": 6},
        images,
        expected_output_shape={"vector": (4, 6), "sequence": (4, 16, 8), "mask": (4, 16)},
    )


def test_transformer_text_encoder_with_fixed_vocabulary():
    vocabulary = ["a", "happy", "sunny", "day", "sad", "rainy", "night", "love", "it"]
    layer = run_layer_test(
        TransformerTextEncoder,
        {
            "max_tokens": 16,
            "sequence_length": 6,
            "embed_dim": 8,
            "intermediate_dim": 8,
            "vocabulary": vocabulary,
            "output_dim": 5,
        },
        TEXTS,
        expected_output_shape={"vector": (4, 5), "sequence": (4, 6, 8), "mask": (4, 6)},
    )
    # Index 0 is padding and 1 out-of-vocabulary, then the given words.
    assert layer.vocabulary_size() == len(vocabulary) + 2


def test_text_encoder_ignores_padding():
    encoder = TransformerTextEncoder(
        max_tokens=20, sequence_length=8, embed_dim=8, intermediate_dim=8, dropout=0.0
    )
    encoder.adapt(TEXTS)
    short = encoder(np.array(["happy day"], object))["vector"]
    # The same words with more padding after them must pool to the same vector.
    encoder_long = TransformerTextEncoder.from_config(
        {**encoder.get_config(), "sequence_length": 12}
    )
    encoder_long.vectorizer.set_vocabulary(encoder.vectorizer.get_vocabulary()[2:])
    encoder_long(np.array(["happy day"], object))
    weights = encoder.get_weights()
    long_weights = encoder_long.get_weights()
    # Only the position table differs in size; share its first rows.
    for i, (w, lw) in enumerate(zip(weights, long_weights, strict=True)):
        if w.shape != lw.shape:
            lw = lw.copy()
            lw[: w.shape[0]] = w
            long_weights[i] = lw
        else:
            long_weights[i] = w
    encoder_long.set_weights(long_weights)
    np.testing.assert_allclose(
        encoder_long(np.array(["happy day"], object))["vector"], short, rtol=1e-5, atol=1e-5
    )


def test_concat_fusion():
    rng = np.random.default_rng(1)
    inputs = {
        "text": rng.normal(size=(3, 5)).astype("float32"),
        "image": rng.normal(size=(3, 7)).astype("float32"),
    }
    run_layer_test(ConcatFusion, {"units": (6, 4)}, inputs, expected_output_shape=(3, 4))


def test_concat_fusion_rejects_empty_units():
    with pytest.raises(ValueError, match="units"):
        ConcatFusion(units=())


def test_classification_head_outputs_probabilities():
    x = np.random.default_rng(2).normal(size=(5, 4)).astype("float32")
    head = run_layer_test(
        ClassificationHead,
        {"num_classes": 3, "hidden_units": (6,)},
        x,
        expected_output_shape=(5, 3),
    )
    probabilities = np.asarray(head(x))
    np.testing.assert_allclose(probabilities.sum(axis=-1), np.ones(5), rtol=1e-5)
    assert (probabilities >= 0).all()


def test_classification_head_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        ClassificationHead(num_classes=1)


def test_encoders_return_their_sequences():
    vocabulary = ["a", "happy", "sunny", "day", "sad"]
    text = TransformerTextEncoder(
        max_tokens=16, sequence_length=6, embed_dim=8, intermediate_dim=8, vocabulary=vocabulary
    )
    texts = np.array(["a happy day", "sad"], object)
    out = text(texts)
    assert tuple(out["sequence"].shape) == (2, 6, 8)
    np.testing.assert_array_equal(
        np.asarray(out["mask"]), [[True] * 3 + [False] * 3, [True] + [False] * 5]
    )

    image = SmallCNNImageEncoder(filters=(4, 8), output_dim=5)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    out = image(images)
    # 32 -> stem 16 -> pool 8 -> pool 4: 16 patches of 8 channels.
    assert tuple(out["sequence"].shape) == (2, 16, 8)
    assert np.asarray(out["mask"]).all()
