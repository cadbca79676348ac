"""Which encoders stay frozen for a whole run, and a model that trains on their cached outputs.

An encoder whose weights never train in a run (frozen, and unfrozen by no
stage of the fine-tuning schedule), on a modality that is not augmented,
gives the same output for a post in every epoch; so does the frozen stem of
an image backbone whose top blocks alone train (`Encoder.split_frozen_stem`).
`mmtask.train` computes those outputs once (`FeatureCache`) and fits a twin of the model in which
`PrecomputedEncoder`s read them. The twin shares every other layer (the
encoders that do train, fusion, heads, loss weighting) with the real model,
so training the twin trains the real model, which keeps its real encoders
for saving and export.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

import keras
import numpy as np

from mmtask.data.posts import Posts
from mmtask.encoders.base import Encoder
from mmtask.encoders.precomputed import PrecomputedEncoder
from mmtask.models import MultiTaskModel
from mmtask.transfer.features import encode_posts, has_modality
from mmtask.transfer.fine_tuning import layer_paths, variables_ever_trainable
from mmtask.transfer.schedule import FineTuneSchedule


@dataclass
class CachePlan:
    """Which modalities train on cached encoder outputs, and why the others run live.

    Args:
        cached: modality -> whether its token / patch sequences are cached
            (for a fusion that reads them) rather than one vector per post.
        split: modality -> `(stem, top)` of an encoder that trains only
            above a cut (`Encoder.split_frozen_stem`): the stem's outputs
            are cached, the top trains on them.
        live: modality -> the reason its encoder runs in every step.
    """

    cached: dict[str, bool] = field(default_factory=dict)
    split: dict[str, tuple[Encoder, Encoder]] = field(default_factory=dict)
    live: dict[str, str] = field(default_factory=dict)


def plan_cache(
    model: MultiTaskModel,
    fine_tuning: FineTuneSchedule | Mapping | None,
    augment: bool,
    precomputed: frozenset[str] | set[str] = frozenset(),
) -> CachePlan:
    """Decide, per modality, whether `model`'s encoder can run once ahead of training.

    Args:
        model: MultiTaskModel. The model as built, with its real encoders.
        fine_tuning: the run's fine-tuning schedule, if any.
        augment: bool. Whether training augments images.
        precomputed: modalities the data already serves as features.
    """
    schedule = None
    if fine_tuning is not None:
        schedule = (
            fine_tuning
            if isinstance(fine_tuning, FineTuneSchedule)
            else FineTuneSchedule.from_dict(fine_tuning)
        )
    trained = {id(v) for v in variables_ever_trainable(model, schedule)}
    named_inside = _paths_named_inside_encoders(model, schedule)
    plan = CachePlan()
    for modality in model.modalities:
        encoder = model.encoders[modality]
        if modality in precomputed:
            continue
        trains = {id(v) for v in encoder.variables if id(v) in trained}
        if trains:
            augmented = modality == "image" and augment
            split = (
                None
                if augmented
                else encoder.split_frozen_stem(
                    trains, model.image_size, model.fusion_reads_sequences
                )
            )
            if split is None:
                plan.live[modality] = "its encoder trains"
            else:
                plan.split[modality] = split
        elif modality == "image" and augment:
            plan.live[modality] = "images are augmented (set `augment: false` to cache them)"
        elif modality in named_inside:
            plan.live[modality] = (
                f"the fine-tuning schedule names layers inside it ({named_inside[modality]}); "
                f"name `encoders/{modality}` as a whole to keep it cached"
            )
        else:
            plan.cached[modality] = model.fusion_reads_sequences
    return plan


def pools_by_mean(
    encoder: keras.layers.Layer, posts: Posts, modality: str, image_size: int, sample: int = 4
) -> bool:
    """Whether `encoder`'s vector is the mean of its sequence over real positions.

    `PrecomputedEncoder` pools cached sequences that way, so a frozen encoder
    whose vector is something else (a [CLS] state, a projection) can serve a
    sequence-reading fusion from the cache only if this holds. Checked on
    the first `sample` posts that have the modality.
    """
    present = np.flatnonzero(has_modality(posts, modality))[:sample]
    subset = posts.select([posts.ids[i] for i in present])
    options = {"image_size": image_size, "verbose": 0}
    vectors = encode_posts(subset, encoder, modality, **options)
    sequences = encode_posts(subset, encoder, modality, sequence=True, **options)
    real = np.any(sequences != 0, axis=-1, keepdims=True)
    pooled = (sequences * real).sum(1) / np.maximum(real.sum(1), 1)
    # Half-precision encoders round their outputs to about 3 significant digits.
    tolerance = 1e-4 if encoder.compute_dtype == "float32" else 2e-2
    return vectors.shape == pooled.shape and bool(
        np.allclose(vectors, pooled, rtol=tolerance, atol=tolerance / 10)
    )


def cached_twin(
    model: MultiTaskModel,
    features: Mapping[str, np.ndarray],
    tops: Mapping[str, Encoder] | None = None,
) -> MultiTaskModel:
    """A model sharing every layer of `model` but the encoders of `features`' modalities.

    Those read the given features (vectors (N, D) or sequences (N, L, D))
    through the encoder's top in `tops` (which shares its layers), or else a
    `PrecomputedEncoder`.
    """
    tops = tops or {}
    encoders = dict(model.encoders)
    for modality, values in features.items():
        if modality in tops:
            encoders[modality] = tops[modality]
            continue
        encoders[modality] = PrecomputedEncoder(
            feature_dim=int(values.shape[-1]),
            sequence_length=int(values.shape[1]) if values.ndim == 3 else None,
            modality=modality,
            name=f"cached_{modality}_encoder",
        )
    return MultiTaskModel(
        encoders=encoders,
        heads=model.heads,
        task_inputs=model.task_inputs,
        label_names=model.label_names,
        fusion=model.fusion,
        weighting=model.weighting,
        image_size=model.image_size,
        alignment=model.alignment,
        modality_dropout=model.modality_dropout,
        name=f"{model.name}_on_cached_features",
    )


def _paths_named_inside_encoders(model, schedule) -> dict[str, str]:
    """Modality -> one layer path inside its encoder that a schedule pattern names.

    A pattern that also names the encoder itself (`encoders/*`) still matches
    it when its outputs come from the cache, so only the others count.
    """
    if schedule is None:
        return {}
    patterns = [p for stage in schedule.stages for p in (*stage.freeze, *stage.unfreeze)]
    found = {}
    for path in layer_paths(model):
        parts = path.split("/")
        if len(parts) > 2 and parts[0] == "encoders" and parts[1] not in found:
            encoder_path = "/".join(parts[:2])
            if any(
                fnmatch.fnmatchcase(path, p) and not fnmatch.fnmatchcase(encoder_path, p)
                for p in patterns
            ):
                found[parts[1]] = path
    return found
