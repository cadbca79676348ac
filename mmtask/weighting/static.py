"""Static loss weighting: a fixed weight per task (1.0 unless given)."""

from __future__ import annotations

from mmtask.registry import WEIGHTINGS
from mmtask.weighting.base import LossWeighting


@WEIGHTINGS.register("static")
class StaticWeighting(LossWeighting):
    """Total loss = sum over tasks of weight * task loss.

    Args:
        tasks: sequence of str. The task names.
        weights: mapping of task name -> float. Missing tasks get 1.0.
    """

    def call(self, task_losses):
        return sum(self.static_weights[t] * loss for t, loss in task_losses.items())

    def effective_weights(self):
        return dict(self.static_weights)
