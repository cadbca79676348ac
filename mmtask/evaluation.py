"""Per-task evaluation reports: accuracy, macro-F1, weighted-F1 and confusion matrices.

Computed with NumPy from the model's predictions over the labelled examples of
each task, so the numbers do not depend on batch boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


@dataclass
class TaskReport:
    """Metrics of one task over its labelled examples."""

    task: str
    label_names: list[str]
    count: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    confusion: list[list[int]]  # rows: true class, columns: predicted class

    @property
    def majority_rate(self) -> float:
        """Share of the most frequent true class: the accuracy of always guessing it.

        The baseline the accuracy has to beat; on skewed data a high accuracy
        can be no better than this.
        """
        counts = [sum(row) for row in self.confusion]
        total = sum(counts)
        return max(counts) / total if total else 0.0


@dataclass
class EvaluationReport:
    """Metrics of every task, printable as a table and savable as JSON."""

    tasks: dict[str, TaskReport]

    def to_dict(self) -> dict:
        """Task -> its fields, plus `majority_rate` (`from_dict` recomputes it)."""
        return {t: {**asdict(r), "majority_rate": r.majority_rate} for t, r in self.tasks.items()}

    @classmethod
    def from_dict(cls, data: Mapping) -> EvaluationReport:
        """Read what `to_dict` wrote (a saved report.json), checking every task.

        Raises:
            ValueError: a task misses a field, or its confusion matrix is not
                square with one row per class name.
        """
        names = [f.name for f in fields(TaskReport)]
        tasks = {}
        for task, entry in data.items():
            missing = [f for f in names if not isinstance(entry, Mapping) or f not in entry]
            if missing:
                raise ValueError(
                    f"Invalid report for task {task!r}: expected the fields {names}. "
                    f"Missing: {missing}"
                )
            report = TaskReport(**{f: entry[f] for f in names})
            classes = len(report.label_names)
            confusion = report.confusion
            square = isinstance(confusion, Sequence) and len(confusion) == classes
            square = square and all(
                isinstance(row, Sequence) and len(row) == classes for row in confusion
            )
            if not classes or not square:
                raise ValueError(
                    f"Invalid confusion matrix for task {task!r}: expected {classes} x "
                    f"{classes} counts for the classes {list(report.label_names)}. "
                    f"Received: {confusion!r:.200}"
                )
            tasks[task] = report
        return cls(tasks)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    def table(self) -> str:
        """A plain-text table, one row per task, then each confusion matrix.

        `majority` is the majority-class rate, the accuracy to beat.
        """
        lines = [
            f"{'task':<20} {'n':>6} {'majority':>9} {'accuracy':>9} {'macro_f1':>9} "
            f"{'weighted_f1':>12}"
        ]
        for r in self.tasks.values():
            lines.append(
                f"{r.task:<20} {r.count:>6} {r.majority_rate:>9.4f} {r.accuracy:>9.4f} "
                f"{r.macro_f1:>9.4f} {r.weighted_f1:>12.4f}"
            )
        for r in self.tasks.values():
            width = max(len(n) for n in r.label_names) + 1
            lines.append(f"\n{r.task} confusion (rows true, columns predicted):")
            lines.append(" " * width + "".join(f"{n:>{width}}" for n in r.label_names))
            for name, row in zip(r.label_names, r.confusion, strict=True):
                lines.append(f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in row))
        return "\n".join(lines)


def classification_report(
    task: str, labels: np.ndarray, predicted: np.ndarray, label_names: Sequence[str]
) -> TaskReport:
    """Metrics of integer predictions against integer labels (all labelled)."""
    num_classes = len(label_names)
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted_count = confusion.sum(axis=0).astype(np.float64)
    denominator = support + predicted_count
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(num_classes), where=denominator > 0)
    count = int(support.sum())
    return TaskReport(
        task=task,
        label_names=list(label_names),
        count=count,
        accuracy=float(true_positive.sum() / count) if count else 0.0,
        macro_f1=float(f1.mean()),
        weighted_f1=float((f1 * support).sum() / count) if count else 0.0,
        confusion=confusion.tolist(),
    )


def report_from_predictions(
    probabilities: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    label_names: Mapping[str, Sequence[str]],
) -> EvaluationReport:
    """Build a report from per-task probabilities and labels (-1 = unlabelled)."""
    tasks = {}
    for task, probs in probabilities.items():
        if task not in labels:
            continue
        task_labels = np.asarray(labels[task])
        keep = task_labels >= 0
        tasks[task] = classification_report(
            task, task_labels[keep], np.argmax(probs, axis=-1)[keep], label_names[task]
        )
    return EvaluationReport(tasks)


def evaluate_model(model, dataset, verbose: int = 0) -> EvaluationReport:
    """Predict over a `(features, labels, masks)` dataset and report every task.

    Args:
        model: MultiTaskModel.
        dataset: tf.data.Dataset as made by `mmtask.data.make_dataset`.
        verbose: int. 1 shows a progress bar over the batches.
    """
    probabilities = {t: [] for t in model.tasks}
    labels = {t: [] for t in model.tasks}
    steps = int(dataset.cardinality())
    progress = keras.utils.Progbar(steps if steps > 0 else None, verbose=verbose, unit_name="batch")
    for features, batch_labels, masks in dataset:
        progress.add(1)
        outputs = model.predict_on_batch(features)
        for task in model.tasks:
            if task not in batch_labels:
                continue
            probabilities[task].append(np.asarray(outputs[task]))
            task_labels = np.asarray(batch_labels[task]).astype(np.int64)
            task_labels[np.asarray(masks[task]) == 0] = -1
            labels[task].append(task_labels)
    if not any(labels.values()):
        raise ValueError("The dataset is empty: there is nothing to evaluate.")
    return report_from_predictions(
        {t: np.concatenate(p) for t, p in probabilities.items() if p},
        {t: np.concatenate(v) for t, v in labels.items() if v},
        model.label_names,
    )


MASKED_CONDITIONS = {"text_masked": "text", "image_masked": "image"}


def modality_contributions(model, dataset) -> dict[str, dict[str, float]]:
    """Each head's accuracy with all inputs, then with the text, then the image, masked.

    Masking follows the missing-modality convention (empty text, NaNs for
    images and precomputed features), so a fused head shows how much it leans
    on each modality, and a single-modality head drops to a guess when its own
    input is masked.

    Args:
        model: MultiTaskModel with text and image encoders.
        dataset: tf.data.Dataset of `(features, labels, masks)` batches.

    Returns:
        task -> {"all": accuracy, "text_masked": accuracy, "image_masked": accuracy}.
    """
    missing = sorted({"text", "image"} - set(model.modalities))
    if missing:
        raise ValueError(f"Modality contributions need text and image inputs; missing {missing}.")

    def masked(modality):
        def mask(features, labels, masks):
            features = dict(features)
            values = features[modality]
            blank = "" if values.dtype == tf.string else float("nan")
            features[modality] = tf.fill(tf.shape(values), tf.constant(blank, values.dtype))
            return features, labels, masks

        return dataset.map(mask)

    reports = {"all": evaluate_model(model, dataset)}
    for condition, modality in MASKED_CONDITIONS.items():
        reports[condition] = evaluate_model(model, masked(modality))
    return {
        task: {condition: report.tasks[task].accuracy for condition, report in reports.items()}
        for task in reports["all"].tasks
    }
