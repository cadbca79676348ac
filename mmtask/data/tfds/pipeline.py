"""Turn a TFDS dataset into mmtask's `(features, labels, masks)` batches.

A TFDS dataset yields one dict of features per example. `from_tfds` picks
the text, the image and the labels out of it and serves them exactly as
`make_dataset` serves `Posts`: images decoded and resized the same way,
missing labels (-1) masked, shuffled, augmented, batched and prefetched the
same way. So a model trained on either source sees the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from mmtask.data.images import decode_image, image_size_pair
from mmtask.data.pipeline import batch_posts
from mmtask.data.tfds.posts_builder import LABEL_NAMES_KEY
from mmtask.errors import MmtaskError

SHUFFLE_BUFFER = 1024
"""Default shuffle buffer over examples (each holds its image, so the buffer is bounded)."""

_CHANNELS = (1, 3, 4)


def from_tfds(
    dataset: tf.data.Dataset,
    *,
    text_key: str,
    image_key: str,
    label_keys: Mapping[str, str] | Sequence[str],
    label_names: Mapping[str, Sequence[str]],
    image_size: int | tuple[int, int] = 224,
    batch_size: int = 32,
    training: bool = False,
    augment: bool | None = None,
    shuffle: bool | None = None,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    cache: bool | str = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Map any TFDS dataset with a text and an image feature to mmtask batches.

    The batches are those of `make_dataset`: features `{"text": tf.string
    (B,), "image": float32 (B, H, W, 3) in 0..255}`, labels `{task: int32
    (B,)}` with missing labels (-1) set to 0, masks `{task: float32 (B,)}`.
    Images may be decoded (uint8, 1, 3 or 4 channels: the TFDS default) or
    encoded bytes (`decoders={image_key: tfds.decode.SkipDecoding()}`, which
    also saves TFDS's decoding); both give the pixels of `decode_image`.

    Args:
        dataset: tf.data.Dataset. Unbatched examples, each a dict of features
            (`tfds.load(...)` or `builder.as_dataset(...)` without
            `batch_size` and `as_supervised`).
        text_key: str. Feature holding the text (a tf.string scalar).
        image_key: str. Feature holding the image.
        label_keys: Mapping[str, str] | Sequence[str]. Task name to the
            integer feature holding its class index (-1: no label); a list
            of features uses each feature's name as its task name.
        label_names: Mapping[str, Sequence[str]]. Task name to its class
            names, e.g. `info.features["label"].names`; the same names build
            the model's heads. A label outside [-1, len(names) - 1] is an
            error when it is read.
        image_size, batch_size, training, augment, shuffle, cache, seed,
            drop_remainder, repeat: as in `make_dataset`.
        shuffle_buffer: int. Examples in the shuffle buffer; read with
            `shuffle_files=True` too for data sets of many shards.

    Example:
        >>> builder = tfds.builder("my_captioned_photos")  # any text + image data set
        >>> train = from_tfds(
        ...     builder.as_dataset(split="train", shuffle_files=True),
        ...     text_key="caption", image_key="image", label_keys={"topic": "label"},
        ...     label_names={"topic": builder.info.features["label"].names},
        ...     image_size=224, training=True, seed=0)
        >>> features, labels, masks = next(iter(train))
    """
    tasks = dict(label_keys) if isinstance(label_keys, Mapping) else {k: k for k in label_keys}
    if set(tasks) != set(label_names):
        raise MmtaskError(
            f"`label_names` must give the class names of every task and no other: tasks "
            f"{sorted(tasks)}. Received: label_names for {sorted(label_names)}"
        )
    _check_element_spec(dataset.element_spec, text_key, image_key, list(tasks.values()))
    size = image_size_pair(image_size)
    augment = training if augment is None else augment
    shuffle = training if shuffle is None else shuffle
    deterministic = not training or seed is not None

    def select(example):
        labels, masks = {}, {}
        for task, key in tasks.items():
            label = tf.cast(example[key], tf.int32)
            num_classes = len(label_names[task])
            message = f"labels of task '{task}' must lie in [-1, {num_classes - 1}]"
            with tf.control_dependencies(
                [
                    tf.debugging.assert_greater_equal(label, -1, message=message),
                    tf.debugging.assert_less(label, num_classes, message=message),
                ]
            ):
                labels[task] = tf.maximum(label, 0)
            masks[task] = tf.cast(label >= 0, tf.float32)
        return {"text": example[text_key], "image": example[image_key]}, labels, masks

    def load(features, labels, masks):
        image = _model_image(features["image"], size)
        return {"text": features["text"], "image": image}, labels, masks

    dataset = dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batch_posts(
        dataset,
        load,
        shuffle_buffer=shuffle_buffer if shuffle else 0,
        cache=cache,
        repeat=repeat,
        augment=augment,
        seed=seed,
        deterministic=deterministic,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
    )


def posts_dataset_from_tfds(
    dataset: tf.data.Dataset,
    info: tfds.core.DatasetInfo,
    *,
    tasks: Sequence[str] | None = None,
    **options: Any,
) -> tf.data.Dataset:
    """Batches of a data set prepared by an mmtask builder (`MvsaBuilder`, `ManifestBuilder`).

    The keys and class names come from the builder's records and
    `info.metadata["label_names"]`, so only the pipeline options are needed.

    Args:
        dataset: tf.data.Dataset. `builder.as_dataset(split=...)` or `tfds.load(...)`.
        info: tfds.core.DatasetInfo. `builder.info`, holding the class names.
        tasks: Sequence[str] | None. The tasks to serve; default all.
        **options: image_size, batch_size, training, ... as in `from_tfds`.

    Example:
        >>> val = posts_dataset_from_tfds(builder.as_dataset(split="val"), builder.info,
        ...                               image_size=224, batch_size=32)
    """
    label_names = (info.metadata or {}).get(LABEL_NAMES_KEY)
    if not label_names:
        raise MmtaskError(
            f"{info.full_name} has no '{LABEL_NAMES_KEY}' in its metadata, so it was not "
            "prepared by an mmtask builder; map it with `from_tfds`."
        )
    tasks = list(label_names) if tasks is None else list(tasks)
    unknown = [task for task in tasks if task not in label_names]
    if unknown:
        raise MmtaskError(
            f"Unknown tasks {unknown}: expected some of {list(label_names)}. Received: {tasks}"
        )
    return from_tfds(
        dataset,
        text_key="text",
        image_key="image",
        label_keys=tasks,
        label_names={task: label_names[task] for task in tasks},
        **options,
    )


def _model_image(image: tf.Tensor, image_size: int | tuple[int, int]) -> tf.Tensor:
    """A TFDS image as `decode_image` gives it: float32 (height, width, 3) in 0..255.

    Encoded bytes go through `decode_image`; a decoded uint8 image is made
    RGB the way `decode_image` does it (grayscale repeated, alpha dropped)
    and resized the same way (bilinear, no antialiasing).
    """
    if image.dtype == tf.string:
        return decode_image(image, image_size)
    height, width = image_size_pair(image_size)
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    elif image.shape[-1] == 4:
        image = image[..., :3]
    image = tf.image.resize(image, (height, width), method="bilinear", antialias=False)
    return tf.ensure_shape(image, (height, width, 3))


def _check_element_spec(spec: Any, text_key: str, image_key: str, label_keys: list[str]) -> None:
    """Raise an MmtaskError unless `spec` is of unbatched examples with these features."""
    if not isinstance(spec, Mapping):
        raise MmtaskError(
            "Expected a dataset of dicts of features (TFDS without `as_supervised`). "
            f"Received elements of {spec}"
        )
    missing = [key for key in (text_key, image_key, *label_keys) if key not in spec]
    if missing:
        raise MmtaskError(f"Features {missing} not found; the dataset has {sorted(spec)}.")
    problems = []
    text, image = spec[text_key], spec[image_key]
    if text.dtype != tf.string or text.shape.rank != 0:
        problems.append(f"text '{text_key}' must be a tf.string scalar, got {text}")
    encoded = image.dtype == tf.string and image.shape.rank == 0
    decoded = image.dtype == tf.uint8 and image.shape.rank == 3 and image.shape[-1] in _CHANNELS
    if not (encoded or decoded):
        problems.append(
            f"image '{image_key}' must be encoded bytes (a tf.string scalar) or uint8 "
            f"(height, width, channels) with channels in {list(_CHANNELS)}, got {image}"
        )
    for key in label_keys:
        if not spec[key].dtype.is_integer or spec[key].shape.rank != 0:
            problems.append(f"label '{key}' must be an integer scalar, got {spec[key]}")
    if problems:
        raise MmtaskError(
            "Unusable features (a batched dataset? load it without `batch_size`): "
            + "; ".join(problems)
        )
