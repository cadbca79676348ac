"""Saved encoders: written bare by `save_encoder`, loaded never called, usable by any fusion."""

import keras
import numpy as np
import pytest
from tiny_models import WORDS, make_batch

from mmtask.builder import build_model
from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder, load_encoder, save_encoder
from mmtask.fusion import CrossAttentionFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.spec import ComponentSpec, ModelSpec

TEXTS = np.array(["good sun", "bad rain tea"], dtype=object)


def tiny_text_encoder() -> TransformerTextEncoder:
    keras.utils.set_random_seed(0)
    return TransformerTextEncoder(
        max_tokens=32, sequence_length=6, embed_dim=8, intermediate_dim=8, vocabulary=WORDS
    )


def cross_attention_spec(path) -> ModelSpec:
    return ModelSpec(
        image_size=16,
        text_encoder=ComponentSpec("saved", {"path": str(path)}),
        image_encoder=ComponentSpec("small_cnn", {"filters": [4], "output_dim": 4}),
        fusion=ComponentSpec("cross_attention", {"units": 8, "num_heads": 2}),
    )


def fit_one_step(model: MultiTaskModel) -> None:
    x, y = make_batch(n=4)
    model.compile(optimizer="adam")
    model.fit(x, {t: y[t] for t in model.tasks}, batch_size=4, epochs=1, verbose=0)


def test_encoder_trained_in_a_model_feeds_cross_attention_once_saved(tmp_path):
    encoder = tiny_text_encoder()
    inputs = keras.Input(shape=(), dtype="string")
    keras.Model(inputs, encoder(inputs)["vector"])  # As pre-training does.
    path = save_encoder(encoder, tmp_path / "text.keras", "text")
    model = build_model(cross_attention_spec(path), {"post_task": ["neg", "neu", "pos"]})
    np.testing.assert_allclose(
        model.encoders["text"](TEXTS)["vector"], encoder(TEXTS)["vector"], atol=1e-6
    )
    fit_one_step(model)


def test_encoder_files_of_the_wrapper_format_still_load_bare(tmp_path):
    encoder = tiny_text_encoder()
    inputs = keras.Input(shape=(), dtype="string", name="text")
    path = tmp_path / "old.keras"
    keras.Model(inputs, encoder(inputs), name="saved_text_encoder").save(path)
    loaded = load_encoder(path, name="text_encoder")
    assert isinstance(loaded, TransformerTextEncoder)
    assert loaded.name == "text_encoder"
    np.testing.assert_allclose(loaded(TEXTS)["vector"], encoder(TEXTS)["vector"], atol=1e-6)
    build_model(cross_attention_spec(path), {"post_task": ["neg", "neu", "pos"]})


def test_an_unbuilt_encoder_is_built_before_saving(tmp_path):
    encoder = tiny_text_encoder()
    path = save_encoder(encoder, tmp_path / "text.keras", "text")
    np.testing.assert_allclose(
        load_encoder(path)(TEXTS)["vector"], encoder(TEXTS)["vector"], atol=1e-6
    )
    with pytest.raises(ValueError, match="expected one of"):
        save_encoder(encoder, tmp_path / "audio.keras", "audio")


def test_an_encoder_called_in_another_model_feeds_cross_attention_directly():
    # Every call returns the same structure, so the first symbolic call (for
    # the vector, in another model) does not stop a later model from reading
    # the sequence.
    encoder = tiny_text_encoder()
    inputs = keras.Input(shape=(), dtype="string")
    keras.Model(inputs, encoder(inputs)["vector"])
    model = MultiTaskModel(
        encoders={"text": encoder, "image": SmallCNNImageEncoder(filters=(4,), output_dim=4)},
        fusion=CrossAttentionFusion(units=8, num_heads=2),
        heads={"post_task": ClassificationHead(3, name="post_task")},
        task_inputs={"post_task": "fused"},
        label_names={"post_task": ["neg", "neu", "pos"]},
        image_size=(16, 16),
    )
    fit_one_step(model)
