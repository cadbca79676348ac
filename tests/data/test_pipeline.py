from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mmtask.data import Posts, ReadReport, make_dataset
from mmtask.data.pipeline import features_only

NUM_POSTS = 10


def _colour(i):
    return (i * 20, 100, 250 - i * 20)


@pytest.fixture
def posts(tmp_path, encode):
    """10 posts; post i has text "post i" and a solid PNG of colour _colour(i)."""
    paths = []
    for i in range(NUM_POSTS):
        path = tmp_path / f"{i}.png"
        path.write_bytes(encode(Image.new("RGB", (12, 9), _colour(i)), "PNG"))
        paths.append(str(path))
    return Posts(
        ids=[str(i) for i in range(NUM_POSTS)],
        texts=[f"post {i}" for i in range(NUM_POSTS)],
        image_paths=paths,
        labels={
            "a": [i % 3 for i in range(NUM_POSTS)],
            "b": [-1 if i % 4 == 1 else 1 for i in range(NUM_POSTS)],
        },
        label_names={"a": ["x", "y", "z"], "b": ["no", "yes"]},
        report=ReadReport("test"),
    )


def _collect(dataset):
    """Texts (as post numbers), images, labels and masks of all batches, concatenated."""
    batches = list(dataset.as_numpy_iterator())
    posts = np.concatenate([[int(t.split()[1]) for t in f["text"]] for f, _, _ in batches])
    images = np.concatenate([f["image"] for f, _, _ in batches])
    labels = {k: np.concatenate([b[1][k] for b in batches]) for k in batches[0][1]}
    masks = {k: np.concatenate([b[2][k] for b in batches]) for k in batches[0][2]}
    return posts, images, labels, masks


def _model(reads="text", tokenize=None):
    """All make_dataset reads of a model: image size, modalities, what its text encoder reads."""
    text_encoder = SimpleNamespace(reads=reads, tokenize=tokenize)
    return SimpleNamespace(
        image_size=(6, 8), modalities=["image", "text"], encoders={"text": text_encoder}
    )


def test_image_size_defaults_to_the_models(posts):
    model = _model()
    dataset = make_dataset(posts, model=model, batch_size=4)
    assert dataset.element_spec[0]["image"].shape.as_list() == [None, 6, 8, 3]
    agreeing = make_dataset(posts, model=model, image_size=[6, 8], batch_size=4)
    assert agreeing.element_spec[0]["image"].shape.as_list() == [None, 6, 8, 3]


def test_image_size_missing_or_disagreeing_with_the_model_is_an_error(posts):
    with pytest.raises(ValueError, match="pass `model=`.*or `image_size=`. Received neither"):
        make_dataset(posts, batch_size=4)
    with pytest.raises(ValueError, match=r"expected \(6, 8\).*Received: image_size=224"):
        make_dataset(posts, model=_model(), image_size=224)


def test_texts_become_token_ids_for_a_text_encoder_that_reads_them(posts):
    def tokenize(texts):  # "post i" -> [len("post i"), i + 1], batch size unknown
        numbers = tf.strings.to_number(tf.strings.split(texts).to_tensor()[:, 1], tf.int32)
        ids = tf.stack([tf.strings.length(texts), numbers + 1], axis=1)
        return tf.compat.v1.placeholder_with_default(ids, [None, 2])  # as TextVectorization

    dataset = make_dataset(posts, model=_model("token_ids", tokenize), batch_size=4)
    assert dataset.element_spec[0]["text"].dtype == tf.int32
    ids = np.concatenate([f["text"] for f, _, _ in dataset.as_numpy_iterator()])
    np.testing.assert_array_equal(ids[:, 1], np.arange(NUM_POSTS) + 1)
    np.testing.assert_array_equal(ids[:, 0], [len(f"post {i}") for i in range(NUM_POSTS)])
    texts = make_dataset(posts, model=_model("text", tokenize), batch_size=4)
    assert texts.element_spec[0]["text"].dtype == tf.string
    dropped = make_dataset(
        posts, model=_model("token_ids", tokenize), batch_size=4, drop_remainder=True
    )
    assert dropped.element_spec[0]["text"].shape == (4, 2)


def test_element_spec_and_batches(posts):
    dataset = make_dataset(posts, image_size=(6, 8), batch_size=4)
    features, labels, masks = dataset.element_spec
    assert features["text"] == tf.TensorSpec((None,), tf.string)
    assert features["image"] == tf.TensorSpec((None, 6, 8, 3), tf.float32)
    assert labels == {"a": tf.TensorSpec((None,), tf.int32), "b": tf.TensorSpec((None,), tf.int32)}
    assert masks == {
        "a": tf.TensorSpec((None,), tf.float32),
        "b": tf.TensorSpec((None,), tf.float32),
    }
    assert [len(f["text"]) for f, _, _ in dataset.as_numpy_iterator()] == [4, 4, 2]
    dropped = make_dataset(posts, image_size=4, batch_size=4, drop_remainder=True)
    assert dropped.element_spec[0]["image"].shape == (4, 4, 4, 3)
    assert [len(f["text"]) for f, _, _ in dropped.as_numpy_iterator()] == [4, 4]


def test_order_labels_masks_and_images_line_up(posts):
    order, images, labels, masks = _collect(make_dataset(posts, image_size=3, batch_size=3))
    np.testing.assert_array_equal(order, np.arange(NUM_POSTS))
    np.testing.assert_array_equal(labels["a"], [i % 3 for i in range(NUM_POSTS)])
    np.testing.assert_array_equal(labels["b"], [0 if i % 4 == 1 else 1 for i in range(NUM_POSTS)])
    np.testing.assert_array_equal(masks["a"], np.ones(NUM_POSTS))
    np.testing.assert_array_equal(masks["b"], [0 if i % 4 == 1 else 1 for i in range(NUM_POSTS)])
    expected = np.array([_colour(i) for i in range(NUM_POSTS)], np.float32)
    np.testing.assert_array_equal(images[:, 1, 1], expected)


def test_not_training_is_deterministic(posts):
    first = _collect(make_dataset(posts, image_size=4, batch_size=3))
    second = _collect(make_dataset(posts, image_size=4, batch_size=3))
    for a, b in zip(first[:2], second[:2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_shuffles_and_augments_reproducibly(posts):
    def run(**kwargs):
        return _collect(make_dataset(posts, image_size=4, batch_size=4, training=True, **kwargs))

    order, images, labels, _ = run(seed=7)
    assert sorted(order) == list(range(NUM_POSTS)) and list(order) != list(range(NUM_POSTS))
    np.testing.assert_array_equal(labels["a"], order % 3)  # labels follow their posts
    clean = np.array([_colour(i) for i in order], np.float32)
    assert np.abs(images[:, 0, 0] - clean).max() > 1  # brightness / contrast jitter
    assert images.min() >= 0 and images.max() <= 255
    again = run(seed=7)
    np.testing.assert_array_equal(order, again[0])
    np.testing.assert_array_equal(images, again[1])

    order, images, _, _ = run(seed=7, augment=False)
    np.testing.assert_array_equal(images[:, 0, 0], [_colour(i) for i in order])
    order, _, _, _ = run(seed=7, shuffle=False)
    np.testing.assert_array_equal(order, np.arange(NUM_POSTS))


def test_epochs_differ_when_training(posts):
    dataset = make_dataset(posts, image_size=4, batch_size=NUM_POSTS, training=True, seed=1)
    first, second = _collect(dataset), _collect(dataset)
    assert not np.array_equal(first[1], second[1])


def test_every_pass_is_a_new_permutation_of_the_posts(posts):
    dataset = make_dataset(posts, image_size=2, batch_size=4, training=True, seed=2)
    passes = [_collect(dataset)[0] for _ in range(3)]
    repeated = make_dataset(posts, image_size=2, batch_size=5, training=True, seed=2, repeat=True)
    texts = [t for f, _, _ in repeated.take(6).as_numpy_iterator() for t in f["text"]]
    passes += [[int(t.split()[1]) for t in texts[k : k + NUM_POSTS]] for k in (0, 10, 20)]
    for order in passes:
        assert sorted(order) == list(range(NUM_POSTS))
    assert len({tuple(order) for order in passes[:3]}) == 3
    assert len({tuple(order) for order in passes[3:]}) == 3


def test_prefetch_is_bounded(posts):
    with pytest.raises(ValueError, match="`prefetch_batches` must be >= 1. Received: 0"):
        make_dataset(posts, image_size=2, prefetch_batches=0)


@pytest.mark.parametrize("to_file", [False, True])
def test_cache_serves_decoded_images_without_the_files(posts, tmp_path, to_file):
    cache = str(tmp_path / "cache" / "posts") if to_file else True
    if to_file:
        (tmp_path / "cache").mkdir()
    dataset = make_dataset(posts, image_size=4, batch_size=4, cache=cache)
    first = _collect(dataset)
    for path in posts.image_paths:
        Image.new("RGB", (12, 9), "white").save(path)  # later reads would see white
    second = _collect(dataset)
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(second[1][:, 0, 0], [_colour(i) for i in range(NUM_POSTS)])
    if to_file:
        assert list((tmp_path / "cache").iterdir())


def test_cached_training_still_augments_each_epoch(posts):
    dataset = make_dataset(posts, image_size=4, batch_size=4, training=True, cache=True, seed=3)
    first, second = _collect(dataset), _collect(dataset)
    assert sorted(first[0]) == sorted(second[0]) == list(range(NUM_POSTS))
    assert not np.array_equal(first[1], second[1])


def test_repeat(posts):
    dataset = make_dataset(posts, image_size=4, batch_size=4, repeat=True)
    texts = [t for f, _, _ in dataset.take(5).as_numpy_iterator() for t in f["text"]]
    assert len(texts) == 20 and texts[10] == b"post 0"


def test_features_only_and_unlabelled_posts(posts):
    unlabelled = Posts(posts.ids, posts.texts, posts.image_paths, {}, {}, ReadReport("x"))
    dataset = features_only(make_dataset(unlabelled, image_size=4, batch_size=8))
    assert set(dataset.element_spec) == {"text", "image"}
    batch = next(iter(dataset))
    assert batch["image"].shape == (8, 4, 4, 3)


def test_text_only_model_gets_no_images_and_typed_labels_keep_their_form():
    posts = Posts(
        ids=["1", "2", "3"],
        texts=["a", "b", "c"],
        image_paths=["", "", ""],  # a text-only manifest: no image files at all
        labels={
            "score": [1.5, np.nan, -2.0],
            "topics": [[1, 0], [-1, -1], [0, 0]],
        },
        label_names={"score": ["score"], "topics": ["food", "sport"]},
        report=ReadReport("test"),
        label_types={"score": "regression", "topics": "multilabel"},
    )
    model = SimpleNamespace(**{**vars(_model()), "modalities": ["text"]})
    dataset = make_dataset(posts, model=model, batch_size=3, training=True, seed=0)
    features, labels, masks = next(iter(dataset.as_numpy_iterator()))
    assert set(features) == {"text"}
    by_text = {t.decode(): i for i, t in enumerate(features["text"])}
    b, c = by_text["b"], by_text["c"]
    assert labels["score"].shape == (3, 1) and labels["score"][b, 0] == 0.0  # NaN filled
    assert masks["score"][b] == 0.0 and masks["score"][c] == 1.0
    assert labels["topics"].shape == (3, 2) and (labels["topics"][b] == 0).all()
    assert masks["topics"][b] == 0.0 and masks["topics"][c] == 1.0  # an empty set is a label
