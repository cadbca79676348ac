"""Fusion modules combine the modality vectors into one shared representation."""

from mmtask.fusion.concat import ConcatFusion

__all__ = ["ConcatFusion"]
