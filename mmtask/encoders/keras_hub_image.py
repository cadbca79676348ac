"""Image encoder around a pretrained keras-hub backbone, loaded from a local preset folder.

The encoder carries its own input scaling, so training, evaluation and the
exported SavedModel all feed the backbone correctly from 0..255 RGB images.
Its config holds the backbone's architecture, not the preset path: a saved
model reloads from its own file, on a machine that never saw the preset.
"""

from __future__ import annotations

import keras
import keras_hub

from mmtask.encoders.backbone_split import split_backbone
from mmtask.encoders.base import Encoder, image_patches, patch_count
from mmtask.encoders.image_size import (
    check_image_size,
    fixed_input_size,
    preset_image_size,
    size_pair,
)
from mmtask.encoders.presets import as_layer, local_preset
from mmtask.registry import IMAGE_ENCODERS


@IMAGE_ENCODERS.register("keras_hub")
class KerasHubImageEncoder(Encoder):
    """A keras-hub image backbone (EfficientNet, ResNet, ...) pooled to a vector.

    Args:
        preset: str | None. A keras-hub preset folder to load the backbone and
            its pretrained weights from.
        backbone: keras.layers.Layer | dict | None. An already built backbone
            (or its serialized config, as stored in a saved model); give
            exactly one of `preset` and `backbone`.
        scale: float. Multiplier applied to 0..255 pixels before the backbone.
        offset: float. Added after scaling; the defaults map pixels to [-1, 1].
        pooling: str. "avg" or "max" over the backbone's feature map.
        output_dim: int | None. If set, a dense projection to this width.
        trainable_backbone: bool. False freezes the backbone (its batch
            normalization then runs in inference mode).
        native_image_size: int | tuple[int, int] | None. The image size the
            backbone was pretrained at; building at another size warns,
            naming both. Default: the preset's image converter size, if the
            preset has one (EfficientNet-Lite0: 224).

    Example:
    ```python
    encoder = KerasHubImageEncoder(
        preset="weights/efficientnet_lite0_imagenet", native_image_size=224
    )
    vectors = encoder(images)["vector"]  # images: (B, 224, 224, 3) in 0..255 -> (B, 1280)
    ```
    """

    modality = "image"
    reads = "images"

    def __init__(
        self,
        preset: str | None = None,
        backbone: keras.layers.Layer | dict | None = None,
        scale: float = 1.0 / 127.5,
        offset: float = -1.0,
        pooling: str = "avg",
        output_dim: int | None = None,
        trainable_backbone: bool = False,
        native_image_size: int | tuple[int, int] | None = None,
        **kwargs,
    ):
        super().__init__(output_dim=output_dim, **kwargs)
        if (preset is None) == (backbone is None):
            raise ValueError(
                "Give exactly one of `preset` and `backbone`. "
                f"Received: preset={preset!r}, backbone={type(backbone).__name__}"
            )
        if pooling not in ("avg", "max"):
            raise ValueError(
                f"Invalid value for `pooling`: expected 'avg' or 'max'. Received: {pooling!r}"
            )
        if preset is not None:
            preset = local_preset(preset)
            backbone = keras_hub.models.Backbone.from_preset(preset)
            if native_image_size is None:
                native_image_size = preset_image_size(preset)
        self.native_image_size = size_pair(native_image_size)
        self.backbone = as_layer(backbone)
        self.backbone.trainable = trainable_backbone
        self.scale = scale
        self.offset = offset
        self.pooling = pooling
        self.trainable_backbone = trainable_backbone
        self.rescale = keras.layers.Rescaling(scale, offset=offset, name="rescale")
        self.pool = (
            keras.layers.GlobalAveragePooling2D(name="pool")
            if pooling == "avg"
            else keras.layers.GlobalMaxPooling2D(name="pool")
        )

    @property
    def feature_dim(self) -> int:
        return int(self.backbone.output.shape[-1])

    def build(self, input_shape):
        check_image_size(
            self.name, input_shape[1:3], self.native_image_size, fixed_input_size(self.backbone)
        )
        self.rescale.build(input_shape)
        super().build(input_shape)

    def sequence_length_for(self, input_shape) -> int | None:
        return patch_count(self.backbone.compute_output_shape(input_shape))

    def split_frozen_stem(self, trained, image_size, sequence):
        return split_backbone(
            self.backbone,
            trained,
            image_size,
            sequence,
            self.rescale,
            self.pool,
            self.projection,
            name=self.name,
        )

    def encode(self, images, training=None):
        features = self.backbone(
            self.rescale(images), training=training and self.backbone.trainable
        )
        return (self.pool(features), *image_patches(features))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "scale": self.scale,
                "offset": self.offset,
                "pooling": self.pooling,
                "trainable_backbone": self.trainable_backbone,
                "native_image_size": self.native_image_size,
            }
        )
        return config
