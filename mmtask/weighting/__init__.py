"""Loss weighting: how per-task losses combine into the training objective."""

from mmtask.weighting.base import LossWeighting
from mmtask.weighting.diagnostics import TaskGradientDiagnostics
from mmtask.weighting.dwa import DWAWeighting
from mmtask.weighting.epoch_callback import WeightingEpochCallback
from mmtask.weighting.static import StaticWeighting
from mmtask.weighting.uncertainty import UncertaintyWeighting

__all__ = [
    "DWAWeighting",
    "LossWeighting",
    "StaticWeighting",
    "TaskGradientDiagnostics",
    "UncertaintyWeighting",
    "WeightingEpochCallback",
]
