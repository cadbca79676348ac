"""Decode encoded images to fixed-size float tensors, in pure TensorFlow.

The same function runs in the training pipeline and inside the exported
serving function, so a served model sees exactly the pixels it was trained on.
"""

from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf

from mmtask.data.image_header import MAX_IMAGE_PIXELS, MAX_JPEG_SEGMENTS
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

    The graph form of `mmtask.data.image_header.read_image_header` (JPEG
    start-of-frame, PNG IHDR, GIF screen, BMP info header, WebP VP8/VP8L/VP8X);
    reads no pixels and never fails. Only a JPEG is read past its first 32
    bytes, segment by segment up to its start of frame.
    """
    head = tf.strings.substr(tf.strings.join([image_bytes, _ZEROS]), 0, _HEAD)
    head = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.float64)
    values = tf.unstack(tf.cast(tf.linalg.matvec(_WEIGHTS, head), tf.int64))
    field = dict(zip(_FIELDS, values, strict=True))

    def where(condition, size, otherwise):
        return tf.where(condition, tf.stack(size), otherwise)

    none = tf.zeros([2], tf.int64)
    bmp_height = field["bmp_height"]
    bmp_height = tf.where(bmp_height >= 2**31, 2**32 - bmp_height, bmp_height)  # top-down rows
    bmp_width = tf.where(field["bmp_width"] >= 2**31, tf.constant(0, tf.int64), field["bmp_width"])
    bmp = where(
        field["bmp_info"] == 12,
        [field["core_height"], field["core_width"]],
        [bmp_height, bmp_width],
    )
    vp8l = field["vp8l"]
    vp8l_width = tf.bitwise.bitwise_and(vp8l, 0x3FFF) + 1
    vp8l_height = tf.bitwise.bitwise_and(tf.bitwise.right_shift(vp8l, 14), 0x3FFF) + 1
    webp = where(
        field["chunk"] == _fourcc(b"VP8 "),
        [tf.bitwise.bitwise_and(field[f"vp8_{side}"], 0x3FFF) for side in ("height", "width")],
        where(
            field["chunk"] == _fourcc(b"VP8L"),
            [vp8l_height, vp8l_width],
            where(
                field["chunk"] == _fourcc(b"VP8X"),
                [field["vp8x_height"] + 1, field["vp8x_width"] + 1],
                none,
            ),
        ),
    )
    magic, magic4 = field["magic"], field["magic4"]
    is_gif = (magic == _fourcc(b"GIF8")) & (
        (tf.bitwise.right_shift(magic4, 16) == _fourcc(b"7a"))
        | (tf.bitwise.right_shift(magic4, 16) == _fourcc(b"9a"))
    )
    size = where((magic == _fourcc(b"RIFF")) & (field["magic8"] == _fourcc(b"WEBP")), webp, none)
    size = tf.where(tf.bitwise.right_shift(magic, 16) == _fourcc(b"\0\0BM"), bmp, size)
    size = where(is_gif, [field["gif_height"], field["gif_width"]], size)
    is_png = (magic == _fourcc(b"\x89PNG")) & (magic4 == _fourcc(b"\r\n\x1a\n"))
    size = where(is_png, [field["png_height"], field["png_width"]], size)
    is_jpeg = tf.bitwise.right_shift(magic, 8) == _fourcc(b"\0\xff\xd8\xff")
    size = tf.cond(is_jpeg, lambda: _jpeg_size(image_bytes), lambda: size)
    return tf.where(tf.reduce_all(size > 0), size, none)


def _fourcc(code: bytes) -> int:
    return int.from_bytes(code, "big")


def _field_weights(fields: dict[str, tuple[int, int, str]], length: int) -> np.ndarray:
    """Rows that turn `length` bytes into each field's unsigned int by one matrix product."""
    weights = np.zeros((len(fields), length))
    for row, (start, count, order) in enumerate(fields.values()):
        powers = 256.0 ** np.arange(count)
        weights[row, start : start + count] = powers[::-1] if order == "big" else powers
    return weights


# Header fields read at fixed offsets: name -> (first byte, bytes, byte order).
_HEADER_FIELDS = {
    "magic": (0, 4, "big"),
    "magic4": (4, 4, "big"),
    "magic8": (8, 4, "big"),
    "chunk": (12, 4, "big"),
    "png_width": (16, 4, "big"),
    "png_height": (20, 4, "big"),
    "gif_width": (6, 2, "little"),
    "gif_height": (8, 2, "little"),
    "bmp_info": (14, 4, "little"),
    "bmp_width": (18, 4, "little"),
    "bmp_height": (22, 4, "little"),
    "core_width": (18, 2, "little"),
    "core_height": (20, 2, "little"),
    "vp8_width": (26, 2, "little"),
    "vp8_height": (28, 2, "little"),
    "vp8x_width": (24, 3, "little"),
    "vp8x_height": (27, 3, "little"),
    "vp8l": (21, 4, "little"),
}
_HEAD = 32
_ZEROS = b"\0" * _HEAD
_FIELDS = list(_HEADER_FIELDS)
_WEIGHTS = _field_weights(_HEADER_FIELDS, _HEAD)
# A JPEG segment start: FF, marker, 2-byte length; a start of frame then has precision,
# height and width. Rows give marker, length, height, width from 9 bytes.
_SEGMENT_WEIGHTS = _field_weights(
    {
        "marker": (1, 1, "big"),
        "length": (2, 2, "big"),
        "height": (5, 2, "big"),
        "width": (7, 2, "big"),
    },
    9,
)
_JPEG_SOF = sorted(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC})
_JPEG_STANDALONE = [0x01, *range(0xD0, 0xD8)]


def _jpeg_size(image_bytes: tf.Tensor) -> tf.Tensor:
    """(height, width) from a JPEG's first start-of-frame segment; (0, 0) where none is found."""
    data = tf.io.decode_raw(image_bytes, tf.uint8)
    length = tf.size(data, out_type=tf.int64)

    def searching(position, size):
        return (position >= 0) & (position + 9 <= length) & tf.reduce_all(tf.equal(size, 0))

    def step(position, size):
        segment = tf.cast(tf.slice(data, [position], [9]), tf.float64)
        marker, segment_length, height, width = tf.unstack(
            tf.cast(tf.linalg.matvec(_SEGMENT_WEIGHTS, segment), tf.int64)
        )
        next_position = tf.where(
            marker == 0xFF,
            position + 1,  # a fill byte
            tf.where(
                tf.reduce_any(tf.equal(marker, _JPEG_STANDALONE)),
                position + 2,
                position + 2 + segment_length,
            ),
        )
        broken = segment[0] != 0xFF  # off the segment structure: stop, with no size
        is_sof = tf.reduce_any(tf.equal(marker, _JPEG_SOF)) & ~broken
        next_position = tf.where(broken, tf.constant(-1, tf.int64), next_position)
        return next_position, tf.where(is_sof, tf.stack([height, width]), size)

    _, size = tf.while_loop(
        searching,
        step,
        (tf.constant(2, tf.int64), tf.zeros([2], tf.int64)),
        maximum_iterations=MAX_JPEG_SEGMENTS,
    )
    return size


def missing_image(image_size: int | tuple[int, int]) -> tf.Tensor:
    """The stand-in for a post without an image: a (height, width, 3) image of NaNs.

    NaN never comes out of a decoded file, so models can tell a missing image
    from any real one (see `mmtask.models.presence`).
    """
    height, width = image_size_pair(image_size)
    return tf.fill((height, width, 3), float("nan"))


def decode_optional_image(
    image_bytes: tf.Tensor,
    image_size: int | tuple[int, int],
    max_pixels: int | None = MAX_IMAGE_PIXELS,
) -> tf.Tensor:
    """`decode_image`, or `missing_image` where `image_bytes` is empty."""
    return tf.cond(
        tf.strings.length(image_bytes) > 0,
        lambda: decode_image(image_bytes, image_size, max_pixels),
        lambda: missing_image(image_size),
    )
