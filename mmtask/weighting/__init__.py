"""Loss weighting: how per-task losses combine into the training objective."""

from mmtask.weighting.base import LossWeighting
from mmtask.weighting.epoch_callback import WeightingEpochCallback
from mmtask.weighting.static import StaticWeighting

__all__ = ["LossWeighting", "StaticWeighting", "WeightingEpochCallback"]
