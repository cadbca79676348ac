"""Loading MPNet from a Hugging Face-format folder: config.json, model.safetensors, vocab.txt.

keras-hub's `from_preset` converts Hugging Face folders only for the
architectures it knows, and MPNet is not one; this reads the same files
(those of all-mpnet-base-v2 as sentence-transformers ships it, or of any
`MPNetModel.save_pretrained`) into `MPNetBackbone` and `MPNetTokenizer`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmtask.encoders.mpnet.mpnet_backbone import MPNetBackbone
from mmtask.encoders.mpnet.mpnet_tokenizer import MPNetTokenizer
from mmtask.errors import MmtaskError


def load_mpnet_tokenizer(folder: str | Path) -> MPNetTokenizer:
    """The tokenizer of an MPNet folder: its vocab.txt, cased or not per tokenizer_config.json."""
    folder = Path(folder)
    settings = _read_json(folder / "tokenizer_config.json", required=False)
    lowercase = bool(settings.get("do_lower_case", True))
    strip_accents = settings.get("strip_accents")
    return MPNetTokenizer(
        vocabulary=str(_required(folder / "vocab.txt")),
        lowercase=lowercase,
        # Hugging Face strips accents whenever it lowercases, unless told otherwise.
        strip_accents=lowercase if strip_accents is None else bool(strip_accents),
        oov_token=str(settings.get("unk_token", "[UNK]")),
    )


def load_mpnet_backbone(folder: str | Path) -> MPNetBackbone:
    """The backbone an MPNet folder's config.json describes, with its model.safetensors weights."""
    folder = Path(folder)
    config = _read_json(folder / "config.json", required=True)
    if config.get("model_type") != "mpnet":
        raise MmtaskError(
            f"{folder}: expected an MPNet model (config.json's model_type 'mpnet'). "
            f"Received: model_type={config.get('model_type')!r}"
        )
    pad_token_id = int(config.get("pad_token_id", 1))
    backbone = MPNetBackbone(
        vocabulary_size=config["vocab_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        hidden_dim=config["hidden_size"],
        intermediate_dim=config["intermediate_size"],
        dropout=config.get("hidden_dropout_prob", 0.1),
        max_sequence_length=config["max_position_embeddings"] - pad_token_id - 1,
        num_buckets=config.get("relative_attention_num_buckets", 32),
        pad_token_id=pad_token_id,
        layer_norm_epsilon=config.get("layer_norm_eps", 1e-5),
    )
    if config.get("hidden_act", "gelu") != "gelu":
        raise MmtaskError(
            f"{folder}: MPNetBackbone uses the exact GELU. Received: "
            f"hidden_act={config['hidden_act']!r}"
        )
    _assign(backbone, _read_safetensors(_required(folder / "model.safetensors")), folder)
    return backbone


def _assign(backbone: MPNetBackbone, weights: dict[str, np.ndarray], folder: Path) -> None:
    """Copies Hugging Face's tensors into the backbone; every variable must get one.

    Except the pooler's, which checkpoints of `MPNetForMaskedLM` lack: then
    `pooled_output` is untrained (sentence vectors pool `sequence_output`).
    """
    # A checkpoint of MPNetForMaskedLM & co. prefixes the encoder's names.
    prefix = "mpnet." if any(name.startswith("mpnet.") for name in weights) else ""

    def take(name: str, transpose: bool = False) -> np.ndarray:
        try:
            value = weights[prefix + name]
        except KeyError:
            raise MmtaskError(
                f"{folder / 'model.safetensors'}: no tensor {prefix + name!r}; is this MPNet?"
            ) from None
        return value.T if transpose else value

    def dense(layer, name):
        layer.kernel.assign(take(f"{name}.weight", transpose=True))
        layer.bias.assign(take(f"{name}.bias"))

    def norm(layer, name):
        layer.gamma.assign(take(f"{name}.weight"))
        layer.beta.assign(take(f"{name}.bias"))

    backbone.token_embedding.embeddings.assign(take("embeddings.word_embeddings.weight"))
    backbone.position_embedding.embeddings.assign(take("embeddings.position_embeddings.weight"))
    norm(backbone.embeddings_layer_norm, "embeddings.LayerNorm")
    backbone.relative_position_bias.embedding.embeddings.assign(
        take("encoder.relative_attention_bias.weight")
    )
    for i, layer in enumerate(backbone.transformer_layers):
        hf = f"encoder.layer.{i}"
        dense(layer.query_dense, f"{hf}.attention.attn.q")
        dense(layer.key_dense, f"{hf}.attention.attn.k")
        dense(layer.value_dense, f"{hf}.attention.attn.v")
        dense(layer.attention_output_dense, f"{hf}.attention.attn.o")
        norm(layer.attention_layer_norm, f"{hf}.attention.LayerNorm")
        dense(layer.intermediate_dense, f"{hf}.intermediate.dense")
        dense(layer.output_dense, f"{hf}.output.dense")
        norm(layer.output_layer_norm, f"{hf}.output.LayerNorm")
    if prefix + "pooler.dense.weight" in weights:
        dense(backbone.pooled_dense, "pooler.dense")


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise MmtaskError(
            f"Reading {path} needs the `safetensors` package (`pip install safetensors`)."
        ) from None

    try:
        return load_file(str(path))
    except Exception as error:
        raise MmtaskError(f"{path}: not a readable safetensors file ({error})") from None


def _read_json(path: Path, required: bool) -> dict:
    if not path.is_file():
        if required:
            raise MmtaskError(f"{path} not found: an MPNet folder holds config.json")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MmtaskError(f"{path}: not valid JSON ({error})") from None


def _required(path: Path) -> Path:
    if not path.is_file():
        raise MmtaskError(
            f"{path} not found: an MPNet folder holds config.json, model.safetensors and vocab.txt"
        )
    return path
