"""MPNet (all-mpnet-base-v2's architecture) in keras-hub's style: backbone, tokenizer, loader."""

from mmtask.encoders.mpnet.hugging_face_folder import load_mpnet_backbone, load_mpnet_tokenizer
from mmtask.encoders.mpnet.mpnet_backbone import MPNetBackbone
from mmtask.encoders.mpnet.mpnet_layer import MPNetTransformerLayer
from mmtask.encoders.mpnet.mpnet_tokenizer import MPNetTokenizer
from mmtask.encoders.mpnet.relative_position_bias import MPNetRelativePositionBias

__all__ = [
    "MPNetBackbone",
    "MPNetRelativePositionBias",
    "MPNetTokenizer",
    "MPNetTransformerLayer",
    "load_mpnet_backbone",
    "load_mpnet_tokenizer",
]
