"""A pretrained backbone cut where training begins: a frozen stem run once, a top that trains.

Unfreezing only the top blocks of an image backbone leaves its lower blocks
computing the same activations for a post in every epoch. Cut there, the
stem's activations are computed once (and cached like a frozen encoder's
outputs) and only the top blocks run in each step: on a CPU that is the
difference between minutes and hours per epoch. Both halves share the
backbone's layers, so training the top trains the real encoder, which keeps
the whole backbone for saving and export.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import keras
from keras import ops

from mmtask.encoders.base import Encoder, image_patches, masked_mean, patch_count


class BackboneStem(Encoder):
    """The frozen lower part of an image encoder; its `sequence` is the activation map at the cut.

    Its `vector` is the mean of that map (unused: the cache stores the
    sequence). Built by `split_backbone`, never saved.
    """

    reads = "images"

    def __init__(
        self,
        preprocess: Callable,
        stem: keras.Model,
        pool: keras.layers.Layer | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.preprocess = preprocess
        self.stem = stem
        self.pool = pool
        self.trainable = False

    @property
    def feature_dim(self) -> int:
        return int(self.stem.output.shape[-1])

    def sequence_length_for(self, input_shape) -> int | None:
        if self.pool is not None:
            return 1
        return patch_count(self.stem.compute_output_shape(input_shape))

    def encode(self, images, training=None):
        maps = self.stem(self.preprocess(images), training=False)
        if self.pool is not None:
            # A 1 x 1 map of the pooled vector: all a top that only projects needs.
            maps = ops.reshape(self.pool(maps), (-1, 1, 1, self.feature_dim))
        sequence, mask = image_patches(maps)
        return masked_mean(sequence, mask), sequence, mask

    def get_config(self):
        # What the cache's key is made of, with the weights: the cut and the layers below it.
        config = super().get_config()
        config["stem"] = keras.layers.serialize(self.stem)
        config["preprocess"] = keras.layers.serialize(self.preprocess)
        config["pool"] = keras.layers.serialize(self.pool) if self.pool is not None else None
        return config


class BackboneTop(Encoder):
    """Computes an image encoder's outputs from its stem's activations, with the encoder's layers.

    Reads the activations as precomputed features, (H*W, C) per post. It
    holds the encoder's whole `backbone` under the same attribute name, so
    layer paths, and the fine-tuning schedule's patterns over them, are the
    encoder's; only the layers above the cut run.
    """

    reads = "features"

    def __init__(
        self,
        backbone: keras.Model,
        top: keras.layers.Layer,
        activation_shape: tuple[int, int, int],
        pool: keras.layers.Layer,
        projection: keras.layers.Layer | None,
        **kwargs,
    ):
        super().__init__(output_dim=projection.units if projection is not None else None, **kwargs)
        self.backbone = backbone
        self.pool = pool
        self.projection = projection
        self._top = top
        self.activation_shape = tuple(int(d) for d in activation_shape)

    @property
    def first_layer_above_cut(self) -> str:
        """Name of the backbone layer just above the cut ("" at the backbone's output)."""
        return self._top.layers[1].name if isinstance(self._top, keras.Model) else ""

    @property
    def feature_dim(self) -> int:
        return int(self._top.compute_output_shape((1, *self.activation_shape))[-1])

    def example_shape(self, image_size: tuple[int, int]) -> tuple[int, ...]:
        height, width, channels = self.activation_shape
        return (height * width, channels)

    def sequence_length_for(self, input_shape) -> int | None:
        return patch_count(self._top.compute_output_shape((1, *self.activation_shape)))

    def encode(self, activations, training=None):
        maps = ops.reshape(activations, (-1, *self.activation_shape))
        features = self._top(maps, training=training and self.backbone.trainable)
        return (self.pool(features), *image_patches(features))


def split_backbone(
    backbone: keras.Model,
    trained: Collection[int],
    image_size: tuple[int, int],
    sequence: bool,
    preprocess: Callable,
    pool: keras.layers.Layer,
    projection: keras.layers.Layer | None,
    name: str,
) -> tuple[BackboneStem, BackboneTop] | None:
    """Cut a functional `backbone` just below the first layer holding a variable in `trained`.

    The cut is the last single tensor, in the backbone's topological order,
    that all later layers depend on and that comes before the first layer
    that trains (for EfficientNet: a block's output).

    Args:
        backbone: keras.Model. A functional backbone (image -> feature map).
        trained: ids of the variables that train at some point of the run.
        image_size: (height, width) the backbone reads.
        sequence: bool. Whether the top's patch sequence is read (by a
            fusion attending over patches); if not, and only the projection
            trains, the stem's output is the pooled vector.
        preprocess: the encoder's input scaling, applied before the stem.
        pool, projection: the encoder's pooling and projection, which the top shares.
        name: the encoder's name, for the halves' names.

    Returns:
        `(stem, top)`, or None when no single tensor below the first layer
        that trains separates the two. When no layer of the backbone trains
        (only the projection does), the stem is the whole backbone.
    """
    layers = backbone.layers
    first = next(
        (i for i, layer in enumerate(layers) if any(id(v) in trained for v in layer.weights)),
        None,
    )
    if first is None:
        shape = backbone.compute_output_shape((1, *image_size, 3))[1:]
        if not sequence:
            shape = (1, 1, shape[-1])
        return (
            BackboneStem(preprocess, backbone, None if sequence else pool, name=f"{name}_stem"),
            BackboneTop(backbone, keras.layers.Identity(), shape, pool, projection, name=name),
        )
    for cut in range(first - 1, 0, -1):
        output = layers[cut].output
        if not isinstance(output, keras.KerasTensor) or len(output.shape) != 4:
            continue
        try:
            top = keras.Model(output, backbone.output, name=f"{name}_top_model")
        except ValueError:
            continue  # tensors from below the cut also feed layers above it
        stem = keras.Model(backbone.inputs, output, name=f"{name}_stem_model")
        activation_shape = stem.compute_output_shape((1, *image_size, 3))[1:]
        return (
            BackboneStem(preprocess, stem, name=f"{name}_stem"),
            BackboneTop(backbone, top, activation_shape, pool, projection, name=name),
        )
    return None
