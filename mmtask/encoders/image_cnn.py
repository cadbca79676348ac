"""Default image encoder: a small CNN trained from scratch, pooled to a vector.

Images enter as float32 RGB in 0..255, the way `mmtask.data` decodes them;
the encoder does its own scaling, so an exported model needs nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mmtask.encoders.sequences import encoder_output, encoder_output_spec, image_patches
from mmtask.registry import IMAGE_ENCODERS


@IMAGE_ENCODERS.register("small_cnn")
class SmallCNNImageEncoder(keras.layers.Layer):
    """Conv blocks (conv, group norm, ReLU, max pool) -> global average pool -> dense.

    With `return_sequence=True` it also returns the last feature map as patches.

    Group normalization, not batch normalization: an image's vector does not
    depend on the other images of its batch, so predictions are the same at
    any batch size and training splits exactly across devices.

    Args:
        filters: sequence of int. Filters of each conv block; each block halves the size.
        output_dim: int. Width of the image vector.
        dropout: float. Dropout before the final dense layer.

    Example:
    ```python
    encoder = SmallCNNImageEncoder(filters=(16, 32), output_dim=64)
    vectors = encoder(np.zeros((2, 64, 64, 3), "float32"))  # (2, 64)
    ```
    """

    modality = "image"

    def __init__(
        self,
        filters: Sequence[int] = (32, 64, 128),
        output_dim: int = 128,
        dropout: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = tuple(filters)
        self.output_dim = output_dim
        self.dropout = dropout
        self.rescale = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")
        self.stem = keras.layers.Conv2D(
            self.filters[0], 5, strides=2, padding="same", use_bias=False, name="stem"
        )
        self.convs = [
            keras.layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv_{i}")
            for i, f in enumerate(self.filters)
        ]
        self.norms = [
            keras.layers.GroupNormalization(groups=_groups(f), name=f"norm_{i}")
            for i, f in enumerate(self.filters)
        ]
        self.pool = keras.layers.MaxPooling2D(2, name="pool")
        self.global_pool = keras.layers.GlobalAveragePooling2D(name="global_pool")
        self.drop = keras.layers.Dropout(dropout, name="dropout")
        self.dense = keras.layers.Dense(output_dim, activation="relu", name="dense")

    @property
    def output_width(self) -> int:
        return self.output_dim

    def build(self, input_shape):
        self.rescale.build(input_shape)
        shape = self.rescale.compute_output_shape(input_shape)
        self.stem.build(shape)
        shape = self.stem.compute_output_shape(shape)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
            shape = self.pool.compute_output_shape(shape)
        self.dense.build((None, self.filters[-1]))
        self.built = True

    def call(self, images, training=None, return_sequence=False):
        x = self.stem(self.rescale(images))
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = keras.activations.relu(norm(conv(x), training=training))
            x = self.pool(x)
        vector = self.dense(self.drop(self.global_pool(x), training=training))
        sequence, mask = image_patches(x) if return_sequence else (None, None)
        return encoder_output(vector, sequence, mask, return_sequence)

    def compute_output_spec(self, images, training=None, return_sequence=False):
        shape = self.stem.compute_output_shape(images.shape)
        for _ in self.convs:
            shape = self.pool.compute_output_shape(shape)
        length = shape[1] * shape[2] if shape[1] and shape[2] else None
        return encoder_output_spec(
            images.shape[0],
            self.output_dim,
            length,
            self.filters[-1],
            return_sequence,
            self.compute_dtype,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"filters": list(self.filters), "output_dim": self.output_dim, "dropout": self.dropout}
        )
        return config


def _groups(filters: int, max_groups: int = 8) -> int:
    """The largest group count <= max_groups that divides `filters`."""
    return next(g for g in range(min(max_groups, filters), 0, -1) if filters % g == 0)
