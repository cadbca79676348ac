"""`apply_frozen_flags`: a layer flagged frozen keeps every variable inside it frozen.

Shared by the model (a `.keras` file reloaded) and by the saved-encoder
loader, so neither needs the fine-tuning machinery of `mmtask.transfer`.
"""

from __future__ import annotations

import keras


def apply_frozen_flags(layer: keras.layers.Layer) -> None:
    """Makes every variable of `layer`, or of a layer inside it, flagged `trainable=False` frozen.

    A layer deserialized with `trainable=False` (a frozen encoder in a
    `.keras` file) gets the flag before its sublayers and variables exist,
    and Keras leaves those trainable: a reloaded model would train the
    frozen weights and could not restore its optimizer state. On the
    TensorFlow backend `layer.trainable = False` on a layer already flagged
    False does not reach its sublayers, so the setter is called directly.
    """
    for inner in layer._flatten_layers(include_self=True):
        if not inner.trainable:
            keras.layers.Layer.trainable.fset(inner, False)
