"""The contract of every head type, so model, evaluation, export and CLI never assume classes.

A head type (classification, binary, multi-label, regression) owns in its one
class everything that depends on what its task predicts: the output
activation, how a missing label is marked, the masked loss, the metrics, how
predictions decode to labels or values, the SavedModel outputs, the CSV
columns of `mmtask predict` and the evaluation report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import ops


class TaskHead(keras.layers.Layer):
    """Base of the head types: optional hidden layers, one dense output layer, an activation.

    Subclasses set `task_type` (their registry name) and `label_form`, and implement
    `activate`, `labels_and_mask`, `per_example_loss`, `build_metrics`,
    `update_metrics`, `predict_columns`, `export_outputs` and `report`; they
    may override `from_data` when they need more than the class names.

    Outputs are float32 whatever the compute dtype, so `predict` and the
    exported model return them directly.

    Args:
        output_units: int. Width of the output layer, set by the subclass.
        hidden_units: sequence of int. Dense layers before the output layer.
        dropout: float. Dropout before each dense layer.
    """

    task_type = ""
    label_form = ""
    """How labels are held: "index" (class index, -1 missing), "multi_hot" (0/1 row,
    all -1 missing) or "value" (float row, NaN missing); see `mmtask.data.Posts`."""

    def __init__(
        self,
        output_units: int,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.output_units = int(output_units)
        self.hidden_units = tuple(hidden_units)
        self.dropout = dropout
        self.hidden_layers = [
            keras.layers.Dense(u, activation="relu", name=f"hidden_{i}")
            for i, u in enumerate(self.hidden_units)
        ]
        self.drop = keras.layers.Dropout(dropout, name="dropout")
        self.classifier = keras.layers.Dense(self.output_units, name="logits")

    @classmethod
    def from_data(
        cls, label_names: Sequence[str], labels: np.ndarray | None = None, **options
    ) -> TaskHead:
        """A head for a task with these class (or output) names and training labels."""
        del labels
        return cls(len(label_names), **options)

    def build(self, input_shape):
        width = input_shape[-1]
        for dense in self.hidden_layers:
            dense.build((None, width))
            width = dense.units
        self.classifier.build((None, width))
        self.built = True

    def call(self, x, training=None):
        for dense in self.hidden_layers:
            x = dense(self.drop(x, training=training))
        logits = self.classifier(self.drop(x, training=training))
        return self.activate(ops.cast(logits, "float32"))

    def compute_output_spec(self, x, training=None):
        # float32 on purpose, whatever the compute dtype (see the class docstring).
        return keras.KerasTensor((x.shape[0], self.output_units), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_units": list(self.hidden_units), "dropout": self.dropout})
        return config

    def activate(self, logits):
        """The head's output from the output layer's float32 logits."""
        raise NotImplementedError

    def labels_and_mask(self, labels):
        """(labels ready for the loss, float32 mask of shape (batch,)): 1 where labelled.

        `labels` are as the data pipeline serves them; the head's own missing
        mark (see `Posts`) gives a 0 in the mask.
        """
        raise NotImplementedError

    def per_example_loss(self, labels, outputs):
        """The loss of each example, shape (batch,)."""
        raise NotImplementedError

    def masked_loss(self, labels, mask, outputs):
        """Mean loss over the examples the mask keeps; 0 when it keeps none.

        A missing label adds nothing, and the mean is over labelled examples,
        so a task labelled on few posts is not diluted by the others.
        """
        per_example = self.per_example_loss(labels, outputs)
        return ops.divide_no_nan(ops.sum(per_example * mask), ops.sum(mask))

    def build_metrics(self, task: str) -> dict[str, keras.metrics.Metric]:
        """Metric suffix -> a metric named `{task}_{suffix}`, its variables created."""
        raise NotImplementedError

    def update_metrics(self, metrics: Mapping, labels, outputs, mask) -> None:
        """Update what `build_metrics` made with one batch (mask as sample weight)."""
        raise NotImplementedError

    def predict_columns(
        self, task: str, outputs: np.ndarray, label_names: Sequence[str]
    ) -> dict[str, list]:
        """CSV column -> one value per example, for `mmtask predict`."""
        raise NotImplementedError

    def export_outputs(self, task: str, outputs, label_names: Sequence[str]) -> dict:
        """SavedModel output name -> tensor, from this head's batch of outputs (TensorFlow)."""
        raise NotImplementedError

    def report(self, task: str, labels: np.ndarray, outputs: np.ndarray, label_names):
        """The evaluation report of labelled examples only (`mmtask.evaluation`)."""
        raise NotImplementedError


def built_metric(metric: keras.metrics.Metric, y_true, y_pred) -> keras.metrics.Metric:
    """`metric` with its variables created now, by one update of zero weight.

    Some metrics (F1Score, R2Score) create their variables on their first
    update; inside a distributed training loop that fails.
    """
    metric.update_state(y_true, y_pred, sample_weight=ops.zeros((ops.shape(y_true)[0],)))
    metric.reset_state()
    return metric


def f1_scores(true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-column F1 of 0/1 arrays of shape (n, k); 0 where a column has no positives at all."""
    true, predicted = true.astype(bool), predicted.astype(bool)
    true_positive = (true & predicted).sum(axis=0).astype(np.float64)
    denominator = true.sum(axis=0) + predicted.sum(axis=0)
    return np.divide(
        2 * true_positive, denominator, out=np.zeros(true.shape[1]), where=denominator > 0
    )


def check_names(task_type: str, label_names: Sequence[str], expected: str, ok: bool) -> None:
    """Raise a ValueError saying what names a head type expects, when `ok` is false."""
    if not ok:
        raise ValueError(
            f"A {task_type} head needs {expected}. Received: label_names={list(label_names)}"
        )
