"""Hands each epoch's mean task losses to the loss weighting (for DWA and the like)."""

from __future__ import annotations

import keras


class WeightingEpochCallback(keras.callbacks.Callback):
    """Calls `model.weighting.on_epoch_end` with the epoch's training loss per task.

    `MultiTaskModel.fit` adds this callback itself; there is no need to pass it.
    """

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        losses = {t: float(logs[f"{t}_loss"]) for t in self.model.tasks if f"{t}_loss" in logs}
        if losses:
            self.model.weighting.on_epoch_end(losses)
