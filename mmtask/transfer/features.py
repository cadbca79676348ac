"""Run a frozen encoder over posts once and keep its features, so training need not repeat it.

With frozen pretrained encoders, every epoch would recompute the same
features: on a CPU that is nearly all of training's cost. The features
computed here are served by the pipeline (`Posts.features`) to a model whose
encoder for that modality is a `PrecomputedEncoder`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from mmtask.data.pipeline import make_dataset
from mmtask.data.posts import Posts
from mmtask.encoders.precomputed import PrecomputedEncoder
from mmtask.models.presence import fill_missing


def precompute_features(
    posts: Posts,
    encoder: keras.layers.Layer,
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
        sequence: bool. Keep the token / patch sequences (for `cross_attention`
            fusion) rather than one vector per post.
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
    text = modality == "text"
    raw = keras.Input(
        shape=() if text else (image_size, image_size, 3), dtype="string" if text else "float32"
    )
    outputs = encoder(raw if text else fill_missing(raw), training=False, return_sequence=sequence)
    if sequence:
        # Padding positions become all-zero rows, which `PrecomputedEncoder` reads as padding.
        mask = ops.expand_dims(ops.cast(outputs["mask"], outputs["sequence"].dtype), -1)
        outputs = outputs["sequence"] * mask
    extractor = keras.Model(raw, outputs, name=f"{modality}_features")
    # Serve this modality raw, even if the posts already carry features for it.
    source = dataclasses.replace(
        posts, features={m: v for m, v in posts.features.items() if m != modality}
    )
    dataset = make_dataset(source, image_size=image_size, batch_size=batch_size).map(
        lambda features, labels, masks: features[modality]
    )
    values = np.asarray(extractor.predict(dataset, verbose=verbose), dtype=np.float32)
    values[~_present(posts, modality)] = np.nan
    precomputed = PrecomputedEncoder(
        feature_dim=values.shape[-1],
        sequence_length=values.shape[1] if sequence else None,
        modality=modality,
        name=f"{modality}_encoder",
    )
    return posts.with_features(modality, values), precomputed


def _present(posts: Posts, modality: str) -> np.ndarray:
    """Which posts have `modality`: a non-blank text, or an image file."""
    if modality == "text":
        return np.asarray([bool(text.strip()) for text in posts.texts], dtype=bool)
    return np.asarray([bool(path) for path in posts.image_paths], dtype=bool)

