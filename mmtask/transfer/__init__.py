"""Transfer learning: pre-trained encoders saved and reused, and fine-tuning schedules."""

from mmtask.encoders.saved import load_encoder, save_encoder
from mmtask.transfer.discriminative import DiscriminativeOptimizer
from mmtask.transfer.feature_cache import FeatureCache, default_cache_dir
from mmtask.transfer.features import precompute_features
from mmtask.transfer.fine_tuning import FineTuning, layer_paths
from mmtask.transfer.pretrain import PretrainResult, pretrain_text_encoder
from mmtask.transfer.schedule import FineTuneSchedule, Stage

__all__ = [
    "DiscriminativeOptimizer",
    "FeatureCache",
    "FineTuneSchedule",
    "FineTuning",
    "PretrainResult",
    "Stage",
    "default_cache_dir",
    "layer_paths",
    "load_encoder",
    "precompute_features",
    "pretrain_text_encoder",
    "save_encoder",
]
