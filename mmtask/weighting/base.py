"""The one-method interface every loss-weighting method implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras


class LossWeighting(keras.layers.Layer):
    """Combines per-task losses into the total that training minimises.

    A layer, so methods that learn their weights own variables that train and
    save with the model. Every method accepts static per-task weights (the
    spec's `weight`), which it may use as priors or multipliers.

    Subclasses implement `call` and `effective_weights`; methods that adapt
    once per epoch also implement `on_epoch_end`, which `MultiTaskModel.fit`
    calls with the epoch's mean training loss of each task.

    Args:
        tasks: sequence of str. The task names, in the model's order.
        weights: mapping of task name -> float >= 0. Missing tasks get 1.0.
    """

    def __init__(self, tasks: Sequence[str], weights: Mapping[str, float] | None = None, **kwargs):
        # Losses are combined in float32 whatever the compute dtype (mixed precision).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.tasks = list(tasks)
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(self.tasks))
        if unknown:
            raise ValueError(
                f"Loss weights given for unknown tasks {unknown}; the tasks are {self.tasks}."
            )
        negative = {t: w for t, w in weights.items() if w < 0}
        if negative:
            raise ValueError(f"Loss weights must be >= 0. Received: {negative}")
        self.static_weights = {t: float(weights.get(t, 1.0)) for t in self.tasks}

    def call(self, task_losses: dict):
        """Return the weighted total of `task_losses` (task name -> scalar loss)."""
        raise NotImplementedError

    def effective_weights(self) -> dict:
        """Task name -> the weight (a float or scalar tensor) now applied to its loss.

        Logged every step as `{task}_loss_weight` in `History`.
        """
        raise NotImplementedError

    def on_epoch_end(self, epoch_losses: Mapping[str, float]) -> None:
        """Adapt to the epoch's mean training loss per task; by default nothing changes."""

    def get_config(self):
        config = super().get_config()
        config.update({"tasks": self.tasks, "weights": self.static_weights})
        return config
