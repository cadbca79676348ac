"""Uncertainty weighting: each task learns how much to trust its own loss."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import ops

from mmtask.registry import WEIGHTINGS
from mmtask.weighting.base import LossWeighting


@WEIGHTINGS.register("uncertainty")
class UncertaintyWeighting(LossWeighting):
    """Weighs each task by a learnt homoscedastic uncertainty (Kendall et al., 2018).

    Hand-tuning loss weights is costly and they interact with each task's
    scale. Here each task t has a trainable log-variance `s_t` (initially 0)
    that the optimizer learns with the model:

        total = sum_t w_t * (0.5 * exp(-s_t) * L_t + 0.5 * s_t)

    with `w_t` the static weight. A task whose loss stays high (noisy or hard)
    raises its `s_t` and so its weight `0.5 * exp(-s_t)` falls; the `0.5 * s_t`
    term stops every weight from going to 0. This is the form LibMTL uses.

    A task absent from a batch's losses, or whose loss is exactly 0 (no
    labelled example in the batch), adds nothing, so its `s_t` does not drift.

    The log-variances are variables of this layer, named after the tasks: they
    train with the model's optimizer and save with the model.

    Args:
        tasks: sequence of str. The task names.
        weights: mapping of task name -> float >= 0. Static multipliers; missing tasks get 1.0.

    Example:
    ```python
    weighting = UncertaintyWeighting(tasks=["text_sentiment", "image_sentiment"])
    model = MultiTaskModel(..., weighting=weighting)
    # or, in a spec: weighting: {name: uncertainty}
    ```
    """

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None, **kwargs):
        super().__init__(tasks, weights, **kwargs)
        self.log_variances: dict[str, keras.Variable] = {}

    def build(self, input_shape=None):
        self.log_variances = {
            task: self.add_weight(shape=(), initializer="zeros", trainable=True, name=task)
            for task in self.tasks
        }

    def call(self, task_losses: dict):
        total = ops.zeros((), dtype=self.compute_dtype)
        for task, loss in task_losses.items():
            loss = ops.convert_to_tensor(loss, dtype=self.compute_dtype)
            log_variance = ops.cast(self.log_variances[task], self.compute_dtype)
            term = 0.5 * ops.exp(-log_variance) * loss + 0.5 * log_variance
            labelled = ops.cast(ops.greater(loss, 0), self.compute_dtype)
            total = total + self.static_weights[task] * labelled * term
        return total

    def effective_weights(self) -> dict:
        if not self.built:
            self.build()
        return {
            task: self.static_weights[task] * 0.5 * ops.exp(-self.log_variances[task])
            for task in self.tasks
        }
