"""Run plots: one panel per task, labelled with tasks and classes, written as non-blank PNGs."""

import json
import types

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from mmtask.errors import MmtaskError
from mmtask.evaluation import EvaluationReport, classification_report
from mmtask.plots import (
    plot_confusion_matrices,
    plot_learning_curves,
    plot_loss_weights,
    plot_modality_contributions,
    save_run_plots,
)

TASKS = ["text_sentiment", "post_sentiment"]
HISTORY = {
    "loss": [2.2, 1.9, 1.7],
    "text_sentiment_loss": [1.1, 0.9, 0.8],
    "text_sentiment_accuracy": [0.40, 0.55, 0.60],
    "text_sentiment_macro_f1": [0.30, 0.45, 0.52],
    "text_sentiment_loss_weight": [1.0, 0.8, 0.7],
    "post_sentiment_loss": [1.1, 1.0, 0.9],
    "post_sentiment_accuracy": [0.35, 0.40, 0.50],
    "post_sentiment_macro_f1": [0.20, 0.30, 0.41],
    "post_sentiment_loss_weight": [1.0, 1.2, 1.3],
    "val_loss": [2.3, 2.1, 2.0],
    "val_text_sentiment_loss": [1.2, 1.0, 0.95],
    "val_text_sentiment_accuracy": [0.38, 0.50, 0.52],
    "val_text_sentiment_macro_f1": [0.25, 0.40, 0.44],
    "val_text_sentiment_loss_weight": [1.0, 0.8, 0.7],
    "val_post_sentiment_loss": [1.15, 1.05, 1.0],
    "val_post_sentiment_accuracy": [0.30, 0.36, 0.42],
    "val_post_sentiment_macro_f1": [0.15, 0.22, 0.33],
    "val_post_sentiment_loss_weight": [1.0, 1.2, 1.3],
}
NAMES = ["negative", "neutral", "positive"]
CONFUSION = {
    "text_sentiment": [[5, 1, 0], [2, 3, 1], [0, 1, 7]],
    "post_sentiment": [[4, 2, 0], [1, 2, 3], [1, 0, 6]],
}


def report_dict():
    """A report.json with hand-picked metric values (not computed from the confusions)."""
    return {
        task: {
            "task": task,
            "label_names": NAMES,
            "count": int(np.sum(confusion)),
            "accuracy": 0.75,
            "macro_f1": 0.7,
            "weighted_f1": 0.72,
            "confusion": confusion,
        }
        for task, confusion in CONFUSION.items()
    }


def write_run(folder, history=HISTORY, report=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "report.json").write_text(json.dumps(report or report_dict()))
    return folder


def assert_png_not_blank(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB")).astype(np.int32)
    assert pixels.std() > 0
    colours = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert np.unique(colours).size > 1


def titles(figure):
    return [ax.get_title() for ax in figure.axes]


def test_learning_curves_have_a_loss_and_a_metric_panel_per_task():
    figure = plot_learning_curves(HISTORY)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2 * len(TASKS)
    for task in TASKS:
        assert f"{task}: loss" in titles(figure)
        assert f"{task}: accuracy / macro-F1" in titles(figure)
    loss_axes = figure.axes[titles(figure).index("post_sentiment: loss")]
    curves = {line.get_label(): list(line.get_ydata()) for line in loss_axes.lines}
    assert curves == {
        "train loss": HISTORY["post_sentiment_loss"],
        "val loss": HISTORY["val_post_sentiment_loss"],
    }
    metric_axes = figure.axes[titles(figure).index("text_sentiment: accuracy / macro-F1")]
    assert len(metric_axes.lines) == 4  # accuracy and macro-F1, train and val


def test_learning_curves_of_a_history_with_losses_only():
    history = {"loss": [1.0, 0.5], "a_loss": [0.6, 0.3], "b_loss": [0.4, 0.2]}
    figure = plot_learning_curves(types.SimpleNamespace(history=history))  # a Keras History
    assert titles(figure) == ["a: loss", "b: loss"]
    assert [len(ax.lines) for ax in figure.axes] == [1, 1]


@pytest.mark.parametrize(
    "history, message",
    [
        ({"loss": [1.0], "val_loss": [1.1], "accuracy": [0.5]}, "_loss"),
        ({}, "_loss"),
        ({"a_loss": "0.5"}, "a_loss"),
        ({"a_loss": [0.5, None]}, "a_loss"),
        ([0.5, 0.4], "history dict"),
    ],
)
def test_learning_curves_reject_what_they_cannot_plot(history, message):
    with pytest.raises(ValueError, match=message):
        plot_learning_curves(history)


@pytest.mark.parametrize("as_object", [False, True])
def test_confusion_matrices_one_per_head_with_classes_and_counts(as_object):
    report = report_dict()
    if as_object:
        tasks = {}
        for task, confusion in CONFUSION.items():
            labels, predicted = np.nonzero(np.asarray(confusion))
            repeats = np.asarray(confusion)[labels, predicted]
            tasks[task] = classification_report(
                task, np.repeat(labels, repeats), np.repeat(predicted, repeats), NAMES
            )
        report = EvaluationReport(tasks)
    figure = plot_confusion_matrices(report)
    assert len(figure.axes) == len(CONFUSION)
    for ax, (task, confusion) in zip(figure.axes, CONFUSION.items(), strict=True):
        assert task in ax.get_title() and f"n={np.sum(confusion)}" in ax.get_title()
        assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
        assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
        cells = sorted((t.get_position()[::-1], t.get_text()) for t in ax.texts)
        expected = sorted(((r, c), str(v)) for (r, c), v in np.ndenumerate(confusion))
        assert cells == expected


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["text_sentiment"].update(confusion=[[1, 2], [3, 4]]), "3 x 3"),
        (lambda r: r["post_sentiment"].pop("label_names"), "label_names"),
        (lambda r: r.clear(), "no tasks"),
    ],
)
def test_confusion_matrices_reject_bad_reports(change, message):
    report = report_dict()
    change(report)
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrices(report)


def test_loss_weights_one_line_per_task():
    figure = plot_loss_weights(HISTORY)
    assert len(figure.axes) == 1
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == TASKS
    for line, task in zip(ax.lines, TASKS, strict=True):
        assert list(line.get_ydata()) == HISTORY[f"{task}_loss_weight"]
    with pytest.raises(ValueError, match="_loss_weight"):
        plot_loss_weights({"loss": [1.0], "a_loss": [1.0]})


def test_modality_contributions_bars_per_head_and_condition():
    contributions = {
        "text_sentiment": {"all": 0.8, "text_masked": 0.4, "image_masked": 0.78},
        "image_sentiment": {"all": 0.7, "text_masked": 0.69, "image_masked": 0.35},
    }
    figure = plot_modality_contributions(contributions)
    assert len(figure.axes) == 1
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(contributions)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["all modalities", "text masked", "image masked"]
    heights = [round(bar.get_height(), 6) for bar in ax.patches]
    # Bars are drawn condition by condition, each across the tasks.
    expected = [
        c[k] for k in ("all", "text_masked", "image_masked") for c in contributions.values()
    ]
    assert heights == expected


@pytest.mark.parametrize(
    "contributions, message",
    [
        ({}, "non-empty"),
        ({"a": {"all": 0.5, "audio_masked": 0.3}}, "audio_masked"),
        ({"a": {"all": 1.5}}, r"\[0, 1\]"),
        ({"a": {"all": float("nan")}}, r"\[0, 1\]"),
        ({"a": 0.5}, "'a'"),
    ],
)
def test_modality_contributions_reject_bad_input(contributions, message):
    with pytest.raises(ValueError, match=message):
        plot_modality_contributions(contributions)


def test_save_run_plots_writes_non_blank_pngs(tmp_path):
    run = write_run(tmp_path / "run")
    paths = save_run_plots(run)
    assert set(paths) == {"learning_curves", "confusion_matrices", "loss_weights"}
    for name, path in paths.items():
        assert path == run / f"{name}.png"
        assert_png_not_blank(path)


def test_save_run_plots_without_loss_weights(tmp_path):
    history = {k: v for k, v in HISTORY.items() if not k.endswith("_loss_weight")}
    run = write_run(tmp_path / "run", history)
    assert set(save_run_plots(run)) == {"learning_curves", "confusion_matrices"}
    assert not (run / "loss_weights.png").exists()


def test_save_run_plots_user_errors(tmp_path):
    with pytest.raises(MmtaskError, match="No run folder"):
        save_run_plots(tmp_path / "nowhere")
    run = write_run(tmp_path / "run")
    (run / "report.json").unlink()
    with pytest.raises(MmtaskError, match="report.json"):
        save_run_plots(run)
    run = write_run(tmp_path / "bad", history={"loss": [1.0]})
    with pytest.raises(MmtaskError, match="history.json.*_loss"):
        save_run_plots(run)
    (run / "history.json").write_text("{not json")
    with pytest.raises(MmtaskError, match="not valid JSON"):
        save_run_plots(run)


def test_dollar_signs_in_names_are_drawn_literally(tmp_path):
    history = {"cost_$^$_loss": [1.0, 0.5], "cost_$^$_loss_weight": [1.0, 1.0]}
    report = report_dict()
    report["text_sentiment"]["label_names"] = ["$^$", "b", "c"]
    run = write_run(tmp_path / "run", history, report)
    for path in save_run_plots(run).values():
        assert_png_not_blank(path)
