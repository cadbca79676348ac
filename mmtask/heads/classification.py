"""A task head: optional hidden layers, then class probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import keras


@keras.saving.register_keras_serializable(package="mmtask")
class ClassificationHead(keras.layers.Layer):
    """Maps a representation to class probabilities for one task.

    Probabilities (not logits) come out, in float32 whatever the compute
    dtype, so `predict` and the exported model return them directly.

    Args:
        num_classes: int. Number of classes of the task.
        hidden_units: sequence of int. Dense layers before the output layer.
        dropout: float. Dropout before each dense layer.
    """

    def __init__(
        self,
        num_classes: int,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(
                "A classification head needs at least 2 classes. "
                f"Received: num_classes={num_classes}"
            )
        self.num_classes = num_classes
        self.hidden_units = tuple(hidden_units)
        self.dropout = dropout
        self.hidden_layers = [
            keras.layers.Dense(u, activation="relu", name=f"hidden_{i}")
            for i, u in enumerate(self.hidden_units)
        ]
        self.drop = keras.layers.Dropout(dropout, name="dropout")
        self.classifier = keras.layers.Dense(num_classes, name="logits")

    def build(self, input_shape):
        width = input_shape[-1]
        for dense in self.hidden_layers:
            dense.build((None, width))
            width = dense.units
        self.classifier.build((None, width))
        self.built = True

    def call(self, x, training=None):
        for dense in self.hidden_layers:
            x = dense(self.drop(x, training=training))
        logits = self.classifier(self.drop(x, training=training))
        return keras.ops.softmax(keras.ops.cast(logits, "float32"), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "hidden_units": list(self.hidden_units),
                "dropout": self.dropout,
            }
        )
        return config
