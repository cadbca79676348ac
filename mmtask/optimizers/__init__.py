"""Optimizers and learning-rate schedules a run spec can choose (`training.optimizer`)."""

from mmtask.optimizers.from_spec import build_optimizer
from mmtask.optimizers.kernel_decay_adamw import KernelDecayAdamW
from mmtask.optimizers.warmup_decay import WarmupDecay

__all__ = ["KernelDecayAdamW", "WarmupDecay", "build_optimizer"]
