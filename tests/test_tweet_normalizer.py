"""TweetNormalizer rewrites URLs, mentions, hashtags and entities, inside the text encoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from stand_ins import keras_hub_text_preset

from mmtask.encoders import KerasHubTextEncoder
from mmtask.errors import SpecError
from mmtask.text import TweetNormalizer, as_normalizer


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Love it &amp; more &lt;3", "Love it & more <3"),
        ("see https://t.co/x1Yz and www.example.com/a?b=1 now", "see url and url now"),
        ("RT @some_user: hi @Bob!", "RT @user: hi @user!"),
        ("write to help@airline.com", "write to help@airline.com"),
        ("&amp;lt;3 and &amp;amp;", "&lt;3 and &amp;"),
        ("#SummerVibes #NoFilter_2day #USA #iPhone8", "Summer Vibes No Filter 2 day USA i Phone 8"),
        ("no\r\n  change", "no change"),
        ("", ""),
    ],
)
def test_rewrites(raw, expected):
    out = TweetNormalizer()(tf.constant([raw, "x"]))
    assert out.numpy()[0].decode() == expected and out.numpy()[1] == b"x"


def test_options_and_round_trip():
    layer = TweetNormalizer(url_token="", mention_token="", split_hashtags=False)
    assert layer(tf.constant(["a @b https://c.d #NoFilter"])).numpy()[0] == b"a NoFilter"
    again = as_normalizer(keras.layers.serialize(layer))
    assert isinstance(again, TweetNormalizer) and again.get_config() == layer.get_config()
    assert isinstance(as_normalizer("tweet"), TweetNormalizer)
    with pytest.raises(SpecError, match="expected one of \\['tweet'\\]"):
        as_normalizer("twitter")


def test_runs_inside_a_keras_hub_text_encoder_and_its_saved_model(tmp_path):
    keras.utils.set_random_seed(0)
    options = keras_hub_text_preset(tmp_path / "preset")
    plain = KerasHubTextEncoder(**options)
    tweets = KerasHubTextEncoder(**options, normalizer="tweet")
    raw = tf.constant(["#GoodSun https://t.co/x @ann"])
    clean = tf.constant(["Good Sun url @user"])
    np.testing.assert_allclose(tweets(raw)["vector"], plain(clean)["vector"], atol=1e-6)
    assert not np.allclose(plain(raw)["vector"], plain(clean)["vector"], atol=1e-3)
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, tweets(inputs))
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(raw)["vector"], plain(clean)["vector"], atol=1e-6)
