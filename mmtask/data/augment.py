"""Light image augmentation for training, reproducible from a seed.

Stateless random ops take their randomness from an explicit seed, so a run
with the same seed sees the same augmented images, and parallel `tf.data`
maps stay reproducible.
"""

from __future__ import annotations

import tensorflow as tf

MAX_BRIGHTNESS_DELTA = 0.08 * 255.0
CONTRAST_RANGE = (0.85, 1.15)


def augment_image(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Randomly flip an image left-right and jitter its brightness and contrast.

    Args:
        image: tf.Tensor. float32 (height, width, 3) with values in 0..255.
        seed: tf.Tensor. Shape (2,), int32 or int64; the same seed gives the
            same result.

    Returns:
        The augmented image, same shape, values clipped to 0..255.
    """
    flip_seed, brightness_seed, contrast_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=3)
    )
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    image = tf.image.stateless_random_brightness(image, MAX_BRIGHTNESS_DELTA, brightness_seed)
    image = tf.image.stateless_random_contrast(image, *CONTRAST_RANGE, seed=contrast_seed)
    return tf.clip_by_value(image, 0.0, 255.0)
