"""Models assembled from encoders, fusion, heads and loss weighting."""

from mmtask.models.ensemble import MultiTaskEnsemble
from mmtask.models.image_views import IMAGE_VIEWS
from mmtask.models.multitask import MultiTaskModel

__all__ = ["IMAGE_VIEWS", "MultiTaskEnsemble", "MultiTaskModel"]
