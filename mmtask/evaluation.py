"""Per-task evaluation reports, one kind per task type, each beside its trivial baseline.

Computed with NumPy from the model's predictions over the labelled examples of
each task, so the numbers do not depend on batch boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar

import keras
import numpy as np


@dataclass
class TaskReport:
    """Metrics of one classification task over its labelled examples."""

    task: str
    label_names: list[str]
    count: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    confusion: list[list[int]]  # rows: true class, columns: predicted class

    task_type: ClassVar[str] = "classification"

    @property
    def majority_rate(self) -> float:
        """Share of the most frequent true class: the accuracy of always guessing it.

        The baseline the accuracy has to beat; on skewed data a high accuracy
        can be no better than this.
        """
        counts = [sum(row) for row in self.confusion]
        total = sum(counts)
        return max(counts) / total if total else 0.0

    def row(self) -> dict[str, float]:
        """The figures of the report's table row, the baseline first."""
        return {
            "majority": self.majority_rate,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
        }

    def derived(self) -> dict[str, float]:
        """Figures saved with the report that `from_dict` recomputes."""
        return {"majority_rate": self.majority_rate}

    def details(self) -> list[str]:
        """The confusion matrix, as lines of text."""
        width = max(len(n) for n in self.label_names) + 1
        lines = [f"\n{self.task} confusion (rows true, columns predicted):"]
        lines.append(" " * width + "".join(f"{n:>{width}}" for n in self.label_names))
        for name, row in zip(self.label_names, self.confusion, strict=True):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in row))
        return lines

    def check(self) -> None:
        """Raise ValueError unless the confusion matrix is square with a row per class."""
        classes = len(self.label_names)
        confusion = self.confusion
        square = isinstance(confusion, Sequence) and len(confusion) == classes
        square = square and all(
            isinstance(row, Sequence) and len(row) == classes for row in confusion
        )
        if not classes or not square:
            raise ValueError(
                f"Invalid confusion matrix for task {self.task!r}: expected {classes} x "
                f"{classes} counts for the classes {list(self.label_names)}. "
                f"Received: {confusion!r:.200}"
            )


@dataclass
class BinaryReport(TaskReport):
    """A classification report of a binary task, plus the positive class's F1 and the AUC."""

    f1: float
    auc: float

    task_type: ClassVar[str] = "binary"

    def row(self) -> dict[str, float]:
        return {
            "majority": self.majority_rate,
            "accuracy": self.accuracy,
            "f1": self.f1,
            "auc": self.auc,
        }


@dataclass
class MultiLabelReport:
    """Metrics of one multi-label task: a label is a set of classes."""

    task: str
    label_names: list[str]
    count: int
    micro_f1: float
    macro_f1: float
    subset_accuracy: float  # share of posts whose predicted set is exactly right
    majority_set_rate: float  # subset accuracy of always predicting the most common set
    support: list[int]  # posts holding each class

    task_type: ClassVar[str] = "multilabel"

    def row(self) -> dict[str, float]:
        return {
            "majority_set": self.majority_set_rate,
            "subset_acc": self.subset_accuracy,
            "micro_f1": self.micro_f1,
            "macro_f1": self.macro_f1,
        }

    def derived(self) -> dict[str, float]:
        return {}

    def details(self) -> list[str]:
        return []

    def check(self) -> None:
        if len(self.support) != len(self.label_names):
            raise ValueError(
                f"Invalid support for task {self.task!r}: expected one count per class "
                f"{list(self.label_names)}. Received: {self.support!r:.200}"
            )


@dataclass
class RegressionReport:
    """Errors of one regression task in the targets' units, beside the training mean's.

    `baseline_*` are the figures of always predicting the training mean, the
    trivial model the head has to beat.
    """

    task: str
    label_names: list[str]
    count: int
    mae: float
    rmse: float
    r2: float
    baseline_mae: float
    baseline_rmse: float
    baseline_r2: float

    task_type: ClassVar[str] = "regression"

    def row(self) -> dict[str, float]:
        return {
            "base_mae": self.baseline_mae,
            "mae": self.mae,
            "base_rmse": self.baseline_rmse,
            "rmse": self.rmse,
            "r2": self.r2,
        }

    def derived(self) -> dict[str, float]:
        return {}

    def details(self) -> list[str]:
        return []

    def check(self) -> None:
        if not self.label_names:
            raise ValueError(f"Invalid report for task {self.task!r}: no output names.")


REPORT_TYPES = {
    r.task_type: r for r in (TaskReport, BinaryReport, MultiLabelReport, RegressionReport)
}


@dataclass
class EvaluationReport:
    """Metrics of every task, printable as a table and savable as JSON."""

    tasks: dict[str, TaskReport | MultiLabelReport | RegressionReport]

    def to_dict(self) -> dict:
        """Task -> its fields, its `type` and derived figures such as `majority_rate`."""
        return {t: {**asdict(r), "type": r.task_type, **r.derived()} for t, r in self.tasks.items()}

    @classmethod
    def from_dict(cls, data: Mapping) -> EvaluationReport:
        """Read what `to_dict` wrote (a saved report.json), checking every task.

        A task without `type` is a classification task, as in reports saved
        before there were other types.

        Raises:
            ValueError: a task has an unknown type or misses a field, or its
                figures do not fit its classes (e.g. a confusion matrix that
                is not square with one row per class name).
        """
        tasks = {}
        for task, entry in data.items():
            kind = entry.get("type", "classification") if isinstance(entry, Mapping) else None
            if kind not in REPORT_TYPES:
                raise ValueError(
                    f"Invalid report for task {task!r}: expected a mapping whose `type` is one "
                    f"of {sorted(REPORT_TYPES)}. Received: {entry!r:.200}"
                )
            names = [f.name for f in fields(REPORT_TYPES[kind])]
            missing = [f for f in names if f not in entry]
            if missing:
                raise ValueError(
                    f"Invalid report for task {task!r}: expected the fields {names}. "
                    f"Missing: {missing}"
                )
            report = REPORT_TYPES[kind](**{f: entry[f] for f in names})
            report.check()
            tasks[task] = report
        return cls(tasks)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    def table(self) -> str:
        """Plain-text tables, one per task type with a row per task, then the details.

        The first figure of a row is the trivial baseline: `majority` the
        majority-class rate (the accuracy to beat), `majority_set` the share
        of the most common label set, `base_*` the errors of predicting the
        training mean.
        """
        lines = []
        width = max([20, *(len(task) for task in self.tasks)])
        kinds = list(dict.fromkeys(type(r) for r in self.tasks.values()))
        for kind in kinds:
            reports = [r for r in self.tasks.values() if type(r) is kind]
            if lines:
                lines.append("")
            header = reports[0].row()
            lines.append(
                f"{'task':<{width}} {'n':>6} " + " ".join(f"{k:>{max(len(k), 9)}}" for k in header)
            )
            for r in reports:
                lines.append(
                    f"{r.task:<{width}} {r.count:>6} "
                    + " ".join(f"{v:>{max(len(k), 9)}.4f}" for k, v in r.row().items())
                )
        for r in self.tasks.values():
            lines.extend(r.details())
        return "\n".join(lines)


def classification_report(
    task: str, labels: np.ndarray, predicted: np.ndarray, label_names: Sequence[str]
) -> TaskReport:
    """Metrics of integer predictions against integer labels (all labelled)."""
    num_classes = len(label_names)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.int64).reshape(-1)
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


def binary_report(
    task: str,
    labels: np.ndarray,
    probabilities: np.ndarray,
    label_names: Sequence[str],
    threshold: float = 0.5,
) -> BinaryReport:
    """Metrics of positive-class probabilities against 0/1 labels (all labelled)."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    base = classification_report(task, labels, probabilities >= threshold, label_names)
    f1 = _f1_per_class(base.confusion)[1]
    return BinaryReport(**asdict(base), f1=f1, auc=_auc(labels, probabilities))


def multilabel_report(
    task: str, labels: np.ndarray, predicted: np.ndarray, label_names: Sequence[str]
) -> MultiLabelReport:
    """Metrics of 0/1 predicted sets against 0/1 label sets, both (n, classes), all labelled."""
    labels = np.asarray(labels, dtype=bool).reshape(-1, len(label_names))
    predicted = np.asarray(predicted, dtype=bool).reshape(-1, len(label_names))
    count = len(labels)
    true_positive = (labels & predicted).sum(axis=0)
    denominator = labels.sum(axis=0) + predicted.sum(axis=0)
    per_class = np.divide(
        2.0 * true_positive, denominator, out=np.zeros(len(label_names)), where=denominator > 0
    )
    micro_denominator = denominator.sum()
    _, set_counts = np.unique(labels, axis=0, return_counts=True)
    return MultiLabelReport(
        task=task,
        label_names=list(label_names),
        count=count,
        micro_f1=float(2 * true_positive.sum() / micro_denominator) if micro_denominator else 0.0,
        macro_f1=float(per_class.mean()),
        subset_accuracy=float((labels == predicted).all(axis=1).mean()) if count else 0.0,
        majority_set_rate=float(set_counts.max() / count) if count else 0.0,
        support=[int(c) for c in labels.sum(axis=0)],
    )


def regression_report(
    task: str,
    labels: np.ndarray,
    predicted: np.ndarray,
    label_names: Sequence[str],
    train_mean: Sequence[float],
) -> RegressionReport:
    """Errors of predicted values against targets, both (n, outputs), all labelled.

    MAE and RMSE pool every output; R² is the mean over outputs. The baseline
    predicts `train_mean` for every post.
    """
    width = len(label_names)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, width)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, width)
    baseline = np.broadcast_to(np.asarray(train_mean, dtype=np.float64), labels.shape)

    def errors(values):
        if not len(labels):
            return 0.0, 0.0, 0.0
        error = values - labels
        total = ((labels - labels.mean(axis=0)) ** 2).sum(axis=0)
        residual = (error**2).sum(axis=0)
        r2 = np.divide(residual, total, out=np.ones(width), where=total > 0)
        return (
            float(np.abs(error).mean()),
            float(np.sqrt((error**2).mean())),
            float((1.0 - r2).mean()),
        )

    mae, rmse, r2 = errors(predicted)
    baseline_mae, baseline_rmse, baseline_r2 = errors(baseline)
    return RegressionReport(
        task=task,
        label_names=list(label_names),
        count=len(labels),
        mae=mae,
        rmse=rmse,
        r2=r2,
        baseline_mae=baseline_mae,
        baseline_rmse=baseline_rmse,
        baseline_r2=baseline_r2,
    )


def _f1_per_class(confusion: Sequence[Sequence[int]]) -> list[float]:
    confusion = np.asarray(confusion, dtype=np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(
        2 * np.diag(confusion), denominator, out=np.zeros(len(confusion)), where=denominator > 0
    )
    return [float(v) for v in f1]


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive outranks a negative (ties half)."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return 0.0
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based, ties averaged
    rank_sum = average_rank[inverse][labels == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def report_from_predictions(
    probabilities: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    label_names: Mapping[str, Sequence[str]],
) -> EvaluationReport:
    """Build a classification report from per-task probabilities and labels (-1 = unlabelled)."""
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
    outputs = {t: [] for t in model.tasks}
    labels = {t: [] for t in model.tasks}
    masks = {t: [] for t in model.tasks}
    steps = int(dataset.cardinality())
    progress = keras.utils.Progbar(steps if steps > 0 else None, verbose=verbose, unit_name="batch")
    for features, batch_labels, batch_masks in dataset:
        progress.add(1)
        predicted = model.predict_on_batch(features)
        for task in model.tasks:
            if task not in batch_labels:
                continue
            task_labels, labelled = model.heads[task].labels_and_mask(batch_labels[task])
            outputs[task].append(np.asarray(predicted[task]))
            labels[task].append(np.asarray(task_labels))
            masks[task].append(np.asarray(labelled) * np.asarray(batch_masks[task]))
    if not any(labels.values()):
        raise ValueError("The dataset is empty: there is nothing to evaluate.")
    tasks = {}
    for task in model.tasks:
        if not labels[task]:
            continue
        keep = np.concatenate(masks[task]) > 0
        tasks[task] = model.heads[task].report(
            task,
            np.concatenate(labels[task])[keep],
            np.concatenate(outputs[task])[keep],
            model.label_names[task],
        )
    return EvaluationReport(tasks)


MASKED_CONDITIONS = {"text_masked": "text", "image_masked": "image"}


def modality_contributions(model, dataset) -> dict[str, dict[str, float]]:
    """Each classifying head's accuracy with all inputs, then with the text, then the image, masked.

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

    import tensorflow as tf  # here, so the heads' import of this module needs no TF

    def masked(modality):
        def mask(features, labels, masks):
            features = dict(features)
            values = features[modality]
            # The missing mark of the input: blank text, all-padding token ids, NaNs.
            if values.dtype == tf.string:
                blank = ""
            else:
                blank = 0 if values.dtype.is_integer else float("nan")
            features[modality] = tf.fill(tf.shape(values), tf.constant(blank, values.dtype))
            return features, labels, masks

        return dataset.map(mask)

    reports = {"all": evaluate_model(model, dataset)}
    for condition, modality in MASKED_CONDITIONS.items():
        reports[condition] = evaluate_model(model, masked(modality))
    return {
        task: {condition: report.tasks[task].accuracy for condition, report in reports.items()}
        for task, report in reports["all"].tasks.items()
        if isinstance(report, TaskReport)
    }
