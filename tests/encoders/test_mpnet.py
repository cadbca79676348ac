"""MPNet against the reference implementation: `transformers`' MPNetModel and MPNetTokenizer.

A tiny randomly initialised MPNet is saved by `transformers` in Hugging Face
format, loaded by mmtask, and both are run on the same inputs.
"""

import json

import keras
import numpy as np
import pytest
import torch
import transformers
from stand_ins import MPNET_SPECIAL_TOKENS, hugging_face_mpnet_folder
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

from mmtask.encoders import MPNetTextEncoder
from mmtask.encoders.mpnet import (
    MPNetRelativePositionBias,
    load_mpnet_backbone,
    load_mpnet_tokenizer,
)
from mmtask.errors import MmtaskError
from mmtask.transfer.feature_cache import encoder_fingerprint

WORD_PIECES = (
    "the cafe was nai ##ve , . ! ? ' - great day at beach # sun ##ny "
    "i love it not so res ##ume : ) @ 2 ##0 ##2 ##4 what a"
).split()
VOCABULARY = MPNET_SPECIAL_TOKENS + WORD_PIECES
TEXTS = [
    "The café was naïve, great!",
    "Résumé: sunny day at the BEACH :)",
    "i love it... not so great?! #sun @beach",
    "Zebra quagga xylophone 2024",
    "",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return hugging_face_mpnet_folder(tmp_path_factory.mktemp("mpnet"), VOCABULARY)


@pytest.fixture(scope="module")
def reference(folder):
    return transformers.MPNetModel.from_pretrained(folder).eval()


def hugging_face_tokenizer():
    return transformers.MPNetTokenizer(vocab={token: i for i, token in enumerate(VOCABULARY)})


def test_relative_position_buckets_match_hugging_face():
    distances = np.arange(-600, 601)
    expected = MPNetEncoder.relative_position_bucket(torch.tensor(distances)).numpy()
    buckets = MPNetRelativePositionBias(num_heads=2).bucket(distances.astype("int32"))
    np.testing.assert_array_equal(np.asarray(buckets), expected)


def test_hidden_states_match_hugging_face(folder, reference):
    rng = np.random.default_rng(0)
    # Longer than 64 tokens: the bias's logarithmic buckets come into play.
    ids = rng.integers(len(MPNET_SPECIAL_TOKENS), len(VOCABULARY), (3, 70)).astype("int32")
    mask = np.ones_like(ids)
    for row, length in ((1, 40), (2, 3)):
        ids[row, length:], mask[row, length:] = VOCABULARY.index("<pad>"), 0
    with torch.no_grad():
        expected = reference(input_ids=torch.tensor(ids).long(), attention_mask=torch.tensor(mask))
    outputs = load_mpnet_backbone(folder)({"token_ids": ids, "padding_mask": mask})
    real = mask[..., None].astype(bool)
    hidden = np.asarray(outputs["sequence_output"])
    reference_hidden = expected.last_hidden_state.numpy()
    np.testing.assert_allclose(hidden * real, reference_hidden * real, atol=1e-4)
    np.testing.assert_allclose(outputs["pooled_output"], expected.pooler_output, atol=1e-4)


def test_tokenizer_matches_hugging_face(folder):
    tokenizer = load_mpnet_tokenizer(folder)
    expected = hugging_face_tokenizer()(TEXTS, add_special_tokens=False)["input_ids"]
    assert [np.asarray(ids).tolist() for ids in tokenizer(TEXTS)] == expected
    # Unknown words map to BERT's [UNK], not <unk>.
    assert VOCABULARY.index("[UNK]") in expected[3]


def test_sentence_vectors_match_hugging_face(folder, reference):
    """Tokenizer, packing (<s> ... </s>, <pad>), backbone and mean pooling, end to end."""
    encoder = MPNetTextEncoder(preset=str(folder), sequence_length=12)
    batch = hugging_face_tokenizer()(
        TEXTS, padding="max_length", truncation=True, max_length=12, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = reference(**batch).last_hidden_state.numpy()
    mask = batch["attention_mask"].numpy()[..., None]
    expected = (hidden * mask).sum(1) / mask.sum(1)
    vectors = np.asarray(encoder(np.array(TEXTS, object))["vector"])
    np.testing.assert_allclose(vectors, expected, atol=1e-4)


def test_saved_model_needs_no_folder(folder, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        (copy / name).write_bytes((folder / name).read_bytes())
    encoder = MPNetTextEncoder(preset=str(copy), sequence_length=12)
    texts = np.array(TEXTS, object)
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, encoder(inputs)["vector"])
    expected = model.predict(texts, verbose=0)
    model.save(tmp_path / "model.keras")
    for path in copy.iterdir():
        path.unlink()
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(texts, verbose=0), expected, atol=1e-6)


def test_two_loads_of_one_folder_share_a_feature_cache_key(folder):
    # Keras numbers unnamed layers per process (`mp_net_tokenizer_1`): a
    # second seed's model would miss the cache its first one wrote.
    loads = [MPNetTextEncoder(preset=str(folder), name="text_encoder") for _ in range(2)]
    for encoder in loads:
        encoder(np.array(TEXTS, object))
    assert encoder_fingerprint(loads[0]) == encoder_fingerprint(loads[1])


def test_a_folder_of_another_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(MmtaskError, match="model_type 'mpnet'"):
        load_mpnet_backbone(tmp_path)
    with pytest.raises(MmtaskError, match="vocab.txt not found"):
        MPNetTextEncoder(preset=str(tmp_path))
