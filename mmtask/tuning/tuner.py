"""`tune`: search a run spec's fields with KerasTuner, each trial scored by cross-validation.

KerasTuner's oracle proposes the values of the searched fields; each trial
trains the resulting spec with `mmtask.train` once per fold and scores the
mean of a validation figure over the folds. Encoders that stay frozen are
cached by content, so later folds and trials reuse their outputs. The
search state lives in a folder, so an interrupted search resumes where it
stopped.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import yaml

from mmtask.best_epoch import monitor_mode
from mmtask.data import Posts
from mmtask.errors import MmtaskError
from mmtask.spec import RunSpec
from mmtask.training import TrainingResult, train
from mmtask.tuning.folds import k_folds
from mmtask.tuning.search_space import SearchSpace

ORACLES = ("random", "bayesian")
SEARCH_FILE = "search.json"
TRIALS_FOLDER = "trials"


@dataclass
class TuningResult:
    """What a search found.

    Args:
        best_spec: RunSpec. The recipe with the best trial's values.
        metric: str. The figure scored on each validation fold.
        direction: str. "min" or "max": which way `metric` is better.
        best_score: float. The best trial's mean `metric` over the folds.
        best_std: float. Its standard deviation over the folds.
        best_trial: str. The best trial's id.
        folds: int. The number of folds each trial trained on.
        trials: list[dict]. One row per trial: `trial`, `status`, `score`
            (mean), `std`, `fold_1`... and the value of each searched path.
        paths: list[str]. The searched paths.
    """

    best_spec: RunSpec
    metric: str
    direction: str
    best_score: float
    best_std: float
    best_trial: str
    folds: int
    trials: list[dict]
    paths: list[str]

    def save(self, path: str | Path, command: str | None = None) -> dict[str, Path]:
        """Write the best spec as a recipe at `path`, and the trials as CSV beside it.

        The recipe's comment header gives the searched paths, the score
        (mean ± std over the folds), the number of trials and `command`.
        """
        path = Path(path)
        if path.suffix not in (".yaml", ".yml"):
            raise MmtaskError(f"The best recipe is written as YAML: end it in .yaml. Got {path}")
        table = path.with_name(f"{path.stem}.trials.csv")
        completed = sum(row["status"] == "COMPLETED" for row in self.trials)
        header = [
            f"Best of {len(self.trials)} trials ({completed} completed) of a search over",
            *(f"  {p}" for p in self.paths),
            f"scored by {self.folds}-fold cross-validation on the training posts:",
            f"  {self.metric} {self.best_score:.4f} ± {self.best_std:.4f} (mean ± std over "
            f"folds, {'lower' if self.direction == 'min' else 'higher'} is better), "
            f"trial {self.best_trial}.",
            f"Every trial: {table.name}",
        ]
        if command:
            header.append(f"Command: {command}")
        text = "".join(f"# {line}\n" for line in header)
        text += yaml.safe_dump(self.best_spec.to_dict(), sort_keys=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        columns = list(dict.fromkeys(key for row in self.trials for key in row))
        with table.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            for row in self.trials:
                writer.writerow({k: _cell(v) for k, v in row.items()})
        return {"recipe": path, "trials": table}


def tune(
    spec: RunSpec,
    posts: Posts,
    search_space: SearchSpace,
    directory: str | Path,
    folds: int = 5,
    max_trials: int = 10,
    metric: str | None = None,
    oracle: str = "random",
    seed: int = 0,
    stratify: str | None = None,
    restart: bool = False,
    cache_dir: str | Path | None = None,
    safe_mode: bool = True,
    verbose: int = 1,
) -> TuningResult:
    """Search the fields of `spec` that `search_space` names; return the best spec and every trial.

    Each trial sets the searched fields, trains on each of `folds` folds of
    `posts` (`k_folds`) with `mmtask.train`, and scores the mean of `metric`
    over the validation folds.

    Args:
        spec: RunSpec. The recipe searched around; fields not searched stay as they are.
        posts: Posts. The training posts, split into folds (keep test posts out).
        search_space: SearchSpace. The searched paths and their distributions.
        directory: str | Path. The search's folder: KerasTuner's trials and
            a fingerprint of the search. A folder holding the same search
            resumes it (up to `max_trials` in all); one holding another
            search is an error unless `restart`.
        folds: int. Folds per trial (at least 2).
        max_trials: int. Trials in all, those of a resumed search included.
        metric: str | None. What each fold scores: a logged validation figure
            at the kept epoch (e.g. "val_loss", "val_post_sentiment_accuracy"),
            or "TASK/FIGURE" of the kept weights' report (e.g.
            "post_sentiment/weighted_f1"). None: `spec.training.monitor`.
            Losses and errors are minimised, the rest maximised.
        oracle: str. "random" (KerasTuner's random search), or "bayesian"
            (Gaussian-process Bayesian optimisation; needs scikit-learn).
        seed: int. Seeds the oracle and the folds.
        stratify: str | None. A classification task whose classes are spread
            evenly over the folds.
        restart: bool. Discard the trials in `directory` and start afresh.
        cache_dir: str | Path | None. Folder of cached frozen-encoder outputs,
            shared by every fold and trial (default: `mmtask.train`'s).
        safe_mode: bool. As in `mmtask.train`.
        verbose: int. 0 silent; 1 one line per fold and per trial on stderr.

    Raises:
        MmtaskError: a bad search space, metric or folder, or no trial completed.
    """
    metric = metric or spec.training.monitor
    _check_metric(metric, posts)
    if oracle not in ORACLES:
        raise MmtaskError(f"`oracle` must be one of {list(ORACLES)}. Received: {oracle!r}")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise MmtaskError(f"`max_trials` must be an int >= 1. Received: {max_trials!r}")
    search_space.check(spec)
    splits = k_folds(posts, folds, seed=seed, stratify=stratify)
    directory = Path(directory)
    _claim(
        directory,
        _fingerprint(spec, posts, search_space, folds, metric, oracle, seed, stratify),
        restart,
    )
    direction = monitor_mode(metric)
    objective = keras_tuner.Objective(metric, direction)
    tuner = _CrossValidation(
        oracle=_oracle(oracle, objective, max_trials, seed, search_space),
        spec=spec,
        space=search_space,
        splits=splits,
        metric=metric,
        train_options={"cache_dir": cache_dir, "safe_mode": safe_mode},
        verbose=verbose,
        directory=str(directory),
        project_name=TRIALS_FOLDER,
        overwrite=restart,
    )
    try:
        tuner.search()
    except keras_tuner.errors.FatalError as error:
        if isinstance(error.__cause__, MmtaskError):
            raise error.__cause__ from None
        raise
    except RuntimeError as error:
        if not str(error).startswith("Number of consecutive failures"):
            raise
        # KerasTuner stops after 3 trials in a row failed; each said why on stderr.
        raise MmtaskError(f"The search stopped: {str(error).splitlines()[0]}") from None
    return _result(tuner, spec, search_space, metric, direction, folds)


class _CrossValidation(keras_tuner.engine.base_tuner.BaseTuner):
    """A KerasTuner tuner whose trial is one k-fold cross-validation of a spec."""

    def __init__(self, spec, space, splits, metric, train_options, verbose, **kwargs):
        self.spec = spec
        self.space = space
        self.splits = splits
        self.metric = metric
        self.train_options = train_options
        self.verbose = verbose
        if verbose:
            print(
                f"search over {len(space.dimensions)} field(s), {len(splits)} folds of "
                f"{sum(len(v) for _, v in splits)} posts, scoring {metric}",
                file=sys.stderr,
            )
        # KerasTuner says "Reloading Tuner from ..." on stdout; it is progress.
        with contextlib.redirect_stdout(sys.stderr):
            super().__init__(**kwargs)
        self.oracle.verbose = 0  # its display prints tables on stdout; we print one line

    def run_trial(self, trial, *args, **kwargs):
        values = self.space.values(trial.hyperparameters.values)
        self._say(f"trial {trial.trial_id}: " + ", ".join(f"{p}={v}" for p, v in values.items()))
        spec = self.space.apply(self.spec, trial.hyperparameters.values)
        scores = []
        for fold, (train_posts, val_posts) in enumerate(self.splits, start=1):
            started = time.perf_counter()
            try:
                result = train(
                    copy.deepcopy(spec), train_posts, val_posts, verbose=0, **self.train_options
                )
                score = fold_score(result, self.metric)
            except MmtaskError as error:
                # A user error fails every trial alike: stop the search and say it.
                raise keras_tuner.errors.FatalError(str(error)) from error
            finally:
                keras.backend.clear_session()  # the fold's model is done with
            self._say(
                f"  fold {fold}/{len(self.splits)}: {self.metric} {score:.4f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
            if not math.isfinite(score):
                raise keras_tuner.errors.FailedTrialError(
                    f"fold {fold} gave no finite {self.metric} (a diverging loss?)"
                )
            scores.append(score)
        return {
            self.metric: float(np.mean(scores)),
            "std": float(np.std(scores)),
            **{f"fold_{i}": s for i, s in enumerate(scores, start=1)},
        }

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if trial.status == "COMPLETED":
            mean = trial.metrics.get_last_value(self.metric)
            std = trial.metrics.get_last_value("std")
            best = self.oracle.get_best_trials(1)[0]
            self._say(
                f"trial {trial.trial_id}: {self.metric} {mean:.4f} ± {std:.4f}; best so far "
                f"{best.score:.4f} (trial {best.trial_id})"
            )
        else:
            reason = (trial.message or "").strip().splitlines()[-1:] or ["no reason given"]
            self._say(f"trial {trial.trial_id}: {trial.status.lower()}: {reason[0]}")

    def _say(self, line: str) -> None:
        if self.verbose:
            print(line, file=sys.stderr, flush=True)


def fold_score(result: TrainingResult, metric: str) -> float:
    """A fold's `metric`: a figure logged at the kept epoch, or "TASK/FIGURE" of its report.

    NaN where no epoch was kept (every validation figure NaN).
    """
    if "/" in metric:
        task, _, figure = metric.partition("/")
        row = result.report.tasks[task].row()
        if figure not in row:
            raise MmtaskError(f"Cannot score {metric!r}: task {task!r} reports {sorted(row)}.")
        return float(row[figure])
    if metric not in result.history:
        raise MmtaskError(
            f"Cannot score {metric!r}: it is not logged. Logged: {sorted(result.history)}"
        )
    kept = result.selection["best_epoch"] if result.selection else None
    return float("nan") if kept is None else float(result.history[metric][kept])


def _check_metric(metric: str, posts: Posts) -> None:
    """Raise unless `metric` is a validation figure or a "TASK/FIGURE" of one of the tasks."""
    if "/" in metric:
        task = metric.partition("/")[0]
        if task not in posts.tasks:
            raise MmtaskError(
                f"Cannot score {metric!r}: the data has no task {task!r}; tasks: {posts.tasks}"
            )
    elif not metric.startswith("val_"):
        raise MmtaskError(
            f"A search scores a validation figure, e.g. 'val_loss' or "
            f"'post_sentiment/weighted_f1'. Received: metric={metric!r}"
        )


def _oracle(name, objective, max_trials, seed, space):
    options = {
        "objective": objective,
        "max_trials": max_trials,
        "seed": seed,
        "hyperparameters": space.hyperparameters(),
        "allow_new_entries": False,
    }
    if name == "random":
        return keras_tuner.oracles.RandomSearchOracle(**options)
    try:
        return keras_tuner.oracles.BayesianOptimizationOracle(**options)
    except ImportError as error:
        raise MmtaskError(
            f"oracle 'bayesian' needs scikit-learn (pip install scikit-learn): {error}"
        ) from None


def _fingerprint(spec, posts, space, folds, metric, oracle, seed, stratify) -> dict:
    """What makes two searches the same: all but the number of trials."""
    data = hashlib.sha256()
    for post_id in posts.ids:
        data.update(post_id.encode() + b"\0")
    for task, labels in posts.labels.items():
        data.update(task.encode() + labels.tobytes())
    return {
        "spec": spec.to_dict(),
        "space": [dataclasses.asdict(d) for d in space.dimensions],
        "posts": data.hexdigest(),
        "folds": folds,
        "metric": metric,
        "oracle": oracle,
        "seed": seed,
        "stratify": stratify,
    }


def _claim(directory: Path, fingerprint: dict, restart: bool) -> None:
    """Make `directory` this search's folder; refuse one holding another search."""
    if directory.exists() and not directory.is_dir():
        raise MmtaskError(f"The search folder {directory} is a file.")
    file = directory / SEARCH_FILE
    expected = json.loads(json.dumps(fingerprint))
    if not restart and file.is_file():
        held = json.loads(file.read_text(encoding="utf-8"))
        if held != expected:
            changed = sorted(k for k in expected if held.get(k) != expected[k])
            raise MmtaskError(
                f"The search folder {directory} holds another search (its {', '.join(changed)} "
                f"differ): restart it, or give another folder."
            )
    elif not restart and directory.is_dir() and any(directory.iterdir()):
        raise MmtaskError(
            f"The search folder {directory} holds files but no {SEARCH_FILE}: give an empty "
            f"or new folder."
        )
    directory.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(expected, indent=2), encoding="utf-8")


def _result(tuner, spec, space, metric, direction, folds) -> TuningResult:
    rows = []
    for trial_id in tuner.oracle.start_order:
        trial = tuner.oracle.trials[trial_id]
        row = {"trial": trial_id, "status": trial.status}
        for name in (metric, "std", *(f"fold_{i}" for i in range(1, folds + 1))):
            value = None
            if trial.metrics.exists(name):
                value = float(trial.metrics.get_last_value(name))
            row["score" if name == metric else name] = value
        row.update(space.values(trial.hyperparameters.values))
        rows.append(row)
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    if not completed:
        raise MmtaskError(
            f"No trial of the search in {tuner.directory} completed: see the reasons above."
        )
    best = tuner.oracle.get_best_trials(1)[0]
    row = next(r for r in rows if r["trial"] == best.trial_id)
    return TuningResult(
        best_spec=space.apply(spec, best.hyperparameters.values),
        metric=metric,
        direction=direction,
        best_score=row["score"],
        best_std=row["std"],
        best_trial=best.trial_id,
        folds=folds,
        trials=rows,
        paths=[d.path for d in space.dimensions],
    )


def _cell(value):
    """A CSV cell: lists and mappings as JSON, the rest as they are."""
    return json.dumps(value) if isinstance(value, list | dict) else value
