"""`Encoder`: the contract every encoder keeps, and the optional projection they share.

Every encoder, on every call, returns the same structure:

    {"vector": (B, D), "sequence": (B, L, S), "mask": (B, L) bool}

the pooled vector heads read, and the token / patch sequence with its mask
that fusion modules attending across modalities read. Callers pick what they
use; in a functional model the outputs nobody reads cost nothing more than the
reshape that makes them (a sequence is a view of what the encoder computes
anyway: hidden states, a feature map).

Besides its outputs, an encoder declares:

- what it reads (`reads`): raw "text", "token_ids" (the text tokenized by
  the encoder's `tokenize` in the tf.data pipeline, so the model itself runs
  on every Keras backend), "images", or precomputed "features", and the
  per-example shape of that input (`example_shape`);
- its output widths: `output_width` (D), `sequence_width` (S) and
  `sequence_length_for(input_shape)` (L, None where unknown);
- whether it learns a vocabulary from the training texts (`needs_vocabulary`,
  False by default; such encoders implement `adapt`);
- whether a frozen lower part can be cut off and run once ahead of training
  (`split_frozen_stem`, None by default);
- the modules a serving process must import before loading a SavedModel
  export that runs it (`serving_imports`, none by default).

Subclasses implement `encode(inputs, training) -> (pooled, sequence, mask)`
and `feature_dim` (the pooled width); with `output_dim` set, the pooled
vector goes through a ReLU dense projection created in `build`, after the
subclass's own sublayers (so it comes last in attribute order, as in data
flow: a fine-tuning schedule's `top_n` counts by that order). A subclass
calls `super().build(input_shape)` from its own `build`.
"""

from __future__ import annotations

from collections.abc import Collection

import keras
from keras import ops

READS = ("text", "token_ids", "images", "features")


class Encoder(keras.layers.Layer):
    """Base of every encoder: one output structure, declared widths, an optional projection.

    Args:
        output_dim: int | None. If set, a dense ReLU projection of the pooled
            vector to this width; None (or 0) for none.

    Example:
    ```python
    outputs = encoder(inputs)
    outputs["vector"]  # (B, encoder.output_width)
    outputs["sequence"], outputs["mask"]  # (B, L, encoder.sequence_width), (B, L)
    ```
    """

    #: What the encoder reads: "text" (raw strings), "token_ids" (int32, 0 for
    #: padding, what `tokenize` makes of raw strings), "images" (float32 RGB
    #: in 0..255) or "features" (precomputed, of shape `example_shape`).
    reads: str = "images"
    #: Modules whose import registers ops this encoder's graph runs outside core
    #: TensorFlow; a process loading an export of it imports them first.
    serving_imports: tuple[str, ...] = ()
    projection: keras.layers.Layer | None = None

    def __init__(self, output_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if output_dim is not None and (isinstance(output_dim, bool) or int(output_dim) < 0):
            raise ValueError(
                "Invalid value for `output_dim`: expected None (or 0) for no projection, "
                f"or >= 1. Received: {output_dim!r}"
            )
        self.output_dim = int(output_dim) if output_dim else None

    # What the encoder reads.

    def example_shape(self, image_size: tuple[int, int]) -> tuple[int, ...]:
        """The shape of one example of the input this encoder reads.

        Args:
            image_size: (int, int). The model's image height and width.
        """
        if self.reads == "text":
            return ()
        if self.reads == "token_ids":
            return (self.sequence_length_for((None,)),)
        if self.reads == "images":
            return (*image_size, 3)
        raise NotImplementedError(f"{type(self).__name__} must define `example_shape`.")

    @property
    def input_dtype(self) -> str:
        """The dtype of the input: "string" for raw text, "int32" for token ids, else "float32"."""
        return {"text": "string", "token_ids": "int32"}.get(self.reads, "float32")

    def tokenize(self, texts):
        """Token ids (B, L) int32 of a batch of raw strings (B,); all 0 for a blank text.

        The text work of an encoder that reads "token_ids", done in the tf.data
        pipeline (`make_dataset(model=...)` calls it on each batch) with
        TensorFlow's string ops, so the model itself needs none: TensorFlow
        tensors in, TensorFlow tensors out.
        """
        raise NotImplementedError(f"{type(self).__name__} does not tokenize text.")

    @property
    def needs_vocabulary(self) -> bool:
        """Whether `adapt(texts)` must set a vocabulary before the encoder is used."""
        return False

    def adapt(self, texts) -> None:
        """Learn a vocabulary from training texts (only where `needs_vocabulary` can be true)."""
        raise NotImplementedError(f"{type(self).__name__} learns no vocabulary.")

    # What it returns.

    @property
    def feature_dim(self) -> int:
        """Width of the pooled vector, before the projection."""
        raise NotImplementedError(f"{type(self).__name__} must define `feature_dim`.")

    @property
    def output_width(self) -> int:
        """Width D of the returned `vector`."""
        return self.output_dim or self.feature_dim

    @property
    def sequence_width(self) -> int:
        """Width S of the returned `sequence`; by default the pooled width."""
        return self.feature_dim

    def sequence_length_for(self, input_shape) -> int | None:
        """Length L of the returned `sequence` for inputs of `input_shape`; None if unknown."""
        raise NotImplementedError(f"{type(self).__name__} must define `sequence_length_for`.")

    @property
    def unused_sublayers(self) -> tuple[str, ...]:
        """Paths of sublayers no output depends on (none by default); never unfrozen."""
        return ()

    def split_frozen_stem(
        self, trained: Collection[int], image_size: tuple[int, int], sequence: bool
    ) -> tuple[Encoder, Encoder] | None:
        """Cut off the lower part that never trains, so it can run once ahead of training.

        Args:
            trained: ids of this encoder's variables that train at some point of the run.
            image_size: (height, width) of the images the encoder reads.
            sequence: bool. Whether the top's `sequence` output is read (by a
                fusion attending over it), or only its `vector`.

        Returns:
            `(stem, top)`: `stem` reads this encoder's input and returns, as its
            `sequence`, the activations where the part that trains begins;
            `top` reads those activations as features and returns this
            encoder's outputs, with this encoder's own layers (training it
            trains this encoder). None, the default, where the encoder cannot
            be cut so.
        """
        return None

    def encode(self, inputs, training=None):
        """`(pooled (B, feature_dim), sequence (B, L, S), mask (B, L))` of a batch."""
        raise NotImplementedError(f"{type(self).__name__} must define `encode`.")

    def build(self, input_shape):
        if self.output_dim and self.projection is None:
            # Frozen with its encoder if the encoder was frozen before being built.
            self.projection = keras.layers.Dense(
                self.output_dim, activation="relu", trainable=self.trainable, name="projection"
            )
            self.projection.build((None, self.feature_dim))
        self.built = True

    def project(self, pooled):
        """The pooled vector, projected when `output_dim` is set."""
        return self.projection(pooled) if self.projection is not None else pooled

    def call(self, inputs, training=None):
        # A frozen encoder runs in inference mode, dropout included (Keras
        # already does so for its BatchNormalization): it gives the same
        # output for a post in every step, as its cached outputs do.
        pooled, sequence, mask = self.encode(inputs, training=bool(training) and self.trainable)
        return {
            "vector": ops.cast(self.project(pooled), self.compute_dtype),
            "sequence": ops.cast(sequence, self.compute_dtype),
            "mask": ops.cast(mask, "bool"),
        }

    def compute_output_spec(self, inputs, training=None):
        batch = inputs.shape[0]
        length = self.sequence_length_for(tuple(inputs.shape))
        return {
            "vector": keras.KerasTensor((batch, self.output_width), dtype=self.compute_dtype),
            "sequence": keras.KerasTensor(
                (batch, length, self.sequence_width), dtype=self.compute_dtype
            ),
            "mask": keras.KerasTensor((batch, length), dtype="bool"),
        }

    def get_config(self):
        config = super().get_config()
        config["output_dim"] = self.output_dim
        return config


def text_input(reads: str) -> str:
    """A text encoder's `reads` option, checked: "text" or "token_ids"."""
    if reads not in ("text", "token_ids"):
        raise ValueError(
            "Invalid value for `reads`: expected 'text' (the model tokenizes raw strings, "
            "TensorFlow backend only) or 'token_ids' (the tf.data pipeline tokenizes; every "
            f"backend). Received: {reads!r}"
        )
    return reads


def masked_mean(sequence, mask):
    """Mean over the positions where `mask` is true; 0 where a row has none."""
    weights = ops.expand_dims(ops.cast(mask, sequence.dtype), -1)
    return ops.sum(sequence * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


def image_patches(feature_map):
    """A (B, H, W, C) feature map as a (B, H*W, C) sequence with an all-true mask."""
    height, width, channels = feature_map.shape[1], feature_map.shape[2], feature_map.shape[3]
    if height is None or width is None:
        shape = ops.shape(feature_map)
        height, width = shape[1], shape[2]
    sequence = ops.reshape(feature_map, (-1, height * width, channels))
    return sequence, ops.ones(ops.shape(sequence)[:2], dtype="bool")


def patch_count(feature_map_shape) -> int | None:
    """H*W of a (B, H, W, C) feature map shape; None when either is unknown."""
    height, width = feature_map_shape[1], feature_map_shape[2]
    return height * width if height and width else None
