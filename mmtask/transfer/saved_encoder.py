"""Encoders saved on their own, so one trained on a source task can start a multi-task model.

An encoder is saved as a small `.keras` model (input -> encoder -> vector);
loading gives the encoder layer back, weights and vocabulary included. In a
spec, `text_encoder: {name: saved, options: {path: encoder.keras}}` uses it.
"""

from __future__ import annotations

from pathlib import Path

import keras

from mmtask.errors import MmtaskError
from mmtask.registry import IMAGE_ENCODERS, TEXT_ENCODERS
from mmtask.transfer.fine_tuning import apply_frozen_flags

ENCODER_INPUTS = {
    "text": lambda: keras.Input(shape=(), dtype="string", name="text"),
    "image": lambda: keras.Input(shape=(None, None, 3), name="image"),
}


def save_encoder(encoder: keras.layers.Layer, path: str | Path, modality: str) -> Path:
    """Save `encoder` (a text or image encoder layer) as a reusable `.keras` artifact."""
    if modality not in ENCODER_INPUTS:
        raise ValueError(
            f"Invalid value for `modality`: expected one of {sorted(ENCODER_INPUTS)}. "
            f"Received: modality={modality!r}"
        )
    path = Path(path)
    if path.suffix != ".keras":
        raise MmtaskError(f"Encoder files end in .keras. Received: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = ENCODER_INPUTS[modality]()
    keras.Model(inputs, encoder(inputs), name=f"saved_{modality}_encoder").save(path)
    return path


def load_encoder(path: str | Path, trainable: bool = True, name: str | None = None):
    """The encoder layer saved at `path` by `save_encoder`.

    Args:
        path: str | Path. The `.keras` file.
        trainable: bool. Whether the encoder's weights train further.
        name: str | None. A new layer name, if given.
    """
    path = Path(path)
    if not path.is_file():
        raise MmtaskError(f"No saved encoder at {path}")
    encoder = keras.models.load_model(path).layers[-1]
    encoder.trainable = trainable
    apply_frozen_flags(encoder)
    if name is not None:
        encoder.name = name
    return encoder


TEXT_ENCODERS.register("saved")(load_encoder)
IMAGE_ENCODERS.register("saved")(load_encoder)
