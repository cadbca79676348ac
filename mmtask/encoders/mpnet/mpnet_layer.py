"""One MPNet transformer layer: self-attention with an added position bias, then a feed-forward.

keras-hub's `TransformerEncoder` has no way to add a bias to the attention
scores, which MPNet needs in every layer; otherwise this is BERT's post-LN
layer (residual, then layer norm, after attention and after the
feed-forward).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmtask")
class MPNetTransformerLayer(keras.layers.Layer):
    """Post-LN transformer layer whose attention scores get an additive bias.

    Args:
        num_heads: int. Attention heads; the hidden width must divide by it.
        intermediate_dim: int. Width of the feed-forward's hidden layer.
        dropout: float. Dropout on attention probabilities and on both residual branches.
        layer_norm_epsilon: float. Epsilon of both layer norms.
        kernel_initializer: initializer of the dense kernels.

    Call args:
        inputs: (B, L, D) hidden states.
        attention_bias: (1 or B, num_heads, L, L), added to the scaled scores.
        padding_mask: (B, L), true for real tokens; padded keys get no attention.

    Example:
    ```python
    layer = MPNetTransformerLayer(num_heads=12, intermediate_dim=3072)
    hidden = layer(hidden, attention_bias=bias, padding_mask=mask)
    ```
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        layer_norm_epsilon: float = 1e-5,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"The hidden width must divide by `num_heads`. Received: hidden width "
                f"{hidden_dim}, num_heads={self.num_heads}"
            )
        self.head_dim = hidden_dim // self.num_heads

        def dense(name, units, input_dim, activation=None):
            layer = keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=keras.initializers.get(
                    keras.initializers.serialize(self.kernel_initializer)
                ),
                dtype=self.dtype_policy,
                name=name,
            )
            layer.build((None, None, input_dim))
            return layer

        self.query_dense = dense("query_dense", hidden_dim, hidden_dim)
        self.key_dense = dense("key_dense", hidden_dim, hidden_dim)
        self.value_dense = dense("value_dense", hidden_dim, hidden_dim)
        self.attention_output_dense = dense("attention_output_dense", hidden_dim, hidden_dim)
        self.attention_layer_norm = self._layer_norm("attention_layer_norm", input_shape)
        # MPNet's "gelu" is the exact (erf) one, as Keras's default.
        self.intermediate_dense = dense(
            "intermediate_dense", self.intermediate_dim, hidden_dim, activation="gelu"
        )
        self.output_dense = dense("output_dense", hidden_dim, self.intermediate_dim)
        self.output_layer_norm = self._layer_norm("output_layer_norm", input_shape)
        self.softmax = keras.layers.Softmax(axis=-1, dtype=self.dtype_policy, name="softmax")
        self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.residual_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def _layer_norm(self, name, input_shape):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(input_shape)
        return layer

    def _heads(self, x):
        """(B, L, D) -> (B, heads, L, head_dim)."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs, attention_bias, padding_mask=None, training=None):
        query = self._heads(self.query_dense(inputs))
        key = self._heads(self.key_dense(inputs))
        value = self._heads(self.value_dense(inputs))
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
        scores = scores / ops.cast(ops.sqrt(float(self.head_dim)), scores.dtype)
        scores = scores + ops.cast(attention_bias, scores.dtype)
        mask = None if padding_mask is None else ops.cast(padding_mask, "bool")[:, None, None, :]
        probabilities = self.attention_dropout(self.softmax(scores, mask=mask), training=training)
        context = ops.transpose(ops.matmul(probabilities, value), (0, 2, 1, 3))
        context = ops.reshape(context, ops.shape(inputs))
        attended = self.attention_output_dense(context)
        x = self.attention_layer_norm(inputs + self.residual_dropout(attended, training=training))
        feed_forward = self.output_dense(self.intermediate_dense(x))
        return self.output_layer_norm(x + self.residual_dropout(feed_forward, training=training))

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
