"""Image encoder around any `keras.applications` model, with weights from a local file.

The encoder applies the application's own `preprocess_input` (a no-op for the
families that preprocess inside the model: EfficientNet, ConvNeXt,
MobileNetV3, ...), so training, evaluation and the exported SavedModel all
feed it 0..255 RGB images. Its config holds the architecture, not the weights
file: a saved model reloads its weights from its own `.keras` file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import keras

from mmtask.encoders.base import Encoder, image_patches, patch_count
from mmtask.encoders.image_size import check_image_size, fixed_input_size, size_pair
from mmtask.encoders.presets import as_layer, local_path
from mmtask.errors import MmtaskError
from mmtask.registry import IMAGE_ENCODERS


def application_names() -> list[str]:
    """The model builders `keras.applications` offers, e.g. "EfficientNetB0"."""
    return sorted(n for n in dir(keras.applications) if n[0].isupper())


@IMAGE_ENCODERS.register("keras_applications")
class KerasApplicationsImageEncoder(Encoder):
    """A `keras.applications` model without its classifier, pooled to a vector.

    Args:
        application: str. The builder's name in `keras.applications`, e.g.
            "MobileNetV3Small", "EfficientNetB0", "ResNet50".
        weights: str | None. A local weights file (`.weights.h5`, or a Keras
            application `.h5` without top) for the same architecture; None
            initializes randomly. "imagenet" and URLs are refused, since
            they would download.
        backbone: keras.Model | dict | None. An already built application (or
            its serialized config, as stored in a saved model), instead of
            building one; then give neither `weights` nor `application_options`.
        application_options: dict | None. More arguments of the builder,
            e.g. `{"alpha": 0.75}` or `{"input_shape": (224, 224, 3)}`.
        pooling: str. "avg" or "max" over the feature map.
        output_dim: int | None. If set, a dense projection to this width.
        trainable_backbone: bool. False freezes the backbone (its batch
            normalization then runs in inference mode).
        native_image_size: int | tuple[int, int] | None. The image size the
            weights were trained at (e.g. 224 for EfficientNetB0, 240 for
            B1); building at another size warns, naming both. A backbone built
            with a fixed `input_shape` takes that size only: another is an error.

    Example:
    ```python
    encoder = KerasApplicationsImageEncoder(
        "EfficientNetB0", weights="weights/efficientnetb0_notop.h5"
    )
    vectors = encoder(images)["vector"]  # images: (B, 224, 224, 3) in 0..255 -> (B, 1280)
    ```
    """

    modality = "image"
    reads = "images"

    def __init__(
        self,
        application: str,
        weights: str | None = None,
        backbone: keras.Model | dict | None = None,
        application_options: Mapping | None = None,
        pooling: str = "avg",
        output_dim: int | None = None,
        trainable_backbone: bool = False,
        native_image_size: int | tuple[int, int] | None = None,
        **kwargs,
    ):
        super().__init__(output_dim=output_dim, **kwargs)
        if application not in application_names():
            raise ValueError(
                f"Invalid value for `application`: expected one of {application_names()}. "
                f"Received: application={application!r}"
            )
        if pooling not in ("avg", "max"):
            raise ValueError(
                f"Invalid value for `pooling`: expected 'avg' or 'max'. Received: {pooling!r}"
            )
        if backbone is not None and (weights is not None or application_options):
            raise ValueError(
                "Give `backbone`, or `weights` and `application_options`, not both. "
                f"Received: weights={weights!r}, application_options={application_options!r}"
            )
        # Checked before building, so a download request fails at once.
        weights_file = None if weights is None else _weights_file(weights, application)
        builder = getattr(keras.applications, application)
        if backbone is None:
            backbone = builder(include_top=False, weights=None, **dict(application_options or {}))
            if weights_file is not None:
                backbone.load_weights(weights_file)
        # Functional.from_config consumes the dict it is given; keep the caller's intact.
        self.backbone = as_layer(copy.deepcopy(backbone))
        self.backbone.trainable = trainable_backbone
        family = builder.__module__.rsplit(".", 1)[-1]
        self.preprocess_input = getattr(keras.applications, family).preprocess_input
        self.application = application
        self.native_image_size = size_pair(native_image_size)
        self.pooling = pooling
        self.trainable_backbone = trainable_backbone
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
        super().build(input_shape)

    def sequence_length_for(self, input_shape) -> int | None:
        return patch_count(self.backbone.compute_output_shape(input_shape))

    def encode(self, images, training=None):
        features = self.backbone(
            self.preprocess_input(images), training=training and self.backbone.trainable
        )
        return (self.pool(features), *image_patches(features))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "application": self.application,
                "backbone": keras.layers.serialize(self.backbone),
                "pooling": self.pooling,
                "trainable_backbone": self.trainable_backbone,
                "native_image_size": self.native_image_size,
            }
        )
        return config


def _weights_file(weights: str, application: str) -> str:
    """The local weights file; "imagenet" (a download) refused with the way around it."""
    if weights == "imagenet":
        raise MmtaskError(
            f"weights='imagenet' would download the {application} weights, and mmtask "
            "does not download weights. Where a network is available, save them once with "
            f"`keras.applications.{application}(include_top=False).save_weights("
            '"notop.weights.h5")` and pass that file as `weights`.'
        )
    return str(local_path(weights, f"{application} weights file"))
