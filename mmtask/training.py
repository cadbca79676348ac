"""Fit a model from a spec on read posts: the path shared by the CLI, the demo and scripts."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from mmtask.atomic_folders import replace_folder, staging_folder
from mmtask.best_epoch import BestEpoch
from mmtask.builder import build_model
from mmtask.data import Posts, make_dataset
from mmtask.data.pipeline import batches_per_epoch
from mmtask.encoders.base import Encoder
from mmtask.errors import MmtaskError
from mmtask.evaluation import EvaluationReport, evaluate_model, modality_contributions
from mmtask.mixed_precision import MIXED_PRECISION, dtype_policy
from mmtask.models import MultiTaskModel
from mmtask.optimizers import build_optimizer
from mmtask.progress import history_table, progress_callbacks
from mmtask.run_backup import RunBackup, posts_fingerprint
from mmtask.run_folder import (
    CONTRIBUTIONS_FILE,
    EPOCHS_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    REPORT_FILE,
    SELECTION_FILE,
    SPEC_FILE,
)
from mmtask.spec import RunSpec
from mmtask.transfer.feature_cache import FeatureCache, default_cache_dir
from mmtask.transfer.features import has_modality
from mmtask.transfer.frozen_encoders import cached_twin, plan_cache, pools_by_mean


@dataclass
class TrainingResult:
    """What a training run produced.

    Args:
        model: MultiTaskModel. The trained model, with its real encoders
            (also where training read cached features), holding the weights
            of the selected epoch.
        history: per-epoch logs.
        report: EvaluationReport | None. Validation figures of the kept weights.
        contributions: per-head accuracy with each modality masked, if asked for.
        selection: dict | None. Which epoch was kept and by what figure
            (`BestEpoch.summary()`); None where no epoch could be selected.
        cached: modality -> whether sequences (rather than vectors) of its
            frozen encoder were computed once and cached.
        stems: modality -> the first backbone layer above the cut, for an
            encoder whose frozen stem ran once (cached) and whose top trained.
    """

    model: MultiTaskModel
    history: dict[str, list[float]]
    report: EvaluationReport | None
    contributions: dict[str, dict[str, float]] | None = None
    selection: dict | None = None
    cached: dict[str, bool] = field(default_factory=dict)
    stems: dict[str, str] = field(default_factory=dict)


def train(
    spec: RunSpec,
    train_posts: Posts,
    val_posts: Posts | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    contributions: bool = False,
    cache_dir: str | Path | None = None,
    safe_mode: bool = True,
    backup_dir: str | Path | None = None,
) -> TrainingResult:
    """Build the model of `spec`, fit it on `train_posts`, and evaluate on `val_posts`.

    Encoders that stay frozen for the whole run are computed once per post
    and cached on disk (`spec.training.cache_frozen_encoders`); the rest of
    the model trains on their outputs, and the returned model holds the real
    encoders. The weights kept are those of the epoch with the best
    `spec.training.monitor` (with validation data).

    Args:
        spec: RunSpec. The model and training settings; tasks left to the data
            are filled in, so the spec saved with the run names them.
        train_posts: Posts. Training data; the text vocabulary is adapted on its texts.
        val_posts: Posts | None. Validation data, evaluated after each epoch and at the end.
        callbacks: Keras callbacks passed to `fit`.
        verbose: int | str. 0 prints nothing (feature extraction included); 1
            ("auto") a live line and a table of per-task metrics per epoch; 2 one
            line per epoch (`mmtask.progress`).
        contributions: bool. Also measure each head's validation accuracy with
            the text, then the image, masked (`modality_contributions`).
        cache_dir: str | Path | None. Folder of cached encoder outputs
            (default: `mmtask.transfer.default_cache_dir()`).
        safe_mode: bool. False to allow parts that run a SavedModel's graph
            (`tf_hub` encoders), as loading such a model needs.
        backup_dir: str | Path | None. Back the run up in this folder after
            every epoch (`mmtask.run_backup.RunBackup`); a run started where a
            killed run with the same spec and data left its backup goes on
            from there, and ends with the weights and history of a run never
            stopped. The folder stays: remove it once the run is saved
            (`mmtask train --resume` does).

    With `spec.training.mixed_precision` set, the model is built and trained
    under that dtype policy (its layers keep it); the global policy is
    restored on return.
    """
    with dtype_policy(MIXED_PRECISION[spec.training.mixed_precision]):
        return _train(
            spec,
            train_posts,
            val_posts,
            callbacks,
            verbose,
            contributions,
            cache_dir,
            safe_mode,
            backup_dir,
        )


def _train(
    spec: RunSpec,
    train_posts: Posts,
    val_posts: Posts | None,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int | str,
    contributions: bool,
    cache_dir: str | Path | None,
    safe_mode: bool,
    backup_dir: str | Path | None,
) -> TrainingResult:
    spec.model = spec.model.with_tasks_for(train_posts.tasks)
    settings = spec.training
    best = None
    if val_posts is not None or not settings.monitor.startswith("val_"):
        best = BestEpoch(settings.monitor, patience=settings.patience)
    backup = None
    if backup_dir is not None:
        run = {"spec": spec.to_dict(), "data": posts_fingerprint(train_posts, val_posts)}
        backup = RunBackup(backup_dir, run, best)
        if backup.first_epoch and verbose:
            print(
                f"resuming after epoch {backup.first_epoch} of {settings.epochs} "
                f"from the backup in {backup_dir}",
                file=sys.stderr,
            )
    first_epoch = backup.first_epoch if backup is not None else 0
    if backup is not None and backup.finished:
        first_epoch = settings.epochs  # Stopped early, or done: no epoch left.
    keras.utils.set_random_seed(settings.seed)
    model = build_model(
        spec.model,
        train_posts.label_names,
        train_posts.texts,
        label_types=train_posts.label_types,
        train_labels=train_posts.labels,
        safe_mode=safe_mode,
    )
    features, tops = {}, {}
    if settings.cache_frozen_encoders:
        features, tops = _cached_features(
            model, spec, train_posts, val_posts, cache_dir, 1 if verbose == "auto" else int(verbose)
        )
    trained = cached_twin(model, features["train"], tops) if features else model
    for split, posts in (("train", train_posts), ("val", val_posts)):
        for modality, values in features.get(split, {}).items():
            posts = posts.with_features(modality, values)
        if split == "train":
            train_posts = posts
        else:
            val_posts = posts
    steps_per_epoch = batches_per_epoch(len(train_posts), settings.batch_size)

    def optimizer():
        return build_optimizer(
            settings.optimizer, settings.learning_rate, settings.epochs, steps_per_epoch
        )

    trained.compile(optimizer=optimizer())
    train_data = make_dataset(
        train_posts,
        model=trained,
        batch_size=settings.batch_size,
        training=True,
        augment=settings.augment,
        cache=settings.cache,
        seed=settings.seed,
        # Keras draws a batch to build the optimizer even when no epoch is left.
        epochs=range(min(first_epoch, settings.epochs - 1), settings.epochs),
    )
    val_data = None
    if val_posts is not None:
        val_data = make_dataset(
            val_posts,
            model=trained,
            batch_size=settings.batch_size,
            cache=settings.cache,
        )
    callbacks = list(callbacks)
    if best is not None:
        callbacks.append(best)
    callbacks.extend(progress_callbacks(trained.tasks, verbose))
    if backup is not None:
        callbacks.append(backup)  # Last: it saves what the others did in the epoch.
    history = trained.fit(
        train_data,
        validation_data=val_data,
        epochs=settings.epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=0,  # the progress callbacks print instead, in 80 columns
        shuffle=False,  # the dataset shuffles itself when training
        fine_tuning=settings.fine_tuning,
    )
    report = evaluate_model(trained, val_data) if val_data is not None else None
    masked = None
    if contributions and val_data is not None and len(trained.modalities) == 2:
        masked = modality_contributions(trained, val_data)
    if trained is not model:
        # Compiled like the model that trained, so the saved file reloads compiled.
        model.compile(optimizer=optimizer())
    logged = backup.history if backup is not None else history.history
    history_lists = {k: [float(v) for v in vs] for k, vs in logged.items()}
    return TrainingResult(
        model,
        history_lists,
        report,
        masked,
        selection=best.summary() if best is not None else None,
        cached={m: v.ndim == 3 for m, v in features.get("train", {}).items() if m not in tops},
        stems={m: top.first_layer_above_cut for m, top in tops.items()},
    )


def _cached_features(
    model: MultiTaskModel,
    spec: RunSpec,
    train_posts: Posts,
    val_posts: Posts | None,
    cache_dir: str | Path | None,
    verbose: int,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Encoder]]:
    """What trains on cached outputs instead of running an encoder (or its frozen stem) live.

    Returns:
        `(features, tops)`: split -> modality -> the cached outputs of each
        encoder that stays frozen, or of the frozen stem of one that trains
        only in its top layers; and modality -> the top that reads a stem's outputs.
    """
    settings = spec.training
    plan = plan_cache(
        model, settings.fine_tuning, settings.augment, precomputed=set(train_posts.features)
    )
    cache = FeatureCache(cache_dir or default_cache_dir(), verbose=verbose)
    features: dict[str, dict[str, np.ndarray]] = {"train": {}}
    if val_posts is not None:
        features["val"] = {}
    runs_once = [(m, model.encoders[m], sequence, None) for m, sequence in plan.cached.items()]
    runs_once += [(m, stem, True, top) for m, (stem, top) in plan.split.items()]
    tops = {}
    for modality, encoder, sequence, top in runs_once:
        if not has_modality(train_posts, modality).any():
            plan.live[modality] = "no training post has it"
            continue
        if (
            top is None
            and sequence
            and not pools_by_mean(encoder, train_posts, modality, image_size=spec.model.image_size)
        ):
            plan.live[modality] = (
                "the fusion reads its sequence, and its vector is not the mean of that sequence"
            )
            continue
        for split, posts in (("train", train_posts), ("val", val_posts)):
            if posts is None:
                continue
            if not has_modality(posts, modality).any():
                # Every post lacks it: NaN rows, as the cache gives a missing post.
                row = features["train"][modality].shape[1:]
                features[split][modality] = np.full((len(posts), *row), np.nan, np.float32)
                continue
            features[split][modality] = cache.features(
                posts,
                encoder,
                modality,
                image_size=spec.model.image_size,
                sequence=sequence,
                batch_size=max(settings.batch_size, 64),
            )
        if top is not None:
            tops[modality] = top
    if verbose:
        for modality, reason in plan.live.items():
            print(f"{modality} encoder runs in every step: {reason}", file=sys.stderr)
        for modality in tops:
            print(
                f"{modality} encoder: its frozen stem runs once, its top layers in every step",
                file=sys.stderr,
            )
    return (features if features["train"] else {}), tops


def save_run(
    result: TrainingResult, spec: RunSpec, run_dir: str | Path, overwrite: bool = False
) -> dict[str, Path]:
    """Write the model, spec, history (also as per-epoch tables) and report of a run.

    The folder is written whole beside `run_dir` and then moved into place, so
    it holds either the previous run or this one, never a mix of both.

    Args:
        overwrite: bool. Replace a folder that already holds files (all of them
            go, the previous run's plots and report included).

    Returns the paths written.
    """
    target = Path(run_dir)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise MmtaskError(
            f"Run folder {target} already holds files; pass overwrite=True "
            "(`mmtask train --overwrite`) to replace them."
        )
    run_dir = staging_folder(target)
    try:
        paths = _write_run(result, spec, run_dir)
        replace_folder(run_dir, target)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return {name: target / path.name for name, path in paths.items()}


def _write_run(result: TrainingResult, spec: RunSpec, run_dir: Path) -> dict[str, Path]:
    paths = {
        "model": run_dir / MODEL_FILE,
        "spec": run_dir / SPEC_FILE,
        "history": run_dir / HISTORY_FILE,
    }
    result.model.save(paths["model"])
    spec.save(paths["spec"])
    paths["history"].write_text(json.dumps(result.history, indent=2), encoding="utf-8")
    paths["epochs"] = run_dir / EPOCHS_FILE
    paths["epochs"].write_text(history_table(result.history, result.model.tasks), encoding="utf-8")
    if result.report is not None:
        paths["report"] = run_dir / REPORT_FILE
        result.report.save(paths["report"])
    if result.selection is not None:
        paths["selection"] = run_dir / SELECTION_FILE
        paths["selection"].write_text(json.dumps(result.selection, indent=2), encoding="utf-8")
    if result.contributions is not None:
        paths["contributions"] = run_dir / CONTRIBUTIONS_FILE
        paths["contributions"].write_text(
            json.dumps(result.contributions, indent=2), encoding="utf-8"
        )
    return paths


def load_model(path: str | Path, safe_mode: bool = True, compile: bool = True) -> MultiTaskModel:
    """Load a model saved by mmtask (`.keras` file or a run folder holding one).

    Args:
        path: str | Path. The `.keras` file, or a run folder holding `model.keras`.
        safe_mode: bool. As in `keras.models.load_model`; a model with a
            `tf_hub` encoder runs its SavedModel's graph and needs False.
        compile: bool. Restore the optimizer too, to train on; False for a
            model that only predicts.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise MmtaskError(f"No saved model at {path}")
    try:
        return keras.models.load_model(path, safe_mode=safe_mode, compile=compile)
    except (ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as error:
        # Keras nests the cause in "Exception encountered: ..." lines; the last says why.
        reason = str(error).split("Exception encountered:")[-1].strip().splitlines()[0]
        raise MmtaskError(f"Could not load a model from {path}: {reason}") from None
