"""Text encoder around a pretrained keras-hub backbone (the BERT family) and its tokenizer.

Tokenizer and backbone travel together inside the model, so the model and its
exported SavedModel take raw strings (TensorFlow backend only). With
`reads="token_ids"` the model takes token ids instead and the tf.data
pipeline runs the normalizer, tokenizer and packer (`tokenize`), so the
backbone trains on JAX and PyTorch too. Sentence vectors are the mean of the
last hidden states over real tokens (as sentence-transformers do), or the
[CLS] state.
"""

from __future__ import annotations

from collections.abc import Collection

import keras
import keras_hub
from keras import ops

from mmtask.encoders.base import Encoder, masked_mean, text_input
from mmtask.encoders.presets import as_layer, from_preset
from mmtask.encoders.text_backbone_split import split_text_backbone
from mmtask.registry import TEXT_ENCODERS
from mmtask.text.normalizer import as_normalizer


@TEXT_ENCODERS.register("keras_hub")
class KerasHubTextEncoder(Encoder):
    """A keras-hub BERT-style backbone with its tokenizer, pooled to a sentence vector.

    Args:
        preset: str | None. A keras-hub preset folder holding the backbone,
            its weights and its tokenizer.
        tokenizer: layer | dict | None. With `backbone`, instead of `preset`.
        backbone: layer | dict | None. With `tokenizer`, instead of `preset`.
        sequence_length: int. Tokens per text, [CLS] and [SEP] included.
        pooling: str. "mean" over real tokens, or "cls".
        output_dim: int | None. If set, a dense projection to this width.
        trainable_backbone: bool. False freezes the backbone.
        normalizer: str | dict | layer | None. Rewrites the raw texts before
            tokenization, e.g. "tweet" (`mmtask.text.TweetNormalizer`: URLs,
            @mentions, hashtags split into words, HTML entities).
        reads: str. "text": the model takes raw strings; "token_ids": it takes
            the ids `tokenize` gives, made in the tf.data pipeline (the
            tokenizer's padding id must be 0, as in the BERT family).

    A subclass for another family of backbones overrides `load_preset` and
    `backbone_inputs` (`MPNetTextEncoder`).

    Example:
    ```python
    encoder = KerasHubTextEncoder(preset="all_minilm_l6_v2", sequence_length=64)
    vectors = encoder(np.array(["what a day"], object))["vector"]  # (1, 384)
    ```
    """

    modality = "text"
    reads = "text"
    # keras-hub tokenizers run TensorFlow Text ops.
    serving_imports = ("tensorflow_text",)

    def __init__(
        self,
        preset: str | None = None,
        tokenizer: keras.layers.Layer | dict | None = None,
        backbone: keras.layers.Layer | dict | None = None,
        sequence_length: int = 64,
        pooling: str = "mean",
        output_dim: int | None = None,
        trainable_backbone: bool = False,
        normalizer: str | dict | keras.layers.Layer | None = None,
        reads: str = "text",
        **kwargs,
    ):
        super().__init__(output_dim=output_dim, **kwargs)
        self.reads = text_input(reads)
        if (preset is None) == (backbone is None or tokenizer is None):
            raise ValueError(
                "Give either `preset`, or both `tokenizer` and `backbone`. Received: "
                f"preset={preset!r}, tokenizer={type(tokenizer).__name__}, "
                f"backbone={type(backbone).__name__}"
            )
        if pooling not in ("mean", "cls"):
            raise ValueError(
                f"Invalid value for `pooling`: expected 'mean' or 'cls'. Received: {pooling!r}"
            )
        if preset is not None:
            tokenizer, backbone = self.load_preset(preset)
        tokenizer = as_layer(tokenizer)
        if self.reads == "token_ids" and tokenizer.pad_token_id != 0:
            raise ValueError(
                "A text encoder reading token ids marks padding with id 0, but this "
                f"tokenizer pads with {tokenizer.pad_token_id}: use reads='text'."
            )
        self.tokenizer = tokenizer
        self.backbone = as_layer(backbone)
        self.backbone.trainable = trainable_backbone
        for path in self.unused_sublayers:
            # No gradient reaches it: training it would only warn.
            self.backbone.get_layer(path.split("/")[-1]).trainable = False
        self.normalizer = as_normalizer(normalizer)
        self.sequence_length = sequence_length
        self.pooling = pooling
        self.trainable_backbone = trainable_backbone
        self.packer = keras_hub.layers.StartEndPacker(
            sequence_length=sequence_length,
            start_value=tokenizer.cls_token_id,
            end_value=tokenizer.sep_token_id,
            pad_value=tokenizer.pad_token_id,
            return_padding_mask=True,
            name="packer",
        )

    @staticmethod
    def load_preset(preset: str) -> tuple[keras.layers.Layer, keras.layers.Layer]:
        """The tokenizer and the backbone of the local keras-hub preset folder `preset` names."""
        return (
            from_preset(keras_hub.tokenizers.Tokenizer.from_preset, preset),
            from_preset(keras_hub.models.Backbone.from_preset, preset),
        )

    def backbone_inputs(self, token_ids, padding_mask) -> dict:
        """The backbone's inputs for packed texts: BERT's take segment ids, all 0 for one text."""
        return {
            "token_ids": token_ids,
            "segment_ids": ops.zeros_like(token_ids),
            "padding_mask": padding_mask,
        }

    @property
    def feature_dim(self) -> int:
        return int(self.backbone.hidden_dim)

    @property
    def unused_sublayers(self) -> tuple[str, ...]:
        """Sublayers `call` never runs into its output: BERT's pooler, which reads [CLS].

        `FineTuning` never unfreezes them.
        """
        names = {layer.name for layer in getattr(self.backbone, "layers", [])}
        return ("backbone/pooled_dense",) if "pooled_dense" in names else ()

    def sequence_length_for(self, input_shape) -> int:
        return self.sequence_length

    def tokenize(self, texts):
        """Packed token ids (B, sequence_length) int32 of raw strings (B,); all 0 if blank."""
        import tensorflow as tf  # runs in the tf.data pipeline; the model needs no TF

        blank = tf.equal(tf.strings.length(tf.strings.strip(texts)), 0)
        token_ids = tf.cast(self._pack(texts)[0], tf.int32)
        return tf.where(blank[:, None], tf.zeros_like(token_ids), token_ids)

    def _pack(self, texts):
        """(token ids, padding mask) of raw strings: normalized, tokenized, [CLS] ... [SEP]."""
        if self.normalizer is not None:
            texts = self.normalizer(texts)
        return self.packer(self.tokenizer(texts))

    def token_ids_and_mask(self, inputs):
        """(token ids (B, L), padding mask (B, L)) of what the encoder reads: raw strings or ids."""
        if self.reads == "token_ids":
            return inputs, ops.not_equal(inputs, 0)
        return self._pack(inputs)

    def pool_tokens(self, hidden, padding_mask):
        """The sentence vector of hidden states (B, L, D): mean over real tokens, or [CLS]."""
        return hidden[:, 0, :] if self.pooling == "cls" else masked_mean(hidden, padding_mask)

    def split_frozen_stem(
        self, trained: Collection[int], image_size: tuple[int, int], sequence: bool
    ) -> tuple[Encoder, Encoder] | None:
        return split_text_backbone(self, trained)

    def encode(self, inputs, training=None):
        token_ids, padding_mask = self.token_ids_and_mask(inputs)
        hidden = self.backbone(
            self.backbone_inputs(token_ids, padding_mask),
            training=training and self.backbone.trainable,
        )["sequence_output"]
        return self.pool_tokens(hidden, padding_mask), hidden, padding_mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": _serialize_with_vocabulary(self.tokenizer),
                "backbone": keras.layers.serialize(self.backbone),
                "sequence_length": self.sequence_length,
                "pooling": self.pooling,
                "trainable_backbone": self.trainable_backbone,
                "normalizer": (
                    None if self.normalizer is None else keras.layers.serialize(self.normalizer)
                ),
                "reads": self.reads,
            }
        )
        return config


def _serialize_with_vocabulary(tokenizer: keras.layers.Layer) -> dict:
    """The tokenizer's config with its vocabulary, which keras-hub otherwise keeps as assets.

    So the encoder's config alone rebuilds a working tokenizer (for `from_config`
    and layer serialization, not only for `.keras` files).
    """
    config = keras.layers.serialize(tokenizer)
    config["config"]["vocabulary"] = tokenizer.get_vocabulary()
    return config
