"""Decode encoded images to fixed-size float tensors, in pure TensorFlow.

The same function runs in the training pipeline and inside the exported
serving function, so a served model sees exactly the pixels it was trained on.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from mmtask.errors import MmtaskError


def image_size_pair(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """`image_size` as (height, width); an int gives a square."""
    size = (image_size, image_size) if _is_int(image_size) else image_size
    size = tuple(size) if isinstance(size, (tuple, list)) else ()
    if len(size) != 2 or not all(_is_int(s) and s > 0 for s in size):
        raise MmtaskError(
            "Invalid value for `image_size`: expected a positive int or a (height, width) "
            f"pair of positive ints. Received: image_size={image_size!r}"
        )
    return int(size[0]), int(size[1])


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def decode_image(image_bytes: tf.Tensor, image_size: int | tuple[int, int]) -> tf.Tensor:
    """Decode an encoded image and resize it.

    JPEG (RGB, grayscale, CMYK), PNG (8 or 16 bit, grayscale, with or without
    alpha, palette), GIF (first frame) and BMP are read; grayscale becomes
    three equal channels and alpha is dropped. The image is resized to
    `image_size` with bilinear interpolation, without antialiasing and
    without keeping the aspect ratio. Graph-safe: usable in `tf.data`,
    `tf.function` and `tf.map_fn`.

    Args:
        image_bytes: tf.Tensor. Scalar tf.string holding the encoded file.
        image_size: int | tuple[int, int]. Output size; an int gives a square.

    Returns:
        float32 tensor of shape (height, width, 3) with values in 0..255.

    Example:
        >>> image = decode_image(tf.io.read_file("data/1.jpg"), 224)
    """
    height, width = image_size_pair(image_size)
    image = tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8, expand_animations=False)
    image = tf.image.resize(image, (height, width), method="bilinear", antialias=False)
    return tf.ensure_shape(image, (height, width, 3))


def missing_image(image_size: int | tuple[int, int]) -> tf.Tensor:
    """The stand-in for a post without an image: a (height, width, 3) image of NaNs.

    NaN never comes out of a decoded file, so models can tell a missing image
    from any real one (see `mmtask.models.presence`).
    """
    height, width = image_size_pair(image_size)
    return tf.fill((height, width, 3), float("nan"))


def decode_optional_image(image_bytes: tf.Tensor, image_size: int | tuple[int, int]) -> tf.Tensor:
    """`decode_image`, or `missing_image` where `image_bytes` is empty."""
    return tf.cond(
        tf.strings.length(image_bytes) > 0,
        lambda: decode_image(image_bytes, image_size),
        lambda: missing_image(image_size),
    )
