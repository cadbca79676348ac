"""Every bad input is a clear error or a counted skip, through the readers, tf.data and the CLI.

Each case of `bad_input_corpus` is read by the Python reader, served by
`make_dataset` and predicted by `mmtask predict`, under on_error "raise" and
"skip": a good post is kept everywhere, a bad one is an error naming its
file and line (raise) or a skip counted under its reason (skip), and
nothing reaches TensorFlow as a decoding error.
"""

import csv

import numpy as np
import pytest
import tensorflow as tf
from bad_input_corpus import CASES, GOOD_IDS, SIZE

import mmtask.training
from mmtask.cli import EXIT_USER_ERROR, main
from mmtask.data import make_dataset, read_manifest, read_mvsa
from mmtask.errors import DataError

MODES = ("raise", "skip")
CASES_BY_NAME = {case.name: case for case in CASES}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    return {case.name: case.write(root / case.name) for case in CASES}


@pytest.fixture(scope="module")
def tiny_model():
    from tiny_models import make_model

    return make_model(image_size=SIZE)


@pytest.fixture
def cli_model(tiny_model, monkeypatch):
    # The CLI gets the one tiny model in memory: loading a file (tested in
    # test_cli.py) and tracing predict anew for each case would take most of the time.
    monkeypatch.setattr(mmtask.training, "load_model", lambda path, safe_mode=True: tiny_model)
    return "tiny.keras"


def read(data: dict, on_error: str, allow_missing):
    if data["kind"] == "mvsa":
        return read_mvsa(data["path"], on_error=on_error, allow_missing=allow_missing)
    return read_manifest(
        data["path"],
        label_columns=[],
        on_error=on_error,
        allow_missing=allow_missing,
        **data["manifest"],
    )


def expected_ids(case) -> list[str]:
    return [*GOOD_IDS, "x"] if case.outcome == "kept" else list(GOOD_IDS)


def fails(case, on_error: str) -> bool:
    return case.outcome == "error" or (on_error == "raise" and case.reason is not None)


def cli_arguments(data: dict, case, on_error: str, model: str, out) -> list[str]:
    arguments = ["predict", "--model", model, "--data", str(data["path"]), "--out", str(out)]
    arguments += ["--on-error", on_error, "--verbose", "0"]
    if data["kind"] == "manifest":
        options = data["manifest"]
        arguments += ["--image-column", options["image_column"]]
        arguments += ["--text-column", options["text_column"], "--id-column", options["id_column"]]
    if case.allow_missing:
        arguments += ["--allow-missing", *case.allow_missing]
    return arguments


@pytest.mark.parametrize("on_error", MODES)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_case_is_kept_skipped_or_an_error(
    case, on_error, corpus, cli_model, tmp_path, capsys
):
    data = corpus[case.name]

    # The reader.
    if fails(case, on_error):
        with pytest.raises(DataError) as info:
            read(data, on_error, case.allow_missing)
        assert case.message in str(info.value)
        assert info.value.line is not None or case.outcome == "error"
        posts = None
    else:
        posts = read(data, on_error, case.allow_missing)
        assert posts.ids == expected_ids(case)
        skipped = {case.reason: [case.key]} if case.reason else {}
        assert posts.report.skipped == skipped
        if case.text is not None:
            assert posts.texts[posts.ids.index("x")] == case.text

    # tf.data: every post read decodes.
    if posts is not None:
        batches = list(make_dataset(posts, image_size=SIZE, batch_size=2))
        images = np.concatenate([features["image"].numpy() for features, _, _ in batches])
        assert images.shape == (len(posts), SIZE, SIZE, 3)
        assert np.isfinite(images).all()

    # The CLI: one line and exit 2 for an error, else a row for every post read.
    out = tmp_path / "predictions.csv"
    capsys.readouterr()
    code = main(cli_arguments(data, case, on_error, cli_model, out))
    err = capsys.readouterr().err
    if posts is None:
        assert code == EXIT_USER_ERROR
        assert case.message in err
        assert len(err.strip().splitlines()) == 1
        assert not out.exists()
    else:
        assert code == 0, err
        with out.open(newline="", encoding="utf-8") as handle:
            assert [row["id"] for row in csv.DictReader(handle)] == expected_ids(case)
        if case.reason:
            assert f"{case.reason}: 1 [{case.key}]" in err


def test_the_pixel_limit_is_configurable(corpus, cli_model, tmp_path, capsys):
    data = corpus["jpeg"]  # 8 x 8 images: 64 pixels
    posts = read(data, "skip", ())
    assert posts.ids == expected_ids(CASES_BY_NAME["jpeg"])
    # Posts that skip the readers' check still meet the limit in the pipeline, by name.
    with pytest.raises(tf.errors.InvalidArgumentError, match="more pixels than the limit of 63"):
        list(make_dataset(posts, image_size=SIZE, max_image_pixels=63))
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        list(make_dataset(posts.select(["x"]), image_size=SIZE, max_image_pixels=63))
    assert posts.image_paths[-1] in str(info.value)
    assert len(list(make_dataset(posts, image_size=SIZE, max_image_pixels=64))) == 1

    out = tmp_path / "predictions.csv"
    arguments = cli_arguments(data, CASES_BY_NAME["jpeg"], "skip", cli_model, out)
    capsys.readouterr()
    assert main([*arguments, "--max-image-pixels", "63"]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mmtask predict: error: no usable posts")
    assert "image_too_large: 3 [g1, g2, x]" in err[-1]
    assert not out.exists()


def test_posts_built_by_hand_are_checked_in_the_pipeline(tmp_path):
    from bad_input_corpus import png_bomb

    from mmtask.data import Posts, ReadReport

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb())
    posts = Posts(["b"], ["text"], [str(bomb)], {}, {}, ReadReport("by hand"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="bomb.png"):
        list(make_dataset(posts, image_size=SIZE))
