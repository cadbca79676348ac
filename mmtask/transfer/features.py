"""Run a frozen encoder over posts once and keep its features, so training need not repeat it.

With frozen pretrained encoders, every epoch would recompute the same
features: on a CPU that is nearly all of training's cost. The features
computed here are served by the pipeline (`Posts.features`) to a model whose
encoder for that modality is a `PrecomputedEncoder`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
from keras import ops

from mmtask.data.pipeline import make_dataset
from mmtask.data.posts import Posts
from mmtask.encoders.base import Encoder
from mmtask.encoders.precomputed import PrecomputedEncoder
from mmtask.models.presence import fill_missing
from mmtask.progress import PostsProgress


def precompute_features(
    posts: Posts,
    encoder: Encoder,
    modality: str,
    *,
    image_size: int = 224,
    batch_size: int = 64,
    sequence: bool = False,
    verbose: int | str = "auto",
) -> tuple[Posts, PrecomputedEncoder]:
    """The posts with `modality` replaced by `encoder`'s features, and the encoder that reads them.

    Args:
        posts: Posts. The posts to encode (images are decoded at `image_size`,
            without augmentation).
        encoder: layer. A text or image encoder, e.g. `KerasHubImageEncoder`;
            it runs in inference mode.
        modality: str. "text" or "image".
        image_size: int. Image height and width fed to an image encoder.
        batch_size: int. Posts per encoder call.
        sequence: bool. Keep the encoder's token / patch sequences (for
            `cross_attention` fusion) rather than its vector per post.
        verbose: progress bar, as in `keras.Model.predict`.

    Returns:
        `(posts, precomputed_encoder)`: posts whose `features[modality]` holds
        the features, NaN rows for posts without the modality; and a
        `PrecomputedEncoder` of the matching shape to build the model with.

    Example:
    ```python
    train, image_encoder = precompute_features(train, KerasHubImageEncoder(preset=...), "image")
    ```
    """
    if modality not in ("text", "image"):
        raise ValueError(
            f"Invalid value for `modality`: expected 'text' or 'image'. Received: {modality!r}"
        )
    values = encode_posts(
        posts,
        encoder,
        modality,
        image_size=image_size,
        batch_size=batch_size,
        sequence=sequence,
        verbose=1 if verbose == "auto" else int(verbose),
    )
    values[~has_modality(posts, modality)] = np.nan
    precomputed = PrecomputedEncoder(
        feature_dim=values.shape[-1],
        sequence_length=values.shape[1] if sequence else None,
        modality=modality,
        name=f"{modality}_encoder",
    )
    return posts.with_features(modality, values), precomputed


def has_modality(posts: Posts, modality: str) -> np.ndarray:
    """Which posts have `modality`: a non-blank text, or an image file."""
    if modality == "text":
        return np.asarray([bool(text.strip()) for text in posts.texts], dtype=bool)
    return np.asarray([bool(path) for path in posts.image_paths], dtype=bool)


def encode_posts(
    posts: Posts,
    encoder: Encoder,
    modality: str,
    *,
    image_size: int = 224,
    batch_size: int = 64,
    sequence: bool = False,
    verbose: int = 1,
) -> np.ndarray:
    """`encoder`'s outputs over `posts`, in inference mode, as one float32 array.

    Vectors (N, D), or with `sequence` the token / patch sequences (N, L, D)
    with padding positions as all-zero rows. With `verbose` 1, progress
    (posts/s, time left) is shown on one updating line, with 2 one line at the end.
    """
    text = modality == "text"

    # A traced function, not a functional model: calling the encoder on a new
    # symbolic input would add a node to it.
    @tf.function(reduce_retracing=True)
    def extract(batch):
        outputs = encoder(batch if text else fill_missing(batch), training=False)
        if not sequence:
            return outputs["vector"]
        mask = ops.expand_dims(ops.cast(outputs["mask"], outputs["sequence"].dtype), -1)
        return outputs["sequence"] * mask

    # Serve this modality raw, even if the posts already carry features for it.
    source = dataclasses.replace(
        posts, features={m: v for m, v in posts.features.items() if m != modality}
    )
    dataset = make_dataset(source, image_size=image_size, batch_size=batch_size).map(
        lambda features, labels, masks: features[modality]
    )
    if text and encoder.reads == "token_ids":
        dataset = dataset.map(encoder.tokenize)
    progress = PostsProgress(f"{modality} features", len(posts), verbose)
    batches = []
    for batch in dataset:
        batches.append(np.asarray(extract(batch), dtype=np.float32))
        progress.add(len(batches[-1]))
    progress.done()
    return np.concatenate(batches)
