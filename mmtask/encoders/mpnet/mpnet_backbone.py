"""`MPNetBackbone`: MPNet's encoder (Song et al., 2020) as a keras-hub backbone.

keras-hub has BERT and RoBERTa but no MPNet, the architecture of
all-mpnet-base-v2. It is BERT-like with three differences, all reproduced
here as in Hugging Face's `MPNetModel`: no segment embedding; absolute
positions count real tokens from `pad_token_id + 1` (fairseq's convention,
padding keeps position `pad_token_id`); and a relative position bias, shared
by all layers, is added to every layer's attention scores.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

from mmtask.encoders.mpnet.mpnet_layer import MPNetTransformerLayer
from mmtask.encoders.mpnet.relative_position_bias import MPNetRelativePositionBias


def mpnet_kernel_initializer(stddev: float = 0.02) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=stddev)


@keras.saving.register_keras_serializable(package="mmtask")
class MPNetPositions(keras.layers.Layer):
    """Position ids of real tokens, counted from `pad_token_id + 1`; padding gets `pad_token_id`.

    Args:
        pad_token_id: int. MPNet's padding id, which its position table reserves.
    """

    def __init__(self, pad_token_id: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.pad_token_id = pad_token_id

    def call(self, padding_mask):
        mask = ops.cast(padding_mask, "int32")
        return ops.cumsum(mask, axis=1) * mask + self.pad_token_id

    def get_config(self):
        config = super().get_config()
        config["pad_token_id"] = self.pad_token_id
        return config


@keras.saving.register_keras_serializable(package="mmtask")
class MPNetBackbone(keras_hub.models.Backbone):
    """An MPNet encoder: token and position embeddings, then post-LN layers with a shared bias.

    Returns `{"sequence_output": (B, L, hidden_dim), "pooled_output":
    (B, hidden_dim)}` as keras-hub's `BertBackbone` does; the pooled output is
    the tanh dense of the first token (`<s>`), as MPNet's pooler.

    Args:
        vocabulary_size: int. Rows of the token embedding.
        num_layers: int. Transformer layers.
        num_heads: int. Attention heads per layer.
        hidden_dim: int. Width of the hidden states.
        intermediate_dim: int. Width of each feed-forward's hidden layer.
        dropout: float. Dropout of embeddings, attention and residual branches.
        max_sequence_length: int. Longest input; the position table holds
            `max_sequence_length + pad_token_id + 1` rows (514 for MPNet's 512).
        num_buckets: int. Buckets of the relative position bias.
        max_distance: int. Distance from which the bias's buckets stop growing.
        pad_token_id: int. The padding token, whose position row is reserved.
        layer_norm_epsilon: float. Epsilon of every layer norm.
        dtype: the dtype policy of computations and weights.

    Example:
    ```python
    backbone = MPNetBackbone(
        vocabulary_size=30527, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072
    )
    backbone({"token_ids": ids, "padding_mask": mask})["sequence_output"]  # (B, L, 768)
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        num_buckets: int = 32,
        max_distance: int = 128,
        pad_token_id: int = 1,
        layer_norm_epsilon: float = 1e-5,
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer=mpnet_kernel_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        self.positions = MPNetPositions(pad_token_id, dtype=dtype, name="positions")
        self.position_embedding = keras.layers.Embedding(
            max_sequence_length + pad_token_id + 1,
            hidden_dim,
            embeddings_initializer=mpnet_kernel_initializer(),
            dtype=dtype,
            name="position_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.relative_position_bias = MPNetRelativePositionBias(
            num_heads,
            num_buckets=num_buckets,
            max_distance=max_distance,
            embeddings_initializer=mpnet_kernel_initializer(),
            dtype=dtype,
            name="relative_position_bias",
        )
        self.transformer_layers = [
            MPNetTransformerLayer(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=mpnet_kernel_initializer(),
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=mpnet_kernel_initializer(),
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings_add(
            (self.token_embedding(token_ids), self.position_embedding(self.positions(padding_mask)))
        )
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        # The bias depends on the length alone: computed from the mask, so the
        # layers above any cut need only the hidden states and the mask.
        bias = self.relative_position_bias(padding_mask)
        for layer in self.transformer_layers:
            x = layer(x, attention_bias=bias, padding_mask=padding_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": self.pooled_dense(x[:, 0, :])},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.pad_token_id = pad_token_id
        self.layer_norm_epsilon = layer_norm_epsilon

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "pad_token_id": self.pad_token_id,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
