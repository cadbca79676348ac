"""Fit a model from a spec on read posts: the path shared by the CLI, the demo and scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras

from mmtask.builder import build_model
from mmtask.data import Posts, make_dataset
from mmtask.errors import MmtaskError
from mmtask.evaluation import EvaluationReport, evaluate_model, modality_contributions
from mmtask.models import MultiTaskModel
from mmtask.run_folder import CONTRIBUTIONS_FILE, HISTORY_FILE, MODEL_FILE, REPORT_FILE, SPEC_FILE
from mmtask.spec import RunSpec


@dataclass
class TrainingResult:
    """What a training run produced."""

    model: MultiTaskModel
    history: dict[str, list[float]]
    report: EvaluationReport | None
    contributions: dict[str, dict[str, float]] | None = None


def train(
    spec: RunSpec,
    train_posts: Posts,
    val_posts: Posts | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = "auto",
    contributions: bool = False,
) -> TrainingResult:
    """Build the model of `spec`, fit it on `train_posts`, and evaluate on `val_posts`.

    Args:
        spec: RunSpec. The model and training settings; tasks left to the data
            are filled in, so the spec saved with the run names them.
        train_posts: Posts. Training data; the text vocabulary is adapted on its texts.
        val_posts: Posts | None. Validation data, evaluated after each epoch and at the end.
        callbacks: Keras callbacks passed to `fit`.
        verbose: passed to `fit`.
        contributions: bool. Also measure each head's validation accuracy with
            the text, then the image, masked (`modality_contributions`).
    """
    spec.model = spec.model.with_tasks_for(train_posts.tasks)
    keras.utils.set_random_seed(spec.training.seed)
    model = build_model(spec.model, train_posts.label_names, train_posts.texts)
    model.compile(optimizer=keras.optimizers.Adam(spec.training.learning_rate))
    image_size = spec.model.image_size
    train_data = make_dataset(
        train_posts,
        image_size=image_size,
        batch_size=spec.training.batch_size,
        training=True,
        augment=spec.training.augment,
        cache=spec.training.cache,
        seed=spec.training.seed,
    )
    val_data = None
    if val_posts is not None:
        val_data = make_dataset(
            val_posts,
            image_size=image_size,
            batch_size=spec.training.batch_size,
            cache=spec.training.cache,
        )
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=spec.training.epochs,
        callbacks=list(callbacks),
        verbose=verbose,
        shuffle=False,  # the dataset shuffles itself when training
        fine_tuning=spec.training.fine_tuning,
    )
    report = evaluate_model(model, val_data) if val_data is not None else None
    masked = None
    if contributions and val_data is not None and len(model.modalities) == 2:
        masked = modality_contributions(model, val_data)
    history_lists = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return TrainingResult(model, history_lists, report, masked)


def save_run(result: TrainingResult, spec: RunSpec, run_dir: str | Path) -> dict[str, Path]:
    """Write the model, spec, history and report of a run; return the paths written."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": run_dir / MODEL_FILE,
        "spec": run_dir / SPEC_FILE,
        "history": run_dir / HISTORY_FILE,
    }
    result.model.save(paths["model"])
    spec.save(paths["spec"])
    paths["history"].write_text(json.dumps(result.history, indent=2), encoding="utf-8")
    if result.report is not None:
        paths["report"] = run_dir / REPORT_FILE
        result.report.save(paths["report"])
    if result.contributions is not None:
        paths["contributions"] = run_dir / CONTRIBUTIONS_FILE
        paths["contributions"].write_text(
            json.dumps(result.contributions, indent=2), encoding="utf-8"
        )
    return paths


def load_model(path: str | Path, safe_mode: bool = True) -> MultiTaskModel:
    """Load a model saved by mmtask (`.keras` file or a run folder holding one).

    Args:
        path: str | Path. The `.keras` file, or a run folder holding `model.keras`.
        safe_mode: bool. As in `keras.models.load_model`; a model with a
            `tf_hub` encoder runs its SavedModel's graph and needs False.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise MmtaskError(f"No saved model at {path}")
    return keras.models.load_model(path, safe_mode=safe_mode)
