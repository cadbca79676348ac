"""An encoder whose work was done once ahead of training: it reads precomputed features.

A frozen pretrained backbone gives the same output for a post in every epoch,
so running it every epoch wastes almost all of training's compute (on a CPU,
EfficientNet-Lite0 at 224 px takes minutes per pass over MVSA). Compute its
features once with `mmtask.transfer.precompute_features`, and let this layer
stand in for it while the fusion trunk and the heads train, for as many
seeds and options as needed.

Missing posts are rows of NaNs, like missing images: the model zeroes them
and hides them from the fusion trunk. Token or patch sequences are zero-padded
to one length; all-zero positions are padding.
"""

from __future__ import annotations

import keras
from keras import ops

from mmtask.encoders.base import Encoder, masked_mean
from mmtask.registry import IMAGE_ENCODERS, TEXT_ENCODERS


@keras.saving.register_keras_serializable(package="mmtask")
class PrecomputedEncoder(Encoder):
    """Reads a modality's precomputed features: vectors (B, D) or sequences (B, L, D).

    Args:
        feature_dim: int. Width D of the features.
        sequence_length: int | None. L for sequence features (token states,
            image patches); None for one vector per post. The vector of a
            sequence is its mean over non-padding positions.
        output_dim: int | None. If set, a dense projection of the vector to this width.
        modality: str. "text" or "image", for error messages and reports.

    Example:
    ```python
    encoder = PrecomputedEncoder(feature_dim=1280, modality="image")
    vectors = encoder(features)["vector"]  # features: (B, 1280) -> (B, 1280)
    ```
    """

    reads = "features"

    def __init__(
        self,
        feature_dim: int,
        sequence_length: int | None = None,
        output_dim: int | None = None,
        modality: str = "image",
        **kwargs,
    ):
        super().__init__(output_dim=output_dim, **kwargs)
        if int(feature_dim) < 1:
            raise ValueError(
                f"Invalid value for `feature_dim`: expected >= 1. Received: {feature_dim}"
            )
        if sequence_length is not None and int(sequence_length) < 1:
            raise ValueError(
                "Invalid value for `sequence_length`: expected None or >= 1. "
                f"Received: {sequence_length}"
            )
        if modality not in ("text", "image"):
            raise ValueError(
                f"Invalid value for `modality`: expected 'text' or 'image'. Received: {modality!r}"
            )
        self._feature_dim = int(feature_dim)
        self.sequence_length = None if sequence_length is None else int(sequence_length)
        self.modality = modality

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """The per-post shape of the features: the model's input for this modality."""
        if self.sequence_length is None:
            return (self.feature_dim,)
        return (self.sequence_length, self.feature_dim)

    def example_shape(self, image_size: tuple[int, int]) -> tuple[int, ...]:
        return self.feature_shape

    def sequence_length_for(self, input_shape) -> int:
        return self.sequence_length or 1

    def encode(self, features, training=None):
        if self.sequence_length is None:
            sequence = ops.expand_dims(features, 1)
            return features, sequence, ops.ones(ops.shape(sequence)[:2], dtype="bool")
        mask = ops.any(ops.not_equal(features, 0), axis=-1)
        return masked_mean(features, mask), features, mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "feature_dim": self.feature_dim,
                "sequence_length": self.sequence_length,
                "modality": self.modality,
            }
        )
        return config


@TEXT_ENCODERS.register("precomputed")
def precomputed_text_encoder(**options) -> PrecomputedEncoder:
    """`PrecomputedEncoder` for text features, by name in a spec."""
    return PrecomputedEncoder(modality="text", **options)


@IMAGE_ENCODERS.register("precomputed")
def precomputed_image_encoder(**options) -> PrecomputedEncoder:
    """`PrecomputedEncoder` for image features, by name in a spec."""
    return PrecomputedEncoder(modality="image", **options)
