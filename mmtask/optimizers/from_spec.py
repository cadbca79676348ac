"""The optimizer a run spec describes, sized to the run's steps."""

from __future__ import annotations

import math

import keras

from mmtask.optimizers.kernel_decay_adamw import KernelDecayAdamW
from mmtask.optimizers.warmup_decay import WarmupDecay
from mmtask.spec import OptimizerSpec


def build_optimizer(
    spec: OptimizerSpec, learning_rate: float, epochs: int, steps_per_epoch: int
) -> keras.optimizers.Optimizer:
    """A fresh optimizer for a run of `epochs` x `steps_per_epoch` optimizer steps.

    With no warm-up and no decay the learning rate is the plain float, so a
    default spec gives exactly `keras.optimizers.Adam(learning_rate)`.
    """
    total_steps = max(int(epochs) * int(steps_per_epoch), 1)
    warmup_steps = min(math.ceil(spec.warmup_epochs * steps_per_epoch), total_steps)
    rate = learning_rate
    if warmup_steps or spec.decay != "none":
        rate = WarmupDecay(learning_rate, total_steps, warmup_steps, spec.decay)
    options = {"learning_rate": rate, "global_clipnorm": spec.clipnorm}
    if spec.name == "adamw":
        return KernelDecayAdamW(
            weight_decay=0.01 if spec.weight_decay is None else spec.weight_decay, **options
        )
    return keras.optimizers.Adam(**options)
