"""Loading keras-hub presets from local folders, with one clear error where that fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import keras

from mmtask.errors import MmtaskError

T = TypeVar("T")


def from_preset(load: Callable[[str], T], preset: str) -> T:
    """Call `load` on a preset folder, or on a handle where a network can fetch it.

    A path that does not exist, or a handle that cannot be fetched, raises one
    `MmtaskError` asking for a local folder.
    """
    path = Path(preset).expanduser()
    if path.is_dir():
        return load(str(path))
    if "://" not in preset and ("/" in preset or preset.startswith((".", "~"))):
        raise MmtaskError(f"Preset folder not found: {preset}")
    try:
        return load(preset)
    except Exception as error:
        raise MmtaskError(
            f"Could not load the preset {preset!r} ({type(error).__name__}). mmtask loads "
            "pretrained weights from local folders; download the preset once and pass its "
            "folder path instead."
        ) from None


def as_layer(layer_or_config):
    """A layer given as itself or as its serialized config (as a saved model stores it)."""
    if isinstance(layer_or_config, dict):
        return keras.layers.deserialize(layer_or_config)
    return layer_or_config
