"""Heads read one representation (text, image or fused) and predict one task."""

from mmtask.heads.classification import ClassificationHead

__all__ = ["ClassificationHead"]
