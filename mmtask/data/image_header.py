"""Read an image's format and size from its header, without decoding it.

A 1 MB PNG can claim 20000 x 20000 pixels and take gigabytes once decoded,
so the size is checked against a limit before any decoder runs. This module
is pure Python (the readers use it); `mmtask.data.images.header_image_size`
is the same parse as TensorFlow ops, for pipelines and served models.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_IMAGE_PIXELS = 50_000_000
"""Default limit on an image's width x height: 50 megapixels, more than any phone photo."""

HEAD_BYTES = 64
"""Bytes that hold the size of a PNG, GIF, BMP or WebP (a JPEG's may lie further on)."""

MAX_JPEG_SEGMENTS = 1000
"""Segments (and fill bytes) walked in search of a JPEG's size: real files have a few dozen."""

IMAGE_FORMATS = ("jpeg", "png", "gif", "bmp", "webp")

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_GIF = (b"GIF87a", b"GIF89a")
_BMP = b"BM"
# Start-of-frame markers C0-CF hold the frame size, except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and RST0-RST7.
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


@dataclass(frozen=True)
class ImageHeader:
    """An image's format (one of IMAGE_FORMATS) and size, as its header says."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def image_format(head: bytes) -> str | None:
    """The format of an image from its first bytes (its magic number), or None."""
    if head.startswith(_JPEG):
        return "jpeg"
    if head.startswith(_PNG):
        return "png"
    if head.startswith(_GIF):
        return "gif"
    if head.startswith(_BMP) and len(head) >= 6:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def read_image_header(data: bytes) -> ImageHeader | None:
    """The format and size of an encoded image, or None where the header cannot tell.

    `data` is the file, or enough of its start: HEAD_BYTES for PNG, GIF, BMP
    and WebP; up to the start-of-frame segment for JPEG (after any EXIF data).

    Example:
        >>> read_image_header(open("cat.png", "rb").read(HEAD_BYTES))
        ImageHeader(format='png', width=640, height=480)
    """
    fmt = image_format(data)
    size = None
    if fmt == "jpeg":
        size = _jpeg_size(data)
    elif fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        size = _uint(data, 16, 4, "big"), _uint(data, 20, 4, "big")
    elif fmt == "gif" and len(data) >= 10:
        size = _uint(data, 6, 2), _uint(data, 8, 2)
    elif fmt == "bmp" and len(data) >= 26:
        if _uint(data, 14, 4) == 12:  # the OS/2 BITMAPCOREHEADER: 16-bit sizes
            size = _uint(data, 18, 2), _uint(data, 20, 2)
        else:  # BITMAPINFOHEADER and later; a negative height means top-down rows
            width = int.from_bytes(data[18:22], "little", signed=True)
            size = width, abs(int.from_bytes(data[22:26], "little", signed=True))
    elif fmt == "webp":
        size = _webp_size(data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return ImageHeader(fmt, size[0], size[1])


def _uint(data: bytes, start: int, length: int, order: str = "little") -> int:
    return int.from_bytes(data[start : start + length], order)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame segment, walking the segments before it."""
    position = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        if position + 9 > len(data):
            return None
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
        elif marker in _JPEG_SOF:
            return _uint(data, position + 7, 2, "big"), _uint(data, position + 5, 2, "big")
        elif marker in _JPEG_STANDALONE:
            position += 2
        else:
            position += 2 + _uint(data, position + 2, 2, "big")
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:  # lossy: 14-bit sizes after the key frame start
        return _uint(data, 26, 2) & 0x3FFF, _uint(data, 28, 2) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:  # lossless: 14-bit sizes minus one, bit-packed
        bits = _uint(data, 21, 4)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:  # extended: 24-bit canvas sizes minus one
        return _uint(data, 24, 3) + 1, _uint(data, 27, 3) + 1
    return None
