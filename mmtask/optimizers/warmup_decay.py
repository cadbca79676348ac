"""Linear warm-up, then a constant, cosine or linear learning rate, in one schedule.

Fine-tuning a pretrained backbone from a random head is fragile in its first
steps; a short warm-up keeps the backbone's features from being wrecked by
the head's early, large gradients.
"""

from __future__ import annotations

import math

import keras
from keras import ops

DECAYS = ("none", "cosine", "linear")


@keras.saving.register_keras_serializable(package="mmtask")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to `peak` over `warmup_steps`, then decays to `floor` at `total_steps`.

    Args:
        peak: float. The learning rate at the end of the warm-up.
        total_steps: int. Steps of the whole run; after it the rate stays at
            the end of its decay.
        warmup_steps: int. Steps of linear warm-up (0 starts at `peak`).
        decay: str. "none" (constant after the warm-up), "cosine" or "linear".
        floor: float. Fraction of `peak` the decay ends at.
    """

    def __init__(
        self,
        peak: float,
        total_steps: int,
        warmup_steps: int = 0,
        decay: str = "cosine",
        floor: float = 0.0,
    ):
        if decay not in DECAYS:
            raise ValueError(f"`decay` must be one of {list(DECAYS)}. Received: decay={decay!r}")
        if not peak > 0:
            raise ValueError(f"`peak` must be > 0. Received: peak={peak!r}")
        if not 0 <= warmup_steps <= total_steps or total_steps < 1:
            raise ValueError(
                "Expected 0 <= warmup_steps <= total_steps and total_steps >= 1. "
                f"Received: warmup_steps={warmup_steps}, total_steps={total_steps}"
            )
        if not 0 <= floor <= 1:
            raise ValueError(f"`floor` must be in [0, 1]. Received: floor={floor!r}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.floor = float(floor)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.minimum((step + 1.0) / max(self.warmup_steps, 1), 1.0)
        if self.warmup_steps == 0:
            warmup = ops.ones_like(step)
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.decay == "cosine":
            shape = 0.5 * (1.0 + ops.cos(math.pi * progress))
        elif self.decay == "linear":
            shape = 1.0 - progress
        else:
            shape = ops.ones_like(progress)
        after = self.floor + (1.0 - self.floor) * shape
        return self.peak * ops.where(step < self.warmup_steps, warmup, after)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "floor": self.floor,
        }
