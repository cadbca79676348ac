"""The joint model: shared encoders and fusion trunk feeding one head per task.

Losses live in `compute_loss`, not in a hand-written `train_step`, so `fit`,
`evaluate`, callbacks and distribution strategies work unchanged. Each task's
loss is a masked mean over the examples that carry its label, and the task
losses are combined by a `LossWeighting` layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import ops

from mmtask.encoders.base import Encoder
from mmtask.errors import MmtaskError
from mmtask.freezing import apply_frozen_flags
from mmtask.fusion.base import Fusion
from mmtask.heads.base import TaskHead
from mmtask.models.presence import FillMissing, ModalityPresence
from mmtask.weighting.base import LossWeighting
from mmtask.weighting.epoch_callback import WeightingEpochCallback
from mmtask.weighting.static import StaticWeighting

FUSED = "fused"
EMBEDDING_OUTPUTS = {"text": "text_embedding", "image": "image_embedding"}
MODALITIES = ("image", "text")


def _model_input(modality: str, encoder: Encoder, image_size: tuple[int, int]):
    """The model input an encoder reads: raw text / images, or its precomputed features."""
    backend = keras.backend.backend()
    if encoder.reads == "text" and backend != "tensorflow":
        raise MmtaskError(
            f"{type(encoder).__name__} reads raw strings, which is TensorFlow-only: set "
            f"KERAS_BACKEND=tensorflow, or on the {backend} backend give the text encoder "
            "reads='token_ids' (the tf.data pipeline tokenizes) or the text modality "
            "precomputed features (PrecomputedEncoder)."
        )
    return keras.Input(
        shape=encoder.example_shape(image_size), dtype=encoder.input_dtype, name=modality
    )


@keras.saving.register_keras_serializable(package="mmtask")
class MultiTaskModel(keras.Model):
    """Encoders per modality, an optional fusion trunk, and a head per task.

    Inputs are a dict: `"text"` (a batch of raw strings, or the token ids a
    text encoder with `reads="token_ids"` reads) and `"image"` (float32 RGB
    images in 0..255), for the modalities that have an encoder; a
    `PrecomputedEncoder` reads its modality's precomputed features instead.
    Outputs are a dict of each head's outputs per task (class probabilities,
    or values for a regression head).

    Each head (a `TaskHead`) owns its task type's loss, metrics and missing
    label mark; the model asks it and assumes no classes. History holds, per
    task, `{task}_loss` (the mean over labelled examples), the head's metrics
    (`{task}_accuracy` and `{task}_macro_f1` for classification) and
    `{task}_loss_weight` (the weight the loss weighting applied).

    Labels are given per task in the head's form (class indices for
    classification); a missing label is the head's missing mark (a negative
    index, a NaN target) or a 0 in the per-task mask passed as
    `sample_weight` (a dict of task -> weights, or one array applied to every
    task). A task's loss and metrics see only its labelled examples, and its
    loss is the weighted mean over them.

    Args:
        encoders: mapping of modality ("text", "image") -> `Encoder`.
        heads: mapping of task name -> `TaskHead`, in the order tasks are reported.
        task_inputs: mapping of task name -> the representation its head reads:
            a modality name or "fused".
        label_names: mapping of task name -> class names (index i <-> name), or
            output names for a regression head.
        fusion: Fusion | None. Takes the dict of modality vectors (or, if its
            `uses_sequences` is true, each encoder's vector, sequence and mask);
            needed when a task reads "fused".
        weighting: LossWeighting | None. Defaults to static weights of 1.0.
        image_size: (int, int). Height and width of the image input.
        modality_dropout: float. In training, the probability of hiding each
            modality of a post from the fusion trunk (never both), so the fused
            heads learn to predict from one modality. A missing text (empty
            string) or image (NaNs) is always hidden from the fusion trunk.
        alignment: layer | None. A cross-modal alignment module (e.g.
            `ContrastiveAlignment`); its loss joins the total, and its
            embeddings are extra outputs `text_embedding` / `image_embedding`.

    Example:
    ```python
    model = MultiTaskModel(
        encoders={"text": text_encoder, "image": image_encoder},
        fusion=ConcatFusion(),
        heads={"post_sentiment": ClassificationHead(3)},
        task_inputs={"post_sentiment": "fused"},
        label_names={"post_sentiment": ["negative", "neutral", "positive"]},
    )
    model.compile(optimizer="adam")
    model.fit(dataset, epochs=3)
    ```
    """

    def __init__(
        self,
        encoders: Mapping[str, Encoder],
        heads: Mapping[str, keras.layers.Layer],
        task_inputs: Mapping[str, str],
        label_names: Mapping[str, Sequence[str]],
        fusion: Fusion | None = None,
        weighting: LossWeighting | None = None,
        image_size: Sequence[int] = (128, 128),
        alignment: keras.layers.Layer | None = None,
        modality_dropout: float = 0.0,
        **kwargs,
    ):
        tasks = list(heads)
        _check_structure(encoders, heads, task_inputs, label_names, fusion)
        reserved = sorted(set(tasks) & set(EMBEDDING_OUTPUTS.values()))
        if alignment is not None and reserved:
            raise ValueError(f"Task names {reserved} are reserved for alignment embeddings.")
        image_size = tuple(int(s) for s in image_size)
        inputs = {m: _model_input(m, encoders[m], image_size) for m in sorted(encoders)}
        encoder_inputs = {
            m: FillMissing(name=f"{m}_fill_missing")(x) if "float" in x.dtype else x
            for m, x in inputs.items()
        }
        # Made before the encoders build, so seeded weights come out as they always have.
        presence_layer = ModalityPresence(modality_dropout, name="modality_presence")
        encoded = {m: encoders[m](encoder_inputs[m]) for m in sorted(encoders)}
        representations = {m: encoded[m]["vector"] for m in sorted(encoders)}
        fusion_reads_sequences = fusion is not None and fusion.uses_sequences
        if fusion is not None:
            presence = presence_layer(inputs)
            if fusion_reads_sequences:
                fusion_inputs = {m: _hide_sequence(encoded[m], presence[m]) for m in encoded}
            else:
                fusion_inputs = {m: _hide(encoded[m]["vector"], presence[m]) for m in encoded}
            representations[FUSED] = fusion(fusion_inputs)
        outputs = {t: heads[t](representations[task_inputs[t]]) for t in tasks}
        if alignment is not None:
            embeddings = alignment({m: representations[m] for m in sorted(encoders)})
            outputs.update({EMBEDDING_OUTPUTS[m]: embeddings[m] for m in embeddings})
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        apply_frozen_flags(self)

        self.encoders = dict(encoders)
        self.fusion = fusion
        self.fusion_reads_sequences = fusion_reads_sequences
        self.heads = dict(heads)
        self.task_inputs = {t: task_inputs[t] for t in tasks}
        self.label_names = {t: list(label_names[t]) for t in tasks}
        self.image_size = image_size
        self.alignment = alignment
        self.modality_dropout = modality_dropout
        self.weighting = weighting if weighting is not None else StaticWeighting(tasks)
        if not self.weighting.built:
            self.weighting.build({t: () for t in tasks})
        self.task_loss_trackers = {t: keras.metrics.Mean(name=f"{t}_loss") for t in tasks}
        self.task_metrics = {t: self.heads[t].build_metrics(t) for t in tasks}
        self.task_weight_trackers = {t: keras.metrics.Mean(name=f"{t}_loss_weight") for t in tasks}
        self._kept_losses = _KeptLosses()

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    @property
    def label_types(self) -> dict[str, str]:
        """Task -> its head's type ("classification", "binary", "multilabel", "regression")."""
        return {t: h.task_type for t, h in self.heads.items()}

    @property
    def modalities(self) -> list[str]:
        return sorted(self.encoders)

    def compile(
        self,
        optimizer="adam",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        **kwargs,
    ):
        """Like `keras.Model.compile`; losses and metrics are the model's own, per task."""
        given = {
            "loss": loss,
            "loss_weights": loss_weights,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
        }
        given = {k: v for k, v in given.items() if v is not None}
        if given:
            raise ValueError(
                "MultiTaskModel computes its own masked per-task losses and metrics; "
                f"set task weights with `weighting=` instead. Received: {given}"
            )
        super().compile(optimizer=optimizer, **kwargs)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        fine_tuning=None,
        **kwargs,
    ):
        """`keras.Model.fit`, plus the loss weighting's epoch callback and a fine-tuning schedule.

        Args:
            fine_tuning: FineTuneSchedule | dict | None. A freeze/unfreeze
                schedule (see `mmtask.transfer.FineTuneSchedule`), applied by a
                `FineTuning` callback.
            Others: as `keras.Model.fit`.
        """
        callbacks = list(callbacks or [])
        if not any(isinstance(c, WeightingEpochCallback) for c in callbacks):
            # First, so checkpointing callbacks save the weighting's updated state.
            callbacks.insert(0, WeightingEpochCallback())
        if fine_tuning is not None:
            # Imported here: the model side never loads the transfer package
            # unless a run asks for a schedule.
            from mmtask.transfer.fine_tuning import FineTuning

            callbacks.insert(1, FineTuning(fine_tuning))
        if hasattr(x, "element_spec"):
            # A tf.data dataset shuffles itself (`make_dataset(training=True)`);
            # Keras would only warn that `shuffle` is ignored.
            kwargs.setdefault("shuffle", False)
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            **kwargs,
        )

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Only Keras' TensorFlow trainer calls this. Under a distribution
        # strategy it averages one input batch across replicas to build the
        # model symbolically; that fails on string inputs. This model is built
        # when constructed and has no compiled losses or metrics to build from
        # data: only the optimizer is left to build, and that needs no batch.
        with self.distribute_strategy.scope():
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            self._post_build()

    def task_losses(self, y, y_pred, sample_weight=None) -> dict:
        """Task name -> its head's masked mean loss over the examples labelled for it.

        Tasks absent from `y` contribute nothing. A batch with no labelled
        example for a task gives that task a loss of 0.
        """
        return self._masked_losses(self._labels_and_masks(y, sample_weight), y_pred)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        del x, training
        total = ops.zeros((), dtype="float32")
        if y is not None:
            labels_and_masks = self._labels_and_masks(y, sample_weight)
            task_losses = self._masked_losses(labels_and_masks, y_pred)
            if keras.backend.backend() == "tensorflow":
                self._kept_losses.keep(y_pred, labels_and_masks, task_losses)
            # Aggregated as Keras aggregates losses added with `add_loss`: on the
            # TensorFlow backend that scales by 1 / replicas under a strategy.
            total = self._aggregate_additional_loss(self.weighting(task_losses))
            # Logged here rather than in `compute_metrics`: Keras' JAX trainer
            # lets `compute_metrics` read metric state only, not the weighting's
            # variables. These are the weights this step's loss used.
            weights = self.weighting.effective_weights()
            for task in task_losses:
                self.task_weight_trackers[task].update_state(weights[task])
        for loss in self.losses:
            total = total + self._aggregate_additional_loss(loss)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is not None:
            labels_and_masks, losses = self._step_losses(y, y_pred, sample_weight)
            for task, (labels, mask) in labels_and_masks.items():
                self.task_loss_trackers[task].update_state(
                    losses[task], sample_weight=ops.sum(mask)
                )
                self.heads[task].update_metrics(self.task_metrics[task], labels, y_pred[task], mask)
        return _logs_for_strategy(self.get_metrics_result(), self)

    def _step_losses(self, y, y_pred, sample_weight) -> tuple[dict, dict]:
        """(labels and masks, task losses) of the step that predicted `y_pred`.

        On the TensorFlow backend `compute_loss` and `compute_metrics` run in
        one traced step, so the metrics take the losses computed for the
        gradient rather than computing them again (about 60 graph ops a step
        for three tasks). On JAX a tensor kept from `compute_loss` would leak
        out of the gradient computation, so they are computed again, as they
        are when `compute_metrics` is called without `compute_loss` for these
        outputs.
        """
        kept = self._kept_losses.take(y_pred)
        if kept is not None:
            return kept
        labels_and_masks = self._labels_and_masks(y, sample_weight)
        return labels_and_masks, self._masked_losses(labels_and_masks, y_pred)

    def _labels_and_masks(self, y, sample_weight):
        if not isinstance(y, Mapping):
            raise ValueError(
                f"Labels must be a dict of task name -> labels for tasks {self.tasks}. "
                f"Received: {type(y).__name__}"
            )
        unknown = sorted(set(y) - set(self.tasks))
        if unknown:
            raise ValueError(
                f"Labels given for unknown tasks {unknown}; the tasks are {self.tasks}."
            )
        if sample_weight is None:
            sample_weight = {}
        elif not isinstance(sample_weight, Mapping):
            # One array of per-example weights applies to every task, as in Keras.
            sample_weight = {task: sample_weight for task in self.tasks}
        result = {}
        for task in self.tasks:
            if task not in y:
                continue
            labels, mask = self.heads[task].labels_and_mask(y[task])
            if sample_weight.get(task) is not None:
                mask = mask * ops.reshape(ops.cast(sample_weight[task], "float32"), (-1,))
            result[task] = (labels, mask)
        return result

    def _masked_losses(self, labels_and_masks: dict, y_pred: dict) -> dict:
        """Task -> its head's mean loss over the examples its mask keeps (0 if none)."""
        return {
            task: self.heads[task].masked_loss(labels, mask, y_pred[task])
            for task, (labels, mask) in labels_and_masks.items()
        }

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoders": {m: keras.layers.serialize(e) for m, e in self.encoders.items()},
            "heads": {t: keras.layers.serialize(h) for t, h in self.heads.items()},
            "task_inputs": dict(self.task_inputs),
            "label_names": {t: list(n) for t, n in self.label_names.items()},
            "fusion": keras.layers.serialize(self.fusion) if self.fusion is not None else None,
            "weighting": keras.layers.serialize(self.weighting),
            "image_size": list(self.image_size),
            "modality_dropout": self.modality_dropout,
            "alignment": (
                keras.layers.serialize(self.alignment) if self.alignment is not None else None
            ),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoders"] = {m: keras.layers.deserialize(e) for m, e in config["encoders"].items()}
        config["heads"] = {t: keras.layers.deserialize(h) for t, h in config["heads"].items()}
        for key in ("fusion", "weighting", "alignment"):
            if config.get(key) is not None:
                config[key] = keras.layers.deserialize(config[key])
        return cls(**config)


class _KeptLosses:
    """The labels, masks and task losses `compute_loss` computed for one batch of outputs.

    A plain object, so Keras does not wrap what it holds in tracked containers
    (the identity of the outputs is what says the losses are theirs).
    """

    def __init__(self):
        self._kept = None

    def keep(self, outputs: dict, labels_and_masks: dict, losses: dict) -> None:
        self._kept = (outputs, labels_and_masks, losses)

    def take(self, outputs: dict) -> tuple[dict, dict] | None:
        """(labels and masks, losses) if kept for these very outputs; forgets them either way."""
        kept, self._kept = self._kept, None
        if kept is None or kept[0] is not outputs:
            return None
        return kept[1], kept[2]


def _logs_for_strategy(logs: dict, model: keras.Model) -> dict:
    """The step's logs, shaped so Keras can average them across workers.

    Keras 3's TensorFlow trainer averages step logs across the workers of a
    `MultiWorkerMirroredStrategy` with a reduction along axis 0, which fails on
    scalars (tensorflow/tensorflow#72388); as one-element vectors they reduce
    to the mean over workers, a scalar, as on one machine. Other backends'
    trainers have no `distribute_strategy` and leave the logs as they are.
    """
    if keras.backend.backend() != "tensorflow":
        return logs
    import tensorflow as tf

    strategy = model.distribute_strategy
    multi_worker = (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )
    if not multi_worker:
        return logs
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def _hide(vectors, presence):
    """Zero the vectors of posts where the modality is absent."""
    return vectors * ops.expand_dims(presence, -1)


def _hide_sequence(encoded: dict, presence) -> dict:
    """Zero an absent modality's vector and sequence and mask out its positions."""
    return {
        "vector": _hide(encoded["vector"], presence),
        "sequence": encoded["sequence"] * ops.expand_dims(ops.expand_dims(presence, -1), -1),
        "mask": ops.logical_and(
            ops.cast(encoded["mask"], "bool"), ops.expand_dims(ops.greater(presence, 0), -1)
        ),
    }


def _check_structure(encoders, heads, task_inputs, label_names, fusion) -> None:
    unknown_modalities = sorted(set(encoders) - set(MODALITIES))
    if unknown_modalities or not encoders:
        raise ValueError(
            f"`encoders` must map modalities among {sorted(MODALITIES)} to encoders. "
            f"Received: {sorted(encoders)}"
        )
    not_encoders = {m: type(e).__name__ for m, e in encoders.items() if not isinstance(e, Encoder)}
    if not_encoders:
        raise TypeError(
            f"Invalid value for `encoders`: expected `mmtask.encoders.Encoder` layers. "
            f"Received: {not_encoders}"
        )
    if fusion is not None and not isinstance(fusion, Fusion):
        raise TypeError(
            "Invalid value for `fusion`: expected a `mmtask.fusion.Fusion` or None. "
            f"Received: {type(fusion).__name__}"
        )
    if not heads:
        raise ValueError("`heads` must hold at least one task head. Received: {}")
    not_heads = {t: type(h).__name__ for t, h in heads.items() if not isinstance(h, TaskHead)}
    if not_heads:
        raise ValueError(
            f"`heads` must map tasks to `TaskHead` layers (a head type knows its loss and "
            f"metrics). Received: {not_heads}"
        )
    for name, mapping in (("task_inputs", task_inputs), ("label_names", label_names)):
        if set(mapping) != set(heads):
            raise ValueError(
                f"`{name}` must name exactly the tasks of `heads` {sorted(heads)}. "
                f"Received: {sorted(mapping)}"
            )
    allowed = sorted(encoders) + ([FUSED] if fusion is not None else [])
    for task, source in task_inputs.items():
        if source not in allowed:
            hint = " (a fused input needs `fusion`)" if source == FUSED else ""
            raise ValueError(
                f"Invalid input for task {task!r}: expected one of {allowed}{hint}. "
                f"Received: {source!r}"
            )
