"""`mmtask tune`: search spaces, k folds, the cross-validated search and its written recipe."""

import csv
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

import mmtask
from mmtask.cli import build_parser, main
from mmtask.data import write_synthetic_mvsa
from mmtask.errors import MmtaskError, SpecError
from mmtask.spec import RunSpec
from mmtask.training import TrainingResult
from mmtask.tuning import SearchSpace, fold_score, k_folds, tune

ROOT = Path(__file__).resolve().parents[1]
SEARCH_SPACES = sorted((ROOT / "configs" / "search").glob("*.yaml"))

TINY = {
    "model": {
        "image_size": 16,
        "text_encoder": {
            "name": "transformer",
            "options": {"embed_dim": 8, "intermediate_dim": 8, "sequence_length": 8},
        },
        "image_encoder": {"name": "small_cnn", "options": {"filters": [4], "output_dim": 8}},
        "fusion": {"name": "concat", "options": {"units": [8]}},
        "tasks": [
            {"name": "text_sentiment", "input": "text"},
            {"name": "image_sentiment", "input": "image"},
            {"name": "post_sentiment", "input": "fused", "hidden_units": [8]},
        ],
    },
    "training": {"epochs": 1, "batch_size": 16, "augment": False},
}
SPACE = {
    "training.learning_rate": {"log_uniform": [1.0e-3, 1.0e-2]},
    "model.fusion.options.dropout": {"uniform": [0.0, 0.5]},
    "model.tasks[2].hidden_units": {"choice": [[4], [8, 4]]},
}


@pytest.fixture(scope="module")
def posts(tmp_path_factory):
    root = write_synthetic_mvsa(
        tmp_path_factory.mktemp("tune") / "data", num_posts=40, image_size=16, seed=0
    )
    return mmtask.read_mvsa(root, split="train")


def test_space_declares_one_keras_tuner_hyperparameter_per_path():
    space = SearchSpace.from_dict({**SPACE, "training.epochs": {"int": [2, 6], "step": 2}})
    declared = {hp.name: hp for hp in space.hyperparameters().space}
    assert list(declared) == [*SPACE, "training.epochs"]
    rate = declared["training.learning_rate"]
    assert (rate.min_value, rate.max_value, rate.sampling) == (1.0e-3, 1.0e-2, "log")
    assert declared["model.fusion.options.dropout"].sampling == "linear"
    assert (declared["training.epochs"].min_value, declared["training.epochs"].step) == (2, 2)
    # KerasTuner's choices are scalars of one type, so lists travel as JSON and come back.
    choices = declared["model.tasks[2].hidden_units"].values
    assert choices == ["[4]", "[8, 4]"]
    sampled = {"training.learning_rate": 0.002, "model.fusion.options.dropout": 0.1}
    sampled.update({"model.tasks[2].hidden_units": choices[1], "training.epochs": 4})
    assert space.values(sampled)["model.tasks[2].hidden_units"] == [8, 4]
    # A stepped grid's rounding noise is not written into recipes.
    stepped = SearchSpace.from_dict(
        {"model.fusion.options.dropout": {"uniform": [0, 0.5], "step": 0.1}}
    )
    assert stepped.values({"model.fusion.options.dropout": 0.1 * 3}) == {
        "model.fusion.options.dropout": 0.3
    }


def test_space_sets_the_fields_it_names():
    space = SearchSpace.from_dict(SPACE)
    spec = space.apply(
        RunSpec.from_dict(TINY),
        {
            "training.learning_rate": 0.004,
            "model.fusion.options.dropout": 0.3,
            "model.tasks[2].hidden_units": "[8, 4]",
        },
    )
    assert spec.training.learning_rate == 0.004
    assert spec.model.fusion.options == {"units": [8], "dropout": 0.3}
    assert spec.model.tasks[2].hidden_units == [8, 4]
    assert spec.model.tasks[0].hidden_units == []


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"uniform": [0.5, 0.1]}, "low < high"),
        ({"log_uniform": [0.0, 1.0]}, "first > 0"),
        ({"int": [1.5, 4]}, "two ints"),
        ({"uniform": [0.1, 0.5], "choice": [1, 2]}, "exactly one of"),
        ({"normal": [0, 1]}, "exactly one of"),
        ({"choice": []}, "non-empty list"),
        ({"choice": [16, 16]}, "twice"),
        ({"choice": [16, 32], "step": 2}, "`step` applies"),
        (0.5, "must map to a distribution"),
    ],
)
def test_space_rejects_a_malformed_entry_naming_its_path(entry, message):
    with pytest.raises(SpecError, match=re.escape(message)) as error:
        SearchSpace.from_dict({"training.batch_size": entry})
    assert "'training.batch_size'" in str(error.value)


@pytest.mark.parametrize(
    "path, entry, message",
    [
        ("training.learnin_rate", {"uniform": [0.1, 0.2]}, "has no field 'learnin_rate'"),
        ("model.tasks[3].dropout", {"uniform": [0.1, 0.2]}, "is a list of 3"),
        ("model.fusion.options.dropuot", {"uniform": [0.1, 0.2]}, "takes no option 'dropuot'"),
        ("model.fusion.units", {"choice": [[8]]}, "has no field 'units'"),
        ("training.optimizer.decay", {"choice": ["cosine", "cosin"]}, "'cosin'"),
        ("training.epochs", {"uniform": [1.0, 4.0]}, "is an int in the recipe"),
        ("model.image-size", {"choice": [16]}, "is not a field name"),
    ],
)
def test_space_rejects_a_path_or_value_that_does_not_fit_the_recipe(path, entry, message):
    space = SearchSpace.from_dict({path: entry})
    with pytest.raises(SpecError, match=re.escape(message)) as error:
        space.check(RunSpec.from_dict(TINY))
    assert repr(path) in str(error.value)


def test_space_asks_for_listed_tasks_to_tune_one():
    space = SearchSpace.from_dict({"model.tasks[0].dropout": {"uniform": [0.1, 0.2]}})
    with pytest.raises(SpecError, match="List the tasks in the recipe"):
        space.check(RunSpec())


@pytest.mark.parametrize("stratify", [None, "post_sentiment"])
def test_folds_partition_the_posts(posts, stratify):
    folds = k_folds(posts, 3, seed=1, stratify=stratify)
    held = [val.ids for _, val in folds]
    assert sorted(i for ids in held for i in ids) == sorted(posts.ids)
    assert max(map(len, held)) - min(map(len, held)) <= 1
    for train_posts, val_posts in folds:
        assert set(train_posts.ids) == set(posts.ids) - set(val_posts.ids)
        assert train_posts.ids == [i for i in posts.ids if i in set(train_posts.ids)]
    if stratify:
        counts = np.array([list(val.label_counts(stratify).values()) for _, val in folds])
        assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all()
    assert [v.ids for _, v in k_folds(posts, 3, seed=1, stratify=stratify)] == held
    assert [v.ids for _, v in k_folds(posts, 3, seed=2, stratify=stratify)] != held


@pytest.mark.parametrize(
    "k, stratify, message", [(1, None, "from 2"), (10_000, None, "from 2"), (3, "nope", "nope")]
)
def test_folds_refuse_bad_arguments(posts, k, stratify, message):
    with pytest.raises(MmtaskError, match=message):
        k_folds(posts, k, stratify=stratify)


def _result(history, best_epoch, report=None):
    return TrainingResult(None, history, report, selection={"best_epoch": best_epoch})


def test_fold_score_reads_the_kept_epoch():
    history = {"val_loss": [0.9, 0.5, 0.7], "val_post_sentiment_accuracy": [0.4, 0.6, 0.8]}
    assert fold_score(_result(history, 1), "val_post_sentiment_accuracy") == 0.6
    assert np.isnan(fold_score(_result(history, None), "val_loss"))
    with pytest.raises(MmtaskError, match="not logged"):
        fold_score(_result(history, 1), "val_post_accuracy")


def test_search_space_files_fit_the_recipes_their_commands_name():
    assert SEARCH_SPACES
    for path in SEARCH_SPACES:
        comments = " ".join(
            line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")
        )
        command = re.search(r"mmtask (tune .*?)(?=$|\. )", comments.replace("\\ ", " "))
        assert command, f"{path.name} documents no `mmtask tune` command"
        args = build_parser().parse_args(shlex.split(command.group(1)))
        assert ROOT / args.search == path
        SearchSpace.from_file(path).check(RunSpec.from_file(ROOT / args.spec))


def test_tune_fails_a_search_on_a_user_error_and_a_trial_on_a_diverging_one(
    posts, tmp_path, monkeypatch
):
    def refused(*args, **kwargs):
        raise SpecError("a part refused its options")

    monkeypatch.setattr("mmtask.tuning.tuner.train", refused)
    space = SearchSpace.from_dict(SPACE)
    with pytest.raises(SpecError, match="a part refused its options"):
        tune(RunSpec.from_dict(TINY), posts, space, tmp_path / "a", folds=2, max_trials=2)

    def diverged(*args, **kwargs):  # every epoch's val_loss NaN: none kept
        return _result({"val_loss": [float("nan")]}, None)

    monkeypatch.setattr("mmtask.tuning.tuner.train", diverged)
    with pytest.raises(MmtaskError, match="No trial of the search"):
        tune(RunSpec.from_dict(TINY), posts, space, tmp_path / "b", folds=2, max_trials=2)


def test_tune_writes_the_best_trial_as_a_recipe_and_resumes(posts, tmp_path, monkeypatch):
    space = SearchSpace.from_dict(SPACE)
    spec = RunSpec.from_dict(TINY)
    options = {"folds": 2, "max_trials": 2, "cache_dir": tmp_path / "cache"}
    result = tune(spec, posts, space, tmp_path / "search", **options)

    assert [row["status"] for row in result.trials] == ["COMPLETED", "COMPLETED"]
    for row in result.trials:
        assert row["score"] == pytest.approx(np.mean([row["fold_1"], row["fold_2"]]))
    best = min(result.trials, key=lambda row: row["score"])  # val_loss: lower is better
    assert (result.best_trial, result.best_score) == (best["trial"], best["score"])
    assert result.best_spec.training.learning_rate == best["training.learning_rate"]
    assert result.best_spec.model.fusion.options["dropout"] == best["model.fusion.options.dropout"]
    assert result.best_spec.model.tasks[2].hidden_units == best["model.tasks[2].hidden_units"]

    paths = result.save(tmp_path / "best.yaml", command="mmtask tune --spec tiny.yaml")
    text = paths["recipe"].read_text()
    assert f"val_loss {best['score']:.4f} ± {best['std']:.4f}" in text
    assert "Best of 2 trials" in text and "Command: mmtask tune --spec tiny.yaml" in text
    assert RunSpec.from_file(paths["recipe"]) == result.best_spec
    with paths["trials"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["score"]) for r in rows] == [r["score"] for r in result.trials]

    # The same search resumes from its folder: both trials are done, nothing trains.
    monkeypatch.setattr("mmtask.tuning.tuner.train", None)
    again = tune(spec, posts, space, tmp_path / "search", **options)
    assert again.trials == result.trials
    other = SearchSpace.from_dict({"training.learning_rate": {"uniform": [1.0e-3, 1.0e-2]}})
    with pytest.raises(MmtaskError, match="holds another search"):
        tune(spec, posts, other, tmp_path / "search", **options)


def test_cli_tune_writes_the_best_recipe(tmp_path, capsys):
    data = write_synthetic_mvsa(tmp_path / "data", num_posts=40, image_size=16, seed=0)
    recipe = tmp_path / "tiny.json"
    RunSpec.from_dict(TINY).save(recipe)
    search = tmp_path / "space.yaml"
    search.write_text("model.fusion.options.dropout: {uniform: [0.0, 0.5]}\n")
    out = tmp_path / "best.yaml"
    argv = ["tune", "--spec", str(recipe), "--search", str(search), "--data", str(data)]
    argv += ["--train-split", "train", "--folds", "2", "--max-trials", "1", "--out", str(out)]
    argv += ["--stratify", "post_sentiment", "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert f"recipe: {out}" in printed.out
    assert "fold 2/2: val_loss" in printed.err
    assert f"Command: mmtask tune --spec {recipe}" in out.read_text()
    assert (tmp_path / "best.search" / "search.json").is_file()
    best = RunSpec.from_file(out)
    assert 0.0 <= best.model.fusion.options["dropout"] <= 0.5
    assert main(argv) == 2  # --out exists
    assert "pass --overwrite" in capsys.readouterr().err
