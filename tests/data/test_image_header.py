"""Image sizes read from headers, in Python and in TensorFlow, before any decoding."""

import numpy as np
import pytest
import tensorflow as tf
from bad_input_corpus import jpeg_bomb, png_bomb
from PIL import Image

from mmtask.data.image_header import read_image_header
from mmtask.data.images import decode_image, header_image_size, image_within_limit

WIDTH, HEIGHT = 9, 7


def pixels(mode="RGB"):
    values = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return Image.fromarray(values).convert(mode)


# name -> (PIL image, format, save options)
FORMATS = {
    "jpeg": (pixels(), "JPEG", {}),
    "jpeg_progressive": (pixels(), "JPEG", {"progressive": True}),
    "jpeg_exif": (pixels(), "JPEG", {"exif": b"Exif\x00\x00" + b"x" * 3000}),
    "jpeg_cmyk": (pixels("CMYK"), "JPEG", {}),
    "png": (pixels(), "PNG", {}),
    "png_rgba": (pixels("RGBA"), "PNG", {}),
    "png_16_bit": (Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint16)), "PNG", {}),
    "gif": (pixels(), "GIF", {}),
    "bmp": (pixels(), "BMP", {}),
    "webp_lossy": (pixels(), "WEBP", {}),
    "webp_lossless": (pixels(), "WEBP", {"lossless": True}),
    "webp_alpha": (pixels("RGBA"), "WEBP", {}),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_header_size_of_every_format(encode, name):
    image, fmt, options = FORMATS[name]
    data = encode(image, fmt, **options)
    header = read_image_header(data)
    assert (header.format, header.width, header.height) == (fmt.lower(), WIDTH, HEIGHT)
    assert header_image_size(tf.constant(data)).numpy().tolist() == [HEIGHT, WIDTH]
    assert bool(image_within_limit(tf.constant(data), WIDTH * HEIGHT))
    assert not bool(image_within_limit(tf.constant(data), WIDTH * HEIGHT - 1))


@pytest.mark.parametrize("data", [b"", b"\x89PNG", b"<html>", b"GIF89a", b"\xff\xd8\xff\xe0"])
def test_no_size_without_a_header(data):
    assert read_image_header(data) is None
    graph_size = tf.function(header_image_size)(tf.constant(data))
    assert graph_size.numpy().tolist() == [0, 0]
    assert not bool(image_within_limit(tf.constant(data), 10**9))


def test_bombs_are_refused_before_decoding():
    for bomb in (png_bomb(), jpeg_bomb()):
        assert read_image_header(bomb).pixels == 60_000 * 60_000
        assert header_image_size(tf.constant(bomb)).numpy().tolist() == [60_000, 60_000]
        with pytest.raises(tf.errors.InvalidArgumentError, match="more pixels than the limit"):
            decode_image(tf.constant(bomb), 8)


def test_decode_image_limit_is_configurable(encode):
    data = tf.constant(encode(pixels(), "PNG"))
    assert decode_image(data, 4, max_pixels=WIDTH * HEIGHT).shape == (4, 4, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 62"):
        decode_image(data, 4, max_pixels=WIDTH * HEIGHT - 1)
