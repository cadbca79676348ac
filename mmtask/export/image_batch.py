"""Decode a served batch of image files one example at a time: a bad file spoils only its post.

A SavedModel graph cannot catch a decoding error with try/except, and a
header check cannot see corruption in the middle of a file. So each file is
checked (format and pixel count, read from its header before decoding), then
decoded in a `tf.data` pipeline whose `ignore_errors` drops the examples the
decoder refuses; the examples that come out are put back at their indices,
and the rest get the missing-image stand-in and a status saying why. All of
it is core TensorFlow ops, so TensorFlow Serving runs it too.
"""

from __future__ import annotations

import tensorflow as tf

from mmtask.data.image_header_ops import UNKNOWN, image_header
from mmtask.data.images import decode_image, image_size_pair, missing_image

IMAGE_STATUSES = ("ok", "missing", "undecodable", "too_large")
"""`image_status` values: decoded; no bytes sent; not a readable image; over the pixel limit."""
OK, MISSING, UNDECODABLE, TOO_LARGE = range(len(IMAGE_STATUSES))

DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""Decoded pixels (height x width) an image may have: 50 megapixels, above any phone photo."""


def checked_status(image_bytes: tf.Tensor, max_pixels: int) -> tf.Tensor:
    """int32 status of one file from its length and header alone, before decoding."""
    fmt, height, width = image_header(image_bytes)
    status = tf.where(height * width > max_pixels, TOO_LARGE, OK)
    unreadable = tf.equal(fmt, UNKNOWN) | (height <= 0) | (width <= 0)
    status = tf.where(unreadable, UNDECODABLE, status)
    return tf.where(tf.equal(tf.strings.length(image_bytes), 0), MISSING, status)


def decode_image_batch(
    image_bytes: tf.Tensor, image_size: tuple[int, int], max_pixels: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Decode a batch of files independently.

    Args:
        image_bytes: tf.Tensor. tf.string [batch], the files' contents.
        image_size: (int, int). Height and width to resize to.
        max_pixels: int. Files whose header declares more pixels are not decoded.

    Returns:
        float32 images [batch, height, width, 3] (the NaN missing-image
        stand-in where not decoded) and int32 status codes [batch], indices
        into `IMAGE_STATUSES`.
    """
    height, width = image_size_pair(image_size)
    count = tf.shape(image_bytes, out_type=tf.int64)[0]

    def decode(index, data):
        status = checked_status(data, max_pixels)
        image = tf.cond(
            tf.equal(status, OK),
            lambda: decode_image(data, (height, width), max_pixels=None),
            lambda: missing_image((height, width)),
        )
        return index, status, image

    decoded = (
        tf.data.Dataset.from_tensor_slices((tf.range(count), image_bytes))
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
        # One stand-in element at index `count`, so the batch below is never empty.
        .concatenate(
            tf.data.Dataset.from_tensors(
                (count, tf.constant(UNDECODABLE), missing_image((height, width)))
            )
        )
        .batch(count + 1)
    )
    indices, statuses, images = decoded.get_single_element()
    slots = indices[:, None]
    # Examples the decoder refused are absent: they keep the status UNDECODABLE.
    statuses = tf.tensor_scatter_nd_update(tf.fill([count + 1], UNDECODABLE), slots, statuses)[
        :count
    ]
    images = tf.scatter_nd(slots, images, [count + 1, height, width, 3])[:count]
    ok = tf.equal(statuses, OK)[:, None, None, None]
    return tf.where(ok, images, missing_image((height, width))[None]), statuses
