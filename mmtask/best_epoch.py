"""`BestEpoch`: keep the weights of the epoch with the best validation figure, and say which.

A run's last epoch is rarely its best on small data; selecting the epoch on
validation data is what the published figures do, so the product does it by
default. Optional patience stops a run that has stopped improving.
"""

from __future__ import annotations

import math

import keras

from mmtask.errors import MmtaskError

MINIMIZED = ("loss", "error", "mae", "mse", "rmse")


def monitor_mode(monitor: str) -> str:
    """ "min" for losses and errors, "max" for accuracies, F1 and the like."""
    return "min" if monitor.endswith(MINIMIZED) else "max"


class BestEpoch(keras.callbacks.Callback):
    """Restores, at the end of `fit`, the weights of the epoch where `monitor` was best.

    After training, `best_epoch` (counted from 0), `best_value`,
    `epochs_run` and `stopped_early` tell what was kept.

    Args:
        monitor: str. A logged figure, e.g. "val_loss" or
            "val_post_sentiment_accuracy".
        mode: str. "min", "max", or "auto" (min for names ending in loss or
            error, max otherwise).
        patience: int | None. Stop after this many epochs without
            improvement; None trains every epoch.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int | None = None):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"Invalid value for `mode`: expected 'auto', 'min' or 'max'. Received: {mode!r}"
            )
        if patience is not None and (isinstance(patience, bool) or int(patience) < 1):
            raise ValueError(f"`patience` must be None or >= 1. Received: {patience!r}")
        self.monitor = monitor
        self.mode = monitor_mode(monitor) if mode == "auto" else mode
        self.patience = patience
        self._reset()

    def _reset(self) -> None:
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.best_weights = None
        self.epochs_run = 0
        self.stopped_early = False

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise MmtaskError(
                f"Cannot select the best epoch by {self.monitor!r}: it is not logged. "
                f"Logged: {sorted(logs)}"
            )
        value = float(logs[self.monitor])
        self.epochs_run = epoch + 1
        if math.isnan(value):
            improved = False
        elif self.best_value is None:
            improved = True
        else:
            improved = value < self.best_value if self.mode == "min" else value > self.best_value
        if improved:
            self.best_epoch, self.best_value = epoch, value
            self.best_weights = self.model.get_weights()
        elif self.patience is not None and self.best_epoch is not None:
            if epoch - self.best_epoch >= self.patience:
                self.model.stop_training = True
                self.stopped_early = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            self.best_weights = None

    def restore(self, summary: dict, best_weights: list | None) -> None:
        """Take up a run from its `summary()` and best weights, as a resumed run does.

        Called after `on_train_begin` (which starts afresh), so the epochs
        before the restart still count in the selection and the patience.
        """
        self.best_epoch = summary["best_epoch"]
        self.best_value = summary["best_value"]
        self.epochs_run = summary["epochs_run"]
        self.stopped_early = summary["stopped_early"]
        self.best_weights = best_weights

    def summary(self) -> dict:
        """What was kept, for the run folder and the report."""
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
        }
