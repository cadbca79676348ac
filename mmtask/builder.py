"""Turns a `ModelSpec` into a `MultiTaskModel` from registered parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

import mmtask.alignment  # noqa: F401  (registers the alignment modules)
import mmtask.encoders  # noqa: F401  (registers the built-in and saved encoders)
import mmtask.fusion  # noqa: F401  (registers the built-in fusion modules)
import mmtask.weighting  # noqa: F401  (registers the built-in weighting methods)
from mmtask.errors import SpecError
from mmtask.heads import TaskHead
from mmtask.models import MultiTaskModel
from mmtask.registry import (
    ALIGNMENTS,
    FUSIONS,
    HEADS,
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    WEIGHTINGS,
)
from mmtask.safe_mode import spec_safe_mode
from mmtask.spec import ModelSpec, TaskSpec


def build_model(
    spec: ModelSpec,
    label_names: Mapping[str, Sequence[str]],
    train_texts: Sequence[str] | None = None,
    *,
    label_types: Mapping[str, str] | None = None,
    train_labels: Mapping[str, np.ndarray] | None = None,
    safe_mode: bool = True,
) -> MultiTaskModel:
    """Build the joint model a spec describes.

    Args:
        spec: ModelSpec. Which parts to use and how the tasks read them.
        label_names: mapping of task -> class names (output names for a
            regression task), usually `posts.label_names`.
        train_texts: the training texts, to adapt a text encoder's vocabulary.
        label_types: mapping of task -> the data's label type, usually
            `posts.label_types`; a task whose spec gives no `type` takes it
            (classification where neither says).
        train_labels: mapping of task -> training labels, usually
            `posts.labels`; a regression head standardises its targets with
            their mean and std.
        safe_mode: bool. As in `keras.models.load_model`: a part that would run
            a SavedModel's graph (a `tf_hub` encoder) is refused unless False.

    Returns:
        An uncompiled `MultiTaskModel`.
    """
    spec = spec.with_tasks_for(list(label_names))
    if not spec.tasks:
        raise SpecError("The spec names no tasks and the data has no labels.")
    missing = [t.name for t in spec.tasks if t.name not in label_names]
    if missing:
        raise SpecError(
            f"Tasks {missing} of the spec have no labels in the data; "
            f"the data has labels for {sorted(label_names)}."
        )
    if len({t.name for t in spec.tasks}) != len(spec.tasks):
        raise SpecError(f"Task names must be unique. Received: {[t.name for t in spec.tasks]}")
    heads = {
        t.name: _head(t, label_names[t.name], label_types or {}, train_labels or {})
        for t in spec.tasks
    }
    encoders = {}
    if spec.text_encoder is not None:
        with spec_safe_mode(safe_mode):
            encoders["text"] = TEXT_ENCODERS.build(
                spec.text_encoder.name, name="text_encoder", **spec.text_encoder.options
            )
        if encoders["text"].needs_vocabulary:
            if train_texts is None:
                raise SpecError(
                    f"Text encoder {spec.text_encoder.name!r} learns its vocabulary: "
                    "pass `train_texts`."
                )
            encoders["text"].adapt(list(train_texts))
    if spec.image_encoder is not None:
        with spec_safe_mode(safe_mode):
            encoders["image"] = IMAGE_ENCODERS.build(
                spec.image_encoder.name, name="image_encoder", **spec.image_encoder.options
            )
    fusion = None
    if spec.fusion is not None:
        fusion = FUSIONS.build(spec.fusion.name, name="fusion", **spec.fusion.options)
    alignment = None
    if spec.alignment is not None:
        alignment = ALIGNMENTS.build(
            spec.alignment.name, name="alignment", **spec.alignment.options
        )
    tasks = [t.name for t in spec.tasks]
    weighting = WEIGHTINGS.build(
        spec.weighting.name,
        tasks=tasks,
        weights={t.name: t.weight for t in spec.tasks},
        name="weighting",
        **spec.weighting.options,
    )
    try:
        return MultiTaskModel(
            encoders=encoders,
            heads=heads,
            task_inputs={t.name: t.input for t in spec.tasks},
            label_names={t: list(label_names[t]) for t in tasks},
            fusion=fusion,
            weighting=weighting,
            image_size=(spec.image_size, spec.image_size),
            alignment=alignment,
            modality_dropout=spec.modality_dropout,
            name="mmtask_model",
        )
    except ValueError as error:
        raise SpecError(str(error)) from None


def _head(task: TaskSpec, label_names: Sequence[str], label_types, train_labels) -> TaskHead:
    """The head of the task's type, fitted to its class names (and targets, for regression)."""
    data_type = label_types.get(task.name)
    head_type = task.type or data_type or "classification"
    head_class = HEADS.get(head_type)
    if data_type is not None and HEADS.get(data_type).label_form != head_class.label_form:
        raise SpecError(
            f"Invalid `type` for task {task.name!r}: a {head_type} head reads "
            f"{head_class.label_form} labels, but the data holds {data_type} labels "
            f"({HEADS.get(data_type).label_form}). Set the task's type to {data_type!r}, "
            "or read the column as the type you want (`label_types`)."
        )
    try:
        return head_class.from_data(
            label_names,
            train_labels.get(task.name),
            hidden_units=task.hidden_units,
            dropout=task.dropout,
            name=task.name,
            **task.options,
        )
    except (TypeError, ValueError) as error:
        raise SpecError(f"Invalid head for task {task.name!r} ({head_type}): {error}") from None
