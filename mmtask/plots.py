"""Figures of a run: learning curves, confusion matrices, loss weights, modality contributions.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so
nothing touches global plotting state or opens a window: figures are safe to
make in threads and notebooks, and `Figure.savefig` renders them with Agg.

Example:
```python
from mmtask.plots import plot_learning_curves, save_run_plots

figure = plot_learning_curves(json.loads(Path("run/history.json").read_text()))
figure.savefig("curves.png")
paths = save_run_plots("run")  # learning_curves.png, confusion_matrices.png, ...
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mmtask.errors import MmtaskError
from mmtask.evaluation import EvaluationReport, TaskReport
from mmtask.run_folder import CONTRIBUTIONS_FILE, HISTORY_FILE, REPORT_FILE

LEARNING_CURVES_FILE = "learning_curves.png"
CONFUSION_MATRICES_FILE = "confusion_matrices.png"
LOSS_WEIGHTS_FILE = "loss_weights.png"
MODALITY_CONTRIBUTIONS_FILE = "modality_contributions.png"
MODALITY_CONDITIONS = {
    "all": "all modalities",
    "text_masked": "text masked",
    "image_masked": "image masked",
}
_VAL = "val_"
_DPI = 100


def plot_learning_curves(history: Mapping[str, Sequence[float]]) -> Figure:
    """Per-task training and validation curves over epochs.

    One row per task: its loss on the left and, where the history has them,
    its accuracy and macro-F1 on the right (a single column when no task has
    either). Training curves are solid, validation curves dashed.

    Args:
        history: mapping of metric name -> one value per epoch, as in
            `history.json` or a Keras `History` (its `.history` is used). Tasks
            are found from the `{task}_loss` keys.
    """
    history = _check_history(history)
    tasks = _task_names(history, "_loss")
    if not tasks:
        raise ValueError(
            "Cannot plot learning curves: expected `{task}_loss` keys in the history. "
            f"Received keys: {sorted(history)}"
        )
    metrics = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    with_metrics = any(f"{t}_{m}" in history for t in tasks for m in metrics)
    columns = 2 if with_metrics else 1
    figure = Figure(figsize=(5.0 * columns, 3.0 * len(tasks)), dpi=_DPI, layout="constrained")
    axes = figure.subplots(len(tasks), columns, squeeze=False)
    for row, task in enumerate(tasks):
        loss_axes = axes[row][0]
        _plot_train_and_val(loss_axes, history, f"{task}_loss", "loss", "C0")
        loss_axes.set_title(_text(f"{task}: loss"))
        loss_axes.set_ylabel("loss")
        if with_metrics:
            metric_axes = axes[row][1]
            for i, (metric, label) in enumerate(metrics.items()):
                _plot_train_and_val(metric_axes, history, f"{task}_{metric}", label, f"C{i + 1}")
            metric_axes.set_title(_text(f"{task}: accuracy / macro-F1"))
            metric_axes.set_ylim(-0.02, 1.02)
        for ax in axes[row]:
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize="small")
    return figure


def plot_confusion_matrices(report: EvaluationReport | Mapping) -> Figure:
    """One confusion matrix per classifying head: rows true class, columns predicted, cells counts.

    Classification and binary tasks have one; the report's other tasks are left out.

    Args:
        report: EvaluationReport, or its dict form as saved in `report.json`
            (task -> accuracy, confusion, label_names, ...).
    """
    task_reports = [
        r for r in as_evaluation_report(report).tasks.values() if isinstance(r, TaskReport)
    ]
    if not task_reports:
        raise ValueError("Cannot plot confusion matrices: the report has no tasks that classify.")
    size = max(3.5, 0.6 * max(len(r.label_names) for r in task_reports) + 2.0)
    figure = Figure(figsize=(size * len(task_reports), size), dpi=_DPI, layout="constrained")
    axes = figure.subplots(1, len(task_reports), squeeze=False)[0]
    for ax, r in zip(axes, task_reports, strict=True):
        counts = np.asarray(r.confusion, dtype=np.int64)
        high = max(int(counts.max(initial=0)), 1)
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=high)
        for (true, predicted), value in np.ndenumerate(counts):
            color = "white" if value > high / 2 else "black"
            ax.text(predicted, true, str(value), ha="center", va="center", color=color)
        ticks = range(len(r.label_names))
        names = [_text(n) for n in r.label_names]
        ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(ticks, names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(_text(f"{r.task}\nn={r.count}, accuracy={r.accuracy:.3f}"))
    return figure


def plot_loss_weights(history: Mapping[str, Sequence[float]]) -> Figure:
    """The weight the loss weighting gave each task's loss, per epoch, one line per task.

    Args:
        history: mapping of metric name -> one value per epoch; the
            `{task}_loss_weight` keys are plotted.
    """
    history = _check_history(history)
    tasks = _task_names(history, "_loss_weight")
    if not tasks:
        raise ValueError(
            "Cannot plot loss weights: expected `{task}_loss_weight` keys in the history. "
            f"Received keys: {sorted(history)}"
        )
    figure = Figure(figsize=(6.0, 3.5), dpi=_DPI, layout="constrained")
    ax = figure.subplots()
    markers = "os^Dv<>p"
    for i, task in enumerate(tasks):
        values = history[f"{task}_loss_weight"]
        ax.plot(
            range(1, len(values) + 1),
            values,
            marker=markers[i % len(markers)],
            markersize=max(3, 9 - 2 * i),  # equal weights stay visible one over another
            color=f"C{i}",
            label=_text(task),
        )
    ax.set_title("Loss weight per task")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("weight")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def plot_modality_contributions(contributions: Mapping[str, Mapping[str, float]]) -> Figure:
    """Grouped bars of each head's accuracy with all modalities, text masked and image masked.

    Args:
        contributions: mapping of task -> {"all": accuracy, "text_masked":
            accuracy, "image_masked": accuracy}, accuracies in [0, 1]. A
            condition left out of a task has no bar.
    """
    if not isinstance(contributions, Mapping) or not contributions:
        raise ValueError(
            "Cannot plot modality contributions: expected a non-empty dict of task -> "
            f"{{condition: accuracy}}. Received: {contributions!r:.200}"
        )
    for task, accuracies in contributions.items():
        if not isinstance(accuracies, Mapping) or not accuracies:
            raise ValueError(
                f"Invalid accuracies for task {task!r}: expected a non-empty dict with keys among "
                f"{list(MODALITY_CONDITIONS)}. Received: {accuracies!r:.200}"
            )
        unknown = sorted(set(accuracies) - set(MODALITY_CONDITIONS))
        if unknown:
            raise ValueError(
                f"Invalid conditions for task {task!r}: expected keys among "
                f"{list(MODALITY_CONDITIONS)}. Received: {unknown}"
            )
        for condition, value in accuracies.items():
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"Invalid accuracy for task {task!r}, {condition!r}: expected a number in "
                    f"[0, 1]. Received: {value!r}"
                )
    tasks = list(contributions)
    figure = Figure(figsize=(max(5.0, 1.6 * len(tasks) + 2.0), 3.8), dpi=_DPI, layout="constrained")
    ax = figure.subplots()
    width = 0.8 / len(MODALITY_CONDITIONS)
    for i, (condition, label) in enumerate(MODALITY_CONDITIONS.items()):
        positions = [j for j, t in enumerate(tasks) if condition in contributions[t]]
        if not positions:
            continue
        values = [float(contributions[tasks[j]][condition]) for j in positions]
        offset = (i - (len(MODALITY_CONDITIONS) - 1) / 2) * width
        bars = ax.bar([j + offset for j in positions], values, width, color=f"C{i}", label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize="x-small", padding=1)
    ax.set_xticks(range(len(tasks)), [_text(t) for t in tasks])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy with a modality masked")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return figure


def save_run_plots(run_dir: str | Path) -> dict[str, Path]:
    """Write the plots of a run folder next to its `history.json` and `report.json`.

    Writes `learning_curves.png`, `confusion_matrices.png`, and, when the
    history holds loss weights, `loss_weights.png`, and, when the run measured
    them (`contributions.json`), `modality_contributions.png`.

    Args:
        run_dir: str | Path. A run folder written by `mmtask.training.save_run`.

    Returns:
        Plot name ("learning_curves", "confusion_matrices", "loss_weights") -> PNG path.

    Raises:
        MmtaskError: the folder or one of its two JSON files is missing,
            unreadable, or holds nothing these plots can show.
    """
    run_dir = Path(run_dir)
    history = read_run_file(run_dir, HISTORY_FILE)
    report = read_run_file(run_dir, REPORT_FILE)
    plotters = {
        "learning_curves": (LEARNING_CURVES_FILE, HISTORY_FILE, plot_learning_curves, history),
    }
    try:
        classifying = any(
            isinstance(r, TaskReport) for r in as_evaluation_report(report).tasks.values()
        )
    except ValueError as error:
        raise MmtaskError(f"{run_dir / REPORT_FILE}: {error}") from error
    if classifying:
        plotters["confusion_matrices"] = (
            CONFUSION_MATRICES_FILE,
            REPORT_FILE,
            plot_confusion_matrices,
            report,
        )
    if isinstance(history, Mapping) and _task_names(history, "_loss_weight"):
        plotters["loss_weights"] = (LOSS_WEIGHTS_FILE, HISTORY_FILE, plot_loss_weights, history)
    if (run_dir / CONTRIBUTIONS_FILE).is_file():
        plotters["modality_contributions"] = (
            MODALITY_CONTRIBUTIONS_FILE,
            CONTRIBUTIONS_FILE,
            plot_modality_contributions,
            read_run_file(run_dir, CONTRIBUTIONS_FILE),
        )
    paths = {}
    for name, (file_name, source, plot, data) in plotters.items():
        try:
            figure = plot(data)
        except ValueError as error:
            raise MmtaskError(f"{run_dir / source}: {error}") from error
        paths[name] = run_dir / file_name
        figure.savefig(paths[name], format="png")
    return paths


def read_run_file(run_dir: str | Path, name: str):
    """The parsed JSON file `name` of a run folder; MmtaskError if it is missing or unreadable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MmtaskError(f"No run folder at {run_dir}")
    path = run_dir / name
    if not path.is_file():
        raise MmtaskError(f"No {name} in run folder {run_dir}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MmtaskError(f"{path}: not valid JSON ({error})") from error


def as_evaluation_report(report: EvaluationReport | Mapping) -> EvaluationReport:
    """`report` as an EvaluationReport; a dict is read with `EvaluationReport.from_dict`."""
    if isinstance(report, EvaluationReport):
        return report
    if isinstance(report, Mapping):
        return EvaluationReport.from_dict(report)
    raise ValueError(
        f"Expected an EvaluationReport or its dict form. Received: {type(report).__name__}"
    )


def _check_history(history) -> dict[str, list]:
    history = getattr(history, "history", history)  # a keras.callbacks.History
    if not isinstance(history, Mapping):
        raise ValueError(
            f"Expected a history dict of metric name -> values per epoch. "
            f"Received: {type(history).__name__}"
        )
    for key, values in history.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ValueError(
                f"Invalid history entry {key!r}: expected a list of numbers, one per epoch. "
                f"Received: {values!r:.200}"
            )
        if not all(_is_number(v) for v in values):
            raise ValueError(
                f"Invalid history entry {key!r}: expected numbers only. Received: {values!r:.200}"
            )
    return {str(k): list(v) for k, v in history.items()}


def _task_names(history: Mapping[str, Sequence[float]], suffix: str) -> list[str]:
    """Tasks with a `{task}{suffix}` key, in history order; `val_` copies of keys are not tasks."""
    tasks = []
    for key in history:
        if not key.endswith(suffix) or len(key) == len(suffix):
            continue
        if key.startswith(_VAL) and key[len(_VAL) :] in history:
            continue
        tasks.append(key[: -len(suffix)])
    return tasks


def _plot_train_and_val(ax, history, key: str, label: str, color: str) -> None:
    for name, style in ((key, "-"), (_VAL + key, "--")):
        values = history.get(name)
        if values:
            split = "val" if name.startswith(_VAL) else "train"
            ax.plot(
                range(1, len(values) + 1),
                values,
                linestyle=style,
                marker="o",
                markersize=3,
                color=color,
                label=f"{split} {label}",
            )


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _text(text: str) -> str:
    """`text` shown literally: a `$` in a task or class name does not start math mode."""
    return str(text).replace("$", r"\$")
