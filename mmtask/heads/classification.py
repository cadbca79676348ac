"""Single-label classification: softmax over the classes, sparse cross-entropy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import ops

from mmtask.evaluation import classification_report
from mmtask.heads.base import TaskHead, built_metric
from mmtask.registry import HEADS


@HEADS.register("classification")
class ClassificationHead(TaskHead):
    """Maps a representation to class probabilities for one task.

    Labels are class indices (int), a negative index where missing. History
    holds `{task}_accuracy` and `{task}_macro_f1`; predictions decode to the
    most probable class; the export gives `{task}_probabilities` and
    `{task}_label`.

    Args:
        num_classes: int. Number of classes of the task.
        hidden_units: sequence of int. Dense layers before the output layer.
        dropout: float. Dropout before each dense layer.
    """

    task_type = "classification"
    label_form = "index"

    def __init__(
        self,
        num_classes: int,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        **kwargs,
    ):
        if num_classes < 2:
            raise ValueError(
                "A classification head needs at least 2 classes. "
                f"Received: num_classes={num_classes}"
            )
        super().__init__(num_classes, hidden_units, dropout, **kwargs)
        self.num_classes = num_classes

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config

    def activate(self, logits):
        return ops.softmax(logits, axis=-1)

    def labels_and_mask(self, labels):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        return ops.maximum(labels, 0), ops.cast(ops.greater_equal(labels, 0), "float32")

    def per_example_loss(self, labels, outputs):
        return keras.losses.sparse_categorical_crossentropy(labels, outputs)

    def build_metrics(self, task: str) -> dict[str, keras.metrics.Metric]:
        zeros = ops.zeros((1, self.num_classes))
        return {
            "accuracy": keras.metrics.SparseCategoricalAccuracy(name=f"{task}_accuracy"),
            "macro_f1": built_metric(
                keras.metrics.F1Score(average="macro", name=f"{task}_macro_f1"), zeros, zeros
            ),
        }

    def update_metrics(self, metrics: Mapping, labels, outputs, mask) -> None:
        metrics["accuracy"].update_state(labels, outputs, sample_weight=mask)
        one_hot = ops.one_hot(labels, self.num_classes)
        metrics["macro_f1"].update_state(one_hot, outputs, sample_weight=mask)

    def predict_columns(
        self, task: str, outputs: np.ndarray, label_names: Sequence[str]
    ) -> dict[str, list]:
        columns = {f"{task}_label": [label_names[i] for i in np.argmax(outputs, axis=-1)]}
        for k, name in enumerate(label_names):
            columns[f"{task}_prob_{name}"] = [f"{p:.6f}" for p in outputs[:, k]]
        return columns

    def export_outputs(self, task: str, outputs, label_names: Sequence[str]) -> dict:
        import tensorflow as tf

        names = tf.constant(list(label_names))
        return {
            f"{task}_probabilities": outputs,
            f"{task}_label": tf.gather(names, tf.argmax(outputs, -1)),
        }

    def report(self, task: str, labels: np.ndarray, outputs: np.ndarray, label_names):
        return classification_report(task, labels, np.argmax(outputs, axis=-1), label_names)
