"""`as_normalizer`: a text normalizer given by registered name, serialized config or layer."""

from __future__ import annotations

import keras

import mmtask.text.tweet_normalizer  # noqa: F401  (registers the built-in normalizers)
from mmtask.registry import TEXT_NORMALIZERS


def as_normalizer(value: str | dict | keras.layers.Layer | None) -> keras.layers.Layer | None:
    """None, a registered name ("tweet"), a serialized layer (as in saved models), or a layer."""
    if value is None or isinstance(value, keras.layers.Layer):
        return value
    if isinstance(value, dict):
        return keras.layers.deserialize(value)
    return TEXT_NORMALIZERS.build(value, name="normalizer")
