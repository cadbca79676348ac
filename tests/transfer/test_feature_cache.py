"""FeatureCache: a frozen encoder's outputs are computed once and found again only when valid."""

import keras
import numpy as np
import pytest
from PIL import Image

import mmtask.transfer.feature_cache as feature_cache
from mmtask.data import read_mvsa
from mmtask.data.synthetic import write_synthetic_mvsa
from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder
from mmtask.transfer.feature_cache import FeatureCache

SIZE = 32


@pytest.fixture()
def posts(tmp_path):
    root = write_synthetic_mvsa(tmp_path / "mvsa", num_posts=12, image_size=SIZE)
    return read_mvsa(root, verbose=0)


@pytest.fixture()
def computed(monkeypatch):
    """How many posts the encoder really ran on, per call of the cache."""
    counts = []
    original = feature_cache.encode_posts

    def counting(posts, *args, **kwargs):
        counts.append(len(posts))
        return original(posts, *args, **kwargs)

    monkeypatch.setattr(feature_cache, "encode_posts", counting)
    return counts


def image_encoder(seed=0, dropout=0.0):
    keras.utils.set_random_seed(seed)
    encoder = SmallCNNImageEncoder(filters=(4, 8), output_dim=8, dropout=dropout)
    encoder.build((None, SIZE, SIZE, 3))
    return encoder


def text_encoder():
    keras.utils.set_random_seed(0)
    encoder = TransformerTextEncoder(
        max_tokens=64, sequence_length=8, embed_dim=8, intermediate_dim=8, vocabulary=["a", "b"]
    )
    encoder(keras.ops.convert_to_tensor(["a b"]))
    return encoder


def test_second_run_reads_the_cache_and_gives_the_same_features(posts, tmp_path, computed):
    cache = FeatureCache(tmp_path / "cache", verbose=0)
    encoder = image_encoder()
    first = cache.features(posts, encoder, "image", image_size=SIZE)
    second = cache.features(posts, encoder, "image", image_size=SIZE)
    assert computed == [len(posts)]
    np.testing.assert_array_equal(first, second)
    # A fresh cache object over the same folder (a later run) reads it too.
    third = FeatureCache(tmp_path / "cache", verbose=0).features(
        posts, encoder, "image", image_size=SIZE
    )
    assert computed == [len(posts)]
    np.testing.assert_array_equal(first, third)


def test_features_match_the_encoder_run_directly(posts, tmp_path):
    encoder = image_encoder()
    values = FeatureCache(tmp_path, verbose=0).features(posts, encoder, "image", image_size=SIZE)
    from mmtask.data import make_dataset

    images = next(iter(make_dataset(posts, image_size=SIZE, batch_size=len(posts))))[0]["image"]
    expected = keras.ops.convert_to_numpy(encoder(images, training=False)["vector"])
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)


def test_a_changed_image_file_is_computed_again_alone(posts, tmp_path, computed):
    cache = FeatureCache(tmp_path / "cache", verbose=0)
    encoder = image_encoder()
    before = cache.features(posts, encoder, "image", image_size=SIZE)
    # Same id and path, other bytes: post 0's image turned upside down.
    with Image.open(posts.image_paths[0]) as image:
        image.rotate(180).save(posts.image_paths[0], format=image.format)
    after = cache.features(posts, encoder, "image", image_size=SIZE)
    assert computed == [len(posts), 1]
    assert not np.allclose(after[0], before[0])
    np.testing.assert_array_equal(after[1:], before[1:])


def test_a_changed_text_is_computed_again_alone(posts, tmp_path, computed):
    cache = FeatureCache(tmp_path / "cache", verbose=0)
    encoder = text_encoder()
    cache.features(posts, encoder, "text", image_size=SIZE)
    posts.texts[0] = posts.texts[0] + " and more"
    cache.features(posts, encoder, "text", image_size=SIZE)
    assert computed == [len(posts), 1]


def test_changed_weights_config_or_options_give_a_new_entry(posts, tmp_path, computed):
    cache = FeatureCache(tmp_path / "cache", verbose=0)
    base = image_encoder(seed=0)
    cache.features(posts, base, "image", image_size=SIZE)
    changed_weights = image_encoder(seed=0)
    kernel = changed_weights.weights[0]
    kernel.assign(kernel + 0.01)
    cache.features(posts, changed_weights, "image", image_size=SIZE)
    cache.features(posts, image_encoder(seed=0, dropout=0.5), "image", image_size=SIZE)
    cache.features(posts, base, "image", image_size=SIZE // 2)
    sequences = cache.features(posts, base, "image", image_size=SIZE, sequence=True)
    assert computed == [len(posts)] * 5
    assert sequences.ndim == 3
    assert len(list((tmp_path / "cache").iterdir())) == 5


def test_posts_without_the_modality_are_nan_rows_and_never_computed(posts, tmp_path, computed):
    posts.image_paths[3] = ""
    values = FeatureCache(tmp_path, verbose=0).features(
        posts, image_encoder(), "image", image_size=SIZE
    )
    assert computed == [len(posts) - 1]
    assert np.isnan(values[3]).all() and not np.isnan(np.delete(values, 3, axis=0)).any()


def test_progress_shows_posts_per_second_and_time_left(posts, tmp_path, capsys):
    FeatureCache(tmp_path, verbose=2).features(posts, image_encoder(), "image", image_size=SIZE)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"image features: {len(posts)}/{len(posts)} posts" in line
    assert "posts/s" in line and "left" in line


def test_a_second_load_of_a_preset_in_one_process_finds_the_first_ones_entry(
    posts, tmp_path, computed
):
    # A preset that stores no layer names (as keras-hub's conversion of a
    # Hugging Face folder, all-MiniLM-L6-v2's) loads a second time in a
    # process as `bert_tokenizer_1`: the next seed's model must still read the cache.
    import json

    from stand_ins import keras_hub_text_preset

    from mmtask.encoders import KerasHubTextEncoder

    options = keras_hub_text_preset(tmp_path / "bert")
    for name in ("config.json", "tokenizer.json"):
        path = tmp_path / "bert" / name
        saved = json.loads(path.read_text())
        del saved["config"]["name"]
        path.write_text(json.dumps(saved))
    cache = FeatureCache(tmp_path / "cache", verbose=0)
    for _ in range(2):
        encoder = KerasHubTextEncoder(**options, name="text_encoder")
        cache.features(posts, encoder, "text", image_size=SIZE)
    assert computed == [len(posts)]
    renamed = KerasHubTextEncoder(**options, name="another_text_encoder")
    cache.features(posts, renamed, "text", image_size=SIZE)
    assert computed == [len(posts), len(posts)], "a name given by the user is kept in the key"
