"""Encoders saved on their own, so one trained on a source task can start a multi-task model.

An encoder is saved as a `.keras` file of the layer itself; loading gives the
encoder layer back, weights and vocabulary included. In a spec,
`text_encoder: {name: saved, options: {path: encoder.keras}}` uses it.

The layer is saved bare, not inside a model, so it loads without the graph
nodes of the model it was trained in. (Every encoder returns the same
`{"vector", "sequence", "mask"}` structure on every call, so an encoder first
called in another model can still give its sequence to `cross_attention`.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np

from mmtask.encoders.base import Encoder
from mmtask.errors import MmtaskError
from mmtask.freezing import apply_frozen_flags
from mmtask.registry import IMAGE_ENCODERS, TEXT_ENCODERS

# One-example batches that build an encoder not built yet, per modality.
EXAMPLE_BATCHES = {
    "text": lambda: np.array([""], dtype=object),
    "image": lambda: np.zeros((1, 32, 32, 3), dtype="float32"),
}
# Names of the wrapper models (input -> encoder -> vector) of files saved
# before the layer was saved bare; `load_encoder` still reads them.
WRAPPER_MODELS = ("saved_text_encoder", "saved_image_encoder")


def save_encoder(encoder: Encoder, path: str | Path, modality: str) -> Path:
    """Save `encoder` (a text or image encoder layer) as a reusable `.keras` file.

    Args:
        encoder: keras.layers.Layer. The encoder; built on a one-example batch
            of `modality` first if it is not built yet.
        path: str | Path. The file to write, ending in `.keras`.
        modality: str. "text" or "image".

    Returns:
        The path written.
    """
    if not isinstance(encoder, Encoder):
        raise TypeError(
            "Invalid value for `encoder`: expected an `mmtask.encoders.Encoder`. "
            f"Received: {type(encoder).__name__}"
        )
    if modality not in EXAMPLE_BATCHES:
        raise ValueError(
            f"Invalid value for `modality`: expected one of {sorted(EXAMPLE_BATCHES)}. "
            f"Received: modality={modality!r}"
        )
    path = Path(path)
    if path.suffix != ".keras":
        raise MmtaskError(f"Encoder files end in .keras. Received: {path}")
    if not encoder.built:
        encoder(EXAMPLE_BATCHES[modality]())  # Eager: builds without a graph node.
    path.parent.mkdir(parents=True, exist_ok=True)
    keras.saving.save_model(encoder, path)
    return path


def load_encoder(path: str | Path, trainable: bool = True, name: str | None = None) -> Encoder:
    """The encoder layer saved at `path` by `save_encoder`, never called on symbolic inputs.

    Args:
        path: str | Path. The `.keras` file.
        trainable: bool. Whether the encoder's weights train further.
        name: str | None. A new layer name, if given.
    """
    path = Path(path)
    if not path.is_file():
        raise MmtaskError(f"No saved encoder at {path}")
    encoder = keras.saving.load_model(path)
    if isinstance(encoder, keras.Model) and encoder.name in WRAPPER_MODELS:
        encoder = _bare(encoder.layers[-1])
    if not isinstance(encoder, Encoder):
        raise MmtaskError(
            f"{path} holds a {type(encoder).__name__}, not an encoder saved by `save_encoder`."
        )
    encoder.trainable = trainable
    apply_frozen_flags(encoder)
    if name is not None:
        encoder.name = name
    return encoder


def _bare(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A copy of `layer`, state included, without the graph nodes of the model it was in."""
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory) / "encoder.keras"
        keras.saving.save_model(layer, copy)
        return keras.saving.load_model(copy)


TEXT_ENCODERS.register("saved")(load_encoder)
IMAGE_ENCODERS.register("saved")(load_encoder)
