"""Image views for test-time augmentation: the same photo seen flipped or cropped.

A model that averages its predictions over a few views of each image is less
sensitive to where the subject sits in the frame, at the cost of one forward
pass per view. Each view maps a float image batch `[batch, height, width, 3]`
to a batch of the same shape, so any model reads it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from keras import ops

CROP_FRACTION = 0.875


def _original(images):
    return images


def _flip(images):
    return ops.flip(images, axis=2)


def _crop(images):
    """The central 87.5% of the image, resized back to the full size."""
    height, width = images.shape[1], images.shape[2]
    top = round(height * (1 - CROP_FRACTION) / 2)
    left = round(width * (1 - CROP_FRACTION) / 2)
    center = images[:, top : height - top, left : width - left, :]
    return ops.image.resize(center, (height, width), interpolation="bilinear")


def _flip_crop(images):
    return _flip(_crop(images))


IMAGE_VIEWS: dict[str, Callable] = {
    "original": _original,
    "flip": _flip,
    "crop": _crop,
    "flip_crop": _flip_crop,
}
"""View name -> function of an image batch; `MultiTaskEnsemble(image_views=...)` takes names."""
