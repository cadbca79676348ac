"""precompute_features: a frozen encoder run once gives the same model as running it every step."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import NAMES

from mmtask.data import make_dataset, read_mvsa
from mmtask.data.synthetic import write_synthetic_mvsa
from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder
from mmtask.errors import MmtaskError
from mmtask.evaluation import modality_contributions
from mmtask.export import export_saved_model
from mmtask.fusion import ConcatFusion, CrossAttentionFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.transfer import precompute_features

TASKS = {"text_sentiment": "text", "image_sentiment": "image", "post_sentiment": "fused"}
SIZE = 32


@pytest.fixture(scope="module")
def posts(tmp_path_factory):
    root = write_synthetic_mvsa(tmp_path_factory.mktemp("mvsa"), num_posts=40, image_size=SIZE)
    posts = read_mvsa(root, verbose=0)
    # One post without its image file, as a reader with allow_missing keeps it.
    posts.image_paths[3] = ""
    return posts


def encoders(seed=0):
    keras.utils.set_random_seed(seed)
    text = TransformerTextEncoder(
        max_tokens=64, sequence_length=8, embed_dim=8, intermediate_dim=8, vocabulary=["a"]
    )
    image = SmallCNNImageEncoder(filters=(4, 8), output_dim=8, dropout=0.0)
    return text, image


def model_with(text, image, fusion=None):
    keras.utils.set_random_seed(1)
    return MultiTaskModel(
        encoders={"text": text, "image": image},
        fusion=fusion or ConcatFusion(units=(8,), dropout=0.0),
        heads={t: ClassificationHead(3, name=t) for t in TASKS},
        task_inputs=TASKS,
        label_names={t: NAMES for t in TASKS},
        image_size=(SIZE, SIZE),
    )


def test_features_equal_the_encoder_on_decoded_images_with_nan_rows_for_missing(posts):
    _, image = encoders()
    with_features, reader = precompute_features(
        posts, image, "image", image_size=SIZE, batch_size=16, verbose=0
    )
    values = with_features.features["image"]
    assert values.shape == (len(posts), 8) and reader.feature_shape == (8,)
    assert np.isnan(values[3]).all() and not np.isnan(np.delete(values, 3, 0)).any()
    decoded = np.concatenate(
        [f["image"].numpy() for f, _, _ in make_dataset(posts, image_size=SIZE, batch_size=16)]
    )
    expected = image(decoded[:3], training=False)["vector"]
    np.testing.assert_allclose(values[:3], expected, rtol=1e-5, atol=1e-6)
    assert posts.features == {}, "the input posts are left unchanged"


def test_precomputed_model_predicts_like_the_frozen_encoder_model(posts):
    text, image = encoders()
    image.trainable = False
    full = model_with(text, image)
    with_features, reader = precompute_features(
        posts, image, "image", image_size=SIZE, batch_size=16, verbose=0
    )
    fast = model_with(text, reader)  # the text encoder is shared by both models
    fast.fusion.set_weights(full.fusion.get_weights())
    for task in TASKS:
        fast.heads[task].set_weights(full.heads[task].get_weights())
    raw = make_dataset(posts, image_size=SIZE, batch_size=16)
    cached = make_dataset(with_features, image_size=SIZE, batch_size=16)
    expected = full.predict(raw, verbose=0)
    actual = fast.predict(cached, verbose=0)
    has_image = np.arange(len(posts)) != 3
    for task in TASKS:
        # Without an image, the image head has nothing to read in either model.
        rows = has_image if task == "image_sentiment" else slice(None)
        np.testing.assert_allclose(actual[task][rows], expected[task][rows], rtol=1e-4, atol=1e-5)


def test_text_sequences_train_a_cross_attention_model_and_masking_works(posts):
    text, image = encoders()
    with_text, text_reader = precompute_features(
        posts, text, "text", batch_size=16, sequence=True, verbose=0
    )
    assert with_text.features["text"].shape == (len(posts), 8, 8)
    both, image_reader = precompute_features(
        with_text, image, "image", image_size=SIZE, batch_size=16, sequence=True, verbose=0
    )
    assert set(both.features) == {"text", "image"}
    fusion = CrossAttentionFusion(units=8, num_heads=2, dropout=0.0)
    model = model_with(text_reader, image_reader, fusion)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = make_dataset(both, batch_size=8, training=True, seed=0)
    history = model.fit(data, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    masked = modality_contributions(model, make_dataset(both, batch_size=8))
    assert set(masked["post_sentiment"]) == {"all", "text_masked", "image_masked"}
    features, _, _ = next(iter(make_dataset(both, batch_size=4)))
    features["image"] = tf.fill(tf.shape(features["image"]), float("nan"))
    text_only = model(features, training=False)
    assert np.isfinite(text_only["post_sentiment"]).all()


def test_selecting_posts_keeps_their_features(posts):
    _, image = encoders()
    with_features, _ = precompute_features(posts, image, "image", image_size=SIZE, verbose=0)
    ids = [posts.ids[5], posts.ids[1]]
    picked = with_features.select(ids)
    np.testing.assert_array_equal(picked.features["image"], with_features.features["image"][[5, 1]])


def test_bad_features_and_export_are_refused(posts, tmp_path):
    with pytest.raises(MmtaskError, match="one row per post"):
        posts.with_features("image", np.zeros((len(posts) - 1, 4), np.float32))
    with pytest.raises(MmtaskError, match="modality"):
        posts.with_features("audio", np.zeros((len(posts), 4), np.float32))
    text, image = encoders()
    _, reader = precompute_features(posts, image, "image", image_size=SIZE, verbose=0)
    with pytest.raises(MmtaskError, match="precomputed image features"):
        export_saved_model(model_with(text, reader), tmp_path / "export")
