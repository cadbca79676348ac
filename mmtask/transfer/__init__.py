"""Transfer learning: encoders pre-trained on a source task, saved and reused."""

from mmtask.transfer.pretrain import PretrainResult, pretrain_text_encoder
from mmtask.transfer.saved_encoder import load_encoder, save_encoder

__all__ = ["PretrainResult", "load_encoder", "pretrain_text_encoder", "save_encoder"]
