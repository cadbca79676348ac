"""The image size a pretrained backbone expects, checked against the size the model feeds it.

A pretrained backbone fed images at another size than it was trained at still
runs, but its features degrade: objects appear at scales it never saw. So a
mismatch with the size the backbone was pretrained at is a warning naming
both sizes, and one with a backbone whose input shape is fixed is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from mmtask.errors import MmtaskError


def size_pair(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """`size` as (height, width); an int gives a square, None stays None."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(
            "Invalid value for `native_image_size`: expected a positive int or a "
            f"(height, width) pair. Received: {size!r}"
        )
    return pair


def fixed_input_size(backbone) -> tuple[int, int] | None:
    """The (height, width) a backbone's input shape fixes, or None when it takes any size."""
    height, width = tuple(backbone.input_shape)[1:3]
    return (int(height), int(width)) if height and width else None


def preset_image_size(preset: str) -> tuple[int, int] | None:
    """The image size of a keras-hub preset's image converter, if the preset has one."""
    if not (Path(preset).expanduser() / "image_converter.json").is_file():
        return None
    import keras_hub

    converter = keras_hub.layers.ImageConverter.from_preset(str(Path(preset).expanduser()))
    return size_pair(converter.image_size) if converter.image_size else None


def check_image_size(
    encoder: str,
    received: Sequence[int | None],
    native: tuple[int, int] | None,
    fixed: tuple[int, int] | None,
) -> None:
    """Raise if `received` cannot work with the backbone; warn if it is not `native`.

    Args:
        encoder: str. The encoder's name, for the messages.
        received: the (height, width) of the images the model feeds it.
        native: (height, width) | None. The size the backbone was pretrained at.
        fixed: (height, width) | None. The only size the backbone's input shape accepts.
    """
    received = tuple(received)
    if None in received:
        return
    shown = f"{received[0]}x{received[1]}"
    if fixed is not None and received != fixed:
        raise MmtaskError(
            f"The image encoder {encoder!r} takes {fixed[0]}x{fixed[1]} images only. "
            f"Received {shown} images: set the model's image_size to {_spec_size(fixed)}."
        )
    if native is not None and received != native:
        warnings.warn(
            f"The image encoder {encoder!r} was pretrained on {native[0]}x{native[1]} images, "
            f"but the model feeds it {shown} images: its features may be worse at that "
            f"size. Set the model's image_size to {_spec_size(native)} to use it as trained.",
            stacklevel=2,
        )


def _spec_size(size: tuple[int, int]) -> str:
    return str(size[0]) if size[0] == size[1] else str(list(size))
