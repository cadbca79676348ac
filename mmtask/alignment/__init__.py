"""Cross-modal alignment of text and image representations."""

from mmtask.alignment.contrastive import ContrastiveAlignment

__all__ = ["ContrastiveAlignment"]
