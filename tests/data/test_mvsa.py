import itertools
import shutil

import numpy as np
import pytest

from mmtask.data import SENTIMENT_LABELS, merge_post_label, read_mvsa
from mmtask.errors import DataError, MmtaskError

EXPECTED_MERGE = {
    ("negative", "negative"): "negative",
    ("negative", "neutral"): "negative",
    ("negative", "positive"): None,
    ("neutral", "negative"): "negative",
    ("neutral", "neutral"): "neutral",
    ("neutral", "positive"): "positive",
    ("positive", "negative"): None,
    ("positive", "neutral"): "positive",
    ("positive", "positive"): "positive",
}


@pytest.mark.parametrize("text, image", itertools.product(SENTIMENT_LABELS, repeat=2))
def test_merge_post_label(text, image):
    assert merge_post_label(text, image) == EXPECTED_MERGE[(text, image)]


def test_merge_post_label_rejects_unknown_labels():
    with pytest.raises(MmtaskError, match="Positive"):
        merge_post_label("Positive", "neutral")


def _names(posts, task):
    return [None if i < 0 else posts.label_names[task][i] for i in posts.labels[task]]


def test_read_all_posts(mvsa_root):
    posts = read_mvsa(mvsa_root)
    assert posts.ids == ["1", "2", "3", "4", "5"]
    assert posts.tasks == ["text_sentiment", "image_sentiment", "post_sentiment"]
    assert all(names == list(SENTIMENT_LABELS) for names in posts.label_names.values())
    assert _names(posts, "text_sentiment") == [
        "positive",
        "neutral",
        "positive",
        "negative",
        "neutral",
    ]
    assert _names(posts, "image_sentiment") == [
        "positive",
        "negative",
        "negative",
        "neutral",
        "neutral",
    ]
    assert _names(posts, "post_sentiment") == ["positive", "negative", None, "negative", "neutral"]
    assert posts.labels["post_sentiment"].dtype == np.int32
    np.testing.assert_array_equal(posts.masks()["post_sentiment"], [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(posts.masks()["text_sentiment"], [1, 1, 1, 1, 1])
    assert posts.texts == [
        "I love this #happy",
        "café “news”",
        "great day @friend",
        "so sad, naïve me",
        "meeting at 5 http://t.co/x",
    ]
    assert posts.image_paths[1] == str((mvsa_root / "data" / "2.jpg").resolve())
    assert posts.report.read == 5 and posts.report.skipped == {}
    assert posts.report.summary().startswith("read 5 posts from ")


def test_verbose_shows_progress(mvsa_root, capsys):
    read_mvsa(mvsa_root, verbose=True)
    assert "5/5" in capsys.readouterr().out


def test_splits_by_name_and_path(mvsa_root, tmp_path):
    assert read_mvsa(mvsa_root, split="train").ids == ["1", "2", "3"]
    val = read_mvsa(mvsa_root, split="val")
    assert val.ids == ["5", "4"]  # order of the split file
    assert _names(val, "post_sentiment") == ["neutral", "negative"]
    id_file = tmp_path / "mine.txt"
    id_file.write_text("3\r\n\r\n1\r\n")
    assert read_mvsa(mvsa_root, split=id_file).ids == ["3", "1"]
    assert read_mvsa(mvsa_root, split=str(id_file)).ids == ["3", "1"]


def test_missing_folder_label_file_or_split(tmp_path, mvsa_root):
    with pytest.raises(DataError, match="not found"):
        read_mvsa(tmp_path / "absent")
    with pytest.raises(DataError, match="test"):
        read_mvsa(mvsa_root, split="test")
    (mvsa_root / "labelResultAll.txt").unlink()
    with pytest.raises(DataError, match="labelResultAll.txt"):
        read_mvsa(mvsa_root)


def test_bogus_on_error(mvsa_root):
    with pytest.raises(MmtaskError, match=r"\['raise', 'skip'\].*bogus"):
        read_mvsa(mvsa_root, on_error="bogus")


def _append_row(root, row):
    with (root / "labelResultAll.txt").open("ab") as f:
        f.write(row.encode() + b"\r\n")


def _add_post(root, post_id, labels, jpeg):
    _append_row(root, f"{post_id}\t{labels}")
    (root / "data" / f"{post_id}.txt").write_bytes(b"text")
    (root / "data" / f"{post_id}.jpg").write_bytes(jpeg)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# name -> (break the folder, reason, bad id, file named by the error, line, other text)
ERROR_CASES = {
    "unknown_label": (
        lambda root, jpeg: _add_post(root, "6", "positive,happy", jpeg),
        "unknown_label",
        "6",
        "labelResultAll.txt",
        7,
        "happy",
    ),
    "duplicate_id": (
        lambda root, jpeg: _add_post(root, "2", "neutral,neutral", jpeg),
        "duplicate_id",
        "2",
        "labelResultAll.txt",
        7,
        "line 3",
    ),
    "malformed_row": (
        lambda root, jpeg: _append_row(root, "7 positive,positive"),
        "malformed_row",
        "labelResultAll.txt:7",
        "labelResultAll.txt",
        7,
        "7 positive",
    ),
    "missing_jpg": (
        lambda root, jpeg: (root / "data" / "3.jpg").unlink(),
        "missing_file",
        "3",
        "labelResultAll.txt",
        4,
        "3.jpg",
    ),
    "missing_txt": (
        lambda root, jpeg: (root / "data" / "3.txt").unlink(),
        "missing_text",
        "3",
        "labelResultAll.txt",
        4,
        "3.txt",
    ),
    "empty_jpg": (
        lambda root, jpeg: (root / "data" / "3.jpg").write_bytes(b""),
        "empty_file",
        "3",
        "labelResultAll.txt",
        4,
        "3.jpg",
    ),
    "not_an_image": (
        lambda root, jpeg: (root / "data" / "3.jpg").write_bytes(b"<html>404</html>"),
        "not_an_image",
        "3",
        "labelResultAll.txt",
        4,
        "3.jpg",
    ),
    "truncated_jpeg": (
        lambda root, jpeg: _truncate(root / "data" / "3.jpg"),
        "truncated_image",
        "3",
        "labelResultAll.txt",
        4,
        "3.jpg",
    ),
    "not_in_label_file": (
        lambda root, jpeg: (root / "splits" / "train.txt").write_text("1\n99\n2\n3\n"),
        "not_in_label_file",
        "99",
        "train.txt",
        2,
        "99",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_raise_naming_file_and_line(mvsa_root, noise_jpeg, case):
    corrupt, _, _, file_name, line, detail = ERROR_CASES[case]
    corrupt(mvsa_root, noise_jpeg(9))
    with pytest.raises(DataError) as info:
        read_mvsa(mvsa_root, split="train")
    error = info.value
    assert error.path.endswith(file_name) and error.line == line
    assert f"{file_name}:{line}: " in str(error)
    assert detail in str(error)


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_skip_and_report(mvsa_root, noise_jpeg, case):
    corrupt, reason, bad_id, _, _, _ = ERROR_CASES[case]
    corrupt(mvsa_root, noise_jpeg(9))
    posts = read_mvsa(mvsa_root, split="train", on_error="skip")
    assert posts.report.skipped == {reason: [bad_id]}
    expected = [i for i in ["1", "2", "3"] if i != bad_id or reason == "duplicate_id"]
    assert posts.ids == expected and posts.report.read == len(expected)
    summary = posts.report.summary()
    assert "skipped 1" in summary and reason in summary and bad_id in summary


def test_skipped_row_of_split_is_reported_once(mvsa_root):
    shutil.copy(mvsa_root / "data" / "1.jpg", mvsa_root / "data" / "3.jpg")
    _truncate(mvsa_root / "data" / "1.jpg")
    _append_row(mvsa_root, "8\tgreat,neutral")
    (mvsa_root / "splits" / "train.txt").write_text("1\n8\n2\n3\n")
    posts = read_mvsa(mvsa_root, split="train", on_error="skip")
    assert posts.ids == ["2", "3"]
    assert posts.report.skipped == {"unknown_label": ["8"], "truncated_image": ["1"]}
    assert "skipped 2" in posts.report.summary()


def test_files_of_other_splits_are_not_checked(mvsa_root):
    (mvsa_root / "data" / "4.jpg").unlink()  # a val post
    assert read_mvsa(mvsa_root, split="train").ids == ["1", "2", "3"]
    with pytest.raises(DataError, match="4.jpg"):
        read_mvsa(mvsa_root, split="val")
