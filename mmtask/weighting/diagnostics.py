"""Per-task gradient diagnostics: how hard each task pulls on the shared parameters, and where.

Conflicting task gradients (a negative cosine) and one task's gradient
dwarfing the others' are the usual reasons a multi-task model trails its
single-task baselines; this callback measures both once per epoch.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np

from mmtask.errors import MmtaskError


class TaskGradientDiagnostics(keras.callbacks.Callback):
    """Logs each task's gradient norm on the shared parameters and the cosines between tasks.

    The shared parameters are those of the encoders and the fusion trunk (all
    but the heads). At the end of every epoch, on one fixed batch, each task's
    loss is differentiated separately; the callback adds to the epoch's logs,
    and so to `History` and to a `TensorBoard` callback listed after it:

    - `{task}_grad_norm`: the L2 norm of the task's gradient;
    - `grad_cosine_{a}_vs_{b}`: the cosine between tasks a's and b's gradients.

    Uses `tf.GradientTape`, so it needs the TensorFlow backend.

    Args:
        x: dict. A fixed batch of inputs (`{"text": ..., "image": ...}`).
        y: dict. Its labels per task (-1 for missing).
        sample_weight: dict | None. Per-task masks, as given to `fit`.

    Example:
    ```python
    features, labels, masks = next(iter(val_data))
    model.fit(train_data, callbacks=[TaskGradientDiagnostics(features, labels, masks)])
    ```
    """

    def __init__(self, x, y, sample_weight=None):
        backend = keras.backend.backend()
        if backend != "tensorflow":
            raise MmtaskError(
                "TaskGradientDiagnostics is TensorFlow-only (it differentiates with "
                f"tf.GradientTape): set KERAS_BACKEND=tensorflow. Received backend: {backend}"
            )
        super().__init__()
        self.x = x
        self.y = y
        self.sample_weight = sample_weight

    def shared_variables(self) -> list:
        layers = list(self.model.encoders.values())
        if self.model.fusion is not None:
            layers.append(self.model.fusion)
        return [v for layer in layers for v in layer.trainable_variables]

    def measure(self) -> dict[str, float]:
        """The diagnostics for the current weights, as logged at each epoch's end."""
        variables = self.shared_variables()
        if not variables:
            raise ValueError("The model has no trainable shared parameters to diagnose.")
        import tensorflow as tf  # here, so importing mmtask.weighting needs no TF

        with tf.GradientTape(persistent=True) as tape:
            predictions = self.model(self.x, training=False)
            losses = self.model.task_losses(self.y, predictions, self.sample_weight)
        gradients = {}
        for task, loss in losses.items():
            parts = tape.gradient(loss, variables)  # None where a task does not reach
            gradients[task] = np.concatenate(
                [
                    np.zeros(v.shape).ravel() if g is None else np.ravel(tf.convert_to_tensor(g))
                    for v, g in zip(variables, parts, strict=True)
                ]
            ).astype(np.float64)
        del tape
        logs = {f"{t}_grad_norm": float(np.linalg.norm(g)) for t, g in gradients.items()}
        for a, b in itertools.combinations(gradients, 2):
            norms = np.linalg.norm(gradients[a]) * np.linalg.norm(gradients[b])
            cosine = float(gradients[a] @ gradients[b] / norms) if norms > 0 else 0.0
            logs[f"grad_cosine_{a}_vs_{b}"] = cosine
        return logs

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.measure())
