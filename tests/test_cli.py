"""The `mmtask` command: train, evaluate, predict, export, and one-line user errors."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mmtask.cli import main
from mmtask.data import read_mvsa, write_synthetic_mvsa

TINY_SPEC = """
model:
  image_size: 32
  text_encoder:
    name: transformer
    options: {max_tokens: 500, sequence_length: 12, embed_dim: 16, intermediate_dim: 16}
  image_encoder:
    name: small_cnn
    options: {filters: [8, 16], output_dim: 16}
  fusion:
    name: concat
    options: {units: [16]}
training:
  epochs: 1
  batch_size: 32
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_synthetic_mvsa(root / "data", num_posts=120, seed=2)
    spec = root / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    run = root / "run"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--spec",
            str(spec),
            "--train-split",
            "train",
            "--val-split",
            "val",
            "--out",
            str(run),
        ]
    )
    assert code == 0
    return root, data, run


def test_train_writes_a_run_folder(workspace):
    _, data, run = workspace
    for name in (
        "model.keras",
        "spec.json",
        "history.json",
        "report.json",
        "learning_curves.png",
        "confusion_matrices.png",
        "report.html",
        "contributions.json",
        "modality_contributions.png",
        "epochs.txt",
    ):
        assert (run / name).is_file(), name
    epochs = (run / "epochs.txt").read_text().splitlines()
    assert epochs[0].startswith("epoch 1/1  loss ")
    assert [line.split()[0] for line in epochs[2:5]] == [
        "text_sentiment",
        "image_sentiment",
        "post_sentiment",
    ]
    assert max(len(line) for line in epochs) < 80
    history = json.loads((run / "history.json").read_text())
    assert "val_post_sentiment_macro_f1" in history and len(history["loss"]) == 1
    report = json.loads((run / "report.json").read_text())
    val_count = len(read_mvsa(data, split="val"))
    assert report["text_sentiment"]["count"] == val_count


def test_evaluate_prints_and_saves_a_report(workspace, capsys):
    root, data, run = workspace
    out = root / "eval.json"
    code = main(
        ["evaluate", "--model", str(run), "--data", str(data), "--split", "val", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "macro_f1" in printed and "post_sentiment" in printed
    report = json.loads(out.read_text())
    assert set(report) == {"text_sentiment", "image_sentiment", "post_sentiment"}
    for task in report.values():
        assert sum(map(sum, task["confusion"])) == task["count"]


def test_predict_writes_labels_and_probabilities(workspace):
    root, data, run = workspace
    out = root / "predictions.csv"
    code = main(
        [
            "predict",
            "--model",
            str(run / "model.keras"),
            "--data",
            str(data),
            "--split",
            "val",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    val = read_mvsa(data, split="val")
    assert [r["id"] for r in rows] == val.ids
    for row in rows:
        probs = [
            float(row[f"post_sentiment_prob_{n}"]) for n in ("negative", "neutral", "positive")
        ]
        assert abs(sum(probs) - 1) < 1e-4
        names = ("negative", "neutral", "positive")
        assert row["post_sentiment_label"] == names[probs.index(max(probs))]


def test_predict_on_an_unlabelled_folder(workspace):
    root, data, run = workspace
    folder = root / "unlabelled"
    folder.mkdir()
    for post_id in ("3", "10"):
        for suffix in (".txt", ".jpg"):
            shutil.copy(data / "data" / f"{post_id}{suffix}", folder / f"{post_id}{suffix}")
    out = root / "unlabelled.csv"
    assert main(["predict", "--model", str(run), "--data", str(folder), "--out", str(out)]) == 0
    assert [r["id"] for r in csv.DictReader(out.open())] == ["3", "10"]


def test_export(workspace):
    root, _, run = workspace
    out = root / "exported"
    assert main(["export", "--model", str(run), "--out", str(out)]) == 0
    assert (out / "saved_model.pb").is_file()
    # A second export to the same path refuses without --overwrite.
    assert main(["export", "--model", str(run), "--out", str(out)]) == 2


def test_user_errors_are_one_line(workspace, tmp_path, capsys):
    _, data, run = workspace
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and err[0].startswith("mmtask train: error:")

    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  fusoin: concat\n")
    out = str(tmp_path / "r2")
    assert main(["train", "--data", str(data), "--spec", str(bad), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "fusoin" in err[-1] and len([e for e in err if "error" in e]) == 1

    assert main(["evaluate", "--model", str(tmp_path / "none.keras"), "--data", str(data)]) == 2
    assert "No saved model" in capsys.readouterr().err


def test_console_script_error_is_one_line_without_tensorflow_logs(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("MMTASK_TF_LOGS", "TF_CPP_MIN_LOG_LEVEL")
    }
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmtask.cli",
            "export",
            "--model",
            str(tmp_path / "x.keras"),
            "--out",
            str(tmp_path / "y"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert completed.returncode == 2
    # Nothing else: no traceback, and none of TensorFlow's start-up lines.
    assert len(completed.stderr.splitlines()) == 1, completed.stderr
    assert completed.stderr.startswith("mmtask export: error: No saved model")


def test_help_and_the_parser_do_not_import_tensorflow():
    code = (
        "import sys, mmtask, mmtask.cli\n"
        "mmtask.cli.build_parser()\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert {'train', 'make_dataset', 'MultiTaskModel'} <= set(dir(mmtask))\n"
        "from mmtask import MmtaskError\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported by mmtask.errors'\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    completed = subprocess.run(
        [sys.executable, "-m", "mmtask.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0 and "usage: mmtask" in completed.stdout


def test_public_names_still_import_from_the_package():
    import mmtask
    from mmtask import train
    from mmtask.training import train as training_train

    assert train is training_train
    assert mmtask.encoders.KerasHubImageEncoder.__name__ == "KerasHubImageEncoder"
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        mmtask.no_such_name  # noqa: B018


def test_verbose_takes_0_1_or_2(capsys):
    from mmtask.cli import build_parser

    args = build_parser().parse_args(["train", "--data", "d", "--out", "r", "--verbose", "2"])
    assert args.verbose == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--model", "m", "--data", "d", "--verbose", "3"])
    assert "invalid choice: 3" in capsys.readouterr().err


def test_pretrain_then_train_from_the_saved_encoder(workspace, tmp_path):
    _, data, _ = workspace
    posts = read_mvsa(data)
    source = tmp_path / "source.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "sentiment"])
        for text, label in zip(posts.texts, posts.labels["text_sentiment"], strict=True):
            writer.writerow([text, ("negative", "neutral", "positive")[label]])
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_SPEC)
    encoder = tmp_path / "text_encoder.keras"
    assert (
        main(
            [
                "pretrain",
                "--data",
                str(source),
                "--label-column",
                "sentiment",
                "--spec",
                str(spec),
                "--epochs",
                "1",
                "--out",
                str(encoder),
            ]
        )
        == 0
    )
    assert encoder.is_file()
    run_spec = tmp_path / "run.yaml"
    run_spec.write_text(
        TINY_SPEC.replace(
            "  text_encoder:\n    name: transformer\n"
            "    options: {max_tokens: 500, sequence_length: 12, embed_dim: 16, "
            "intermediate_dim: 16}\n",
            f"  text_encoder:\n    name: saved\n    options: {{path: '{encoder}'}}\n",
        )
    )
    assert "saved" in run_spec.read_text()
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--spec",
                str(run_spec),
                "--train-split",
                "train",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert (tmp_path / "run" / "model.keras").is_file()


def test_retrieve_needs_an_aligned_model(workspace, capsys):
    _, data, run = workspace
    assert main(["retrieve", "--model", str(run), "--data", str(data), "--split", "val"]) == 2
    assert "alignment" in capsys.readouterr().err


def test_retrieve_reports_recall_of_an_aligned_model(workspace, tmp_path, capsys):
    _, data, _ = workspace
    spec = tmp_path / "aligned.yaml"
    spec.write_text(TINY_SPEC.replace("training:", "  alignment: {name: contrastive}\ntraining:"))
    run = tmp_path / "aligned_run"
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--spec",
                str(spec),
                "--train-split",
                "train",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = main(
        [
            "retrieve",
            "--model",
            str(run),
            "--data",
            str(data),
            "--split",
            "val",
            "--ks",
            "1",
            "5",
            "--query",
            "happy sunny day",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["direction", "R@1", "R@5"]
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[1:3]}
    assert set(rows) == {"text_to_image", "image_to_text"}
    for values in rows.values():
        assert 0.0 <= values[0] <= values[1] <= 1.0
    val_ids = set(read_mvsa(data, split="val").ids)
    found = lines[3].split(": ", 1)[1].split(", ")
    assert len(found) == 5 and all(item.split()[0] in val_ids for item in found)


def test_misspelt_flags_are_errors_not_abbreviations(capsys):
    from mmtask.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", "d", "--epoch", "3", "--out", "r"])
    assert "--epoch" in capsys.readouterr().err


FROZEN_SPEC = TINY_SPEC.replace("output_dim: 16}", "output_dim: 16, trainable: false}").replace(
    "  epochs: 1\n", "  epochs: 4\n  augment: false\n"
)


def test_train_caches_frozen_encoders_and_keeps_the_best_epoch(workspace, tmp_path, capsys):
    _, data, _ = workspace
    spec = tmp_path / "frozen.yaml"
    spec.write_text(FROZEN_SPEC)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--spec", str(spec), "--train-split", "train"]
    args += ["--val-split", "val", "--out", str(run), "--cache-dir", str(tmp_path / "cache")]
    args += ["--monitor", "val_post_sentiment_accuracy"]
    assert main(args) == 0
    assert [p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()] == ["image"]
    selection = json.loads((run / "selection.json").read_text())
    history = json.loads((run / "history.json").read_text())
    values = history["val_post_sentiment_accuracy"]
    assert selection["monitor"] == "val_post_sentiment_accuracy"
    assert selection["best_epoch"] == int(np.argmax(values)) and selection["epochs_run"] == 4
    assert f"kept epoch {selection['best_epoch'] + 1} of 4" in capsys.readouterr().out
    report = json.loads((run / "report.json").read_text())
    assert report["post_sentiment"]["accuracy"] == pytest.approx(max(values), abs=1e-6)


def test_tf_logs_flag_or_environment_variable(monkeypatch):
    from mmtask.cli import build_parser

    argv = ["export", "--model", "m", "--out", "o"]
    monkeypatch.delenv("MMTASK_TF_LOGS", raising=False)
    assert not build_parser().parse_args(argv).tf_logs
    assert build_parser().parse_args([*argv, "--tf-logs"]).tf_logs
    monkeypatch.setenv("MMTASK_TF_LOGS", "1")
    assert build_parser().parse_args(argv).tf_logs


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_a_file_that_is_no_model_is_one_line(command, workspace, tmp_path, capsys):
    _, data, _ = workspace
    fake = tmp_path / "model.keras"
    fake.write_text("not a zip archive")
    args = [command, "--model", str(fake), "--out", str(tmp_path / "out")]
    if command != "export":
        args += ["--data", str(data)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mmtask {command}: error: Could not load a model")
    assert str(fake) in err[0]


def test_train_into_a_used_folder_needs_overwrite_and_then_replaces_it(workspace, capsys):
    root, data, run = workspace
    used = root / "used_run"
    used.mkdir(exist_ok=True)
    (used / "report.html").write_text("a previous run's page")
    args = ["train", "--data", str(data), "--spec", str(root / "tiny.yaml")]
    args += ["--train-split", "train", "--val-split", "val", "--out", str(used)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert main([*args, "--overwrite"]) == 0
    assert (used / "model.keras").is_file()
    assert "a previous run's page" not in (used / "report.html").read_text()
    assert not list(root.glob(".used_run.*"))


def test_ensemble_and_tta_predict_the_mean_of_their_parts(workspace, tmp_path):
    root, data, run = workspace

    def predicted(model, *extra):
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.csv"
        argv = ["predict", "--model", str(model), "--data", str(data), "--split", "val"]
        assert main([*argv, "--out", str(out), *extra]) == 0
        rows = list(csv.DictReader(out.open()))
        columns = [c for c in rows[0] if c.startswith("image_sentiment_prob_")]
        return np.array([[float(r[c]) for c in columns] for r in rows])

    plain = predicted(run)
    both = predicted(run, "--tta", "original", "flip")
    assert not np.allclose(both, plain, atol=1e-4)
    ensemble = tmp_path / "ensemble.keras"
    argv = ["ensemble", "--models", str(run), str(run / "model.keras"), "--out", str(ensemble)]
    assert main([*argv, "--tta", "flip"]) == 0
    assert main(argv) == 2  # the file exists
    # Two copies of one model seeing the flipped image, plus the plain one: the mean of both.
    flipped = predicted(ensemble)
    np.testing.assert_allclose((plain + flipped) / 2, both, atol=2e-4)
    assert (
        main(
            [
                "ensemble",
                "--models",
                str(run),
                "--out",
                str(tmp_path / "x.keras"),
                "--tta",
                "rotate",
            ]
        )
        == 2
    )


def test_train_reads_with_the_pixel_limit_it_is_given(workspace, tmp_path, capsys):
    root, data, run = workspace
    argv = ["train", "--data", str(data), "--train-split", "train", "--out", str(tmp_path / "r")]
    assert main([*argv, "--max-image-pixels", "10"]) == 2
    error = capsys.readouterr().err
    assert "over the limit of 10" in error and len(error.strip().splitlines()) == 1
