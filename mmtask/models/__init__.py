"""Models assembled from encoders, fusion, heads and loss weighting."""

from mmtask.models.multitask import MultiTaskModel

__all__ = ["MultiTaskModel"]
