"""MPNet's relative position bias: one learned bias per head and distance bucket.

MPNet (like T5) adds to every attention score a bias that depends on how far
apart the two tokens are, bucketed: exact for small distances, logarithmic up
to `max_distance`, separately for each direction. The buckets are computed
once per sequence length and shared by all transformer layers.
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmtask")
class MPNetRelativePositionBias(keras.layers.Layer):
    """Attention bias (1, num_heads, L, L) for a sequence of length L.

    It reads any (B, L, ...) tensor of the sequence (the backbone passes the
    padding mask): only its length counts.

    Args:
        num_heads: int. Attention heads; each has its own bias per bucket.
        num_buckets: int. Distance buckets, half for each direction.
        max_distance: int. Distances from here on share the last bucket.
        embeddings_initializer: initializer of the (num_buckets, num_heads) table.

    Example:
    ```python
    bias = MPNetRelativePositionBias(num_heads=12)(padding_mask)  # (1, 12, L, L) for (B, L)
    ```
    """

    def __init__(
        self,
        num_heads: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        embeddings_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embedding = keras.layers.Embedding(
            num_buckets,
            num_heads,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="embedding",
        )

    def build(self, input_shape):
        self.embedding.build((None, None))

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        positions = ops.arange(length, dtype="int32")
        buckets = self.bucket(positions[None, :] - positions[:, None])
        bias = self.embedding(buckets)  # (L, L, heads)
        return ops.expand_dims(ops.transpose(bias, (2, 0, 1)), 0)

    def bucket(self, relative_position):
        """The bucket of each key-minus-query distance, as HF's `relative_position_bucket`."""
        distance = -relative_position
        half = self.num_buckets // 2
        buckets = ops.cast(distance < 0, "int32") * half
        distance = ops.abs(distance)
        max_exact = half // 2
        scaled = ops.log(ops.cast(ops.maximum(distance, 1), "float32") / max_exact)
        scaled = scaled / math.log(self.max_distance / max_exact) * (half - max_exact)
        if_large = ops.minimum(max_exact + ops.cast(scaled, "int32"), half - 1)
        return buckets + ops.where(distance < max_exact, distance, if_large)

    def compute_output_shape(self, input_shape):
        return (1, self.num_heads, input_shape[1], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
