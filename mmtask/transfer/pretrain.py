"""Pre-train one modality's encoder on a single-modality source task, then carry it over.

A small labelled source set (say, airline tweets with a sentiment label)
trains the text encoder with a classification head; the head is dropped and
the encoder saved with `save_encoder`, ready to start a multi-task model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from mmtask.data.pipeline import batches_per_epoch
from mmtask.errors import MmtaskError
from mmtask.heads import ClassificationHead
from mmtask.optimizers import build_optimizer
from mmtask.registry import TEXT_ENCODERS
from mmtask.spec import ComponentSpec, OptimizerSpec


@dataclass
class PretrainResult:
    """The pre-trained encoder, its training history and its held-out accuracy."""

    encoder: keras.layers.Layer
    history: dict[str, list[float]]
    validation_accuracy: float | None


def pretrain_text_encoder(
    texts: Sequence[str],
    labels: Sequence[int],
    num_classes: int,
    encoder: ComponentSpec | None = None,
    *,
    epochs: int = 3,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    optimizer: OptimizerSpec | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    verbose: int | str = "auto",
) -> PretrainResult:
    """Train a text encoder with a classification head on (text, label) pairs.

    Args:
        texts: the source texts.
        labels: their integer labels; negative labels are left out.
        num_classes: int. Number of source classes.
        encoder: ComponentSpec | None. The text encoder to build (default:
            the default `transformer`); its vocabulary is adapted on `texts`.
        epochs, batch_size, learning_rate: training settings.
        optimizer: OptimizerSpec | None. The update rule and learning-rate
            schedule (a run spec's `training.optimizer`: AdamW, warm-up,
            decay, clipping), sized to this run's steps; None is Adam at
            `learning_rate`.
        validation_fraction: float. Share of examples held out (seeded) to
            report accuracy on; 0 holds out none.
        seed: int. Seed of the split, the shuffling and the initial weights.
        verbose: passed to `fit`.
    """
    labels = np.asarray(labels, dtype=np.int32)
    keep = labels >= 0
    texts = [t for t, k in zip(texts, keep, strict=True) if k]
    labels = labels[keep]
    if len(texts) < 2:
        raise MmtaskError(f"Pre-training needs labelled texts; received {len(texts)}.")
    if not 0 <= validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1). Received: {validation_fraction}"
        )
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(texts))
    held_out = int(round(len(texts) * validation_fraction))
    val_index, train_index = order[:held_out], order[held_out:]

    spec = encoder or ComponentSpec("transformer")
    text_encoder = TEXT_ENCODERS.build(spec.name, name="text_encoder", **spec.options)
    if text_encoder.needs_vocabulary:
        text_encoder.adapt([texts[i] for i in train_index])
    inputs = keras.Input(shape=(), dtype="string", name="text")
    outputs = ClassificationHead(num_classes, name="source_head")(text_encoder(inputs)["vector"])
    model = keras.Model(inputs, outputs, name="text_pretraining")
    steps_per_epoch = batches_per_epoch(len(train_index), batch_size)
    model.compile(
        optimizer=build_optimizer(
            optimizer or OptimizerSpec(), learning_rate, epochs, steps_per_epoch
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    def dataset(index, shuffle):
        data = tf.data.Dataset.from_tensor_slices(
            (tf.constant([texts[i] for i in index], tf.string), labels[index])
        )
        if shuffle:
            data = data.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    val_data = dataset(val_index, shuffle=False) if held_out else None
    history = model.fit(
        dataset(train_index, shuffle=True),
        validation_data=val_data,
        epochs=epochs,
        verbose=verbose,
        shuffle=False,
    ).history
    accuracy = history["val_accuracy"][-1] if held_out else None
    return PretrainResult(
        text_encoder, {k: [float(v) for v in vs] for k, vs in history.items()}, accuracy
    )
