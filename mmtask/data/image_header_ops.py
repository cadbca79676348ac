"""An image file's format and pixel dimensions, read from its header in TensorFlow ops.

A served model must refuse a decompression bomb (a small file that decodes
to gigabytes) before decoding it, and must do so inside the SavedModel graph,
where no Python runs. `image_header` reads the dimensions the decoder would
allocate from the first bytes of JPEG, PNG, GIF, BMP and WebP files, with
string slicing and `tf.io.decode_raw` only: it never fails, whatever the
bytes; what it cannot read comes back as format `UNKNOWN` and size 0 x 0.
"""

from __future__ import annotations

import tensorflow as tf

from mmtask.data.image_header import MAX_JPEG_SEGMENTS

UNKNOWN, JPEG, PNG, GIF, BMP, WEBP = range(6)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers (the frame header holding the size): C0..CF without
# DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = [m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)]


def _bytes_at(data: tf.Tensor, position: tf.Tensor, count: int) -> tf.Tensor:
    """`count` bytes of `data` from `position` as int64, zeros past its end."""
    length = tf.cast(tf.strings.length(data), tf.int64)
    start = tf.minimum(tf.cast(position, tf.int64), length)
    piece = tf.strings.substr(data, start, count) + b"\x00" * count
    return tf.cast(tf.reshape(tf.io.decode_raw(piece, tf.uint8)[:count], [count]), tf.int64)


def _big_endian(values: tf.Tensor) -> tf.Tensor:
    result = tf.constant(0, tf.int64)
    for i in range(values.shape[0]):
        result = result * 256 + values[i]
    return result


def _little_endian(values: tf.Tensor) -> tf.Tensor:
    return _big_endian(tf.reverse(values, [0]))


def _starts_with(data: tf.Tensor, prefix: bytes, offset: int = 0) -> tf.Tensor:
    return tf.equal(tf.strings.substr(data + b"\x00" * 32, offset, len(prefix)), prefix)


def _png_size(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    header = _bytes_at(data, 16, 8)  # IHDR: width, height, 4 bytes each, big-endian
    return _big_endian(header[4:8]), _big_endian(header[0:4])


def _gif_size(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    header = _bytes_at(data, 6, 4)  # logical screen: width, height, 2 bytes each
    return _little_endian(header[2:4]), _little_endian(header[0:2])


def _bmp_size(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    header = _bytes_at(data, 14, 12)
    core = tf.equal(_little_endian(header[0:4]), 12)  # BITMAPCOREHEADER: 16-bit sizes
    width = tf.where(core, _little_endian(header[4:6]), _little_endian(header[4:8]))
    height = tf.where(core, _little_endian(header[6:8]), _little_endian(header[8:12]))
    # A negative (two's complement) height means rows stored top-down.
    height = tf.where(~core & (height >= 2**31), 2**32 - height, height)
    return height, width


def _low_14_bits(value: tf.Tensor) -> tf.Tensor:
    return tf.bitwise.bitwise_and(value, tf.constant(0x3FFF, tf.int64))


def _webp_size(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    header = _bytes_at(data, 20, 10)  # the first chunk's payload; its kind is at 12
    # Each as (height, width): VP8 (lossy) keyframe, VP8L (lossless), VP8X (extended) canvas.
    bits = _little_endian(header[1:5])  # 14 bits width - 1, then 14 bits height - 1
    kinds = [
        (
            _starts_with(data, b"VP8 ", 12) & _starts_with(data, b"\x9d\x01\x2a", 23),
            _low_14_bits(_little_endian(header[8:10])),
            _low_14_bits(_little_endian(header[6:8])),
        ),
        (
            _starts_with(data, b"VP8L", 12) & tf.equal(header[0], 0x2F),
            _low_14_bits(tf.bitwise.right_shift(bits, 14)) + 1,
            _low_14_bits(bits) + 1,
        ),
        (
            _starts_with(data, b"VP8X", 12),
            _little_endian(header[7:10]) + 1,
            _little_endian(header[4:7]) + 1,
        ),
    ]
    height = width = tf.constant(0, tf.int64)
    for valid, kind_height, kind_width in reversed(kinds):
        height = tf.where(valid, kind_height, height)
        width = tf.where(valid, kind_width, width)
    return height, width


def _jpeg_size(data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Walk the segments after SOI to the first frame header; 0 x 0 if none is found."""
    length = tf.cast(tf.strings.length(data), tf.int64)
    sof = tf.constant(_JPEG_SOF, tf.int64)
    one, two = tf.constant(1, tf.int64), tf.constant(2, tf.int64)

    def searching(position, steps, found, height, width):
        return ~found & (position + 4 <= length) & (steps < MAX_JPEG_SEGMENTS)

    def step(position, steps, found, height, width):
        head = _bytes_at(data, position, 9)
        marker = head[1]
        at_marker = tf.equal(head[0], 0xFF)
        is_frame = at_marker & tf.reduce_any(tf.equal(marker, sof))
        # TEM and RSTn have no length field; a second 0xFF is a fill byte.
        standalone = tf.equal(marker, 0x01) | ((marker >= 0xD0) & (marker <= 0xD7))
        advance = tf.where(standalone, two, two + tf.maximum(_big_endian(head[2:4]), two))
        advance = tf.where(tf.equal(marker, 0xFF), one, advance)
        # Not at a marker: a broken file; jump past the end to stop.
        advance = tf.where(at_marker, advance, length)
        height = tf.where(is_frame, _big_endian(head[5:7]), height)
        width = tf.where(is_frame, _big_endian(head[7:9]), width)
        position = tf.where(is_frame, position, position + advance)
        return position, steps + 1, is_frame, height, width

    zero = tf.constant(0, tf.int64)
    _, _, _, height, width = tf.while_loop(
        searching, step, (two, zero, tf.constant(False), zero, zero)
    )
    return height, width


def image_header(image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`(format, height, width)` of one encoded image, from its header alone.

    Args:
        image_bytes: tf.Tensor. Scalar tf.string, the file's contents.

    Returns:
        int32 format code (`JPEG`, `PNG`, `GIF`, `BMP`, `WEBP`, or `UNKNOWN`)
        and int64 height and width in pixels (0 where the header does not say).
        A file that passes may still fail to decode (its body may be corrupt).

    Example:
        >>> fmt, height, width = image_header(tf.io.read_file("photo.jpg"))
    """
    is_jpeg = _starts_with(image_bytes, b"\xff\xd8\xff")
    is_png = _starts_with(image_bytes, _PNG_SIGNATURE) & _starts_with(image_bytes, b"IHDR", 12)
    is_gif = _starts_with(image_bytes, b"GIF87a") | _starts_with(image_bytes, b"GIF89a")
    is_bmp = _starts_with(image_bytes, b"BM")
    is_webp = _starts_with(image_bytes, b"RIFF") & _starts_with(image_bytes, b"WEBP", 8)
    checks = [(is_jpeg, JPEG), (is_png, PNG), (is_gif, GIF), (is_bmp, BMP), (is_webp, WEBP)]
    fmt = tf.constant(UNKNOWN, tf.int32)
    for check, code in reversed(checks):
        fmt = tf.where(check, code, fmt)
    branches = {
        JPEG: lambda: _jpeg_size(image_bytes),
        PNG: lambda: _png_size(image_bytes),
        GIF: lambda: _gif_size(image_bytes),
        BMP: lambda: _bmp_size(image_bytes),
        WEBP: lambda: _webp_size(image_bytes),
    }
    zero = tf.constant(0, tf.int64)
    height, width = tf.switch_case(
        fmt,
        branch_fns={UNKNOWN: lambda: (zero, zero), **branches},
    )
    return fmt, height, width
