"""Which modalities a post has, and modality dropout, so one missing input degrades gracefully.

A missing text is an empty (or blank) string, or token ids all 0 (padding);
a missing image is an image of
NaNs (`mmtask.data.missing_image`, what the pipeline and the exported model
give for an empty path or empty bytes), and missing precomputed features are
rows of NaNs. Missing modalities are zeroed before
fusion, so the fused heads predict from the modality that is there; training
with modality dropout teaches them to.

Numeric inputs take `keras.ops` only, so they run on every Keras backend;
string inputs (raw text) need TensorFlow's string ops.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmtask")
class ModalityPresence(keras.layers.Layer):
    """Per-post presence (1.0 / 0.0) of each modality, with optional modality dropout.

    Args:
        dropout: float in [0, 0.5]. In training, the probability of hiding each
            modality of a post that has both; the two are never hidden together.
        seed: int | None. Seed of the dropout.
    """

    def __init__(self, dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= dropout <= 0.5:
            raise ValueError(
                "`modality_dropout` must be in [0, 0.5] (each modality is hidden with that "
                f"probability, never both). Received: {dropout}"
            )
        self.dropout = dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs: dict, training=None) -> dict:
        presence = {m: _present(inputs[m]) for m in ("text", "image") if m in inputs}
        if training and self.dropout > 0 and len(presence) == 2:
            both = presence["text"] * presence["image"]
            draw = keras.random.uniform(ops.shape(both), seed=self.seed_generator)
            hide_text = ops.cast(ops.less(draw, self.dropout), "float32") * both
            hide_image = (
                ops.cast(ops.logical_and(draw >= self.dropout, draw < 2 * self.dropout), "float32")
                * both
            )
            presence = {
                "text": presence["text"] - hide_text,
                "image": presence["image"] - hide_image,
            }
        return presence

    def compute_output_spec(self, inputs, training=None):
        batch = next(iter(inputs.values())).shape[0]
        return {m: keras.KerasTensor((batch,), dtype="float32") for m in inputs}

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout, "seed": self.seed})
        return config


def _present(values):
    """1.0 for posts whose input is there: a non-blank string, a non-padding token, no NaNs."""
    if keras.backend.standardize_dtype(values.dtype) == "string":
        import tensorflow as tf  # raw strings exist only on the TensorFlow backend

        length = tf.strings.length(tf.strings.strip(values))
        return ops.cast(ops.greater(length, 0), "float32")
    if "int" in keras.backend.standardize_dtype(values.dtype):
        return ops.cast(ops.any(ops.not_equal(values, 0), axis=-1), "float32")
    finite = ops.all(ops.isfinite(values), axis=tuple(range(1, len(values.shape))))
    return ops.cast(finite, "float32")


def fill_missing(values):
    """Numeric inputs with NaNs (missing images or features) replaced by zeros, for encoders.

    The replacement selects every value, which on CPU costs about 3% of a
    training step at 128 px; a batch whose sum is finite holds no NaN or
    infinity, so it passes through untouched.
    """
    return ops.cond(
        ops.isfinite(ops.sum(values)),
        lambda: values,
        lambda: ops.where(ops.isfinite(values), values, ops.zeros_like(values)),
    )


@keras.saving.register_keras_serializable(package="mmtask")
class FillMissing(keras.layers.Layer):
    """`fill_missing` as a layer: its branch on the batch needs real tensors, not symbolic ones.

    Values keep their dtype (no autocast under mixed precision): the encoders
    cast them as they need.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.built = True

    def call(self, values):
        return fill_missing(values)

    def compute_output_spec(self, values):
        return keras.KerasTensor(values.shape, dtype=values.dtype)
