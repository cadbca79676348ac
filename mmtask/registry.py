"""Name -> class registries, so a spec can say `fusion: concat`.

Each family of parts (text encoders, image encoders, fusion, heads, loss
weighting) has one registry. A class joins it with a decorator at its
definition, which also registers it as Keras-serializable, so a new method is
one class in one file.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from mmtask.errors import SpecError


class Registry:
    """Maps names to classes of one family of parts.

    Args:
        kind: str. The spec key this registry serves, used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Decorator: adds a class (made Keras-serializable) or a factory under `name`.

        A factory is a function returning a layer, e.g. one that loads a saved
        encoder; the layer it returns serializes as its own class.
        """

        def decorator(cls: type) -> type:
            if name in self._classes:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if isinstance(cls, type):
                cls = keras.saving.register_keras_serializable(package="mmtask")(cls)
            self._classes[name] = cls
            return cls

        return decorator

    def get(self, name: str) -> type:
        """The class registered under `name`; a `SpecError` listing the choices if none."""
        try:
            return self._classes[name]
        except KeyError:
            raise SpecError(
                f"Invalid value for `{self.kind}`: expected one of {self.names()}. "
                f"Received: {self.kind}={name!r}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._classes)

    def build(self, key: str, /, **options) -> keras.layers.Layer:
        """Instantiate the class registered under `key` with `options`."""
        cls = self.get(key)
        try:
            return cls(**options)
        except (TypeError, ValueError) as error:
            raise SpecError(f"Invalid options for {self.kind} {key!r}: {error}") from None


TEXT_ENCODERS = Registry("text_encoder")
IMAGE_ENCODERS = Registry("image_encoder")
FUSIONS = Registry("fusion")
WEIGHTINGS = Registry("weighting")
ALIGNMENTS = Registry("alignment")
TEXT_NORMALIZERS = Registry("normalizer")
HEADS = Registry("type")
