"""Fusion modules combine the modality representations into one shared representation.

Every module subclasses `Fusion`. Most take the dict of modality vectors;
those with `uses_sequences = True` (cross-attention) take each encoder's
`{"vector", "sequence", "mask"}`.
"""

from mmtask.fusion.autoencoder import AutoencoderFusion
from mmtask.fusion.base import Fusion
from mmtask.fusion.concat import ConcatFusion
from mmtask.fusion.cross_attention import CrossAttentionFusion
from mmtask.fusion.gated import GatedFusion

__all__ = ["AutoencoderFusion", "ConcatFusion", "CrossAttentionFusion", "Fusion", "GatedFusion"]
