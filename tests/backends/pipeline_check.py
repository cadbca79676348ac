"""Trains mmtask models on this process's Keras backend from `make_dataset`'s tf.data batches.

`test_jax_pipeline.py` runs it under `KERAS_BACKEND=jax` in a child process (a
process has one Keras backend). The posts are a small synthetic MVSA folder
read from disk: images decoded by the pipeline, texts tokenized by it for a
text encoder that reads "token_ids", a post without text and missing labels
as the readers give them. Prints one JSON line: `backend`, `checks` (name ->
"ok" or the error); the exit status is 0 only if every check passed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import traceback
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf  # the input side: tf.data and its string ops
from keras import ops

from mmtask.data import features_only, make_dataset, read_mvsa, write_synthetic_mvsa
from mmtask.encoders import (
    KerasHubTextEncoder,
    PrecomputedEncoder,
    SmallCNNImageEncoder,
    TransformerTextEncoder,
)
from mmtask.fusion import ConcatFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel

IMAGE_SIZE, LENGTH, BATCH = 16, 8, 8
TASK_INPUTS = {"text_sentiment": "text", "image_sentiment": "image", "post_sentiment": "fused"}


def read_posts(folder: Path):
    """24 synthetic posts; the first has no text, the second no post label."""
    posts = read_mvsa(write_synthetic_mvsa(folder, num_posts=24, image_size=IMAGE_SIZE))
    labels = {task: values.copy() for task, values in posts.labels.items()}
    labels["post_sentiment"][1] = -1
    return dataclasses.replace(posts, texts=["", *posts.texts[1:]], labels=labels)


def make_model(posts, text_encoder) -> MultiTaskModel:
    keras.utils.set_random_seed(0)
    return MultiTaskModel(
        encoders={"text": text_encoder, "image": SmallCNNImageEncoder(filters=(4,), output_dim=8)},
        fusion=ConcatFusion(units=(8,)),
        heads={t: ClassificationHead(3, name=t) for t in TASK_INPUTS},
        task_inputs=TASK_INPUTS,
        label_names={t: posts.label_names[t] for t in TASK_INPUTS},
        image_size=(IMAGE_SIZE, IMAGE_SIZE),
    )


def transformer_encoder(posts) -> TransformerTextEncoder:
    encoder = TransformerTextEncoder(
        max_tokens=64, sequence_length=LENGTH, embed_dim=8, intermediate_dim=8, reads="token_ids"
    )
    encoder.adapt(posts.texts)
    return encoder


def bert_encoder(posts) -> KerasHubTextEncoder:
    import keras_hub

    words = sorted({w for text in posts.texts for w in text.lower().split() if w.isalpha()})
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=LENGTH,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    return KerasHubTextEncoder(
        tokenizer=tokenizer,
        backbone=backbone,
        sequence_length=LENGTH,
        trainable_backbone=True,
        reads="token_ids",
    )


def text_weights(model: MultiTaskModel) -> dict[str, np.ndarray]:
    """The text encoder's embeddings and kernels (an attention key bias gets no gradient)."""
    return {
        v.path: ops.convert_to_numpy(v)
        for v in model.encoders["text"].trainable_weights
        if v.path.endswith(("embeddings", "kernel"))
    }


def check_trains_from_pipeline(posts, encoder_factory, folder: Path) -> None:
    """Batches carry int32 token ids; `fit` trains the text encoder on them; a `.keras` round trip.

    The reloaded model predicts the same, and its encoder tokenizes as the
    pipeline did.
    """
    model = make_model(posts, encoder_factory(posts))
    dataset = make_dataset(posts, model=model, batch_size=BATCH, training=True, seed=0)
    features, labels, masks = next(iter(dataset))
    assert features["text"].dtype == "int32", features["text"].dtype
    assert tuple(features["text"].shape) == (BATCH, LENGTH), features["text"].shape
    assert features["image"].shape == (BATCH, IMAGE_SIZE, IMAGE_SIZE, 3)
    in_order = make_dataset(posts, model=model, batch_size=BATCH)
    first = next(iter(in_order))[0]["text"].numpy()
    assert not first[0].any(), f"the post without text has tokens {first[0]}"
    assert first[1:].any(axis=1).all(), "a post with text has no tokens"
    presence = model.get_layer("modality_presence")(next(iter(features_only(in_order))))
    np.testing.assert_array_equal(ops.convert_to_numpy(presence["text"])[:2], [0.0, 1.0])

    before = text_weights(model)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    assert model.jit_compile, "the train step is not compiled (jax.jit)"
    history = model.fit(dataset, epochs=1, verbose=0).history
    for task in TASK_INPUTS:
        assert np.all(np.isfinite(history[f"{task}_loss"])), history
    after = text_weights(model)
    unmoved = [path for path in before if np.allclose(before[path], after[path])]
    assert before and not unmoved, f"text encoder weights left untrained: {unmoved}"

    x = {m: v.numpy() for m, v in next(iter(features_only(in_order))).items()}
    model.save(folder / "token_ids.keras")
    loaded = keras.models.load_model(folder / "token_ids.keras")
    assert loaded.encoders["text"].reads == "token_ids"
    expected, actual = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for task in TASK_INPUTS:
        np.testing.assert_allclose(actual[task], expected[task], atol=1e-6)
    ids = loaded.encoders["text"].tokenize(tf.constant(posts.texts[:BATCH]))
    np.testing.assert_array_equal(ids.numpy(), x["text"])


def check_precomputed_features(posts) -> None:
    """Precomputed image features go through the same pipeline and train."""
    rng = np.random.default_rng(0)
    posts = posts.with_features("image", rng.normal(size=(len(posts), 6)).astype("float32"))
    keras.utils.set_random_seed(0)
    model = MultiTaskModel(
        encoders={
            "text": transformer_encoder(posts),
            "image": PrecomputedEncoder(6, modality="image"),
        },
        fusion=ConcatFusion(units=(8,)),
        heads={t: ClassificationHead(3, name=t) for t in TASK_INPUTS},
        task_inputs=TASK_INPUTS,
        label_names={t: posts.label_names[t] for t in TASK_INPUTS},
    )
    dataset = make_dataset(posts, model=model, batch_size=BATCH, training=True, seed=0)
    model.compile(optimizer="adam")
    history = model.fit(dataset, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]), history


def main() -> int:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        posts = read_posts(Path(folder) / "mvsa")
        checks = {
            "transformer_token_ids": lambda: check_trains_from_pipeline(
                posts, transformer_encoder, Path(folder)
            ),
            "keras_hub_token_ids": lambda: check_trains_from_pipeline(
                posts, bert_encoder, Path(folder)
            ),
            "precomputed_features": lambda: check_precomputed_features(posts),
        }
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception:
                results[name] = traceback.format_exc(limit=-4)
    print(json.dumps({"backend": keras.backend.backend(), "checks": results}))
    return 0 if all(r == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
