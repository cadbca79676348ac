"""BestEpoch keeps the weights of the best epoch by the monitored figure and stops on patience."""

import keras
import numpy as np
import pytest

from mmtask.best_epoch import BestEpoch, monitor_mode
from mmtask.errors import MmtaskError


class Scripted(keras.callbacks.Callback):
    """Logs a scripted figure per epoch and writes the epoch number into the model's weight."""

    def __init__(self, values, name="val_score"):
        super().__init__()
        self.values = values
        self.name = name

    def on_epoch_end(self, epoch, logs=None):
        self.model.layers[-1].kernel.assign(np.full((1, 1), float(epoch), "float32"))
        logs[self.name] = self.values[epoch]


def fit(values, best, name="val_score"):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 1), "float32")
    history = model.fit(
        x, x, epochs=len(values), verbose=0, callbacks=[Scripted(values, name), best]
    )
    return model, history


def kept_epoch(model):
    return int(model.layers[-1].kernel.numpy()[0, 0])


def test_keeps_the_weights_of_the_highest_accuracy_epoch():
    best = BestEpoch("val_score_accuracy")
    model, _ = fit([0.5, 0.8, 0.6, 0.7], best, name="val_score_accuracy")
    assert kept_epoch(model) == 1
    assert best.summary()["best_epoch"] == 1 and best.summary()["best_value"] == 0.8
    assert best.summary()["epochs_run"] == 4 and not best.summary()["stopped_early"]


def test_keeps_the_lowest_loss_epoch():
    best = BestEpoch("val_score_loss")
    model, _ = fit([0.9, 0.7, 0.8, 0.75], best, name="val_score_loss")
    assert kept_epoch(model) == 1 and best.mode == "min"


def test_patience_stops_the_run_after_epochs_without_improvement():
    best = BestEpoch("val_score_loss", patience=2)
    model, history = fit([0.9, 0.5, 0.6, 0.7, 0.4, 0.3], best, name="val_score_loss")
    assert len(history.history["loss"]) == 4
    assert kept_epoch(model) == 1 and best.summary()["stopped_early"]


def test_an_unlogged_monitor_is_a_clear_error():
    with pytest.raises(MmtaskError, match="val_post_accuracy.*not logged"):
        fit([0.5], BestEpoch("val_post_accuracy"))


@pytest.mark.parametrize(
    "monitor, mode",
    [("val_loss", "min"), ("val_post_sentiment_accuracy", "max"), ("val_x_macro_f1", "max")],
)
def test_mode_follows_the_figure(monitor, mode):
    assert monitor_mode(monitor) == mode
