"""Turn `Posts` into a batched `tf.data` pipeline for Keras.

Each element is `(features, labels, masks)`: a model reads `features`, and a
multi-task loss uses `masks` to ignore the tasks a post has no label for.
"""

from __future__ import annotations

import math
import random

import numpy as np
import tensorflow as tf

from mmtask.data.augment import augment_image
from mmtask.data.image_header import MAX_IMAGE_PIXELS
from mmtask.data.images import decode_image, header_image_size, image_size_pair, missing_image
from mmtask.data.posts import Posts

CACHED_SHUFFLE_BUFFER = 1024
"""Shuffle buffer over decoded images when caching (bounded: each holds a whole image)."""
PREFETCH_BATCHES = 2
"""Batches made ahead of the model. AUTOTUNE grew this buffer with the length of a pass
(224 px batches of 32 are 19 MB each) while the model, slower than the input, gains
nothing from more than a batch or two ready."""

EPOCH_SEED_STRIDE = 1_000_003
"""Epoch e of a run with seed s shuffles and augments with seed s * stride + e."""


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
    max_image_pixels: int | None = MAX_IMAGE_PIXELS,
    epochs: range | None = None,
    prefetch_batches: int = PREFETCH_BATCHES,
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
        max_image_pixels: int | None. An image whose header gives more pixels
            stops the iteration with an error naming its file, before it is
            decoded; None for no limit. The readers skip or reject such
            images first, with the same limit by default; posts a reader
            checked against this limit or a lower one are not checked again.
        epochs: range | None. Serve these epochs one after the other, e.g.
            `range(3, 10)` for a run resumed at epoch 3: the shuffle order
            and augmentation of epoch e are a function of `seed` and e
            alone, so a resumed run sees the batches an uninterrupted one
            did. Fit with `steps_per_epoch` from
            `mmtask.data.pipeline.batches_per_epoch`. None: one
            epoch per iteration, reshuffled each time from where this
            process's last iteration left off.
        prefetch_batches: int. Batches prepared ahead of the consumer (>= 1).

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
    checked = posts.report.image_pixel_limit
    if max_image_pixels is not None and checked is not None and checked <= max_image_pixels:
        max_image_pixels = None  # the reader checked every image against this limit or less

    def load(features, labels, masks):
        if image_precomputed or not images_read:
            return features, labels, masks
        path = features["image"]
        image = tf.cond(
            tf.strings.length(path) > 0,
            lambda: _read_image(path, size, max_image_pixels),
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
    elements = tf.nest.map_structure(tf.convert_to_tensor, (features, labels, posts.masks()))

    def load_row(index):
        # Posts travel as row numbers until decoded: a shuffle over the whole
        # set then holds 8 bytes a post, not its text, path and labels.
        return load(*tf.nest.map_structure(lambda rows: tf.gather(rows, index), elements))

    tokenizer = _text_tokenizer(model, text_precomputed="text" in posts.features)
    return batch_posts(
        tf.data.Dataset.range(len(posts)),
        load_row,
        shuffle_buffer=max(len(posts), 1) if shuffle else 0,
        cache=cache,
        repeat=repeat,
        augment=augment and images_read and not image_precomputed,
        seed=seed,
        deterministic=deterministic,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        epochs=epochs,
        prefetch_batches=prefetch_batches,
        tokenize=tokenizer,
    )


def _read_image(path: tf.Tensor, size: tuple[int, int], max_pixels: int | None) -> tf.Tensor:
    """The decoded image file at `path`; one over `max_pixels` fails, naming the file."""
    image_bytes = tf.io.read_file(path)
    if max_pixels is not None:
        pixels = tf.reduce_prod(header_image_size(image_bytes))
        message = f"image has more pixels than the limit of {max_pixels} (max_image_pixels):"
        check = tf.debugging.Assert(pixels <= max_pixels, [message, path, pixels])
        with tf.control_dependencies([check]):
            image_bytes = tf.identity(image_bytes)
    return decode_image(image_bytes, size, max_pixels=None)


def batches_per_epoch(posts: int, batch_size: int, drop_remainder: bool = False) -> int:
    """How many batches one epoch over `posts` posts makes."""
    return posts // batch_size if drop_remainder else math.ceil(posts / batch_size)


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
    epochs: range | None = None,
    prefetch_batches: int = PREFETCH_BATCHES,
    tokenize=None,
) -> tf.data.Dataset:
    """The steps every source shares, from undecoded `(features, labels, masks)` to batches.

    Shuffle (before decoding, unless cached: then after the cache, with a
    smaller buffer, as each item is a decoded image), decode with `load` in
    parallel, cache, repeat, augment, batch, tokenize the texts of each batch
    with `tokenize` if given, and prefetch `prefetch_batches`. `shuffle_buffer`
    0 means no shuffling. With `epochs`, the batches of those epochs one after
    the other, each shuffled and augmented from `(seed, epoch)`.
    """
    if prefetch_batches < 1:
        raise ValueError(f"`prefetch_batches` must be >= 1. Received: {prefetch_batches}")
    if epochs is not None:
        if repeat:
            raise ValueError("Give `epochs` or `repeat=True`, not both: `epochs` sets how many.")
        dataset = _epoch_keyed(
            dataset,
            load,
            shuffle_buffer=shuffle_buffer,
            cache=cache,
            augment=augment,
            seed=seed,
            deterministic=deterministic,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            epochs=epochs,
        )
        return _tokenized(dataset, tokenize, deterministic).prefetch(prefetch_batches)
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
    return _tokenized(dataset, tokenize, deterministic).prefetch(prefetch_batches)


def _epoch_keyed(
    dataset: tf.data.Dataset,
    load,
    *,
    shuffle_buffer: int,
    cache: bool | str,
    augment: bool,
    seed: int | None,
    deterministic: bool,
    batch_size: int,
    drop_remainder: bool,
    epochs: range,
) -> tf.data.Dataset:
    """`batch_posts` over `epochs`, each epoch shuffled and augmented from `(seed, epoch)`.

    A reshuffling dataset draws each iteration's order from a generator that
    starts afresh in every process, so a run resumed at epoch k would see
    epoch 0's order again. Here every random draw is stateless, keyed by a
    number computed from the seed and the epoch: the posts are shuffled in
    blocks of `shuffle_buffer` (all of them, unless cached), each block by a
    permutation drawn from the epoch and the block's index.
    """
    if epochs.step != 1 or not epochs:
        raise ValueError(
            f"`epochs` must be a non-empty range of consecutive epochs. Received: {epochs!r}"
        )
    if seed is None:
        seed = random.randrange(2**31)  # Unseeded: a new order every run, as without `epochs`.

    def decode(posts: tf.data.Dataset) -> tf.data.Dataset:
        return posts.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)

    if cache:
        dataset = decode(dataset).cache("" if cache is True else str(cache))
        shuffle_buffer = min(shuffle_buffer, CACHED_SHUFFLE_BUFFER)

    def one_epoch(epoch):
        epoch_seed = tf.constant(seed, tf.int64) * EPOCH_SEED_STRIDE + epoch
        posts = dataset
        if shuffle_buffer:
            posts = (
                posts.batch(shuffle_buffer)
                .enumerate()
                .map(lambda block, rows: _permuted(rows, tf.stack([epoch_seed, block])))
                .unbatch()
            )
        if not cache:
            posts = decode(posts)
        if augment:
            posts = posts.enumerate().map(
                lambda index, element: _augment_one(element, tf.stack([epoch_seed, index])),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=deterministic,
            )
        return posts.batch(batch_size, drop_remainder=drop_remainder)

    batches = tf.data.Dataset.range(epochs.start, epochs.stop).flat_map(one_epoch)
    posts_count = int(dataset.cardinality())
    if posts_count >= 0:
        # flat_map hides the length, which Keras reads for its progress display.
        per_epoch = batches_per_epoch(posts_count, batch_size, drop_remainder)
        batches = batches.apply(tf.data.experimental.assert_cardinality(per_epoch * len(epochs)))
    return batches


def _permuted(rows, seed: tf.Tensor):
    """`rows` (tensors with the same first dimension) in an order drawn from `seed`."""
    size = tf.shape(tf.nest.flatten(rows)[0], out_type=tf.int64)[0]
    order = tf.random.experimental.stateless_shuffle(tf.range(size), seed=seed)
    return tf.nest.map_structure(lambda column: tf.gather(column, order), rows)


def _tokenized(dataset: tf.data.Dataset, tokenize, deterministic: bool) -> tf.data.Dataset:
    """Batches whose texts `tokenize` turned into token ids; unchanged if it is None."""
    if tokenize is None:
        return dataset

    def tokenized(features, labels, masks):
        token_ids = tokenize(features["text"])
        # Keeps a static batch size (drop_remainder) the tokenizer's output shape lost.
        token_ids.set_shape(features["text"].shape.concatenate(token_ids.shape[1:]))
        return {**features, "text": token_ids}, labels, masks

    return dataset.map(tokenized, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def _augment_one(element, augment_seed):
    features, labels, masks = element
    image = augment_image(features["image"], augment_seed)
    return {"text": features["text"], "image": image}, labels, masks


def features_only(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Keep only the features of a `make_dataset` dataset, e.g. for `model.predict`."""
    return dataset.map(lambda features, labels, masks: features)
