"""Encoders turn one modality (raw strings, decoded images) into a vector and a sequence."""

from mmtask.encoders.base import Encoder
from mmtask.encoders.image_cnn import SmallCNNImageEncoder
from mmtask.encoders.keras_applications import KerasApplicationsImageEncoder
from mmtask.encoders.keras_hub_image import KerasHubImageEncoder
from mmtask.encoders.keras_hub_text import KerasHubTextEncoder
from mmtask.encoders.mpnet_text import MPNetTextEncoder
from mmtask.encoders.precomputed import (
    PrecomputedEncoder,
    precomputed_image_encoder,
    precomputed_text_encoder,
)
from mmtask.encoders.saved import load_encoder, save_encoder
from mmtask.encoders.text_transformer import TransformerTextEncoder
from mmtask.encoders.tf_hub import SavedModelLayer, TFHubImageEncoder, TFHubTextEncoder

__all__ = [
    "Encoder",
    "KerasApplicationsImageEncoder",
    "KerasHubImageEncoder",
    "KerasHubTextEncoder",
    "MPNetTextEncoder",
    "PrecomputedEncoder",
    "SavedModelLayer",
    "SmallCNNImageEncoder",
    "TFHubImageEncoder",
    "TFHubTextEncoder",
    "TransformerTextEncoder",
    "load_encoder",
    "precomputed_image_encoder",
    "precomputed_text_encoder",
    "save_encoder",
]
