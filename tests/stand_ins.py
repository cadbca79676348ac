"""Tiny stand-ins for what pretrained encoders load: presets, weights, SavedModels, saved files.

Each writer takes a folder and returns the spec options of the registered
encoder that reads what it wrote, so a test can build every encoder by name
without downloads.
"""

from pathlib import Path

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from tiny_models import WORDS, tiny_bert_backbone, tiny_efficientnet_backbone

from mmtask.encoders import SmallCNNImageEncoder, TransformerTextEncoder, save_encoder

BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
# all-mpnet-base-v2's vocabulary starts so too; <mask> comes last there.
MPNET_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"]
TF_HUB_TOKENS = 4  # Token states the stand-in TF-Hub text module returns per text.


class _TFHubImageModule(tf.Module):
    """Images in [0, 1] -> a (B, H, W, 4) feature map."""

    def __init__(self):
        self.kernel = tf.Variable(np.full((3, 4), 0.1, "float32"), name="conv/kernel")

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    def __call__(self, images):
        return tf.tanh(tf.einsum("bhwc,cd->bhwd", images, self.kernel))


class _TFHubTextModule(tf.Module):
    """Strings -> (B, TF_HUB_TOKENS, 4) token states, embedded by word length."""

    def __init__(self):
        self.embeddings = tf.Variable(np.eye(8, 4, dtype="float32"), name="text/embeddings")

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)])
    def __call__(self, texts):
        words = tf.strings.split(texts).to_tensor("", shape=[None, TF_HUB_TOKENS])
        return tf.gather(self.embeddings, tf.strings.length(words) % 8)


def keras_hub_text_preset(folder: Path) -> dict:
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=BERT_VOCAB, lowercase=True)
    backbone = tiny_bert_backbone(len(BERT_VOCAB))
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return {"preset": str(folder), "sequence_length": 8}


def hugging_face_mpnet_folder(folder: Path, vocabulary: list[str], **config) -> Path:
    """A randomly initialised MPNet saved by `transformers` as all-mpnet-base-v2 ships:

    config.json and model.safetensors (`save_pretrained`) and vocab.txt.
    `config` overrides the tiny defaults (2 layers, width 32, 4 heads).
    """
    import torch
    import transformers

    torch.manual_seed(0)
    settings = {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "max_position_embeddings": 130,
        **config,
    }
    model = transformers.MPNetModel(
        transformers.MPNetConfig(vocab_size=len(vocabulary), **settings)
    ).eval()
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    return folder


def mpnet_folder(folder: Path, modality: str) -> dict:
    vocabulary = MPNET_SPECIAL_TOKENS + WORDS
    hugging_face_mpnet_folder(
        folder, vocabulary, num_hidden_layers=1, hidden_size=8, intermediate_size=16
    )
    return {"preset": str(folder), "sequence_length": 8}


def keras_hub_image_preset(folder: Path) -> dict:
    tiny_efficientnet_backbone().save_to_preset(str(folder))
    return {"preset": str(folder)}


def keras_applications_weights(folder: Path) -> dict:
    options = {"alpha": 0.25}
    application = keras.applications.MobileNet(include_top=False, weights=None, **options)
    path = folder / "mobilenet.weights.h5"
    application.save_weights(path)
    return {"application": "MobileNet", "weights": str(path), "application_options": options}


def tf_hub_module(folder: Path, modality: str) -> dict:
    module = _TFHubTextModule() if modality == "text" else _TFHubImageModule()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})
    return {"handle": str(folder)}


def saved_encoder(folder: Path, modality: str) -> dict:
    """An encoder saved after being called inside another model, as pre-training leaves it."""
    if modality == "text":
        encoder = TransformerTextEncoder(**TINY_OPTIONS["text"]["transformer"])
        inputs = keras.Input(shape=(), dtype="string")
    else:
        encoder = SmallCNNImageEncoder(**TINY_OPTIONS["image"]["small_cnn"])
        inputs = keras.Input(shape=(None, None, 3))
    keras.Model(inputs, encoder(inputs)["vector"])
    return {"path": str(save_encoder(encoder, folder / f"{modality}.keras", modality))}


# Options of the encoders that need nothing on disk.
TINY_OPTIONS = {
    "text": {
        "transformer": {
            "max_tokens": 32,
            "sequence_length": 6,
            "embed_dim": 8,
            "intermediate_dim": 8,
            "vocabulary": WORDS,
        },
        "precomputed": {"feature_dim": 6, "sequence_length": 4},
    },
    "image": {
        "small_cnn": {"filters": [4], "output_dim": 4},
        "precomputed": {"feature_dim": 4, "sequence_length": 9},
    },
}
# Writers of what the other encoders load: (folder, modality) -> options.
WRITERS = {
    "keras_hub": lambda folder, modality: (
        keras_hub_text_preset(folder) if modality == "text" else keras_hub_image_preset(folder)
    ),
    "keras_applications": lambda folder, modality: keras_applications_weights(folder),
    "mpnet": mpnet_folder,
    "tf_hub": tf_hub_module,
    "saved": saved_encoder,
}


def encoder_options(name: str, modality: str, folder: Path) -> dict:
    """Spec options for the `modality` encoder registered as `name`, writing its stand-in."""
    if name in TINY_OPTIONS[modality]:
        return TINY_OPTIONS[modality][name]
    if name not in WRITERS:
        raise KeyError(
            f"No stand-in for the {modality} encoder {name!r}: add its tiny options or a "
            "writer to tests/stand_ins.py."
        )
    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    return WRITERS[name](folder, modality)
