"""Cross-attention fusion: text tokens attend to image patches and image patches to text tokens.

Concatenating pooled vectors lets the trunk see only whole-post summaries;
attention lets each word pick the image regions it is about (and back), which
is where text-image agreement or sarcasm shows.
"""

from __future__ import annotations

import keras
from keras import ops

from mmtask.encoders.base import masked_mean
from mmtask.fusion.base import Fusion
from mmtask.registry import FUSIONS

MODALITIES = ("image", "text")


@FUSIONS.register("cross_attention")
class CrossAttentionFusion(Fusion):
    """Two multi-head cross-attentions over the encoders' sequences, pooled and mixed.

    Each modality's sequence is projected to `units`; text attends to image
    patches and image patches attend to text tokens (residual + layer norm);
    each result is mean-pooled over its real positions, and the two pooled
    vectors go through a dense layer. It reads each encoder's whole output
    (`uses_sequences`).

    Args:
        units: int. Width of the projections, the attention and the output.
        num_heads: int. Attention heads; must divide `units`.
        dropout: float. Dropout in the attention and before the output.

    Example:
    ```python
    spec = ModelSpec(fusion=ComponentSpec("cross_attention", {"units": 64}))
    ```
    """

    uses_sequences = True

    def __init__(self, units: int = 128, num_heads: int = 4, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if units % num_heads:
            raise ValueError(
                f"`num_heads` must divide `units`. Received: units={units}, num_heads={num_heads}"
            )
        self.units = units
        self.num_heads = num_heads
        self.dropout = dropout
        self.projections = {
            m: keras.layers.Dense(units, name=f"{m}_projection") for m in MODALITIES
        }
        self.attentions = {
            m: keras.layers.MultiHeadAttention(
                num_heads, units // num_heads, dropout=dropout, name=f"{m}_attends"
            )
            for m in MODALITIES
        }
        self.norms = {m: keras.layers.LayerNormalization(name=f"{m}_norm") for m in MODALITIES}
        self.drop = keras.layers.Dropout(dropout, name="dropout")
        self.output_dense = keras.layers.Dense(units, activation="relu", name="output")

    def build(self, input_shape):
        missing = sorted(set(MODALITIES) - set(input_shape))
        if missing:
            raise ValueError(f"Cross-attention needs text and image sequences; missing {missing}.")
        projected = {}
        for m in MODALITIES:
            sequence_shape = input_shape[m]["sequence"]
            self.projections[m].build(sequence_shape)
            projected[m] = (*sequence_shape[:-1], self.units)
        for m, other in (("text", "image"), ("image", "text")):
            self.attentions[m].build(projected[m], projected[other])
            self.norms[m].build(projected[m])
        self.output_dense.build((None, 2 * self.units))
        self.built = True

    def call(self, encoded: dict, training=None):
        sequences = {m: self.projections[m](encoded[m]["sequence"]) for m in MODALITIES}
        masks = {m: ops.cast(encoded[m]["mask"], "bool") for m in MODALITIES}
        pooled = []
        for m, other in (("image", "text"), ("text", "image")):
            attention_mask = ops.logical_and(
                ops.expand_dims(masks[m], 2), ops.expand_dims(masks[other], 1)
            )
            attended = self.attentions[m](
                query=sequences[m],
                value=sequences[other],
                attention_mask=attention_mask,
                training=training,
            )
            mixed = self.norms[m](sequences[m] + attended)
            pooled.append(masked_mean(mixed, masks[m]))
        return self.output_dense(self.drop(ops.concatenate(pooled, axis=-1), training=training))

    def compute_output_spec(self, encoded, training=None):
        batch = encoded["text"]["vector"].shape[0]
        return keras.KerasTensor((batch, self.units), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "num_heads": self.num_heads, "dropout": self.dropout})
        return config
