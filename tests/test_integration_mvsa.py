"""Real data: a brief joint training on MVSA-Single beats the majority class on val posts."""

from pathlib import Path

import numpy as np
import pytest

from mmtask.data import read_mvsa
from mmtask.spec import ComponentSpec, ModelSpec, RunSpec, TrainingSpec
from mmtask.training import train

MVSA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mvsa_single"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MVSA_ROOT.is_dir(), reason=f"real MVSA data not found at {MVSA_ROOT}"),
]


def test_brief_training_beats_majority_on_val_posts():
    train_posts = read_mvsa(MVSA_ROOT, split="train")
    val_posts = read_mvsa(MVSA_ROOT, split="val")
    assert (len(train_posts), len(val_posts)) == (3969, 450)
    post = val_posts.labels["post_sentiment"]
    labelled = post[post >= 0]
    majority_rate = np.bincount(labelled).max() / len(labelled)

    spec = RunSpec(
        model=ModelSpec(
            image_size=64,
            text_encoder=ComponentSpec(
                "transformer",
                {
                    "max_tokens": 8000,
                    "sequence_length": 32,
                    "embed_dim": 32,
                    "intermediate_dim": 64,
                },
            ),
            image_encoder=ComponentSpec("small_cnn", {"filters": [16, 32, 64], "output_dim": 64}),
            fusion=ComponentSpec("concat", {"units": [64]}),
        ),
        training=TrainingSpec(epochs=3, batch_size=64, learning_rate=1e-3, cache=True),
    )
    result = train(spec, train_posts, val_posts, verbose=0)
    report = result.report.tasks["post_sentiment"]
    print(f"val post accuracy {report.accuracy:.4f} vs majority rate {majority_rate:.4f}")
    assert report.count == len(labelled)
    assert report.accuracy > majority_rate
