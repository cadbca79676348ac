import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mmtask.data import decode_image
from mmtask.data.augment import augment_image
from mmtask.errors import MmtaskError

# name -> (PIL image, format, save options, expected RGB, tolerance)
CASES = {
    "jpeg_rgb": (Image.new("RGB", (20, 12), (200, 30, 60)), "JPEG", {}, (200, 30, 60), 4),
    "jpeg_gray": (Image.new("L", (20, 12), 120), "JPEG", {}, (120, 120, 120), 2),
    "png_rgba": (Image.new("RGBA", (20, 12), (10, 200, 30, 128)), "PNG", {}, (10, 200, 30), 0),
    "png_gray": (Image.new("L", (20, 12), 77), "PNG", {}, (77, 77, 77), 0),
    "png_16bit": (
        Image.fromarray(np.full((12, 20), 40000, np.uint16)),
        "PNG",
        {},
        (40000 / 257,) * 3,
        1,
    ),
    "gif_first_frame": (
        Image.new("RGB", (20, 12), (255, 0, 0)),
        "GIF",
        {"save_all": True, "append_images": [Image.new("RGB", (20, 12), "blue")]},
        (255, 0, 0),
        0,
    ),
    "bmp": (Image.new("RGB", (20, 12), (10, 200, 30)), "BMP", {}, (10, 200, 30), 0),
    "webp": (
        Image.new("RGB", (20, 12), (10, 200, 30)),
        "WEBP",
        {"lossless": True},
        (10, 200, 30),
        0,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_formats(encode, case):
    image, fmt, options, expected, tolerance = CASES[case]
    data = encode(image, fmt, **options)
    decoded = decode_image(tf.constant(data), (8, 10))
    assert decoded.dtype == tf.float32 and decoded.shape == (8, 10, 3)
    np.testing.assert_allclose(
        decoded.numpy(), np.broadcast_to(expected, (8, 10, 3)), atol=tolerance + 1e-3
    )


def test_cmyk_jpeg_matches_pil(encode):
    # Adobe CMYK JPEGs store inverted values; colours must come out as PIL converts them.
    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[:8, :8] = (0, 0, 0, 0)  # white
    pixels[:8, 8:] = (255, 0, 0, 0)  # cyan
    pixels[8:, :8] = (30, 200, 50, 10)  # pink
    pixels[8:, 8:] = (0, 0, 0, 255)  # black
    data = encode(Image.fromarray(pixels, "CMYK"), "JPEG", quality=95)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32)
    decoded = decode_image(tf.constant(data), 16).numpy()
    centres = (slice(2, 6), slice(10, 14))
    for rows in centres:
        for cols in centres:
            np.testing.assert_allclose(decoded[rows, cols], expected[rows, cols], atol=4)
    np.testing.assert_allclose(decoded[4, 12], (0, 255, 255), atol=4)


def test_bilinear_resize_without_antialias(encode):
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[:, 2:] = 255  # left half black, right half white
    decoded = decode_image(tf.constant(encode(Image.fromarray(pixels), "PNG")), (4, 8)).numpy()
    # Half-pixel centres: output column j samples input x = (j + 0.5) / 2 - 0.5.
    np.testing.assert_allclose(decoded[0, :, 0], [0, 0, 0, 63.75, 191.25, 255, 255, 255])


def test_works_in_map_fn_inside_a_graph(encode):
    images = [encode(Image.new("RGB", (9, 7), (i * 50, 0, 0)), "PNG") for i in range(3)]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(batch):
        return tf.map_fn(
            lambda b: decode_image(b, 5),
            batch,
            fn_output_signature=tf.TensorSpec([5, 5, 3], tf.float32),
        )

    decoded = serve(tf.constant(images)).numpy()
    assert decoded.shape == (3, 5, 5, 3)
    np.testing.assert_allclose(decoded[:, 2, 2, 0], [0, 50, 100])


@pytest.mark.parametrize("size", [0, True, (3,), (3, 4, 5), 2.5, (4, -1), "8"])
def test_bad_image_size(size):
    with pytest.raises(MmtaskError, match="image_size"):
        decode_image(tf.constant(b""), size)


def test_augment_is_seeded_and_bounded():
    image = tf.random.stateless_uniform((16, 16, 3), seed=(1, 2), maxval=255.0)
    seed = tf.constant([3, 4], tf.int64)
    first, again = augment_image(image, seed), augment_image(image, seed)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    outputs = [augment_image(image, tf.constant([3, k], tf.int64)).numpy() for k in range(8)]
    assert not all(np.array_equal(outputs[0], out) for out in outputs[1:])
    for out in outputs:
        assert out.shape == (16, 16, 3) and out.min() >= 0 and out.max() <= 255
