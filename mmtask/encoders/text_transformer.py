"""Default text encoder: a vocabulary learnt from the training texts, then a small transformer.

The encoder owns its tokenizer (a `TextVectorization` layer). By default a
model built with it takes raw strings, and an exported SavedModel does too
(TensorFlow backend only: the tokenizer runs TensorFlow string ops). With
`reads="token_ids"` the model takes the token ids and the tf.data pipeline
tokenizes (`make_dataset(model=...)` calls `tokenize`), so the model runs on
JAX and PyTorch as well.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import keras_hub
from keras import ops

from mmtask.encoders.base import Encoder, masked_mean, text_input
from mmtask.registry import TEXT_ENCODERS


@TEXT_ENCODERS.register("transformer")
class TransformerTextEncoder(Encoder):
    """Strings -> token ids -> token + position embeddings -> transformer -> masked mean.

    Returns the `Encoder` structure: the pooled vector, the token states and
    the padding mask.

    Args:
        max_tokens: int. Vocabulary size, padding and out-of-vocabulary included.
        sequence_length: int. Tokens kept per text; longer texts are cut.
        embed_dim: int. Width of the token embeddings and transformer layers.
        num_layers: int. Number of transformer encoder blocks.
        num_heads: int. Attention heads per block.
        intermediate_dim: int. Width of each block's feed-forward layer.
        dropout: float. Dropout rate inside the blocks.
        output_dim: int | None. If set, a final dense projection to this width.
        vocabulary: list[str] | None. A fixed vocabulary, kept in the config;
            otherwise call `adapt`, and the learnt vocabulary is saved with the
            model's assets.
        reads: str. "text": the model takes raw strings; "token_ids": it takes
            the ids `tokenize` gives, made in the tf.data pipeline.

    Example:
    ```python
    encoder = TransformerTextEncoder(max_tokens=1000, sequence_length=16)
    encoder.adapt(["a happy day", "a sad night"])
    vectors = encoder(np.array(["happy night"]))["vector"]  # (1, 64)
    ```
    """

    modality = "text"
    reads = "text"

    def __init__(
        self,
        max_tokens: int = 20000,
        sequence_length: int = 48,
        embed_dim: int = 64,
        num_layers: int = 1,
        num_heads: int = 2,
        intermediate_dim: int = 128,
        dropout: float = 0.1,
        output_dim: int | None = None,
        vocabulary: Sequence[str] | None = None,
        reads: str = "text",
        **kwargs,
    ):
        super().__init__(output_dim=output_dim, **kwargs)
        self.reads = text_input(reads)
        self.max_tokens = max_tokens
        self.sequence_length = sequence_length
        self.embed_dim = embed_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.vocabulary = list(vocabulary) if vocabulary is not None else None
        self.vectorizer = keras.layers.TextVectorization(
            max_tokens=max_tokens,
            output_sequence_length=sequence_length,
            standardize="lower_and_strip_punctuation",
            vocabulary=self.vocabulary,
            name="vectorizer",
        )
        if self.reads == "token_ids":
            # It runs in the tf.data pipeline only, never in the model's step, so
            # neither it nor its lookup layer may stop the step from being
            # compiled (Keras compiles a model only if all its layers support it).
            for layer in self.vectorizer._flatten_layers(include_self=True):
                layer.supports_jit = True
        self.embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size=max_tokens,
            sequence_length=sequence_length,
            embedding_dim=embed_dim,
            name="embedding",
        )
        self.blocks = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                dropout=dropout,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]

    @property
    def feature_dim(self) -> int:
        return self.embed_dim

    def adapt(self, texts: Sequence[str], batch_size: int = 1024) -> None:
        """Learn the vocabulary from training texts."""
        self.vectorizer.adapt(list(texts), batch_size=batch_size)

    @property
    def needs_vocabulary(self) -> bool:
        """True until `adapt` (or a given or loaded vocabulary) sets one."""
        return self.vectorizer.vocabulary_size() <= 2  # padding and OOV only

    def vocabulary_size(self) -> int:
        return self.vectorizer.vocabulary_size()

    def tokenize(self, texts):
        """Token ids (B, sequence_length) int32 of raw strings (B,), 0 for padding."""
        import tensorflow as tf  # runs in the tf.data pipeline; the model needs no TF

        return tf.cast(self.vectorizer(texts), tf.int32)

    def build(self, input_shape):
        self.vectorizer.build((input_shape[0],))
        sequence_shape = (None, self.sequence_length)
        self.embedding.build(sequence_shape)
        for block in self.blocks:
            block.build((None, self.sequence_length, self.embed_dim))
        super().build(input_shape)

    def sequence_length_for(self, input_shape) -> int:
        return self.sequence_length

    def encode(self, inputs, training=None):
        token_ids = inputs if self.reads == "token_ids" else self.vectorizer(inputs)
        padding_mask = ops.not_equal(token_ids, 0)
        x = self.embedding(token_ids)
        for block in self.blocks:
            x = block(x, padding_mask=padding_mask, training=training)
        return masked_mean(x, padding_mask), x, padding_mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_tokens": self.max_tokens,
                "sequence_length": self.sequence_length,
                "embed_dim": self.embed_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "vocabulary": self.vocabulary,
                "reads": self.reads,
            }
        )
        return config
