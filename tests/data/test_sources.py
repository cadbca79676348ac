import pytest

from mmtask.data import read_posts
from mmtask.errors import DataError, MmtaskError


def test_mvsa_folder(mvsa_root):
    posts = read_posts(mvsa_root, split="val")
    assert posts.ids == ["5", "4"] and "post_sentiment" in posts.tasks


def test_manifest_keeps_only_label_names_of_its_columns(mvsa_root):
    manifest = mvsa_root / "m.csv"
    manifest.write_text("image,text,mood\ndata/1.jpg,hi,glad\ndata/2.jpg,yo,\n")
    names = {"mood": ["sad", "glad"], "post_sentiment": ["negative", "neutral", "positive"]}
    posts = read_posts(manifest, text_column="text", label_columns=["mood"], label_names=names)
    assert posts.label_names == {"mood": ["sad", "glad"]}
    assert posts.labels["mood"].tolist() == [1, -1]
    with pytest.raises(MmtaskError, match="split"):
        read_posts(manifest, split="train", text_column="text", label_columns=["mood"])
    unlabelled = read_posts(manifest, text_column="text", labelled=False)
    assert unlabelled.tasks == [] and unlabelled.texts == ["hi", "yo"]


def test_unlabelled_folder(mvsa_root):
    (mvsa_root / "labelResultAll.txt").unlink()
    posts = read_posts(mvsa_root, labelled=False)
    assert posts.ids == ["1", "2", "3", "4", "5"] and posts.tasks == []
    with pytest.raises(DataError, match="labelResultAll.txt"):
        read_posts(mvsa_root)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such"):
        read_posts(tmp_path / "nothing")
