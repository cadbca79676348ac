"""Multi-label tasks: independent sigmoids over the classes; a label is a set of classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import ops

from mmtask.evaluation import multilabel_report
from mmtask.heads.base import TaskHead, built_metric, check_names
from mmtask.registry import HEADS

SEPARATOR = "|"
"""Joins the class names of a predicted label set in CSV cells and exported strings."""


@HEADS.register("multilabel")
class MultiLabelHead(TaskHead):
    """One sigmoid per class: the probability that each class is in the post's label set.

    Labels are multi-hot rows of 0/1 (one column per class), all -1 where
    missing; an all-zero row is a labelled empty set. History holds
    `{task}_micro_f1`, `{task}_macro_f1` and `{task}_subset_accuracy` (the
    share of posts whose whole set is right); predictions decode to the
    classes whose probability reaches `threshold`, joined by "|"; the export
    gives `{task}_probabilities` and `{task}_labels`.

    Args:
        num_classes: int. Number of classes.
        threshold: float. Probability from which a class is predicted.
        hidden_units: sequence of int. Dense layers before the output layer.
        dropout: float. Dropout before each dense layer.
    """

    task_type = "multilabel"
    label_form = "multi_hot"

    def __init__(
        self,
        num_classes: int,
        threshold: float = 0.5,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        **kwargs,
    ):
        if num_classes < 1:
            raise ValueError(
                f"A multilabel head needs at least 1 class. Received: num_classes={num_classes}"
            )
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"`threshold` must lie in (0, 1). Received: threshold={threshold}")
        super().__init__(num_classes, hidden_units, dropout, **kwargs)
        self.num_classes = num_classes
        self.threshold = float(threshold)

    @classmethod
    def from_data(cls, label_names, labels=None, **options):
        check_names("multilabel", label_names, "at least 1 class name", len(label_names) >= 1)
        return cls(len(label_names), **options)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "threshold": self.threshold})
        return config

    def activate(self, logits):
        return ops.sigmoid(logits)

    def labels_and_mask(self, labels):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1, self.num_classes))
        mask = ops.cast(ops.greater_equal(ops.min(labels, axis=-1), 0), "float32")
        return ops.cast(ops.maximum(labels, 0), "float32"), mask

    def per_example_loss(self, labels, outputs):
        return keras.losses.binary_crossentropy(labels, outputs)

    def build_metrics(self, task: str) -> dict[str, keras.metrics.Metric]:
        zeros = ops.zeros((1, self.num_classes))

        def f1(average, name):
            metric = keras.metrics.F1Score(average=average, threshold=self.threshold, name=name)
            return built_metric(metric, zeros, zeros)

        return {
            "micro_f1": f1("micro", f"{task}_micro_f1"),
            "macro_f1": f1("macro", f"{task}_macro_f1"),
            "subset_accuracy": keras.metrics.Mean(name=f"{task}_subset_accuracy"),
        }

    def update_metrics(self, metrics: Mapping, labels, outputs, mask) -> None:
        metrics["micro_f1"].update_state(labels, outputs, sample_weight=mask)
        metrics["macro_f1"].update_state(labels, outputs, sample_weight=mask)
        predicted = ops.cast(ops.greater_equal(outputs, self.threshold), "float32")
        exact = ops.cast(ops.all(ops.equal(predicted, labels), axis=-1), "float32")
        metrics["subset_accuracy"].update_state(exact, sample_weight=mask)

    def decode(self, outputs: np.ndarray, label_names: Sequence[str]) -> list[str]:
        """Each example's predicted classes, joined by "|" ("" for the empty set)."""
        return [
            SEPARATOR.join(n for n, p in zip(label_names, row, strict=True) if p >= self.threshold)
            for row in outputs
        ]

    def predict_columns(
        self, task: str, outputs: np.ndarray, label_names: Sequence[str]
    ) -> dict[str, list]:
        columns = {f"{task}_labels": self.decode(outputs, label_names)}
        for k, name in enumerate(label_names):
            columns[f"{task}_prob_{name}"] = [f"{p:.6f}" for p in outputs[:, k]]
        return columns

    def export_outputs(self, task: str, outputs, label_names: Sequence[str]) -> dict:
        import tensorflow as tf

        names = tf.broadcast_to(tf.constant(list(label_names)), tf.shape(outputs))
        chosen = tf.ragged.boolean_mask(names, outputs >= self.threshold)
        return {
            f"{task}_probabilities": outputs,
            f"{task}_labels": tf.strings.reduce_join(chosen, axis=-1, separator=SEPARATOR),
        }

    def report(self, task: str, labels: np.ndarray, outputs: np.ndarray, label_names):
        predicted = (outputs >= self.threshold).astype(np.int64)
        return multilabel_report(task, labels, predicted, label_names)
