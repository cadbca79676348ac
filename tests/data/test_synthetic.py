import itertools

import numpy as np
import pytest

from mmtask.data import SENTIMENT_LABELS, read_mvsa, write_synthetic_mvsa
from mmtask.data.mvsa import merge_post_label
from mmtask.data.synthetic import _LABEL_WORDS


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_mvsa(
        tmp_path_factory.mktemp("synthetic"), num_posts=90, seed=3, image_size=32
    )


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_same_bytes(synthetic, tmp_path):
    again = write_synthetic_mvsa(tmp_path / "again", num_posts=90, seed=3, image_size=32)
    assert again == tmp_path / "again"
    assert _files(again) == _files(synthetic)
    other = _files(write_synthetic_mvsa(tmp_path / "other", num_posts=90, seed=4, image_size=32))
    assert other.keys() == _files(synthetic).keys() and other != _files(synthetic)


def test_layout_is_mvsa(synthetic):
    label_file = (synthetic / "labelResultAll.txt").read_bytes()
    assert label_file.startswith(b"ID\ttext,image\r\n") and label_file.count(b"\r\n") == 91
    train = (synthetic / "splits" / "train.txt").read_text().split()
    val = (synthetic / "splits" / "val.txt").read_text().split()
    assert len(val) == 18 and len(train) == 72
    assert sorted(train + val, key=int) == [str(i) for i in range(1, 91)]
    assert all((synthetic / "data" / f"{i}.txt").read_bytes().endswith(b"\r\n") for i in train)


def test_read_mvsa_reads_it_all(synthetic):
    posts = read_mvsa(synthetic)
    assert len(posts) == 90 and posts.report.skipped == {}
    assert len(read_mvsa(synthetic, split="train")) == 72
    pairs = set(zip(posts.labels["text_sentiment"], posts.labels["image_sentiment"], strict=True))
    assert pairs == set(itertools.product(range(3), repeat=2))
    assert (posts.labels["post_sentiment"] == -1).sum() > 0
    for t, i, p in zip(*(posts.labels[task] for task in posts.tasks), strict=True):
        merged = merge_post_label(SENTIMENT_LABELS[t], SENTIMENT_LABELS[i])
        assert p == (-1 if merged is None else SENTIMENT_LABELS.index(merged))


def test_some_texts_are_cp1252(synthetic):
    not_utf8 = []
    for path in (synthetic / "data").glob("*.txt"):
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            not_utf8.append(path.stem)
    assert 5 <= len(not_utf8) <= 45
    posts = read_mvsa(synthetic).select(not_utf8)
    assert all(any(c in text for c in "éïñçèûü“") for text in posts.texts)


def test_labels_are_in_the_content(synthetic):
    from PIL import Image

    posts = read_mvsa(synthetic)
    for text, label in zip(posts.texts, posts.labels["text_sentiment"], strict=True):
        assert set(text.split()) & set(_LABEL_WORDS[SENTIMENT_LABELS[label]]), text

    def mean_colour(label):
        index = SENTIMENT_LABELS.index(label)
        paths = [
            p
            for p, y in zip(posts.image_paths, posts.labels["image_sentiment"], strict=True)
            if y == index
        ]
        return np.mean([np.asarray(Image.open(p), np.float32).mean((0, 1)) for p in paths], 0)

    negative, positive = mean_colour("negative"), mean_colour("positive")
    assert negative[2] - negative[0] > 30  # blue-ish
    assert positive[0] - positive[2] > 30 and positive.mean() > negative.mean() + 40
