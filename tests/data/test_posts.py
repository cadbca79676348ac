import numpy as np
import pytest

from mmtask.data import Posts, ReadReport
from mmtask.errors import MmtaskError


def _posts():
    return Posts(
        ids=["a", "b", "c", "d"],
        texts=["ta", "tb", "tc", "td"],
        image_paths=["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
        labels={"mood": [2, -1, 0, 2], "topic": np.array([0, 1, -1, -1])},
        label_names={"mood": ("sad", "meh", "glad"), "topic": ["news", "sport"]},
        report=ReadReport("somewhere", read=4, skipped={"empty_file": ["e"]}),
    )


def test_labels_masks_and_counts():
    posts = _posts()
    assert len(posts) == 4 and posts.tasks == ["mood", "topic"]
    assert posts.labels["mood"].dtype == np.int32
    masks = posts.masks()
    assert masks["mood"].dtype == np.float32
    np.testing.assert_array_equal(masks["mood"], [1, 0, 1, 1])
    np.testing.assert_array_equal(masks["topic"], [1, 1, 0, 0])
    assert posts.label_counts("mood") == {"sad": 1, "meh": 0, "glad": 2}
    assert posts.label_counts("topic") == {"news": 1, "sport": 1}
    with pytest.raises(MmtaskError, match="colour"):
        posts.label_counts("colour")


def test_select_keeps_given_order():
    selected = _posts().select(["d", "b"])
    assert selected.ids == ["d", "b"]
    assert selected.texts == ["td", "tb"] and selected.image_paths == ["d.jpg", "b.jpg"]
    np.testing.assert_array_equal(selected.labels["mood"], [2, -1])
    np.testing.assert_array_equal(selected.labels["topic"], [-1, 1])
    assert selected.report.read == 2 and selected.report.source == "somewhere"
    with pytest.raises(MmtaskError, match="zz"):
        _posts().select(["a", "zz"])


@pytest.mark.parametrize(
    "change, match",
    [
        ({"texts": ["x"]}, "4 ids, 1 texts"),
        ({"image_paths": []}, "0 image paths"),
        ({"labels": {"mood": [0, 1], "topic": [0, 0, 0, 0]}}, "shape"),
        ({"labels": {"mood": [0, 1, 2, 3], "topic": [0, 0, 0, 0]}}, r"\[-1, 2\]"),
        ({"ids": ["a", "a", "b", "c"]}, "unique"),
        ({"label_names": {"topic": ["x", "y"], "mood": ["s", "m", "g"]}}, "same tasks"),
    ],
)
def test_inconsistent_posts_are_rejected(change, match):
    fields = {
        name: getattr(_posts(), name)
        for name in ("ids", "texts", "image_paths", "labels", "label_names", "report")
    }
    with pytest.raises(MmtaskError, match=match):
        Posts(**{**fields, **change})


def test_report_summary():
    report = ReadReport("data/x", read=10)
    assert report.summary() == "read 10 posts from data/x, skipped 0"
    for post_id in ["1", "2", "3", "4", "5", "6"]:
        report.add_skip("truncated_image", post_id)
    report.add_skip("duplicate_id", "9")
    assert report.summary() == (
        "read 10 posts from data/x, skipped 7 "
        "(duplicate_id: 1 [9]; truncated_image: 6 [1, 2, 3, 4, 5, ...])"
    )


def test_typed_labels_are_checked_against_their_form():
    def posts(labels, names, label_type):
        return Posts(
            ["1", "2"],
            ["a", "b"],
            ["", ""],
            {"t": labels},
            {"t": names},
            ReadReport("x"),
            label_types={"t": label_type},
        )

    assert posts([[0.5], [np.nan]], ["t"], "regression").masks()["t"].tolist() == [1.0, 0.0]
    assert posts([[1, 0], [-1, -1]], ["a", "b"], "multilabel").masks()["t"].tolist() == [1.0, 0.0]
    with pytest.raises(MmtaskError, match="finite"):
        posts([[np.inf], [1.0]], ["t"], "regression")
    with pytest.raises(MmtaskError, match="rows of 0/1"):
        posts([[2, 0], [0, 0]], ["a", "b"], "multilabel")
    with pytest.raises(MmtaskError, match="2 class names"):
        posts([0, 1], ["a", "b", "c"], "binary")
    with pytest.raises(MmtaskError, match="expected one of"):
        posts([0, 1], ["a", "b"], "ordinal")


def test_split_holds_out_a_seeded_share_and_keeps_types():
    posts = Posts(
        [str(i) for i in range(10)],
        ["t"] * 10,
        [""] * 10,
        {"y": np.arange(10.0)},
        {"y": ["y"]},
        ReadReport("x"),
        label_types={"y": "regression"},
    )
    rest, held = posts.split(0.3, seed=1)
    assert len(held) == 3 and sorted(rest.ids + held.ids, key=int) == posts.ids
    assert held.ids == posts.split(0.3, seed=1)[1].ids != posts.split(0.3, seed=2)[1].ids
    assert held.label_types == {"y": "regression"}
    np.testing.assert_array_equal(held.labels["y"][:, 0], [float(i) for i in held.ids])
