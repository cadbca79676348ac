"""Training output that fits an 80-column terminal, however many tasks a model has.

Keras' progress bar prints every logged metric (four per task, and their
`val_` versions), which wraps into an unreadable block. Here the bar carries
the total loss and one accuracy per task; the full per-task metrics come as a
table, tasks as rows, once per epoch.

Example:
```python
from mmtask.progress import history_table

print(history_table(result.history, result.model.tasks))
```
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

import keras

LINE_WIDTH = 79
"""Longest line printed: one under 80, so a terminal never wraps."""

SHORT_METRICS = {
    "loss": "loss",
    "accuracy": "acc",
    "macro_f1": "f1",
    "f1": "pos_f1",
    "auc": "auc",
    "micro_f1": "micro_f1",
    "subset_accuracy": "set_acc",
    "mae": "mae",
    "rmse": "rmse",
    "r2": "r2",
    "loss_weight": "weight",
}
"""Column headers of the per-task metrics the head types log (a task shows "-" for
the metrics of other types)."""

_BAR_WIDTH = 10
_COLUMN_WIDTH = 8
_TASK_WIDTH = 16
_UPDATE_INTERVAL = 0.1  # seconds between redraws of the live line


def short_task_names(tasks: Sequence[str], width: int = 6) -> dict[str, str]:
    """Task -> a name of at most `width` characters, for the one-line summaries.

    Words every task shares are dropped ("text_sentiment", "image_sentiment"
    -> "text", "image"); names that still collide get their position appended.
    """
    words = [task.split("_") for task in tasks]
    common = set.intersection(*(set(w) for w in words)) if len(tasks) > 1 else set()
    names = [
        "_".join(w for w in ws if w not in common) or t for t, ws in zip(tasks, words, strict=True)
    ]
    names = [name[:width] for name in names]
    if len(set(names)) < len(names):
        names = [f"{name[: width - len(str(i))]}{i}" for i, name in enumerate(names, 1)]
    return dict(zip(tasks, names, strict=True))


def split_logs(
    logs: Mapping[str, float], tasks: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Split Keras logs into overall values and, per task, `{metric: value}`.

    A task's metrics keep their `val_` prefix: `val_post_loss` -> task "post",
    metric "val_loss". The longest matching task name wins, so tasks "post"
    and "post_topic" do not mix.
    """
    by_length = sorted(tasks, key=len, reverse=True)
    overall: dict[str, float] = {}
    per_task: dict[str, dict[str, float]] = {t: {} for t in tasks}
    for key, value in logs.items():
        prefix, name = ("val_", key[4:]) if key.startswith("val_") else ("", key)
        task = next((t for t in by_length if name.startswith(f"{t}_")), None)
        if task is None:
            overall[key] = float(value)
        else:
            per_task[task][prefix + name[len(task) + 1 :]] = float(value)
    return overall, per_task


def epoch_table(logs: Mapping[str, float], tasks: Sequence[str], title: str = "") -> str:
    """One epoch's logs as a table: the overall values on a line, then a row per task.

    Columns are the train metrics, then the validation ones; the validation
    loss weight is left out, as the weighting applies the same weight to both.
    """
    overall, per_task = split_logs(logs, tasks)
    head = "  ".join(f"{k} {_number(v)}" for k, v in overall.items())
    lines = [f"{title}  {head}".strip()]
    metrics = list(dict.fromkeys(m for values in per_task.values() for m in values))
    metrics = [m for m in metrics if m != "val_loss_weight"]
    order = list(SHORT_METRICS)
    metrics.sort(
        key=lambda m: (
            m.startswith("val_"),
            m == "loss_weight",
            order.index(m.removeprefix("val_")) if m.removeprefix("val_") in order else len(order),
        )
    )
    if metrics:
        width = min(max(len(t) for t in tasks), _TASK_WIDTH)
        lines.append(
            f"{'task':<{width}}"
            + "".join(f"{_short_metric(m):>{_COLUMN_WIDTH + 1}}" for m in metrics)
        )
        for task in tasks:
            values = per_task[task]
            cells = "".join(
                f"{_number(values[m]) if m in values else '-':>{_COLUMN_WIDTH + 1}}"
                for m in metrics
            )
            lines.append(f"{task[:width]:<{width}}{cells}")
    return "\n".join(lines)


def history_table(history: Mapping[str, Sequence[float]], tasks: Sequence[str]) -> str:
    """Every epoch of a `fit` history as `epoch_table`s, one after the other."""
    epochs = max((len(v) for v in history.values()), default=0)
    tables = [
        epoch_table(
            {k: v[i] for k, v in history.items() if i < len(v)},
            tasks,
            title=f"epoch {i + 1}/{epochs}",
        )
        for i in range(epochs)
    ]
    return "\n\n".join(tables) + "\n"


def summary_line(logs: Mapping[str, float], tasks: Sequence[str], prefix: str = "") -> str:
    """`prefix`, the losses and one accuracy per task, in at most `LINE_WIDTH` characters.

    Figures are short (".500" for 50%), so three tasks fit beside the losses.

    The accuracies are the validation ones when the logs have them; those of
    the tasks that do not fit are replaced by "...".
    """
    overall, per_task = split_logs(logs, tasks)
    parts = [prefix] if prefix else []
    parts += [f"{k} {v:.2f}" for k, v in overall.items() if k in ("loss", "val_loss")]
    names = short_task_names(tasks)
    kind = "val_accuracy" if any("val_accuracy" in v for v in per_task.values()) else "accuracy"
    accuracies = [
        f"{names[t]} {_fraction(per_task[t][kind])}" for t in tasks if kind in per_task[t]
    ]
    line = " ".join(parts)
    if accuracies:
        line += f" | {'val_acc' if kind.startswith('val_') else 'acc'}"
    for i, figure in enumerate(accuracies):
        room = LINE_WIDTH - (len(" ...") if i < len(accuracies) - 1 else 0)
        if len(line) + 1 + len(figure) > room:
            line += " ..."
            break
        line += " " + figure
    return line[:LINE_WIDTH]


class TaskProgress(keras.callbacks.Callback):
    """Prints `fit`'s progress in 80 columns: a short live line, then a table per epoch.

    Pass it to `fit(..., verbose=0)`, which then prints nothing of its own;
    `mmtask.train` does this for its `verbose` argument.

    Args:
        tasks: sequence of str. The model's tasks, in report order.
        verbose: int. 1: a live line (redrawn on a terminal) and the
            `epoch_table` after each epoch; 2: one `summary_line` per epoch.
        stream: TextIO | None. Where to print; default `sys.stdout`.
    """

    def __init__(self, tasks: Sequence[str], verbose: int = 1, stream: TextIO | None = None):
        super().__init__()
        if verbose not in (1, 2):
            raise ValueError(f"Invalid value for `verbose`: expected 1 or 2. Received: {verbose!r}")
        self.tasks = list(tasks)
        self.verbose = verbose
        self.stream = stream
        self._epoch = 0
        self._started = 0.0
        self._drawn = 0.0

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._started = time.monotonic()
        self._drawn = 0.0

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if self.verbose != 1 or not _live(self._out) or now - self._drawn < _UPDATE_INTERVAL:
            return
        self._drawn = now
        line = self._bar(batch + 1, now) + " " + summary_line(logs or {}, self.tasks)
        self._out.write("\r" + line[:LINE_WIDTH].ljust(LINE_WIDTH))
        self._out.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        elapsed = f"{time.monotonic() - self._started:.0f}s"
        epochs = self.params.get("epochs", epoch + 1)
        title = f"epoch {epoch + 1}/{epochs}"
        if self.verbose == 2:
            text = summary_line(logs, self.tasks, prefix=f"{title} {elapsed}")
        else:
            steps = self.params.get("steps")
            done = self._bar(steps, time.monotonic()) if steps else elapsed
            clear = "\r" + " " * LINE_WIDTH + "\r" if _live(self._out) else ""
            text = f"{clear}{done}\n{epoch_table(logs, self.tasks, title)}"
        self._out.write(text + "\n")
        self._out.flush()

    def _bar(self, seen: int, now: float) -> str:
        steps = self.params.get("steps")
        elapsed = f"{now - self._started:.0f}s"
        if not steps:
            return f"{seen}/? {elapsed}"
        filled = min(_BAR_WIDTH, _BAR_WIDTH * seen // steps)
        bar = "=" * filled + "." * (_BAR_WIDTH - filled)
        return f"{seen:>{len(str(steps))}}/{steps} [{bar}] {elapsed}"


def progress_callbacks(tasks: Sequence[str], verbose: int | str) -> list[keras.callbacks.Callback]:
    """The callbacks that print training progress for `verbose` (0, 1, 2 or "auto" = 1)."""
    verbose = 1 if verbose == "auto" else verbose
    if verbose not in (0, 1, 2):
        raise ValueError(
            f"Invalid value for `verbose`: expected 0, 1, 2 or 'auto'. Received: {verbose!r}"
        )
    return [TaskProgress(tasks, verbose)] if verbose else []


def _live(stream: TextIO) -> bool:
    """Whether lines can be redrawn: a terminal or a notebook's output, not a file or buffer."""
    return stream.isatty() or type(stream).__module__.startswith("ipykernel")


def _short_metric(metric: str) -> str:
    prefix, name = ("val_", metric[4:]) if metric.startswith("val_") else ("", metric)
    return (prefix + SHORT_METRICS.get(name, name))[:_COLUMN_WIDTH]


def _fraction(value: float) -> str:
    """A value in 0..1 in four characters: 0.5 -> ".500", 1.0 -> "1.00"."""
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}".removeprefix("0")


def _number(value: float) -> str:
    return f"{value:.4f}"


class PostsProgress:
    """Posts done, posts per second and time left of a long pass, on one line of stderr."""

    def __init__(self, label: str, total: int, verbose: int = 1):
        self.label = label
        self.total = total
        self.verbose = verbose
        self.count = 0
        self.start = time.perf_counter()

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.count / elapsed
        left = (self.total - self.count) / rate if rate > 0 else float("inf")
        return (
            f"{self.label}: {self.count}/{self.total} posts, {rate:.1f} posts/s, "
            f"{_duration(elapsed)} elapsed, {_duration(left)} left"
        )

    def add(self, count: int) -> None:
        self.count += count
        if self.verbose == 1:
            print(f"\r{self.line()}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.verbose == 1:
            print(file=sys.stderr, flush=True)
        elif self.verbose >= 2:
            print(self.line(), file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
