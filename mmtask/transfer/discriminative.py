"""An optimizer wrapper that gives each variable its own learning-rate multiplier.

Scaling gradients is not a learning-rate multiplier for Adam and the like,
which are invariant to the gradient's scale. This wrapper scales the learning
rate itself: Keras hands `update_step` the learning rate of the step, and the
wrapper passes the inner optimizer's `update_step` that rate times the
variable's multiplier. Everything else (the update rule, its slots, the
learning-rate schedule) is the inner optimizer's, and `apply` may be given any
subset of the variables the optimizer was built with, as happens when layers
freeze and unfreeze.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
from keras import ops

# Settings of Keras' optimizer pipeline (around `update_step`), which the
# wrapper runs in place of the inner optimizer.
_PIPELINE_SETTINGS = ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor")


@keras.saving.register_keras_serializable(package="mmtask")
class DiscriminativeOptimizer(keras.optimizers.Optimizer):
    """Runs `inner_optimizer` with a learning-rate multiplier per variable.

    A variable with multiplier `m` is updated as the inner optimizer would
    update it with learning rate `m * lr`; its decoupled weight decay (AdamW)
    is scaled the same way. Multipliers start at 1.0 and are set with
    `set_lr_multipliers`, at any time: they live in an optimizer variable, so
    changing them needs no retracing. `FineTuning` sets them from its schedule.

    Gradient clipping, loss scaling and weight decay are taken from the inner
    optimizer's settings; EMA and gradient accumulation are not supported.

    Args:
        inner_optimizer: keras.optimizers.Optimizer | str | dict. The
            optimizer whose update rule runs; not yet built.

    Example:
    ```python
    optimizer = DiscriminativeOptimizer(keras.optimizers.Adam(1e-3))
    optimizer.build(model.trainable_variables)
    optimizer.set_lr_multipliers([(v, 0.1) for v in backbone.trainable_variables])
    model.compile(optimizer=optimizer)
    ```
    """

    def __init__(self, inner_optimizer, name=None, **kwargs):
        inner = keras.optimizers.get(inner_optimizer)
        if isinstance(inner, keras.optimizers.LossScaleOptimizer | DiscriminativeOptimizer):
            raise ValueError(
                f"`inner_optimizer` must be a plain optimizer. Received: {type(inner).__name__}"
            )
        if inner.built:
            raise ValueError(
                "`inner_optimizer` must not be built yet: the wrapper builds it over its "
                f"own variables. Received: a built {type(inner).__name__}"
            )
        if inner.use_ema or inner.gradient_accumulation_steps:
            raise ValueError(
                "DiscriminativeOptimizer does not support `use_ema` or "
                "`gradient_accumulation_steps` on the inner optimizer. Received: "
                f"use_ema={inner.use_ema}, "
                f"gradient_accumulation_steps={inner.gradient_accumulation_steps}"
            )
        if kwargs:
            raise ValueError(
                "Set optimizer options on `inner_optimizer`; DiscriminativeOptimizer takes "
                f"none of its own. Received: {sorted(kwargs)}"
            )
        settings = {key: getattr(inner, key) for key in _PIPELINE_SETTINGS}
        super().__init__(learning_rate=0.0, name=name, **settings)
        self.inner_optimizer = inner

    def build(self, variables):
        if self.built:
            return
        variables = list(variables)
        self.inner_optimizer.build(variables)
        self.lr_multipliers = self.add_variable(
            shape=(len(variables),), initializer="ones", name="lr_multipliers"
        )
        super().build(variables)

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def knows(self, variables: Iterable) -> bool:
        """Whether the optimizer was built with every one of `variables`."""
        return self.built and all(
            self._var_key(v) in self._trainable_variables_indices for v in variables
        )

    def set_lr_multipliers(self, multipliers: Iterable[tuple]) -> None:
        """Sets the multipliers of the given variables and 1.0 for all others.

        Args:
            multipliers: iterable of (variable, multiplier) pairs.
        """
        values = np.ones(self.lr_multipliers.shape, dtype="float32")
        for variable, multiplier in multipliers:
            if not self.knows([variable]):
                raise ValueError(
                    f"Unknown variable {variable.path!r}: the optimizer was not built with it."
                )
            values[self._get_variable_index(variable)] = multiplier
        self.lr_multipliers.assign(values)

    def lr_multiplier(self, variable) -> float:
        """The learning-rate multiplier of one of the optimizer's variables."""
        return float(ops.convert_to_numpy(self.lr_multipliers)[self._get_variable_index(variable)])

    def apply(self, grads, trainable_variables=None):
        super().apply(grads, trainable_variables)
        if len(grads):
            # The inner update rule reads its own step count (Adam's bias
            # correction, learning-rate schedules); it advances with ours.
            self.inner_optimizer.iterations.assign_add(1)

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self.lr_multipliers[self._get_variable_index(variable)]
        learning_rate = ops.cast(learning_rate, variable.dtype) * ops.cast(
            multiplier, variable.dtype
        )
        inner = self.inner_optimizer
        # Decoupled weight decay, as Keras applies it before `update_step`,
        # with the inner optimizer's exclusions but the variable's own rate.
        if inner.weight_decay is not None and inner._use_weight_decay(variable):
            decay = ops.cast(inner.weight_decay, variable.dtype)
            self.assign_sub(variable, variable * decay * learning_rate)
        inner.update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": keras.optimizers.serialize(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["inner_optimizer"] = keras.optimizers.deserialize(
            config["inner_optimizer"], custom_objects=custom_objects
        )
        return cls(**config)
