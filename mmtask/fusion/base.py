"""`Fusion`: the base every fusion module subclasses, stating what it reads."""

from __future__ import annotations

import keras


class Fusion(keras.layers.Layer):
    """Combines the modalities' encoder outputs into one fused vector (B, units).

    A fusion module reads, per modality, either the encoder's vector (B, D)
    (`uses_sequences = False`, the default) or the whole encoder output
    `{"vector", "sequence", "mask"}` (`uses_sequences = True`). The model
    passes each what it states; a modality absent from a post is zeroed (and
    its sequence positions masked).
    """

    #: Whether `call` takes each modality's `{"vector", "sequence", "mask"}`
    #: rather than its vector alone.
    uses_sequences: bool = False
