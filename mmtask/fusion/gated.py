"""Gated fusion: a learned, per-example weighting of the modalities (a gated multimodal unit)."""

from __future__ import annotations

import keras
from keras import ops

from mmtask.fusion.base import Fusion
from mmtask.registry import FUSIONS


@FUSIONS.register("gated")
class GatedFusion(Fusion):
    """Mixes per-modality projections with gates computed from all modalities.

    Concatenation lets the next layer weigh the modalities, but with one fixed
    weighting for every example. A gate lets each example decide, unit by unit,
    how much of the image and how much of the text to use: a post whose text is
    uninformative can lean on its image. This is the gated multimodal unit of
    Arevalo et al. (2017), "Gated Multimodal Units for Information Fusion":

        h_m = tanh(W_m x_m)                      for each modality m
        z = softmax over m of (V_m [x_1; ...; x_M])  (per unit)
        fused = sum_m z_m * h_m

    The gates are a softmax over modalities rather than independent sigmoids:
    with two modalities it is exactly the paper's `z * h_1 + (1 - z) * h_2`
    (softmax of two logits is a sigmoid of their difference), it extends to any
    number of modalities, and as a convex combination of tanh projections the
    output stays in (-1, 1) whatever the number of modalities.

    Modalities are taken in sorted key order. At least two are needed: with one,
    the gate is always 1 and learns nothing.

    Args:
        units: int. Width of each modality's projection and of the fused output.
        dropout: float. Dropout rate on the fused output.

    Example:
    ```python
    fusion = GatedFusion(units=64)
    fused = fusion({"text": text_vectors, "image": image_vectors})  # (B, 64)
    gates = fusion.compute_gates({"text": text_vectors, "image": image_vectors})
    # gates["image"] + gates["text"] == 1, each (B, 64)
    ```
    """

    def __init__(self, units: int = 128, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"`units` must be a positive integer. Received: units={units}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.units = int(units)
        self.dropout = dropout
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        # Created in `build`, once the modality names are known.
        self.projections: dict[str, keras.layers.Dense] = {}
        self.gate = None
        self.modalities: list[str] = []

    def build(self, input_shape):
        self.modalities = sorted(input_shape)
        if len(self.modalities) < 2:
            raise ValueError(
                "GatedFusion weighs modalities against each other and needs at least two. "
                f"Received modalities: {self.modalities}"
            )
        self.projections = {
            m: keras.layers.Dense(self.units, activation="tanh", name=f"projection_{m}")
            for m in self.modalities
        }
        for m in self.modalities:
            self.projections[m].build((None, input_shape[m][-1]))
        # One dense layer gives the gate logits of every modality: (B, M * units).
        self.gate = keras.layers.Dense(len(self.modalities) * self.units, name="gate")
        self.gate.build((None, sum(input_shape[m][-1] for m in self.modalities)))
        self.built = True

    def compute_gates(self, modality_vectors: dict) -> dict:
        """Modality -> gate of shape (B, units); the gates of an example sum to 1 per unit."""
        joint = ops.concatenate([modality_vectors[m] for m in self.modalities], axis=-1)
        logits = ops.reshape(self.gate(joint), (-1, len(self.modalities), self.units))
        gates = ops.softmax(logits, axis=1)
        return {m: gates[:, i, :] for i, m in enumerate(self.modalities)}

    def call(self, modality_vectors: dict, training=None):
        gates = self.compute_gates(modality_vectors)
        fused = sum(gates[m] * self.projections[m](modality_vectors[m]) for m in self.modalities)
        return self.dropout_layer(fused, training=training)

    def compute_output_shape(self, input_shape):
        first = input_shape[sorted(input_shape)[0]]
        return (first[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "dropout": self.dropout})
        return config
