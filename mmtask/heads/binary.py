"""Binary tasks: one sigmoid output, the probability of the second class name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import ops

from mmtask.evaluation import binary_report
from mmtask.heads.base import TaskHead, built_metric, check_names
from mmtask.registry import HEADS


@HEADS.register("binary")
class BinaryHead(TaskHead):
    """One sigmoid output: the probability that the label is the positive class.

    The task has two class names, negative first (e.g. ["false", "true"]);
    labels are 0 or 1, negative where missing. History holds
    `{task}_accuracy`, `{task}_f1` (of the positive class) and `{task}_auc`;
    the export gives `{task}_probability` and `{task}_label`.

    Args:
        threshold: float. Probability from which a prediction is positive.
        hidden_units: sequence of int. Dense layers before the output layer.
        dropout: float. Dropout before each dense layer.
    """

    task_type = "binary"
    label_form = "index"

    def __init__(
        self,
        threshold: float = 0.5,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        **kwargs,
    ):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"`threshold` must lie in (0, 1). Received: threshold={threshold}")
        super().__init__(1, hidden_units, dropout, **kwargs)
        self.threshold = float(threshold)

    @classmethod
    def from_data(cls, label_names, labels=None, **options):
        check_names("binary", label_names, "exactly 2 class names", len(label_names) == 2)
        return cls(**options)

    def get_config(self):
        config = super().get_config()
        config["threshold"] = self.threshold
        return config

    def activate(self, logits):
        return ops.sigmoid(logits)

    def labels_and_mask(self, labels):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1, 1))
        mask = ops.cast(ops.greater_equal(labels[:, 0], 0), "float32")
        return ops.cast(ops.maximum(labels, 0), "float32"), mask

    def per_example_loss(self, labels, outputs):
        return keras.losses.binary_crossentropy(labels, outputs)

    def build_metrics(self, task: str) -> dict[str, keras.metrics.Metric]:
        zeros = ops.zeros((1, 1))
        f1 = keras.metrics.F1Score(average="micro", threshold=self.threshold, name=f"{task}_f1")
        return {
            "accuracy": keras.metrics.BinaryAccuracy(
                threshold=self.threshold, name=f"{task}_accuracy"
            ),
            "f1": built_metric(f1, zeros, zeros),
            "auc": keras.metrics.AUC(name=f"{task}_auc"),
        }

    def update_metrics(self, metrics: Mapping, labels, outputs, mask) -> None:
        for metric in metrics.values():
            metric.update_state(labels, outputs, sample_weight=mask)

    def predict_columns(
        self, task: str, outputs: np.ndarray, label_names: Sequence[str]
    ) -> dict[str, list]:
        positive = outputs[:, 0] >= self.threshold
        return {
            f"{task}_label": [label_names[int(p)] for p in positive],
            f"{task}_prob_{label_names[1]}": [f"{p:.6f}" for p in outputs[:, 0]],
        }

    def export_outputs(self, task: str, outputs, label_names: Sequence[str]) -> dict:
        import tensorflow as tf

        probability = outputs[:, 0]
        positive = tf.cast(probability >= self.threshold, tf.int32)
        return {
            f"{task}_probability": probability,
            f"{task}_label": tf.gather(tf.constant(list(label_names)), positive),
        }

    def report(self, task: str, labels: np.ndarray, outputs: np.ndarray, label_names):
        return binary_report(task, labels, outputs[:, 0], label_names, self.threshold)
