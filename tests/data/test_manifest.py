import json

import numpy as np
import pytest
from PIL import Image

from mmtask.data import read_manifest
from mmtask.errors import DataError, MmtaskError


@pytest.fixture
def folder(tmp_path, encode):
    """A manifest folder with images img/a.png, img/b.jpg, img/c.png and texts txt/*.txt."""
    (tmp_path / "img").mkdir()
    (tmp_path / "txt").mkdir()
    for name, fmt in (("a.png", "PNG"), ("b.jpg", "JPEG"), ("c.png", "PNG")):
        (tmp_path / "img" / name).write_bytes(encode(Image.new("RGB", (4, 4)), fmt))
    (tmp_path / "txt" / "a.txt").write_bytes(b"caf\xe9\r\n")
    (tmp_path / "txt" / "b.txt").write_bytes(b"hello\r\n")
    (tmp_path / "txt" / "c.txt").write_bytes("naïve".encode())
    return tmp_path


CSV = (
    "id,image,text,sentiment,topic\r\n"
    'p1,img/a.png,"hello, world",positive,sport\r\n'
    "p2,img/b.jpg,bye,,news\r\n"
    'p3,img/c.png,"multi\r\nline",negative,\r\n'
)


def test_csv_with_text_column(folder, tmp_path, monkeypatch):
    (folder / "m.csv").write_text(CSV, newline="")
    monkeypatch.chdir(tmp_path.parent)  # relative paths follow the manifest, not the cwd
    posts = read_manifest(
        folder / "m.csv",
        image_column="image",
        text_column="text",
        label_columns=["sentiment", "topic"],
        id_column="id",
    )
    assert posts.ids == ["p1", "p2", "p3"]
    assert posts.texts == ["hello, world", "bye", "multi\nline"]
    assert posts.image_paths == [str(folder / "img" / n) for n in ("a.png", "b.jpg", "c.png")]
    assert posts.tasks == ["sentiment", "topic"]
    assert posts.label_names == {"sentiment": ["negative", "positive"], "topic": ["news", "sport"]}
    np.testing.assert_array_equal(posts.labels["sentiment"], [1, -1, 0])
    np.testing.assert_array_equal(posts.labels["topic"], [1, 0, -1])
    np.testing.assert_array_equal(posts.masks()["sentiment"], [1, 0, 1])


def test_given_label_names_fix_the_order(folder):
    (folder / "m.csv").write_text(CSV, newline="")
    posts = read_manifest(
        folder / "m.csv",
        image_column="image",
        text_column="text",
        label_columns=["sentiment"],
        label_names={"sentiment": ["negative", "neutral", "positive"]},
    )
    assert posts.ids == ["1", "2", "3"]  # row numbers without an id column
    assert posts.label_names == {"sentiment": ["negative", "neutral", "positive"]}
    np.testing.assert_array_equal(posts.labels["sentiment"], [2, -1, 0])


def test_unknown_label_against_given_names(folder):
    (folder / "m.csv").write_text(CSV, newline="")
    kwargs = dict(
        image_column="image",
        text_column="text",
        label_columns=["topic"],
        label_names={"topic": ["sport", "weather"]},
    )
    with pytest.raises(DataError, match="'news'") as info:
        read_manifest(folder / "m.csv", **kwargs)
    assert info.value.line == 3 and info.value.path == str(folder / "m.csv")
    posts = read_manifest(folder / "m.csv", on_error="skip", **kwargs)
    assert posts.ids == ["1", "3"]
    assert posts.report.skipped == {"unknown_label": ["2"]}
    np.testing.assert_array_equal(posts.labels["topic"], [0, -1])


def test_jsonl_with_text_path_column(folder):
    records = [
        {"image": "img/a.png", "text_file": "txt/a.txt", "stars": 10, "spam": False},
        {"image": str(folder / "img" / "b.jpg"), "text_file": "txt/b.txt", "stars": None},
        {"image": "img/c.png", "text_file": "txt/c.txt", "stars": 2, "spam": ""},
    ]
    lines = [json.dumps(r) for r in records]
    (folder / "m.jsonl").write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n")
    posts = read_manifest(
        folder / "m.jsonl",
        image_column="image",
        text_path_column="text_file",
        label_columns=["stars", "spam"],
    )
    assert posts.ids == ["1", "2", "3"]
    assert posts.texts == ["café", "hello", "naïve"]
    # Integers are class names, sorted as numbers; a JSON bool column is binary.
    assert posts.label_names == {"stars": ["2", "10"], "spam": ["false", "true"]}
    assert posts.label_types == {"stars": "classification", "spam": "binary"}
    np.testing.assert_array_equal(posts.labels["stars"], [1, -1, 0])
    np.testing.assert_array_equal(posts.labels["spam"], [0, -1, -1])  # absent key = missing


def test_missing_column(folder):
    (folder / "m.csv").write_text(CSV, newline="")
    found = r"\['id', 'image', 'text', 'sentiment', 'topic'\]"
    with pytest.raises(DataError, match=f"'label'.*{found}"):
        read_manifest(
            folder / "m.csv", image_column="image", text_column="text", label_columns=["label"]
        )


def test_row_errors_name_the_line(folder):
    (folder / "m.csv").write_text(
        "id,image,text,y\n"
        "a,img/a.png,t,1\n"
        "b,img/missing.png,t,1\n"
        "a,img/c.png,t,0\n"
        "c,img/c.png,t\n"
        "d,txt/a.txt,t,0\n"
    )
    kwargs = dict(image_column="image", text_column="text", label_columns=["y"], id_column="id")
    with pytest.raises(DataError, match="missing.png") as info:
        read_manifest(folder / "m.csv", **kwargs)
    assert info.value.line == 3
    posts = read_manifest(folder / "m.csv", on_error="skip", **kwargs)
    assert posts.ids == ["a"]
    assert posts.report.skipped == {
        "missing_file": ["b"],
        "duplicate_id": ["a"],
        "malformed_row": ["m.csv:5"],
        "not_an_image": ["d"],
    }


def test_jsonl_bad_line(folder):
    (folder / "m.jsonl").write_text('{"image": "img/a.png", "text": "x", "y": 1}\n{oops\n')
    with pytest.raises(DataError, match="oops") as info:
        read_manifest(
            folder / "m.jsonl", image_column="image", text_column="text", label_columns=["y"]
        )
    assert info.value.line == 2


def test_missing_text_file(folder):
    (folder / "m.csv").write_text("image,text_file\nimg/a.png,txt/zz.txt\n")
    with pytest.raises(DataError, match="zz.txt") as info:
        read_manifest(
            folder / "m.csv", image_column="image", text_path_column="text_file", label_columns=[]
        )
    assert info.value.line == 2


def test_bad_arguments(folder):
    (folder / "m.csv").write_text(CSV, newline="")
    with pytest.raises(MmtaskError, match="exactly one"):
        read_manifest(folder / "m.csv", image_column="image", label_columns=["topic"])
    with pytest.raises(MmtaskError, match="exactly one"):
        read_manifest(
            folder / "m.csv",
            image_column="image",
            label_columns=["topic"],
            text_column="text",
            text_path_column="text",
        )
    with pytest.raises(MmtaskError, match="on_error"):
        read_manifest(
            folder / "m.csv",
            image_column="image",
            label_columns=["topic"],
            text_column="text",
            on_error="ignore",
        )
    (folder / "m.tsv").write_text("x")
    with pytest.raises(DataError, match=".csv"):
        read_manifest(folder / "m.tsv", image_column="image", label_columns=[], text_column="t")
    with pytest.raises(DataError, match="not found"):
        read_manifest(folder / "none.csv", image_column="image", label_columns=[], text_column="t")


def test_text_only_manifest(tmp_path):
    (tmp_path / "texts.csv").write_text(
        "text,label\r\ngreat flight,positive\r\nlost my bag,negative\r\n,neutral\r\n",
        newline="",
    )
    kwargs = dict(image_column=None, text_column="text", label_columns=["label"])
    # A post with neither a text nor an image is bad, even when texts may be missing.
    for allow_missing in ((), ("text",)):
        with pytest.raises(DataError, match="text of post 3 is empty") as info:
            read_manifest(tmp_path / "texts.csv", allow_missing=allow_missing, **kwargs)
        assert info.value.line == 4
    posts = read_manifest(tmp_path / "texts.csv", on_error="skip", **kwargs)
    assert posts.texts == ["great flight", "lost my bag"]
    assert posts.image_paths == ["", ""]
    assert posts.labels["label"].tolist() == [1, 0]
    assert posts.report.skipped == {"empty_text": ["3"]}


def test_posts_without_images_get_missing_images(tmp_path):
    from mmtask.data import make_dataset

    (tmp_path / "texts.csv").write_text("text,label\r\nhi,a\r\n", newline="")
    posts = read_manifest(
        tmp_path / "texts.csv", image_column=None, text_column="text", label_columns=["label"]
    )
    for augment in (False, True):
        features, _, _ = next(iter(make_dataset(posts, image_size=8, augment=augment, seed=0)))
        assert features["image"].shape == (1, 8, 8, 3)
        assert np.isnan(features["image"].numpy()).all()


TYPED_CSV = (
    "text,mood,urgent,tags,score\n"
    "a,happy,true,food|sport,1.5\n"
    "b,sad,false,[],2\n"
    "c,happy,,sport,\n"
    'd,sad,TRUE,"[""food""]",-0.25\n'
)


def test_label_types_are_inferred_from_the_cells(folder):
    (folder / "m.csv").write_text(TYPED_CSV)
    columns = ["mood", "urgent", "tags", "score"]
    posts = read_manifest(
        folder / "m.csv", image_column=None, text_column="text", label_columns=columns
    )
    assert posts.label_types == {
        "mood": "classification",
        "urgent": "binary",
        "tags": "multilabel",
        "score": "regression",
    }
    assert posts.label_names["urgent"] == ["false", "true"]
    np.testing.assert_array_equal(posts.labels["urgent"], [1, 0, -1, 1])
    assert posts.label_names["tags"] == ["food", "sport"]
    np.testing.assert_array_equal(posts.labels["tags"], [[1, 1], [0, 0], [0, 1], [1, 0]])
    assert posts.label_names["score"] == ["score"]
    np.testing.assert_array_equal(posts.labels["score"][:, 0], [1.5, 2.0, np.nan, -0.25])
    np.testing.assert_array_equal(posts.masks()["score"], [1, 1, 0, 1])
    assert posts.label_counts("tags") == {"food": 2, "sport": 2}


def test_explicit_label_types_override_the_inference(folder):
    (folder / "m.csv").write_text("text,stars\na,1\nb,3\nc,2\n")
    kwargs = dict(image_column=None, text_column="text", label_columns=["stars"])
    assert read_manifest(folder / "m.csv", **kwargs).label_types["stars"] == "classification"
    posts = read_manifest(folder / "m.csv", label_types={"stars": "regression"}, **kwargs)
    np.testing.assert_array_equal(posts.labels["stars"][:, 0], [1.0, 3.0, 2.0])
    with pytest.raises(MmtaskError, match="label_types"):
        read_manifest(folder / "m.csv", label_types={"stars": "ordinal"}, **kwargs)


def test_bad_cells_of_a_typed_column_follow_on_error(folder):
    (folder / "m.csv").write_text("text,score,flag\na,1.5,true\nb,lots,false\nc,2.5,maybe\n")
    kwargs = dict(
        image_column=None,
        text_column="text",
        label_columns=["score", "flag"],
        label_types={"score": "regression", "flag": "binary"},
    )
    with pytest.raises(DataError, match="'lots' in column 'score'.*a finite number") as info:
        read_manifest(folder / "m.csv", **kwargs)
    assert info.value.line == 3
    posts = read_manifest(folder / "m.csv", on_error="skip", **kwargs)
    assert posts.ids == ["1"]
    assert posts.report.skipped == {"bad_label": ["2", "3"]}


def test_unknown_class_in_a_label_set_against_given_names(folder):
    (folder / "m.csv").write_text("text,tags\na,food|sport\nb,food|golf\n")
    posts = read_manifest(
        folder / "m.csv",
        image_column=None,
        text_column="text",
        label_columns=["tags"],
        label_names={"tags": ["food", "sport"]},
        on_error="skip",
    )
    assert posts.report.skipped == {"unknown_label": ["2"]}
    np.testing.assert_array_equal(posts.labels["tags"], [[1, 1]])
