"""A pretrained text backbone cut where training begins: lower layers run once, the top trains.

Unfreezing only the top transformer layers of a text backbone (MiniLM's
last two, MPNet's last few) leaves the embeddings and the layers below
computing the same hidden states for a post in every epoch. Cut there, those
states are computed once and cached like a frozen encoder's outputs, and
each step runs only the layers that train: on a CPU, most of a step's cost
for a 12-layer backbone whose top two layers train. As with image backbones
(`backbone_split`), both halves share the encoder's layers, so training the
top trains the real encoder, which keeps the whole backbone for saving and
export. The frozen layers run in inference mode (no dropout), as a frozen
encoder does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import keras
from keras import ops

from mmtask.encoders.base import Encoder, masked_mean

if TYPE_CHECKING:
    from mmtask.encoders.keras_hub_text import KerasHubTextEncoder


class TextBackboneStem(Encoder):
    """The frozen lower part of a text encoder; its `sequence` is the hidden states at the cut.

    Reads what the encoder reads (raw strings or token ids) and packs them
    with the encoder's own tokenizer. Built by `split_text_backbone`, never saved.
    """

    def __init__(self, encoder: KerasHubTextEncoder, stem: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.reads = encoder.reads
        self.stem = stem
        self.sequence_length = encoder.sequence_length
        # Bound methods, not layers: the stem's weights are only those below the cut.
        self._token_ids_and_mask = encoder.token_ids_and_mask
        self._backbone_inputs = encoder.backbone_inputs
        self._tokenize = encoder.tokenize
        # Only what changes the hidden states: not the name, pooling or projection.
        config = encoder.get_config()
        self._text_config = {
            key: config[key] for key in ("tokenizer", "normalizer", "sequence_length", "reads")
        }
        self.trainable = False

    @property
    def feature_dim(self) -> int:
        return int(self.stem.output.shape[-1])

    def sequence_length_for(self, input_shape) -> int:
        return self.sequence_length

    def tokenize(self, texts):
        return self._tokenize(texts)

    def encode(self, inputs, training=None):
        token_ids, padding_mask = self._token_ids_and_mask(inputs)
        hidden = self.stem(self._backbone_inputs(token_ids, padding_mask), training=False)
        return masked_mean(hidden, padding_mask), hidden, padding_mask

    def get_config(self):
        # What the cache's key is made of, with the weights: the text
        # processing, the cut and the layers below it.
        config = super().get_config()
        config["text"] = self._text_config
        config["stem"] = keras.layers.serialize(self.stem)
        return config


class TextBackboneTop(Encoder):
    """Computes a text encoder's outputs from its stem's hidden states, with the encoder's layers.

    Reads the hidden states at the cut as precomputed features, (L, D) per
    post, zero at padding (as `encode_posts` caches sequences): the padding
    mask is where they are not. It holds the encoder's whole `backbone`
    under the same attribute name, so layer paths, and the fine-tuning
    schedule's patterns over them, are the encoder's; only the layers above
    the cut run.

    Its `first_layer_above_cut` names the backbone's first layer that trains,
    just above the cut ("" when only the projection trains).
    """

    reads = "features"

    def __init__(
        self,
        encoder: KerasHubTextEncoder,
        top: keras.Model | None,
        activation_shape: tuple[int, int],
        first_trained: str = "",
        **kwargs,
    ):
        projection = encoder.projection
        super().__init__(output_dim=projection.units if projection is not None else None, **kwargs)
        self.backbone = encoder.backbone
        self.projection = projection
        self._top = top
        self._pool_tokens = encoder.pool_tokens
        self._unused_sublayers = encoder.unused_sublayers
        self.activation_shape = tuple(int(d) for d in activation_shape)
        self.first_layer_above_cut = first_trained

    @property
    def unused_sublayers(self) -> tuple[str, ...]:
        # The encoder's (BERT's pooler): the twin's schedule must skip them as the model's does.
        return self._unused_sublayers

    @property
    def feature_dim(self) -> int:
        return int(self.backbone.hidden_dim)

    def example_shape(self, image_size: tuple[int, int]) -> tuple[int, ...]:
        return self.activation_shape

    def sequence_length_for(self, input_shape) -> int:
        return self.activation_shape[0]

    def encode(self, hidden, training=None):
        padding_mask = ops.any(ops.not_equal(hidden, 0), axis=-1)
        if self._top is not None:
            hidden = self._top(
                [hidden, ops.cast(padding_mask, "int32")],
                training=training and self.backbone.trainable,
            )
        return self._pool_tokens(hidden, padding_mask), hidden, padding_mask


def split_text_backbone(
    encoder: KerasHubTextEncoder, trained: Collection[int]
) -> tuple[TextBackboneStem, TextBackboneTop] | None:
    """Cut `encoder`'s backbone just below the first layer holding a variable in `trained`.

    The cut is the last hidden-state tensor (B, L, D), in the backbone's
    topological order, from which the layers above compute the sequence
    output with the padding mask alone (for the BERT family and MPNet: a
    transformer layer's output, or the embeddings').

    Args:
        encoder: a `KerasHubTextEncoder` (or subclass) whose backbone takes
            a dict with a "padding_mask" and returns a "sequence_output".
        trained: ids of the variables that train at some point of the run.

    Returns:
        `(stem, top)`, or None when no such tensor lies below the first layer
        that trains (the embeddings train). When no layer of the backbone
        trains (only the projection does), the stem is the whole backbone.
    """
    backbone = encoder.backbone
    inputs, outputs = backbone.input, backbone.output
    if not (isinstance(inputs, dict) and isinstance(outputs, dict) and "padding_mask" in inputs):
        return None
    sequence_output = outputs["sequence_output"]
    layers = backbone.layers
    first = next(
        (i for i, layer in enumerate(layers) if any(id(v) in trained for v in layer.weights)),
        None,
    )
    if first is None:
        stem = keras.Model(inputs, sequence_output, name=f"{encoder.name}_stem_model")
        return _halves(encoder, stem, None)
    for cut in range(first - 1, 0, -1):
        output = layers[cut].output
        if not isinstance(output, keras.KerasTensor) or len(output.shape) != 3:
            continue
        try:
            top = keras.Model(
                [output, inputs["padding_mask"]], sequence_output, name=f"{encoder.name}_top_model"
            )
        except ValueError:
            continue  # tensors from below the cut also feed layers above it
        stem = keras.Model(inputs, output, name=f"{encoder.name}_stem_model")
        return _halves(encoder, stem, top, layers[first].name)
    return None


def _halves(
    encoder: KerasHubTextEncoder,
    stem: keras.Model,
    top: keras.Model | None,
    first_trained: str = "",
) -> tuple[TextBackboneStem, TextBackboneTop]:
    """The two encoders around a cut: the stem (cached) and the top (trained on its outputs)."""
    shape = (encoder.sequence_length, int(stem.output.shape[-1]))
    return (
        TextBackboneStem(encoder, stem, name=f"{encoder.name}_stem"),
        TextBackboneTop(encoder, top, shape, first_trained, name=encoder.name),
    )
