"""Encoders around a local TF-Hub-format SavedModel, frozen or fine-tuned inside Keras 3 models.

`tensorflow_hub.KerasLayer` is a tf-keras layer and does not work in Keras 3
models, and `keras.layers.TFSMLayer` cannot be fine-tuned with Keras
optimizers: it names its variables after the SavedModel's (`dense/kernel:0`),
and the optimizer's slot names built from those are invalid. `SavedModelLayer`
wraps the SavedModel's own variables as Keras variables under sanitized names,
so Keras trains, saves and reloads them.

SavedModels hold TensorFlow graphs, so these layers use TensorFlow directly
and run on the TensorFlow backend only. A model holding one stores the
SavedModel's local path in its config: that folder must exist wherever the
model is reloaded, and reloading runs its graph. As with Keras' `TFSMLayer`
and `Lambda`, loading such a model therefore needs `safe_mode=False`
(`keras.models.load_model(path, safe_mode=False)`): do it only for models
whose SavedModel folders you trust. The weights themselves, fine-tuned or not,
come back from the `.keras` file.
"""

from __future__ import annotations

import inspect
import math
import re

import keras
from keras import ops

from mmtask.encoders.base import Encoder, image_patches
from mmtask.encoders.presets import local_path
from mmtask.errors import MmtaskError
from mmtask.registry import IMAGE_ENCODERS, TEXT_ENCODERS
from mmtask.safe_mode import building_in_safe_mode


@keras.saving.register_keras_serializable(package="mmtask")
class SavedModelLayer(keras.layers.Layer):
    """Calls a local TF2 SavedModel (TF-Hub format) as a Keras layer, trainable or frozen.

    The variables the called function uses become the layer's weights: with
    `trainable=True` any Keras optimizer fine-tunes them; with `False` they stay
    fixed and a `training` argument of the module, if it has one, gets False.

    Args:
        handle: str. A local SavedModel folder; remote handles are refused.
        signature: str | None. A named signature to call instead of the
            SavedModel's `__call__` (signatures return dicts).
        output_key: str | None. The output to use when the module returns a dict.
        trainable: bool. Whether fitting may change the module's variables.

    Example:
    ```python
    layer = SavedModelLayer("models/mobilenet_v2_feature_vector", trainable=True)
    vectors = layer(images)  # images as the module expects them
    ```
    """

    def __init__(
        self,
        handle: str,
        signature: str | None = None,
        output_key: str | None = None,
        trainable: bool = False,
        **kwargs,
    ):
        super().__init__(trainable=trainable, **kwargs)
        self.handle = handle
        self.signature = signature
        self.output_key = output_key
        import tensorflow as tf  # here, so importing mmtask.encoders needs no TF

        self._loaded = tf.saved_model.load(str(local_path(handle, "TF-Hub module")))
        self._function = self._resolve_function()
        concrete = self._concrete_functions()
        self._output_spec = self._select(concrete[0].structured_outputs)
        self._takes_training = signature is None and (
            "training" in inspect.signature(self._function).parameters
        )
        if signature is not None:
            inputs = concrete[0].structured_input_signature[1]
            if len(inputs) != 1:
                raise ValueError(
                    f"Invalid value for `signature`: expected one with a single input. "
                    f"Received: signature={signature!r} with inputs {sorted(inputs)}"
                )
            self._input_name = next(iter(inputs))

    def build(self, input_shape):
        # Keras variables around the module's own tf.Variables (not copies), so the
        # module's function reads what the optimizer updates.
        with keras.name_scope(self.name, caller=self):
            self.module_variables = [
                keras.Variable(v, trainable=v.trainable, name=_keras_name(v.name))
                for v in _used_variables(self._concrete_functions())
            ]
        if not self.trainable:
            for variable in self.module_variables:
                variable.trainable = False
        self.built = True

    def _resolve_function(self):
        if self.signature is None:
            if not callable(self._loaded):
                raise ValueError(
                    f"The SavedModel at {self.handle} has no `__call__`; pass `signature` "
                    f"to call one of {sorted(self._loaded.signatures)}."
                )
            return self._loaded.__call__
        if self.signature not in self._loaded.signatures:
            raise ValueError(
                f"Invalid value for `signature`: expected one of "
                f"{sorted(self._loaded.signatures)}. Received: signature={self.signature!r}"
            )
        return self._loaded.signatures[self.signature]

    def _concrete_functions(self) -> list:
        if self.signature is not None:
            return [self._function]
        return list(self._function.concrete_functions)

    def _select(self, outputs):
        """The output to use: the module's only output, or the one `output_key` names."""
        if not isinstance(outputs, dict):
            return outputs
        key = self.output_key
        if key is None and len(outputs) == 1:
            key = next(iter(outputs))
        if key not in outputs:
            raise ValueError(
                f"Invalid value for `output_key`: expected one of {sorted(outputs)}. "
                f"Received: output_key={self.output_key!r}"
            )
        return outputs[key]

    @property
    def output_rank(self) -> int:
        return self._output_spec.shape.rank

    @property
    def feature_dim(self) -> int:
        width = self._output_spec.shape[-1]
        if width is None:
            raise ValueError(
                f"The SavedModel at {self.handle} gives outputs of unknown width "
                f"{self._output_spec.shape}; mmtask needs their last dimension."
            )
        return int(width)

    def call(self, inputs, training=None):
        if self.signature is not None:
            return self._select(self._function(**{self._input_name: inputs}))
        if self._takes_training:
            return self._select(self._function(inputs, training=bool(training and self.trainable)))
        return self._select(self._function(inputs))

    def compute_output_spec(self, inputs, training=None):
        shape = (inputs.shape[0], *self._output_spec.shape[1:])
        return keras.KerasTensor(shape, dtype=self._output_spec.dtype.name)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"handle": self.handle, "signature": self.signature, "output_key": self.output_key}
        )
        return config

    @classmethod
    def from_config(cls, config):
        _refuse_in_safe_mode(config["handle"])
        return super().from_config(config)


class _TFHubEncoder(Encoder):
    """A `SavedModelLayer` pooled to a vector, with an optional dense projection."""

    def __init__(
        self,
        handle: str,
        signature: str | None = None,
        output_key: str | None = None,
        pooling: str | None = "avg",
        output_dim: int | None = None,
        trainable_backbone: bool = False,
        **kwargs,
    ):
        super().__init__(output_dim=output_dim, **kwargs)
        _refuse_from_a_spec_in_safe_mode(handle)
        if pooling not in ("avg", "max", None):
            raise ValueError(
                f"Invalid value for `pooling`: expected 'avg', 'max' or None. Received: {pooling!r}"
            )
        # The SavedModel's graph computes in float32 whatever the dtype policy;
        # the encoder casts its outputs to its own compute dtype.
        self.module = SavedModelLayer(
            handle,
            signature,
            output_key,
            trainable=trainable_backbone,
            dtype="float32",
            name="module",
        )
        if pooling is None and self.module.output_rank != 2:
            raise ValueError(
                f"The SavedModel at {handle} returns rank-{self.module.output_rank} outputs, "
                "not one vector per input: pass `pooling='avg'` or `'max'`."
            )
        self.handle = handle
        self.signature = signature
        self.output_key = output_key
        self.pooling = pooling
        self.trainable_backbone = trainable_backbone

    @property
    def feature_dim(self) -> int:
        return self.module.feature_dim

    def build(self, input_shape):
        self.module.build(input_shape)
        super().build(input_shape)

    def _module_input(self, inputs):
        return inputs

    def sequence_length_for(self, input_shape) -> int | None:
        spatial = self.module.compute_output_spec(keras.KerasTensor(input_shape)).shape[1:-1]
        return math.prod(spatial) if None not in spatial else None

    def encode(self, inputs, training=None):
        features = self.module(self._module_input(inputs), training=training)
        axes = tuple(range(1, self.module.output_rank - 1))
        if not axes:
            pooled = features
        elif self.pooling == "max":
            pooled = ops.max(features, axis=axes)
        else:
            pooled = ops.mean(features, axis=axes)
        if self.module.output_rank == 4:
            return (pooled, *image_patches(features))
        # A vector is a one-position sequence; token states keep their positions.
        sequence = ops.reshape(features, (ops.shape(features)[0], -1, self.feature_dim))
        return pooled, sequence, ops.ones(ops.shape(sequence)[:2], dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "signature": self.signature,
                "output_key": self.output_key,
                "pooling": self.pooling,
                "trainable_backbone": self.trainable_backbone,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        _refuse_in_safe_mode(config["handle"])
        return super().from_config(config)


def _refuse_in_safe_mode(handle: str) -> None:
    """Loading runs the SavedModel's graph: like Keras' `TFSMLayer`, not in safe mode."""
    from keras.src.saving import serialization_lib

    if serialization_lib.in_safe_mode() is not False:
        raise ValueError(
            f"This model calls the SavedModel at {handle}, whose graph runs when it is "
            "loaded, which safe mode does not allow. If you trust that SavedModel, load "
            "with `keras.models.load_model(path, safe_mode=False)`."
        )


def _refuse_from_a_spec_in_safe_mode(handle: str) -> None:
    """A spec naming a SavedModel runs its graph: it needs the consent loading needs.

    `mmtask.build_model` builds a spec's parts in safe mode unless told
    otherwise; a layer made directly in Python is made by explicit choice.
    """
    if building_in_safe_mode():
        raise MmtaskError(
            f"The spec's `tf_hub` encoder runs the graph of the SavedModel at {handle}, "
            "which safe mode does not allow. If you trust that SavedModel, build with "
            "`safe_mode=False` (`mmtask.train(..., safe_mode=False)`, "
            "`mmtask train --trust-saved-model`)."
        )


@IMAGE_ENCODERS.register("tf_hub")
class TFHubImageEncoder(_TFHubEncoder):
    """An image module from a local TF-Hub SavedModel, pooled to a vector.

    Images arrive as float32 RGB in 0..255; the encoder scales them the way
    the module expects ([0, 1] by TF-Hub convention) before calling it.
    Sequence outputs: a (B, H, W, C) feature map as H*W patches.

    Args:
        handle: str. A local SavedModel folder (downloaded TF-Hub module).
        signature: str | None. A named signature to call instead of `__call__`.
        output_key: str | None. The output to use when the module returns a dict.
        scale: float. Multiplier applied to 0..255 pixels before the module.
        offset: float. Added after scaling; the defaults map pixels to [0, 1].
        pooling: str | None. "avg" or "max" over a feature map output; None
            requires the module to return one vector per image.
        output_dim: int | None. If set, a dense projection to this width.
        trainable_backbone: bool. Whether fitting fine-tunes the module.

    Example:
    ```python
    encoder = TFHubImageEncoder("models/efficientnet_b0_feature_vector")
    vectors = encoder(images)["vector"]  # (B, 224, 224, 3) in 0..255 -> (B, 1280)
    ```
    """

    modality = "image"
    reads = "images"

    def __init__(self, handle: str, scale: float = 1.0 / 255.0, offset: float = 0.0, **kwargs):
        super().__init__(handle, **kwargs)
        self.scale = scale
        self.offset = offset
        self.rescale = keras.layers.Rescaling(scale, offset=offset, name="rescale")

    def build(self, input_shape):
        self.rescale.build(input_shape)
        super().build(input_shape)

    def _module_input(self, images):
        return self.rescale(images)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "offset": self.offset})
        return config


@TEXT_ENCODERS.register("tf_hub")
class TFHubTextEncoder(_TFHubEncoder):
    """A text module from a local TF-Hub SavedModel that takes a batch of raw strings.

    Modules that carry their own preprocessing (NNLM, Universal Sentence
    Encoder, ...) fit directly. A sequence output is averaged over all its
    positions, since the module reports no padding mask.

    Args:
        handle: str. A local SavedModel folder (downloaded TF-Hub module).
        signature: str | None. A named signature to call instead of `__call__`.
        output_key: str | None. The output to use when the module returns a dict.
        pooling: str | None. "avg" or "max" over a sequence output; None
            requires the module to return one vector per text.
        output_dim: int | None. If set, a dense projection to this width.
        trainable_backbone: bool. Whether fitting fine-tunes the module.

    Example:
    ```python
    encoder = TFHubTextEncoder("models/nnlm-en-dim50", trainable_backbone=True)
    vectors = encoder(np.array(["what a day"], object))["vector"]  # (1, 50)
    ```
    """

    modality = "text"
    reads = "text"


def _used_variables(concrete_functions: list) -> list:
    """The variables the functions read, each once, in a stable order."""
    seen, variables = set(), []
    for function in concrete_functions:
        for variable in function.variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def _keras_name(name: str) -> str:
    """A TensorFlow variable name (`block/dense/kernel:0`) as a valid Keras one."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name.rsplit(":", 1)[0])
