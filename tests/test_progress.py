"""Training output in 80 columns: short names, per-task tables, the progress callback."""

import io
import sys
import types

import pytest

from mmtask.progress import (
    LINE_WIDTH,
    TaskProgress,
    epoch_table,
    history_table,
    progress_callbacks,
    short_task_names,
    split_logs,
    summary_line,
)

TASKS = ["text_sentiment", "image_sentiment", "post_sentiment"]


def logs_for(tasks, value=0.5):
    logs = {"loss": 3.0, "val_loss": 3.5}
    for prefix in ("", "val_"):
        for i, task in enumerate(tasks):
            logs[f"{prefix}{task}_loss"] = 1.0 + i
            logs[f"{prefix}{task}_accuracy"] = value + i / 10
            logs[f"{prefix}{task}_macro_f1"] = 0.25
            logs[f"{prefix}{task}_loss_weight"] = 2.0
    return logs


def test_short_names_drop_shared_words_and_stay_unique():
    assert short_task_names(TASKS) == {
        "text_sentiment": "text",
        "image_sentiment": "image",
        "post_sentiment": "post",
    }
    names = short_task_names(["sentiment_a_long", "sentiment_a_longer"], width=6)
    assert len(set(names.values())) == 2
    assert all(len(n) <= 6 for n in names.values())


def test_split_logs_keeps_tasks_apart_by_the_longest_name():
    overall, per_task = split_logs(
        {"loss": 1.0, "post_loss": 2.0, "post_topic_loss": 3.0, "val_post_topic_accuracy": 0.5},
        ["post", "post_topic"],
    )
    assert overall == {"loss": 1.0}
    assert per_task == {"post": {"loss": 2.0}, "post_topic": {"loss": 3.0, "val_accuracy": 0.5}}


def test_epoch_table_has_a_row_per_task_and_fits_80_columns():
    table = epoch_table(logs_for(TASKS), TASKS, title="epoch 1/3")
    lines = table.splitlines()
    assert lines[0] == "epoch 1/3  loss 3.0000  val_loss 3.5000"
    assert lines[1].split() == [
        "task", "loss", "acc", "f1", "weight", "val_loss", "val_acc", "val_f1",
    ]  # fmt: skip
    assert lines[3].split() == [
        "image_sentiment", "2.0000", "0.6000", "0.2500", "2.0000", "2.0000", "0.6000", "0.2500",
    ]  # fmt: skip
    assert len(lines) == 2 + len(TASKS)
    assert max(len(line) for line in lines) <= LINE_WIDTH


def test_history_table_has_one_table_per_epoch():
    history = {k: [v, v + 1] for k, v in logs_for(TASKS).items()}
    text = history_table(history, TASKS)
    assert "epoch 1/2  loss 3.0000" in text and "epoch 2/2  loss 4.0000" in text


def test_summary_line_shows_validation_accuracy_and_fits_with_many_tasks():
    line = summary_line(logs_for(TASKS), TASKS, prefix="epoch 1/3 12s")
    assert line == (
        "epoch 1/3 12s loss 3.00 val_loss 3.50 | val_acc text .500 image .600 post .700"
    )
    many = [f"task_number_{i}" for i in range(12)]
    line = summary_line(logs_for(many), many)
    assert len(line) <= LINE_WIDTH and line.endswith(" ...")
    assert "val_acc 0 .500 1 .600 2 .700" in line  # the first tasks, not cut mid-number


def run_epoch(verbose):
    stream = io.StringIO()
    progress = TaskProgress(TASKS, verbose=verbose, stream=stream)
    progress.set_params({"epochs": 3, "steps": 4, "verbose": 0})
    progress.on_epoch_begin(0)
    for batch in range(4):
        progress.on_train_batch_end(batch, {"loss": 3.0})
    progress.on_epoch_end(0, logs_for(TASKS))
    return stream.getvalue()


def test_verbose_1_prints_the_bar_then_the_table():
    lines = run_epoch(verbose=1).splitlines()
    assert lines[0].startswith("4/4 [==========]")
    assert lines[1].startswith("epoch 1/3  loss 3.0000")
    assert len(lines) == 3 + len(TASKS)  # bar, title, header, a row per task


def test_verbose_2_prints_one_line_per_epoch():
    lines = run_epoch(verbose=2).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("epoch 1/3") and "val_acc text .500" in lines[0]


def test_progress_callbacks_follow_verbose():
    assert progress_callbacks(TASKS, 0) == []
    assert progress_callbacks(TASKS, "auto")[0].verbose == 1
    with pytest.raises(ValueError, match="expected 0, 1, 2 or 'auto'. Received: 3"):
        progress_callbacks(TASKS, 3)


def test_a_buffer_is_not_redrawn_even_with_a_notebook_kernel_imported(monkeypatch):
    # A notebook's own output stream is redrawn; any other stream is not,
    # whatever else the process has imported.
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert run_epoch(verbose=1).splitlines()[0].startswith("4/4 [==========]")
