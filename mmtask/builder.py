"""Turns a `ModelSpec` into a `MultiTaskModel` from registered parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mmtask.alignment  # noqa: F401  (registers the alignment modules)
import mmtask.encoders  # noqa: F401  (registers the built-in and saved encoders)
import mmtask.fusion  # noqa: F401  (registers the built-in fusion modules)
import mmtask.weighting  # noqa: F401  (registers the built-in weighting methods)
from mmtask.errors import SpecError
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.registry import ALIGNMENTS, FUSIONS, IMAGE_ENCODERS, TEXT_ENCODERS, WEIGHTINGS
from mmtask.spec import ModelSpec


def build_model(
    spec: ModelSpec,
    label_names: Mapping[str, Sequence[str]],
    train_texts: Sequence[str] | None = None,
) -> MultiTaskModel:
    """Build the joint model a spec describes.

    Args:
        spec: ModelSpec. Which parts to use and how the tasks read them.
        label_names: mapping of task -> class names, usually `posts.label_names`.
        train_texts: the training texts, to adapt a text encoder's vocabulary.

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
    encoders = {}
    if spec.text_encoder is not None:
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
    heads = {
        t.name: ClassificationHead(
            num_classes=len(label_names[t.name]),
            hidden_units=t.hidden_units,
            dropout=t.dropout,
            name=t.name,
        )
        for t in spec.tasks
    }
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
