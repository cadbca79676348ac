"""Default fusion trunk: concatenate the modality vectors, then an MLP."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from mmtask.fusion.base import Fusion
from mmtask.registry import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    """Concatenates modality vectors (in sorted modality order) and applies dense layers.

    Args:
        units: sequence of int. Width of each dense layer; the last is the fused width.
        dropout: float. Dropout after each dense layer.

    Example:
    ```python
    fusion = ConcatFusion(units=(64,))
    fused = fusion({"text": text_vectors, "image": image_vectors})  # (B, 64)
    ```
    """

    def __init__(self, units: Sequence[int] = (128,), dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if not units:
            raise ValueError("`units` must name at least one layer width. Received: units=()")
        self.units = tuple(units)
        self.dropout = dropout
        self.dense_layers = [
            keras.layers.Dense(u, activation="relu", name=f"dense_{i}")
            for i, u in enumerate(self.units)
        ]
        self.dropouts = [
            keras.layers.Dropout(dropout, name=f"dropout_{i}") for i in range(len(self.units))
        ]

    def build(self, input_shape):
        width = sum(input_shape[k][-1] for k in input_shape)
        for dense in self.dense_layers:
            dense.build((None, width))
            width = dense.units
        self.built = True

    def call(self, modality_vectors: dict, training=None):
        x = keras.ops.concatenate([modality_vectors[k] for k in sorted(modality_vectors)], axis=-1)
        for dense, drop in zip(self.dense_layers, self.dropouts, strict=True):
            x = drop(dense(x), training=training)
        return x

    def compute_output_shape(self, input_shape):
        first = input_shape[sorted(input_shape)[0]]
        return (first[0], self.units[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"units": list(self.units), "dropout": self.dropout})
        return config
