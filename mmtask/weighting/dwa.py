"""Dynamic Weight Averaging: tasks whose loss falls slowly get more weight next epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np
from keras import ops

from mmtask.registry import WEIGHTINGS
from mmtask.weighting.base import LossWeighting


@WEIGHTINGS.register("dwa")
class DWAWeighting(LossWeighting):
    """Reweighs tasks each epoch by how fast their losses fall (Liu et al., 2019).

    Balances tasks that learn at different speeds without extra parameters or
    gradients: only each task's mean training loss per epoch is needed. In
    epoch e, task t gets

        lambda_t = K * softmax_t(r_t / temperature),  r_t = L_t(epoch-1) / L_t(epoch-2)

    with K the number of tasks, so the task whose loss fell least gets the
    largest weight and the weights sum to K. They are 1 for the first two
    epochs. The total is `sum_t w_t * lambda_t * L_t`, `w_t` the static weight.

    A task missing from an epoch's losses, or whose epoch loss is 0 (no
    labelled example), keeps its weight and its last loss; the other tasks
    share the rest of K among themselves.

    The weights and the previous epoch's losses (all the next update needs)
    are non-trainable variables, so they save with the model and survive
    `keras.callbacks.BackupAndRestore`.
    `MultiTaskModel.fit` calls `on_epoch_end` with each epoch's task losses.

    Args:
        tasks: sequence of str. The task names.
        weights: mapping of task name -> float >= 0. Static multipliers; missing tasks get 1.0.
        temperature: float > 0. Softmax temperature; higher values give more even weights.

    Example:
    ```python
    weighting = DWAWeighting(tasks=["text_sentiment", "image_sentiment"], temperature=2.0)
    model = MultiTaskModel(..., weighting=weighting)
    # or, in a spec: weighting: {name: dwa, options: {temperature: 2.0}}
    ```
    """

    def __init__(
        self,
        tasks: Sequence[str],
        weights: Mapping[str, float] | None = None,
        temperature: float = 2.0,
        **kwargs,
    ):
        super().__init__(tasks, weights, **kwargs)
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, Real)
            or not math.isfinite(temperature)
            or temperature <= 0
        ):
            raise ValueError(
                "Invalid value for `temperature`: expected a finite number > 0. "
                f"Received: temperature={temperature!r}"
            )
        self.temperature = float(temperature)

    def build(self, input_shape=None):
        size = (len(self.tasks),)
        self.task_weights = self.add_weight(
            shape=size, initializer="ones", trainable=False, name="task_weights"
        )
        # The previous epoch's mean loss per task; 0 until seen (real epoch losses are > 0).
        self.last_losses = self.add_weight(
            shape=size, initializer="zeros", trainable=False, name="last_losses"
        )

    def call(self, task_losses: dict):
        total = ops.zeros((), dtype=self.compute_dtype)
        for task, loss in task_losses.items():
            weight = ops.cast(self.task_weights[self.tasks.index(task)], self.compute_dtype)
            loss = ops.convert_to_tensor(loss, dtype=self.compute_dtype)
            total = total + self.static_weights[task] * weight * loss
        return total

    def effective_weights(self) -> dict:
        if not self.built:
            self.build()
        return {t: self.static_weights[t] * self.task_weights[i] for i, t in enumerate(self.tasks)}

    def on_epoch_end(self, epoch_losses: Mapping[str, float]) -> None:
        unknown = sorted(set(epoch_losses) - set(self.tasks))
        if unknown:
            raise ValueError(
                f"Epoch losses given for unknown tasks {unknown}; the tasks are {self.tasks}."
            )
        if not self.built:
            self.build()
        weights = ops.convert_to_numpy(self.task_weights).astype("float64")
        last = ops.convert_to_numpy(self.last_losses).astype("float64")
        ready, ratios = [], []
        for i, task in enumerate(self.tasks):
            loss = float(epoch_losses.get(task, 0.0))
            if not math.isfinite(loss) or loss <= 0:
                continue
            if last[i] > 0:
                ready.append(i)
                ratios.append(loss / last[i])
            last[i] = loss
        if ready:
            logits = np.array(ratios) / self.temperature
            shares = np.exp(logits - logits.max())
            # Weights always sum to K; tasks updated now share what the others left.
            weights[ready] = weights[ready].sum() * shares / shares.sum()
        self.task_weights.assign(weights)
        self.last_losses.assign(last)

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config
