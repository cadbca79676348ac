"""What every encoder returns: a vector, and on request its token / patch sequence too.

Heads read one vector per post; fusion modules that attend across modalities
(`cross_attention`) need the sequences. An encoder called with
`return_sequence=True` returns `{"vector": (B, D), "sequence": (B, L, S),
"mask": (B, L) bool}`; the helpers here keep that contract in one place.
"""

from __future__ import annotations

import keras
from keras import ops


def masked_mean(sequence, mask):
    """Mean over the positions where `mask` is true; 0 where a row has none."""
    weights = ops.expand_dims(ops.cast(mask, sequence.dtype), -1)
    return ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


def image_patches(feature_map):
    """A (B, H, W, C) feature map as a (B, H*W, C) sequence with an all-true mask."""
    height, width, channels = feature_map.shape[1], feature_map.shape[2], feature_map.shape[3]
    if height is None or width is None:
        shape = ops.shape(feature_map)
        height, width = shape[1], shape[2]
    sequence = ops.reshape(feature_map, (-1, height * width, channels))
    return sequence, ops.ones(ops.shape(sequence)[:2], dtype="bool")


def encoder_output(vector, sequence, mask, return_sequence: bool):
    """The vector alone, or the vector with its sequence and mask."""
    if not return_sequence:
        return vector
    return {"vector": vector, "sequence": sequence, "mask": mask}


def encoder_output_spec(
    batch, width: int, length, sequence_width: int, return_sequence: bool, dtype: str
):
    """Symbolic outputs matching `encoder_output`, for `compute_output_spec`."""
    vector = keras.KerasTensor((batch, width), dtype=dtype)
    if not return_sequence:
        return vector
    return {
        "vector": vector,
        "sequence": keras.KerasTensor((batch, length, sequence_width), dtype=dtype),
        "mask": keras.KerasTensor((batch, length), dtype="bool"),
    }
