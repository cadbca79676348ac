"""Decode encoded images to fixed-size float tensors, in pure TensorFlow.

The same function runs in the training pipeline and inside the exported
serving function, so a served model sees exactly the pixels it was trained on.
"""

from __future__ import annotations

import numbers

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
    reads no pixels and never fails.
    """
    data = tf.cast(tf.io.decode_raw(image_bytes, tf.uint8), tf.int64)
    length = tf.size(data, out_type=tf.int64)
    data = tf.concat([data, tf.zeros([32], tf.int64)], 0)  # fixed-offset reads past the end give 0

    def uint(start, count, big_endian=False):
        values = tf.gather(data, tf.range(start, start + count))
        shifts = tf.range(count, dtype=tf.int64) * 8
        shifts = tf.reverse(shifts, [0]) if big_endian else shifts
        return tf.reduce_sum(tf.bitwise.left_shift(values, shifts))

    def low_bits(value, count):
        return tf.bitwise.bitwise_and(value, 2**count - 1)

    def starts_with(magic: bytes):
        if len(magic) > 32:
            raise ValueError("magic numbers are short")
        expected = tf.constant(list(magic), tf.int64)
        return tf.reduce_all(tf.equal(data[: len(magic)], expected)) & (length >= len(magic))

    bmp_core = uint(14, 4) == 12
    bmp_height = uint(22, 4)
    bmp_height = tf.abs(tf.where(bmp_height >= 2**31, bmp_height - 2**32, bmp_height))
    bmp_width = uint(18, 4)
    bmp_width = tf.where(bmp_width >= 2**31, tf.constant(0, tf.int64), bmp_width)
    vp8l = uint(21, 4)
    webp_chunk = uint(12, 4, big_endian=True)
    webp = tf.where(
        webp_chunk == _fourcc(b"VP8 "),
        [low_bits(uint(28, 2), 14), low_bits(uint(26, 2), 14)],
        tf.where(
            webp_chunk == _fourcc(b"VP8L"),
            [low_bits(tf.bitwise.right_shift(vp8l, 14), 14) + 1, low_bits(vp8l, 14) + 1],
            tf.where(
                webp_chunk == _fourcc(b"VP8X"),
                [uint(27, 3) + 1, uint(24, 3) + 1],
                tf.zeros([2], tf.int64),
            ),
        ),
    )
    candidates = [
        (starts_with(b"\x89PNG\r\n\x1a\n"), [uint(20, 4, True), uint(16, 4, True)]),
        (
            starts_with(b"GIF87a") | starts_with(b"GIF89a"),
            [uint(8, 2), uint(6, 2)],
        ),
        (
            starts_with(b"BM") & (length >= 26),
            tf.where(bmp_core, [uint(20, 2), uint(18, 2)], [bmp_height, bmp_width]),
        ),
        (starts_with(b"RIFF") & (uint(8, 4, True) == _fourcc(b"WEBP")), webp),
    ]
    size = tf.zeros([2], tf.int64)
    for matches, candidate in reversed(candidates):
        size = tf.where(matches, tf.stack(candidate), size)
    size = tf.cond(starts_with(b"\xff\xd8\xff"), lambda: _jpeg_size(data, length), lambda: size)
    return tf.where(tf.reduce_all(size > 0), size, tf.zeros([2], tf.int64))


def _fourcc(code: bytes) -> int:
    return int.from_bytes(code, "big")


def _jpeg_size(data: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
    """(height, width) from a JPEG's first start-of-frame segment; (0, 0) where none is found."""
    sof = tf.constant(sorted(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}), tf.int64)
    standalone = tf.constant([0x01, *range(0xD0, 0xD8)], tf.int64)

    def uint16(at):
        return data[at] * 256 + data[at + 1]

    def searching(position, size):
        return (position + 9 <= length) & tf.reduce_all(tf.equal(size, 0)) & (position >= 0)

    def step(position, size):
        marker = data[position + 1]
        is_sof = tf.reduce_any(tf.equal(sof, marker))
        found = tf.stack([uint16(position + 5), uint16(position + 7)])
        next_position = tf.where(
            marker == 0xFF,
            position + 1,
            tf.where(
                tf.reduce_any(tf.equal(standalone, marker)),
                position + 2,
                position + 2 + uint16(position + 2),
            ),
        )
        broken = data[position] != 0xFF
        # A walk off the segment structure stops, with no size.
        next_position = tf.where(broken, tf.constant(-1, tf.int64), next_position)
        size = tf.where(is_sof & ~broken, found, size)
        return next_position, size

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
