"""`TweetNormalizer`: tweets' URLs, @mentions, #hashtags and HTML entities made readable.

A pretrained sentence encoder never saw `https://t.co/x1Yz` or `#NoFilterNeeded`
as words; a URL and a user name carry no sentiment, while a hashtag often
does, once split into its words. The normaliser is a layer of the text
encoder, so training, the feature cache (its config is part of the
encoder's fingerprint) and the exported model all see the same text.
"""

from __future__ import annotations

import keras

from mmtask.registry import TEXT_NORMALIZERS

# `&amp;` last, so `&amp;lt;` (an escaped `&lt;`) decodes once, to `&lt;`.
HTML_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&amp;", "&"))
URL = r"(?i)(https?://|www\.)\S+"
MENTION = r"\B@\w+"  # Not the @ inside an e-mail address.


@TEXT_NORMALIZERS.register("tweet")
class TweetNormalizer(keras.layers.Layer):
    """Rewrites raw tweets (a batch of strings) before tokenization.

    HTML entities are decoded (`&amp;` -> `&`); URLs become `url_token`;
    @mentions become `mention_token`; a hashtag loses its `#` and is split
    into words at case changes, digits and underscores (`#NoFilter_2day` ->
    `No Filter 2 day`); runs of whitespace become one space. TensorFlow only,
    like every raw-string layer.

    Args:
        url_token: str. What a URL becomes ("" drops it).
        mention_token: str. What an @mention becomes ("" drops it).
        split_hashtags: bool. Split hashtags into words (else only drop `#`).

    Example:
    ```python
    TweetNormalizer()(tf.constant(["Love it &amp; more #SummerVibes @bob https://t.co/x"]))
    # -> [b"Love it & more Summer Vibes @user url"]
    ```
    """

    def __init__(
        self,
        url_token: str = "url",
        mention_token: str = "@user",
        split_hashtags: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.url_token = url_token
        self.mention_token = mention_token
        self.split_hashtags = split_hashtags
        self.built = True

    def call(self, texts):
        import tensorflow as tf  # string ops: imported when run, so building a model needs no TF

        for entity, character in HTML_ENTITIES:
            texts = tf.strings.regex_replace(texts, entity, character)
        texts = tf.strings.regex_replace(texts, URL, self.url_token)
        texts = tf.strings.regex_replace(texts, MENTION, self.mention_token)
        words = tf.strings.split(texts)
        words = tf.ragged.map_flat_values(self._hashtag_words, words)
        return tf.strings.reduce_join(words, axis=-1, separator=" ")

    def _hashtag_words(self, words):
        import tensorflow as tf

        is_tag = tf.strings.regex_full_match(words, r"#\w+")
        tags = tf.strings.regex_replace(words, r"^#", "")
        if self.split_hashtags:
            tags = tf.strings.regex_replace(tags, r"([a-z])([A-Z0-9])", r"\1 \2")
            tags = tf.strings.regex_replace(tags, r"([A-Z])([A-Z][a-z])", r"\1 \2")
            tags = tf.strings.regex_replace(tags, r"([0-9])([A-Za-z])", r"\1 \2")
            tags = tf.strings.strip(tf.strings.regex_replace(tags, r"_+", " "))
        return tf.where(is_tag, tags, words)

    def compute_output_spec(self, texts):
        return keras.KerasTensor(texts.shape, dtype="string")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "url_token": self.url_token,
                "mention_token": self.mention_token,
                "split_hashtags": self.split_hashtags,
            }
        )
        return config
