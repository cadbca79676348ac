"""Fusion modules combine the modality vectors into one shared representation."""

from mmtask.fusion.autoencoder import AutoencoderFusion
from mmtask.fusion.concat import ConcatFusion
from mmtask.fusion.gated import GatedFusion

__all__ = ["AutoencoderFusion", "ConcatFusion", "GatedFusion"]
