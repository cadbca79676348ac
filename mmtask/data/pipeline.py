"""Turn `Posts` into a batched `tf.data` pipeline for Keras.

Each element is `(features, labels, masks)`: a model reads `features`, and a
multi-task loss uses `masks` to ignore the tasks a post has no label for.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmtask.data.augment import augment_image
from mmtask.data.images import decode_image, image_size_pair, missing_image
from mmtask.data.posts import Posts

CACHED_SHUFFLE_BUFFER = 1024
"""Shuffle buffer over decoded images when caching (bounded: each holds a whole image)."""


def make_dataset(
    posts: Posts,
    *,
    model=None,
    image_size: int | tuple[int, int] | None = None,
    batch_size: int = 32,
    training: bool = False,
    augment: bool | None = None,
    shuffle: bool | None = None,
    cache: bool | str = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    repeat: bool = False,
) -> tf.data.Dataset:
    """A dataset of `(features, labels, masks)` batches.

    features is `{"text": tf.string (B,), "image": float32 (B, H, W, 3) in
    0..255}`; a post without an image (empty path) gets `missing_image`
    (NaNs), one without a text an empty string. labels is `{task: labels}`
    in the form of the task's label type (`mmtask.data.posts.LABEL_FORMS`:
    int32 (B,) class indices, int32 (B, classes) multi-hot rows or float32
    (B, outputs) targets) with missing labels set to 0; masks is
    `{task: float32 (B,)}`, 1.0 where the label is real. A modality with
    precomputed features (`posts.features`) is served as those features
    instead, and not augmented. Batches for a model without an image
    encoder carry no `"image"`; for a model whose text encoder reads
    "token_ids", `"text"` is the int32 (B, L) ids of its `tokenize`, made
    here on each batch, so the model needs no string ops (and trains on
    every Keras backend).

    Images are resized to the size the model reads, so give the model (or
    its size): a fixed default would silently feed it the wrong size.

    Args:
        posts: Posts. The posts to serve.
        model: MultiTaskModel | None. The model the batches are for; images
            get its `image_size`, and texts its text encoder's token ids
            where that encoder reads them.
        image_size: int | tuple[int, int] | None. Image (height, width), an int
            for a square; default the model's. Needed, through one of the
            two, unless the images are precomputed features.
        batch_size: int. Posts per batch.
        training: bool. Default for `augment` and `shuffle`; when False the
            order is always that of `posts`.
        augment: bool | None. Randomly flip and jitter images (see
            `augment_image`); default `training`.
        shuffle: bool | None. Reshuffle every epoch; default `training`.
        cache: bool | str. Cache decoded images (before augmentation): True in
            memory, a string for a cache file path prefix.
        seed: int | None. Seed of shuffling and augmentation; a fixed seed
            gives the same batches on every run.
        drop_remainder: bool. Drop the last batch when smaller than `batch_size`.
        repeat: bool. Repeat forever.

    Raises:
        ValueError: neither `model` nor `image_size` is given, or they disagree.

    Example:
        >>> train = make_dataset(posts, model=model, training=True, seed=0)
        >>> features, labels, masks = next(iter(train))
    """
    augment = training if augment is None else augment
    shuffle = training if shuffle is None else shuffle
    deterministic = not training or seed is not None

    # A text-only model has no image input: its batches carry no images.
    images_read = model is None or "image" in model.modalities
    image_precomputed = "image" in posts.features
    size = _image_size(model, image_size, needed=images_read and not image_precomputed)

    def load(features, labels, masks):
        if image_precomputed or not images_read:
            return features, labels, masks
        path = features["image"]
        image = tf.cond(
            tf.strings.length(path) > 0,
            lambda: decode_image(tf.io.read_file(path), size),
            lambda: missing_image(size),
        )
        return {"text": features["text"], "image": image}, labels, masks

    features = {
        "text": tf.constant(posts.texts, dtype=tf.string, shape=[len(posts)]),
        "image": tf.constant(posts.image_paths, dtype=tf.string, shape=[len(posts)]),
    }
    features.update({m: v.astype(np.float32) for m, v in posts.features.items()})
    if not images_read:
        del features["image"]
    labels = {task: _filled(values) for task, values in posts.labels.items()}
    dataset = tf.data.Dataset.from_tensor_slices((features, labels, posts.masks()))
    tokenizer = _text_tokenizer(model, text_precomputed="text" in posts.features)
    return batch_posts(
        dataset,
        load,
        # Before decoding the buffer holds file names: the whole set fits.
        shuffle_buffer=max(len(posts), 1) if shuffle else 0,
        cache=cache,
        repeat=repeat,
        augment=augment and images_read and not image_precomputed,
        seed=seed,
        deterministic=deterministic,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        tokenize=tokenizer,
    )


def _text_tokenizer(model, text_precomputed: bool):
    """The `tokenize` of the model's text encoder if it reads token ids, else None."""
    if model is None or text_precomputed or "text" not in model.modalities:
        return None
    encoder = model.encoders["text"]
    return encoder.tokenize if encoder.reads == "token_ids" else None


def _filled(labels: np.ndarray) -> np.ndarray:
    """Labels with the missing ones set to 0 (the masks say which they were)."""
    if labels.dtype.kind == "f":
        return np.nan_to_num(labels, nan=0.0)
    return np.maximum(labels, 0)


def _image_size(model, image_size, needed: bool) -> tuple[int, int] | None:
    """The (height, width) to decode images to, from the model or `image_size`."""
    size = None if image_size is None else image_size_pair(image_size)
    if model is None:
        if size is None and needed:
            raise ValueError(
                "make_dataset needs the image size the model reads: pass `model=` (its "
                "`image_size` is used) or `image_size=`. Received neither."
            )
        return size
    model_size = image_size_pair(tuple(model.image_size))
    if size is not None and size != model_size:
        raise ValueError(
            f"`image_size` and the model's image size disagree: expected {model_size} "
            f"(model.image_size) or no `image_size`. Received: image_size={image_size!r}"
        )
    return model_size


def batch_posts(
    dataset: tf.data.Dataset,
    load,
    *,
    shuffle_buffer: int,
    cache: bool | str,
    repeat: bool,
    augment: bool,
    seed: int | None,
    deterministic: bool,
    batch_size: int,
    drop_remainder: bool,
    tokenize=None,
) -> tf.data.Dataset:
    """The steps every source shares, from undecoded `(features, labels, masks)` to batches.

    Shuffle (before decoding, unless cached: then after the cache, with a
    smaller buffer, as each item is a decoded image), decode with `load` in
    parallel, cache, repeat, augment, batch, tokenize the texts of each batch
    with `tokenize` if given, and prefetch. `shuffle_buffer` 0 means no
    shuffling.
    """
    if shuffle_buffer and not cache:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if cache:
        dataset = dataset.cache("" if cache is True else str(cache))
        if shuffle_buffer:
            buffer = min(shuffle_buffer, CACHED_SHUFFLE_BUFFER)
            dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            _augment_one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    if tokenize is not None:

        def tokenized(features, labels, masks):
            token_ids = tokenize(features["text"])
            # Keeps a static batch size (drop_remainder) the tokenizer's output shape lost.
            token_ids.set_shape(features["text"].shape.concatenate(token_ids.shape[1:]))
            return {**features, "text": token_ids}, labels, masks

        dataset = dataset.map(
            tokenized, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def _augment_one(element, augment_seed):
    features, labels, masks = element
    image = augment_image(features["image"], augment_seed)
    return {"text": features["text"], "image": image}, labels, masks


def features_only(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Keep only the features of a `make_dataset` dataset, e.g. for `model.predict`."""
    return dataset.map(lambda features, labels, masks: features)
