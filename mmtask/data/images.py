"""Decode encoded images to fixed-size float tensors, in pure TensorFlow.

The same function runs in the training pipeline and inside the exported
serving function, so a served model sees exactly the pixels it was trained on.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from mmtask.data.image_header import MAX_IMAGE_PIXELS
from mmtask.data.image_header_ops import image_header
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


def decode_image(
    image_bytes: tf.Tensor,
    image_size: int | tuple[int, int],
    max_pixels: int | None = MAX_IMAGE_PIXELS,
) -> tf.Tensor:
    """Decode an encoded image and resize it.

    JPEG (RGB, grayscale, CMYK), PNG (8 or 16 bit, grayscale, with or without
    alpha, palette), GIF (first frame), BMP and WebP are read; grayscale
    becomes three equal channels and alpha is dropped. The image is resized
    to `image_size` with bilinear interpolation, without antialiasing and
    without keeping the aspect ratio. Graph-safe: usable in `tf.data`,
    `tf.function` and `tf.map_fn`.

    Args:
        image_bytes: tf.Tensor. Scalar tf.string holding the encoded file.
        image_size: int | tuple[int, int]. Output size; an int gives a square.
        max_pixels: int | None. An image whose header gives more pixels
            (width x height) fails with an InvalidArgumentError before it is
            decoded; None for no limit.

    Returns:
        float32 tensor of shape (height, width, 3) with values in 0..255.

    Example:
        >>> image = decode_image(tf.io.read_file("data/1.jpg"), 224)
    """
    height, width = image_size_pair(image_size)
    if max_pixels is not None:
        pixels = tf.reduce_prod(header_image_size(image_bytes))
        message = f"the image has more pixels than the limit of {max_pixels} (max_pixels)"
        check = tf.debugging.Assert(pixels <= max_pixels, [message, pixels])
        with tf.control_dependencies([check]):
            image_bytes = tf.identity(image_bytes)
    image = decode_pixels(image_bytes)
    image = tf.image.resize(image, (height, width), method="bilinear", antialias=False)
    return tf.ensure_shape(image, (height, width, 3))


def decode_pixels(image_bytes: tf.Tensor) -> tf.Tensor:
    """The uint8 (height, width, 3) pixels of an encoded image, at its own size.

    The one decoder of mmtask: the readers' check (`mmtask.data.image_check`)
    and `decode_image` both use it, so what the check passes decodes in training.
    """
    return tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8, expand_animations=False)


def image_within_limit(image_bytes: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """A scalar tf.bool: the header gives a size of at most `max_pixels` pixels.

    False where the header gives no size (not an image, or cut short). Never
    fails, so a served model can answer other examples of a batch.
    """
    size = header_image_size(image_bytes)
    return tf.logical_and(tf.reduce_all(size > 0), tf.reduce_prod(size) <= max_pixels)


def header_image_size(image_bytes: tf.Tensor) -> tf.Tensor:
    """The (height, width) an image's header gives, as int64; (0, 0) where it gives none.

    The graph form of `mmtask.data.image_header.read_image_header`
    (`mmtask.data.image_header_ops.image_header`): reads no pixels and never fails.
    """
    _, height, width = image_header(image_bytes)
    size = tf.stack([height, width])
    return tf.where(tf.reduce_all(size > 0), size, tf.zeros([2], tf.int64))


def missing_image(image_size: int | tuple[int, int]) -> tf.Tensor:
    """The stand-in for a post without an image: a (height, width, 3) image of NaNs.

    NaN never comes out of a decoded file, so models can tell a missing image
    from any real one (see `mmtask.models.presence`).
    """
    height, width = image_size_pair(image_size)
    return tf.fill((height, width, 3), float("nan"))
