"""Contrastive alignment: the InfoNCE loss, its place in the model, and retrieval."""

import keras
import numpy as np
import pytest

from mmtask.alignment import ContrastiveAlignment
from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder
from mmtask.errors import MmtaskError
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.retrieval import recall_at_k, top_k

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (230, 220, 30),
    "purple": (150, 40, 160),
    "cyan": (30, 210, 210),
    "white": (240, 240, 240),
    "black": (15, 15, 15),
}


def vectors(seed=0, n=6):
    rng = np.random.default_rng(seed)
    return {
        "text": rng.normal(size=(n, 5)).astype("float32"),
        "image": rng.normal(size=(n, 7)).astype("float32"),
    }


def info_nce_by_hand(text, image, temperature):
    logits = text @ image.T / temperature

    def cross_entropy(rows):
        rows = rows - rows.max(axis=1, keepdims=True)
        log_probs = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
        return -np.mean(np.diag(log_probs))

    return 0.5 * (cross_entropy(logits) + cross_entropy(logits.T))


def test_embeddings_are_unit_vectors_and_loss_matches_formula():
    layer = ContrastiveAlignment(projection_dim=4, temperature=0.5, weight=2.0)
    inputs = vectors()
    embeddings = {m: np.asarray(v) for m, v in layer(inputs, training=False).items()}
    assert embeddings["text"].shape == (6, 4) and embeddings["image"].shape == (6, 4)
    np.testing.assert_allclose(np.linalg.norm(embeddings["text"], axis=1), 1, rtol=1e-5)
    assert not layer.losses  # no loss outside training
    layer(inputs, training=True)
    expected = info_nce_by_hand(embeddings["text"], embeddings["image"], 0.5)
    assert float(layer.losses[0]) == pytest.approx(2.0 * expected, rel=1e-4)


def test_config_round_trip_and_bad_options():
    layer = ContrastiveAlignment(projection_dim=8, temperature=0.1, weight=0.5)
    assert ContrastiveAlignment.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="temperature"):
        ContrastiveAlignment(temperature=0.0)
    with pytest.raises(ValueError, match="both text and image"):
        ContrastiveAlignment()({"text": np.zeros((2, 3), "float32")})


def test_recall_and_top_k_by_hand():
    embeddings = np.eye(4)
    assert recall_at_k(embeddings, embeddings, ks=(1,)) == {
        "text_to_image": {1: 1.0},
        "image_to_text": {1: 1.0},
    }
    shifted = np.roll(np.eye(4), 1, axis=0)  # text i is nearest to image i+1
    recall = recall_at_k(embeddings, shifted, ks=(1, 4))
    assert recall["text_to_image"] == {1: 0.0, 4: 1.0}
    order, scores = top_k(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 0.1]]), k=2)
    assert order.tolist() == [[1, 0]] and scores[0, 0] > scores[0, 1]


def colour_posts(n_per_colour=8, size=16):
    texts, images = [], []
    rng = np.random.default_rng(0)
    for name, rgb in COLOURS.items():
        for _ in range(n_per_colour):
            texts.append(f"a {name} picture")
            noise = rng.normal(0, 10, (size, size, 3))
            images.append(np.clip(np.array(rgb) + noise, 0, 255))
    return np.array(texts, object), np.array(images, "float32")


def aligned_model(size=16):
    keras.utils.set_random_seed(0)
    return MultiTaskModel(
        encoders={
            "text": TransformerTextEncoder(
                max_tokens=20,
                sequence_length=4,
                embed_dim=16,
                intermediate_dim=16,
                vocabulary=["a", "picture", *COLOURS],
            ),
            "image": SmallCNNImageEncoder(filters=(8,), output_dim=16),
        },
        heads={"dummy": ClassificationHead(2)},
        task_inputs={"dummy": "text"},
        label_names={"dummy": ["no", "yes"]},
        alignment=ContrastiveAlignment(projection_dim=16, temperature=0.1),
        image_size=(size, size),
    )


def test_training_aligns_texts_with_their_images(tmp_path):
    texts, images = colour_posts()
    model = aligned_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = {"text": texts, "image": images}
    y = {"dummy": np.full(len(texts), -1)}  # the task is unlabelled: only alignment trains
    before = model.predict(x, verbose=0)
    history = model.fit(x, y, epochs=40, batch_size=32, verbose=0).history
    after = model.predict(x, verbose=0)
    assert history["alignment_loss"][-1] < history["alignment_loss"][0]
    recall_before = recall_at_k(before["text_embedding"], before["image_embedding"])
    recall_after = recall_at_k(after["text_embedding"], after["image_embedding"])
    # 8 posts share each colour, so a text's own image is among the 10 nearest
    # once colours are aligned; chance is 10 / 64. Same-colour posts are each
    # other's negatives in the batch, which keeps recall well below 1 here.
    assert recall_after["text_to_image"][10] > 0.4
    assert recall_after["text_to_image"][10] > recall_before["text_to_image"][10]
    model.save(tmp_path / "aligned.keras")
    loaded = keras.models.load_model(tmp_path / "aligned.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0)["text_embedding"], after["text_embedding"], atol=1e-5
    )


def test_retrieval_needs_an_aligned_model():
    from mmtask.retrieval import embed_posts

    model = aligned_model()
    model.alignment = None
    with pytest.raises(MmtaskError, match="alignment"):
        embed_posts(model, posts=None)


def test_chosen_by_name_in_a_spec():
    from mmtask.builder import build_model
    from mmtask.spec import ModelSpec

    spec = ModelSpec.from_dict(
        {
            "image_size": 16,
            "text_encoder": {
                "name": "transformer",
                "options": {
                    "max_tokens": 50,
                    "sequence_length": 4,
                    "embed_dim": 8,
                    "intermediate_dim": 8,
                },
            },
            "image_encoder": {"name": "small_cnn", "options": {"filters": [4], "output_dim": 4}},
            "alignment": {"name": "contrastive", "options": {"projection_dim": 6}},
        }
    )
    model = build_model(spec, {"post": ["a", "b"]}, train_texts=["x y", "y z"])
    outputs = model.predict(
        {"text": np.array(["x"], object), "image": np.zeros((1, 16, 16, 3), "float32")},
        verbose=0,
    )
    assert outputs["text_embedding"].shape == (1, 6)
    assert outputs["image_embedding"].shape == (1, 6)
    assert set(outputs) == {"post", "text_embedding", "image_embedding"}
