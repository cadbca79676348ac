"""`RunBackup`: a run's whole state after every epoch, so a killed run resumes as if never stopped.

Keras' `BackupAndRestore` restores the weights, the optimizer and the epoch,
but not the states of the random seed generators (dropout, modality
dropout), nor the best epoch's weights `BestEpoch` holds, nor the history of
the epochs before the kill; and a dataset reshuffled on each iteration starts
its sequence afresh in a new process. A resumed run then ends elsewhere than
an uninterrupted one. `RunBackup` saves all of it, and a run fed by
`make_dataset(..., epochs=range(first_epoch, epochs))` sees the batches an
uninterrupted run saw, so it ends with the same weights and history.

The backup folder is written whole beside itself and swapped in
(`mmtask.atomic_folders`), so a kill while it is written leaves the backup
of the epoch before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from mmtask.atomic_folders import clean_stale, replace_folder, staging_folder
from mmtask.best_epoch import BestEpoch
from mmtask.data import Posts
from mmtask.errors import MmtaskError

WEIGHTS_FILE = "state.weights.h5"
"""The model's and the optimizer's variables (the loss weighting's included)."""
SEEDS_FILE = "seeds.npz"
BEST_WEIGHTS_FILE = "best.npz"
PROGRESS_FILE = "progress.json"


def posts_fingerprint(*posts: Posts | None) -> str:
    """A digest of the posts' ids, texts, image paths and labels, to refuse other data's backup."""
    digest = hashlib.sha256()
    for part in posts:
        if part is None:
            digest.update(b"\0none")
            continue
        for column in (part.ids, part.texts, part.image_paths):
            digest.update(json.dumps(list(map(str, column))).encode())
        for task in sorted(part.labels):
            digest.update(task.encode() + np.ascontiguousarray(part.labels[task]).tobytes())
    return digest.hexdigest()


class RunBackup(keras.callbacks.Callback):
    """Backs a run up after every epoch, and takes it up from its backup when `fit` starts.

    Saved: the model's weights and the optimizer's state (which hold the loss
    weighting's state: DWA's last losses, uncertainty's log-variances), the
    random seed generators' states, the epochs done and whether the run had
    ended, the history, and `best`'s selection and weights. A fine-tuning
    schedule needs nothing: its stage follows from the epoch (or the
    optimizer's restored step count).

    Fit from `first_epoch` (`fit(..., initial_epoch=backup.first_epoch)`),
    with data whose order is a function of the epoch (`make_dataset(...,
    epochs=range(backup.first_epoch, epochs))`), and list this callback
    after `best` and after any callback that adds to the epoch's logs. The
    folder is left in place at the end: remove it once the run is saved.

    Args:
        folder: str | Path. The backup folder (created at the first epoch's end).
        run: dict. What identifies the run, e.g. its spec and a fingerprint of
            its data (JSON-serialisable); a backup of another run is refused.
        best: BestEpoch | None. The epoch selection to back up with the run.

    After `fit`, `history` holds every epoch's logs, those before the restart included.
    """

    def __init__(self, folder: str | Path, run: dict, best: BestEpoch | None = None):
        super().__init__()
        self.folder = Path(folder)
        self.run = json.loads(json.dumps(run))
        self.best = best
        self.history: dict[str, list[float]] = {}
        self._best_saved_epoch = None
        clean_stale(self.folder)  # A swap a kill cut short is put back first.
        self._progress = self._read_progress()

    @property
    def first_epoch(self) -> int:
        """The epoch to start at: the number of epochs backed up (0 without a backup)."""
        return 0 if self._progress is None else self._progress["epochs_done"]

    @property
    def finished(self) -> bool:
        """Whether the backed-up run had ended (its last epoch, or stopped early)."""
        return self._progress is not None and self._progress["finished"]

    def _read_progress(self) -> dict | None:
        path = self.folder / PROGRESS_FILE
        if not path.exists():
            if self.folder.exists() and any(self.folder.iterdir()):
                raise MmtaskError(f"{self.folder} holds no {PROGRESS_FILE}: it is no run backup.")
            return None
        progress = json.loads(path.read_text(encoding="utf-8"))
        if progress["run"] != self.run:
            raise MmtaskError(
                f"The backup in {self.folder} is of another run (its spec or data differ); "
                "remove it to start this run afresh."
            )
        return progress

    def on_train_begin(self, logs=None):
        if self._progress is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # Its slots must exist to load.
        self.model.load_weights(self.folder / WEIGHTS_FILE)
        seeds = _seed_states(self.model)
        with np.load(self.folder / SEEDS_FILE) as saved:
            if len(saved.files) != len(seeds):
                raise MmtaskError(
                    f"The backup in {self.folder} holds {len(saved.files)} random seed states; "
                    f"the model has {len(seeds)}."
                )
            for index, variable in enumerate(seeds):
                variable.assign(saved[f"arr_{index}"])
        self.history = {k: list(v) for k, v in self._progress["history"].items()}
        if self.best is not None:
            best_weights = None
            if (self.folder / BEST_WEIGHTS_FILE).exists():
                with np.load(self.folder / BEST_WEIGHTS_FILE) as saved:
                    best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            self.best.restore(self._progress["best"], best_weights)
            self._best_saved_epoch = self.best.best_epoch

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        finished = bool(self.model.stop_training) or epoch + 1 >= self.params["epochs"]
        self._save(epoch + 1, finished)

    def _save(self, epochs_done: int, finished: bool) -> None:
        staging = staging_folder(self.folder)
        try:
            self.model.save_weights(staging / WEIGHTS_FILE)
            np.savez(staging / SEEDS_FILE, *[np.asarray(v) for v in _seed_states(self.model)])
            if self.best is not None and self.best.best_weights is not None:
                self._save_best_weights(staging / BEST_WEIGHTS_FILE)
            progress = {
                "run": self.run,
                "epochs_done": epochs_done,
                "finished": finished,
                "history": self.history,
                "best": self.best.summary() if self.best is not None else None,
            }
            (staging / PROGRESS_FILE).write_text(json.dumps(progress), encoding="utf-8")
            replace_folder(staging, self.folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _save_best_weights(self, path: Path) -> None:
        previous = self.folder / BEST_WEIGHTS_FILE
        if self.best.best_epoch == self._best_saved_epoch and previous.exists():
            os.link(previous, path)  # Unchanged since the last backup: not written again.
            return
        np.savez(path, *self.best.best_weights)
        self._best_saved_epoch = self.best.best_epoch


def _seed_states(model: keras.Model) -> list:
    """The model's variables that are not weights: its random seed generators' states.

    `save_weights` leaves them out, so without them a resumed run would draw
    the dropout masks of its first epochs again.
    """
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]
