"""Freeze/unfreeze schedules for fine-tuning, declared as data.

A `FineTuneSchedule` is a list of `Stage`s, each starting at an epoch (or an
optimizer step) and freezing or unfreezing the layers whose paths match its
patterns. It holds no Keras objects: `FineTuning` (in
`mmtask.transfer.fine_tuning`) applies it to a model during `fit`, and
`from_dict` / `to_dict` let a run spec carry it.

Layer paths are built from the model's attributes, then from the layers of
functional sub-models by name; `mmtask.transfer.layer_paths(model)` lists
them. For a `MultiTaskModel` with a `KerasHubImageEncoder`:

    encoders/image                          the image encoder
    encoders/image/backbone                 its keras-hub backbone
    encoders/image/backbone/block6a_expand_conv
    encoders/image/projection
    encoders/text/blocks/0                  a TransformerTextEncoder's first block
    fusion, heads/post_sentiment, weighting

Patterns are shell-style (`fnmatch`): `*` matches any characters, `/`
included. A pattern selects the layers whose paths it matches and every layer
inside them: `"encoders/image/backbone"` selects the whole backbone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

UNITS = ("epoch", "step")
BATCHNORM_POLICIES = ("frozen", "train")


@dataclass(frozen=True)
class Stage:
    """One change of what trains, from a given epoch (or step) on.

    Stages add up: a stage changes only the layers it names, and the layers
    it leaves alone keep the state earlier stages gave them (or the state
    they had when training started).

    Args:
        at: int. First epoch (or optimizer step, with `unit="step"`) the
            stage is in force, counted from 0.
        freeze: str | sequence of str. Patterns of layers to freeze.
        unfreeze: str | sequence of str. Patterns of layers to unfreeze,
            after `freeze` is applied.
        top_n: int | None. Unfreeze only the last `top_n` of the layers
            `unfreeze` selects that hold weights, in the order data flows
            through them (the layers closest to the output of a backbone).
            BatchNormalization layers do not count under
            `batchnorm="frozen"`, nor layers an encoder lists as unused.
        lr_multiplier: float. Learning-rate multiplier of the variables this
            stage unfreezes (discriminative fine-tuning); 1.0 by default.
            To give layer groups different multipliers from the same point,
            declare several stages with the same `at`.
        layer_decay: float. Layer-wise learning-rate decay, in (0, 1]: the
            layers the `unfreeze` patterns match (not the layers inside
            them), ranked from output to input, get `lr_multiplier` times
            `layer_decay ** rank`. With
            `unfreeze: encoders/text/backbone/transformer_layers/*` the top
            block trains at `lr_multiplier`, the one below at
            `lr_multiplier * layer_decay`, and so on.

    Example:
    ```python
    Stage(at=2, unfreeze="encoders/image/backbone", top_n=10, lr_multiplier=0.1)
    ```
    """

    at: int
    freeze: tuple[str, ...] = ()
    unfreeze: tuple[str, ...] = ()
    top_n: int | None = None
    lr_multiplier: float = 1.0
    layer_decay: float = 1.0

    def __post_init__(self):
        if isinstance(self.at, bool) or not isinstance(self.at, int) or self.at < 0:
            raise ValueError(f"`at` must be an integer >= 0. Received: at={self.at!r}")
        for name in ("freeze", "unfreeze"):
            object.__setattr__(self, name, _patterns(name, getattr(self, name)))
        if not self.freeze and not self.unfreeze:
            raise ValueError(f"A stage must freeze or unfreeze something. Received: {self}")
        if self.top_n is not None:
            if isinstance(self.top_n, bool) or not isinstance(self.top_n, int) or self.top_n < 1:
                raise ValueError(
                    f"`top_n` must be None or an integer >= 1. Received: top_n={self.top_n!r}"
                )
            if not self.unfreeze:
                raise ValueError("`top_n` counts layers to unfreeze; give `unfreeze` patterns.")
        multiplier = self.lr_multiplier
        if isinstance(multiplier, bool) or not isinstance(multiplier, int | float):
            raise ValueError(
                f"`lr_multiplier` must be a number > 0. Received: lr_multiplier={multiplier!r}"
            )
        if not multiplier > 0:
            raise ValueError(
                f"`lr_multiplier` must be a number > 0. Received: lr_multiplier={multiplier!r}"
            )
        object.__setattr__(self, "lr_multiplier", float(multiplier))
        decay = self.layer_decay
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 < decay <= 1:
            raise ValueError(
                f"`layer_decay` must be a number in (0, 1]. Received: layer_decay={decay!r}"
            )
        if decay != 1 and not self.unfreeze:
            raise ValueError("`layer_decay` ranks layers to unfreeze; give `unfreeze` patterns.")
        object.__setattr__(self, "layer_decay", float(decay))

    @classmethod
    def from_dict(cls, config: Mapping) -> Stage:
        return cls(**_known_keys(cls, config))

    def to_dict(self) -> dict:
        return {
            "at": self.at,
            "freeze": list(self.freeze),
            "unfreeze": list(self.unfreeze),
            "top_n": self.top_n,
            "lr_multiplier": self.lr_multiplier,
            "layer_decay": self.layer_decay,
        }


@dataclass(frozen=True)
class FineTuneSchedule:
    """Stages of fine-tuning: which layers train, and how fast, from when.

    Args:
        stages: sequence of `Stage` (or dicts). Applied in order of `at`;
            stages with the same `at` apply in the order given.
        unit: str. "epoch": `at` counts epochs. "step": `at` counts optimizer
            steps (`model.optimizer.iterations`) over the whole run; with
            `steps_per_execution` > 1, a stage starts with the first execution
            that begins at or after its step.
        batchnorm: str. "frozen" (default): unfreezing never makes a
            BatchNormalization layer trainable, so the BatchNormalization
            layers of a frozen pretrained backbone stay in inference mode,
            with fixed moving statistics, after the backbone unfreezes.
            "train": they unfreeze like any layer, and train in training mode.

    Example:
    ```python
    schedule = FineTuneSchedule(
        unit="epoch",
        stages=[
            Stage(at=0, freeze="encoders/*"),  # only fusion and heads train
            Stage(at=2, unfreeze="encoders/image/backbone", top_n=10, lr_multiplier=0.1),
            Stage(at=4, unfreeze="*"),  # everything, at the full learning rate
        ],
    )
    model.fit(data, epochs=6, callbacks=[FineTuning(schedule)])
    ```
    """

    stages: tuple[Stage, ...]
    unit: str = "epoch"
    batchnorm: str = "frozen"

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(
                f"Invalid value for `unit`: expected one of {list(UNITS)}. "
                f"Received: unit={self.unit!r}"
            )
        if self.batchnorm not in BATCHNORM_POLICIES:
            raise ValueError(
                f"Invalid value for `batchnorm`: expected one of {list(BATCHNORM_POLICIES)}. "
                f"Received: batchnorm={self.batchnorm!r}"
            )
        if isinstance(self.stages, Stage | Mapping | str):
            raise ValueError(
                f"`stages` must be a sequence of stages. Received: {type(self.stages).__name__}"
            )
        stages = [s if isinstance(s, Stage) else Stage.from_dict(s) for s in self.stages]
        if not stages:
            raise ValueError("A schedule needs at least one stage. Received: stages=[]")
        object.__setattr__(self, "stages", tuple(sorted(stages, key=lambda s: s.at)))

    def stages_in_force(self, position: int) -> int:
        """How many stages (in order) have started by epoch or step `position`."""
        return sum(1 for stage in self.stages if stage.at <= position)

    @classmethod
    def from_dict(cls, config: Mapping) -> FineTuneSchedule:
        """Builds a schedule from plain data, as a YAML or JSON run spec holds it.

        Example:
        ```python
        FineTuneSchedule.from_dict({
            "unit": "epoch",
            "stages": [
                {"at": 0, "freeze": ["encoders/*"]},
                {"at": 2, "unfreeze": ["encoders/image/backbone"], "lr_multiplier": 0.1},
            ],
        })
        ```
        """
        return cls(**_known_keys(cls, config))

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "batchnorm": self.batchnorm,
            "stages": [stage.to_dict() for stage in self.stages],
        }


def _patterns(name: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(p, str) and p for p in value):
        raise ValueError(
            f"`{name}` must be a pattern or a sequence of non-empty patterns. "
            f"Received: {name}={value!r}"
        )
    return tuple(value)


def _known_keys(cls, config: Mapping) -> dict:
    if not isinstance(config, Mapping):
        raise ValueError(
            f"{cls.__name__}.from_dict expects a mapping. Received: {type(config).__name__}"
        )
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise ValueError(f"Unknown keys for {cls.__name__}: {unknown}; expected some of {known}.")
    return dict(config)
