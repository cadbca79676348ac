"""Declarative specs: dataclasses for the model and its training, loadable from YAML or JSON.

A spec only names parts and their options; `mmtask.builder` turns it into
layers. Unknown keys are errors, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmtask.errors import SpecError
from mmtask.mixed_precision import check_mixed_precision


@dataclass
class TaskSpec:
    """One prediction task.

    Args:
        name: str. The task name; also the label key in the data.
        input: str. The representation the head reads: "text", "image" or "fused".
        type: str | None. The head type (`mmtask.registry.HEADS`):
            "classification", "binary", "multilabel" or "regression". None
            takes the data's type (`posts.label_types`): classification unless
            the data says otherwise.
        weight: float. Static weight of the task's loss.
        hidden_units: list of int. Dense layers in the head before the output layer.
        dropout: float. Dropout in the head.
        options: dict. Further options of the head type, e.g. `threshold` for
            binary and multilabel heads, `loss` ("mse" or "huber") for regression.
    """

    name: str
    input: str = "fused"
    type: str | None = None
    weight: float = 1.0
    hidden_units: list[int] = field(default_factory=list)
    dropout: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ComponentSpec:
    """A registered part chosen by name, with its constructor options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


# Tasks that read one modality when a spec leaves the tasks to the data.
SINGLE_MODALITY_TASKS = {"text_sentiment": "text", "image_sentiment": "image"}


@dataclass
class ModelSpec:
    """The joint model: encoders, fusion trunk, loss weighting and tasks.

    With `tasks` left as None, the data decides: one task per label set, the
    MVSA tasks `text_sentiment` and `image_sentiment` reading their modality
    and every other task (`post_sentiment` included) the fused trunk.

    Example:
    ```python
    spec = ModelSpec.from_dict({"image_size": 64, "fusion": {"name": "concat"}})
    ```
    """

    tasks: list[TaskSpec] | None = None
    text_encoder: ComponentSpec | None = field(default_factory=lambda: ComponentSpec("transformer"))
    image_encoder: ComponentSpec | None = field(default_factory=lambda: ComponentSpec("small_cnn"))
    fusion: ComponentSpec | None = field(default_factory=lambda: ComponentSpec("concat"))
    weighting: ComponentSpec = field(default_factory=lambda: ComponentSpec("static"))
    alignment: ComponentSpec | None = None
    modality_dropout: float = 0.0
    image_size: int = 128

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        return _from_dict(cls, data, "model")

    def with_tasks_for(self, task_names: Sequence[str]) -> ModelSpec:
        """This spec, with `tasks` filled in from the data's task names if it was None."""
        if self.tasks is not None:
            return self
        tasks = [TaskSpec(t, input=SINGLE_MODALITY_TASKS.get(t, "fused")) for t in task_names]
        return dataclasses.replace(self, tasks=tasks)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


OPTIMIZERS = ("adam", "adamw")
LR_DECAYS = ("none", "cosine", "linear")


@dataclass
class OptimizerSpec:
    """The update rule and learning-rate schedule of a run (`training.optimizer`).

    Args:
        name: str. "adam", or "adamw": decoupled weight decay on kernels and
            embeddings only (`mmtask.optimizers.KernelDecayAdamW`; biases and
            normalisation weights never decay).
        weight_decay: float | None. AdamW's decay rate (None: 0.01); Adam
            has none, so "adam" refuses one.
        clipnorm: float | None. Clip the gradients' global norm to this value.
        warmup_epochs: float. Linear warm-up from 0 to the learning rate
            over this many epochs (fractions allowed).
        decay: str. After the warm-up: "none" (constant), "cosine" or
            "linear", down to 0 at the last step.
    """

    name: str = "adam"
    weight_decay: float | None = None
    clipnorm: float | None = None
    warmup_epochs: float = 0.0
    decay: str = "none"

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"`name` must be one of {list(OPTIMIZERS)}. Received: {self.name!r}")
        if self.decay not in LR_DECAYS:
            raise ValueError(f"`decay` must be one of {list(LR_DECAYS)}. Received: {self.decay!r}")
        if self.weight_decay is not None:
            if self.name != "adamw":
                raise ValueError(
                    "`weight_decay` applies to name: adamw; Adam has none. "
                    f"Received: weight_decay={self.weight_decay!r} with name: {self.name}"
                )
            if isinstance(self.weight_decay, bool) or not self.weight_decay >= 0:
                raise ValueError(f"`weight_decay` must be >= 0. Received: {self.weight_decay!r}")
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise ValueError(f"`clipnorm` must be None or > 0. Received: {self.clipnorm!r}")
        if not self.warmup_epochs >= 0:
            raise ValueError(f"`warmup_epochs` must be >= 0. Received: {self.warmup_epochs!r}")


@dataclass
class TrainingSpec:
    """How to fit: epochs, batch size, optimiser settings, seed, and a fine-tuning schedule.

    `fine_tuning` holds a `mmtask.transfer.FineTuneSchedule` as a mapping
    (`{unit: epoch, stages: [{at: 2, unfreeze: ["encoders/image/*"], ...}]}`).

    Args:
        monitor: str. The validation figure that selects the epoch whose
            weights are kept, e.g. "val_loss" (lowest) or
            "val_post_sentiment_accuracy" (highest).
        patience: int | None. Stop after this many epochs without a better
            `monitor`; None trains every epoch.
        cache_frozen_encoders: bool. Run encoders that stay frozen for the
            whole run (on a modality that is not augmented) once per post,
            cache their outputs on disk and train the rest of the model on
            them.
        mixed_precision: str. "none", "bfloat16" (compute in bfloat16, weights
            in float32) or "float16" (the same with loss scaling, which a
            `fine_tuning` schedule does not support).
        optimizer: OptimizerSpec. Adam or AdamW, gradient clipping, warm-up
            and decay of `learning_rate`.
    """

    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    augment: bool = True
    cache: bool = False
    fine_tuning: dict[str, Any] | None = None
    monitor: str = "val_loss"
    patience: int | None = None
    cache_frozen_encoders: bool = True
    mixed_precision: str = "none"
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)

    def __post_init__(self):
        check_mixed_precision(self.mixed_precision)
        if self.optimizer is None:
            self.optimizer = OptimizerSpec()
        elif isinstance(self.optimizer, dict):
            self.optimizer = OptimizerSpec(**self.optimizer)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingSpec:
        return _from_dict(cls, data, "training")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RunSpec:
    """A whole run: the model and its training. Files hold `model:` and `training:` keys."""

    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)

    @classmethod
    def from_dict(cls, data: dict) -> RunSpec:
        return _from_dict(cls, data, "spec")

    @classmethod
    def from_file(cls, path: str | Path) -> RunSpec:
        """Load a spec from a `.yaml`/`.yml` or `.json` file."""
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"Spec file not found: {path}")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix in (".yaml", ".yml"):
                data = yaml.safe_load(text) or {}
            elif path.suffix == ".json":
                data = json.loads(text)
            else:
                raise SpecError(
                    f"Spec file must end in .yaml, .yml or .json. Received: {path.name}"
                )
        except (yaml.YAMLError, json.JSONDecodeError) as error:
            raise SpecError(f"Could not parse spec file {path}: {error}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")


_NESTED = {
    ("ModelSpec", "tasks"): ("list", TaskSpec),
    ("ModelSpec", "text_encoder"): ("component", ComponentSpec),
    ("ModelSpec", "image_encoder"): ("component", ComponentSpec),
    ("ModelSpec", "fusion"): ("component", ComponentSpec),
    ("ModelSpec", "weighting"): ("component", ComponentSpec),
    ("ModelSpec", "alignment"): ("component", ComponentSpec),
    ("RunSpec", "model"): ("object", ModelSpec),
    ("RunSpec", "training"): ("object", TrainingSpec),
    ("TrainingSpec", "optimizer"): ("object", OptimizerSpec),
}


def _from_dict(cls, data, where: str):
    if not isinstance(data, dict):
        raise SpecError(f"`{where}` must be a mapping. Received: {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError(
            f"Unknown key(s) {unknown} in `{where}`: expected some of {sorted(fields)}."
        )
    values = {}
    for key, value in data.items():
        kind = _NESTED.get((cls.__name__, key))
        path = f"{where}.{key}"
        if kind is None or value is None:
            values[key] = value
        elif kind[0] == "list":
            if not isinstance(value, list):
                raise SpecError(f"`{path}` must be a list. Received: {value!r}")
            values[key] = [_from_dict(kind[1], v, f"{path}[{i}]") for i, v in enumerate(value)]
        elif kind[0] == "component" and isinstance(value, str):
            values[key] = ComponentSpec(value)
        else:
            values[key] = _from_dict(kind[1], value, path)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise SpecError(f"Invalid `{where}`: {error}") from None
