"""Default image encoder: a small CNN trained from scratch, pooled to a vector.

Images enter as float32 RGB in 0..255, the way `mmtask.data` decodes them;
the encoder does its own scaling, so an exported model needs nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mmtask.encoders.base import Encoder, image_patches, patch_count
from mmtask.registry import IMAGE_ENCODERS


@IMAGE_ENCODERS.register("small_cnn")
class SmallCNNImageEncoder(Encoder):
    """Conv blocks (conv, group norm, ReLU, max pool) -> global average pool -> dense.

    Returns the `Encoder` structure; its sequence is the last feature map as patches.
    Its final dense layer is its own (always there, after dropout), not the
    optional projection of other encoders: `output_dim` is that layer's width.

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
    vectors = encoder(np.zeros((2, 64, 64, 3), "float32"))["vector"]  # (2, 64)
    ```
    """

    modality = "image"
    reads = "images"

    def __init__(
        self,
        filters: Sequence[int] = (32, 64, 128),
        output_dim: int = 128,
        dropout: float = 0.1,
        **kwargs,
    ):
        # No optional projection: the final dense layer below plays its part.
        super().__init__(**kwargs)
        self.filters = tuple(filters)
        self.output_dim = int(output_dim)
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
    def feature_dim(self) -> int:
        return self.output_dim

    @property
    def sequence_width(self) -> int:
        return self.filters[-1]

    def sequence_length_for(self, input_shape) -> int | None:
        shape = self.stem.compute_output_shape(input_shape)
        for _ in self.convs:
            shape = self.pool.compute_output_shape(shape)
        return patch_count(shape)

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
        self.built = True  # Not `Encoder.build`: no projection to add.

    def encode(self, images, training=None):
        x = self.stem(self.rescale(images))
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = keras.activations.relu(norm(conv(x), training=training))
            x = self.pool(x)
        vector = self.dense(self.drop(self.global_pool(x), training=training))
        return (vector, *image_patches(x))

    def get_config(self):
        config = super().get_config()
        config.update({"filters": list(self.filters), "dropout": self.dropout})
        return config


def _groups(filters: int, max_groups: int = 8) -> int:
    """The largest group count <= max_groups that divides `filters`."""
    return next(g for g in range(min(max_groups, filters), 0, -1) if filters % g == 0)
