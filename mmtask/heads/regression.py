"""Regression tasks: real outputs, learnt on standardised targets, returned in original units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import ops

from mmtask.evaluation import regression_report
from mmtask.heads.base import TaskHead, built_metric, check_names
from mmtask.registry import HEADS

LOSSES = ("mse", "huber")


@HEADS.register("regression")
class RegressionHead(TaskHead):
    """One real output per target, in the targets' own units.

    Targets of very different scales would give losses of very different
    sizes, so the loss compares standardised values: `(y - mean) / std`, with
    the training data's mean and std, kept in the config so they save with the
    model. The output layer predicts standardised values and the head returns
    them in original units, so `predict` and the export need no extra step.

    Labels are float rows (one column per target), NaN where missing. History
    holds `{task}_mae`, `{task}_rmse` and `{task}_r2` in original units; the
    export gives `{task}_value`.

    Args:
        mean: sequence of float. Training mean of each target.
        std: sequence of float > 0. Training standard deviation of each target.
        loss: str. "mse" or "huber" (delta 1 standardised unit: robust to outliers).
        hidden_units: sequence of int. Dense layers before the output layer.
        dropout: float. Dropout before each dense layer.
    """

    task_type = "regression"
    label_form = "value"

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        loss: str = "mse",
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        **kwargs,
    ):
        mean = [float(m) for m in np.ravel(mean)]
        std = [float(s) for s in np.ravel(std)]
        if not mean or len(mean) != len(std) or not all(s > 0 for s in std):
            raise ValueError(
                "`mean` and `std` must give one value per target, with every std > 0. "
                f"Received: mean={mean}, std={std}"
            )
        if loss not in LOSSES:
            raise ValueError(
                f"Invalid value for `loss`: expected one of {list(LOSSES)}. Received: loss={loss!r}"
            )
        super().__init__(len(mean), hidden_units, dropout, **kwargs)
        self.mean = mean
        self.std = std
        self.loss = loss

    @classmethod
    def from_data(cls, label_names, labels=None, **options):
        """A head whose mean and std are those of the labelled training targets."""
        check_names("regression", label_names, "at least 1 output name", len(label_names) >= 1)
        if labels is None:
            raise ValueError("A regression head standardises with the training targets: pass them.")
        values = np.asarray(labels, dtype=np.float64).reshape(len(labels), len(label_names))
        values = values[np.isfinite(values).all(axis=1)]
        if not len(values):
            raise ValueError("A regression head needs at least one labelled training target.")
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0), **options)

    def get_config(self):
        config = super().get_config()
        config.update({"mean": list(self.mean), "std": list(self.std), "loss": self.loss})
        return config

    def activate(self, logits):
        return logits * ops.convert_to_tensor(self.std) + ops.convert_to_tensor(self.mean)

    def labels_and_mask(self, labels):
        labels = ops.reshape(ops.cast(labels, "float32"), (-1, self.output_units))
        finite = ops.all(ops.isfinite(labels), axis=-1)
        mean = ops.broadcast_to(ops.convert_to_tensor(self.mean), ops.shape(labels))
        return ops.where(ops.isfinite(labels), labels, mean), ops.cast(finite, "float32")

    def per_example_loss(self, labels, outputs):
        std = ops.convert_to_tensor(self.std)
        error = (outputs - labels) / std
        if self.loss == "huber":
            return keras.losses.huber(ops.zeros_like(error), error)
        return ops.mean(ops.square(error), axis=-1)

    def build_metrics(self, task: str) -> dict[str, keras.metrics.Metric]:
        zeros = ops.zeros((2, self.output_units))
        return {
            "mae": keras.metrics.MeanAbsoluteError(name=f"{task}_mae"),
            "rmse": keras.metrics.RootMeanSquaredError(name=f"{task}_rmse"),
            "r2": built_metric(keras.metrics.R2Score(name=f"{task}_r2"), zeros, zeros),
        }

    def update_metrics(self, metrics: Mapping, labels, outputs, mask) -> None:
        for metric in metrics.values():
            metric.update_state(labels, outputs, sample_weight=mask)

    def predict_columns(
        self, task: str, outputs: np.ndarray, label_names: Sequence[str]
    ) -> dict[str, list]:
        if len(label_names) == 1:
            return {f"{task}_value": [f"{v:.6g}" for v in outputs[:, 0]]}
        return {
            f"{task}_value_{name}": [f"{v:.6g}" for v in outputs[:, k]]
            for k, name in enumerate(label_names)
        }

    def export_outputs(self, task: str, outputs, label_names: Sequence[str]) -> dict:
        return {f"{task}_value": outputs}

    def report(self, task: str, labels: np.ndarray, outputs: np.ndarray, label_names):
        return regression_report(task, labels, outputs, label_names, self.mean)
