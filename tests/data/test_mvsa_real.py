"""The real MVSA-Single copy in ../shared: counts from its README."""

import time
from pathlib import Path

import pytest

from mmtask.data import make_dataset, read_mvsa

MVSA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mvsa_single"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MVSA_ROOT.is_dir(), reason=f"real MVSA data not found at {MVSA_ROOT}"),
]


def test_read_all_posts():
    # The first read decodes every image once (about 14 s on 2 cores); reads after it
    # find the images in the decode cache and only hash them.
    read_mvsa(MVSA_ROOT)
    start = time.perf_counter()
    posts = read_mvsa(MVSA_ROOT)
    seconds = time.perf_counter() - start
    assert len(posts) == 4419 and posts.report.read == 4419 and posts.report.skipped == {}
    assert (posts.labels["post_sentiment"] == -1).sum() == 358
    assert posts.label_counts("text_sentiment") == {
        "negative": 1120,
        "neutral": 1729,
        "positive": 1570,
    }
    assert posts.label_counts("image_sentiment") == {
        "negative": 1108,
        "neutral": 846,
        "positive": 2465,
    }
    assert posts.label_counts("post_sentiment") == {
        "negative": 1223,
        "neutral": 423,
        "positive": 2415,
    }
    assert seconds < 15, f"reading MVSA took {seconds:.1f} s"


def test_splits_and_a_batch():
    assert len(read_mvsa(MVSA_ROOT, split="train")) == 3969
    val = read_mvsa(MVSA_ROOT, split="val")
    assert len(val) == 450
    features, labels, masks = next(iter(make_dataset(val, image_size=64, batch_size=16)))
    assert features["image"].shape == (16, 64, 64, 3) and features["text"].shape == (16,)
    assert set(labels) == set(masks) == {"text_sentiment", "image_sentiment", "post_sentiment"}
