"""`FineTuning`: a callback that applies a `FineTuneSchedule` while a model trains.

What it does for the user, in any `fit`:

- sets each layer's `trainable` flag from the stage in force, at the start of
  each epoch (`unit="epoch"`) or batch (`unit="step"`), and rebuilds the
  train function when, and only when, that changes what trains;
- keeps BatchNormalization layers frozen, in inference mode, under the
  default `batchnorm="frozen"` policy;
- runs the compiled optimizer inside a `DiscriminativeOptimizer`, built once,
  before training starts, over every variable the schedule will ever train:
  its slots exist from the first step, so checkpoints (`BackupAndRestore`,
  `ModelCheckpoint`) save and restore them, and each step updates only the
  variables trainable then, at their stage's learning-rate multiplier;
- logs the number of trainable parameters as `trainable_params` each epoch.

A run resumed with `keras.callbacks.BackupAndRestore` (or mmtask's
`RunBackup`) restores the weights, the optimizer (slots, step count,
multipliers) and the epoch; the trainable flags are not saved but derived
again from the schedule at the restored epoch or step, so the schedule goes
on where it stopped. (What else a run must restore to end as if never
stopped: see `mmtask.run_backup`.)
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

from mmtask.encoders.base import Encoder
from mmtask.transfer.discriminative import DiscriminativeOptimizer
from mmtask.transfer.schedule import FineTuneSchedule, Stage


class FineTuning(keras.callbacks.Callback):
    """Freezes, unfreezes and sets learning-rate multipliers on a schedule.

    The model must be compiled. The callback swaps the compiled optimizer for
    a `DiscriminativeOptimizer` around it (or a fresh copy of it, if `fit`
    already built it over fewer variables) before the first step; an
    optimizer that has already taken steps over other variables is refused.

    Layers that no stage names keep the `trainable` flag they had when the
    callback first saw the model. A layer may name sublayers that never reach
    its output (paths relative to it) in an `unused_sublayers` attribute, as
    `KerasHubTextEncoder` does for BERT's pooler: no stage unfreezes them, so
    `top_n` counts only layers that train.

    Args:
        schedule: FineTuneSchedule | dict. The stages (a dict is read with
            `FineTuneSchedule.from_dict`).

    Example:
    ```python
    schedule = FineTuneSchedule(stages=[
        Stage(at=0, freeze="encoders/*"),
        Stage(at=2, unfreeze="encoders/image/backbone", top_n=10, lr_multiplier=0.1),
        Stage(at=4, unfreeze="*"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(data, epochs=6, callbacks=[
        FineTuning(schedule),
        keras.callbacks.BackupAndRestore("run/backup"),
    ])
    ```
    """

    def __init__(self, schedule: FineTuneSchedule | Mapping):
        super().__init__()
        if isinstance(schedule, Mapping):
            schedule = FineTuneSchedule.from_dict(schedule)
        if not isinstance(schedule, FineTuneSchedule):
            raise ValueError(
                "`schedule` must be a FineTuneSchedule or a dict. "
                f"Received: {type(schedule).__name__}"
            )
        self.schedule = schedule
        self._plan: _Plan | None = None
        self._stages_applied: int | None = None
        self._signature = None

    def set_model(self, model):
        super().set_model(model)
        # Runs when `fit` gathers its callbacks, before any `on_train_begin`:
        # the optimizer must hold every variable's slots before
        # `BackupAndRestore` loads a checkpoint into it.
        if getattr(model, "optimizer", None) is None:
            return  # Not compiled: evaluate or predict, nothing to train.
        if self._plan is None or self._plan.model is not model:
            self._plan = _Plan(model, self.schedule)
        if _prepare_optimizer(model, self._plan.schedulable):
            model.make_train_function(force=True)

    def on_train_begin(self, logs=None):
        self._stages_applied = None
        self._signature = self._plan.signature()
        if self.schedule.unit == "step":
            self._apply(self._step())

    def on_epoch_begin(self, epoch, logs=None):
        if self.schedule.unit == "epoch":
            self._apply(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule.unit == "step":
            self._apply(self._step())

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["trainable_params"] = sum(
                int(np.prod(v.shape)) for v in self.model.trainable_weights
            )

    def _step(self) -> int:
        return int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def _apply(self, position: int) -> None:
        count = self.schedule.stages_in_force(position)
        if count == self._stages_applied:
            return
        plan = self._plan
        state = plan.resolve(count)
        plan.apply(state)
        self.model.optimizer.set_lr_multipliers(plan.multipliers(state))
        self._stages_applied = count
        signature = plan.signature()
        if signature != self._signature:
            # The train function was traced with the old trainable set.
            self.model.make_train_function(force=True)
            self._signature = signature


def layer_paths(model: keras.layers.Layer) -> dict[str, keras.layers.Layer]:
    """Path -> layer, for every layer a schedule's patterns can name.

    Paths follow the model's attributes (dicts by key, lists by index), then
    the layers of functional models by name, e.g.
    `encoders/image/backbone/top_conv` or `heads/post_sentiment`.
    """
    return {node.path: node.layer for node in _layer_tree(model)[1:]}


def variables_ever_trainable(model, schedule: FineTuneSchedule | None) -> list:
    """The variables of `model` that train at some point of a run under `schedule`.

    Without a schedule, those trainable now. The model's flags are left as they were.
    """
    if schedule is None:
        return list(model.trainable_variables)
    return _Plan(model, schedule).schedulable


@dataclass
class _Node:
    path: str
    layer: keras.layers.Layer
    parent: int | None
    end: int = 0  # One past the last node of this layer's subtree (pre-order).
    own_weights: list = field(default_factory=list)
    is_batchnorm: bool = False
    unused: bool = False  # Named in an ancestor's `unused_sublayers`: never unfrozen.
    depth: int = 0  # Position from input to output, which `top_n` counts by.


@dataclass
class _State:
    trainable: list[bool]
    multipliers: list[float]


class _Plan:
    """One model's layer tree, its starting flags and the schedule's states over it."""

    def __init__(self, model, schedule: FineTuneSchedule):
        self.model = model
        self.schedule = schedule
        self.nodes = _layer_tree(model)
        self._check_patterns()
        self.base = _State([node.layer.trainable for node in self.nodes], [1.0] * len(self.nodes))
        self._states = {}
        self.schedulable = self._schedulable_variables()

    def resolve(self, count: int) -> _State:
        """The state after the first `count` stages."""
        if count not in self._states:
            state = _State(list(self.base.trainable), list(self.base.multipliers))
            for stage in self.schedule.stages[:count]:
                self._apply_stage(stage, state)
            self._states[count] = state
        return self._states[count]

    def apply(self, state: _State) -> None:
        """Sets the layers' and variables' trainable flags to `state`."""
        effective = list(state.trainable)
        for index in range(len(self.nodes) - 1, 0, -1):
            # A layer with trainable sublayers must be trainable itself, or
            # Keras hides their weights.
            if effective[index]:
                effective[self.nodes[index].parent] = True
        # Parents first: Keras' setter sets the whole subtree, children after.
        for node, flag in zip(self.nodes, effective, strict=True):
            node.layer.trainable = flag
        for node, flag, own in zip(self.nodes, effective, state.trainable, strict=True):
            if flag and not own:
                for weight in node.own_weights:
                    weight.trainable = False

    def multipliers(self, state: _State) -> list[tuple]:
        return [
            (weight, multiplier)
            for node, own, multiplier in zip(
                self.nodes, state.trainable, state.multipliers, strict=True
            )
            if own
            for weight in node.own_weights
            if weight.trainable
        ]

    def signature(self):
        """What the train function depends on: layer flags and trainable variables."""
        return (
            tuple(node.layer.trainable for node in self.nodes),
            tuple(id(v) for v in self.model.trainable_variables),
        )

    def _apply_stage(self, stage: Stage, state: _State) -> None:
        for index in self._selected(stage.freeze):
            state.trainable[index] = False
        candidates = [
            i
            for i in self._selected(stage.unfreeze)
            if not (self.nodes[i].is_batchnorm and self.schedule.batchnorm == "frozen")
            and not self.nodes[i].unused
        ]
        if stage.top_n is not None:
            candidates = [i for i in candidates if self.nodes[i].own_weights]
            candidates = sorted(candidates, key=lambda i: self.nodes[i].depth)[-stage.top_n :]
        rank = self._ranks_from_output(stage.unfreeze, candidates)
        for index in candidates:
            state.trainable[index] = True
            state.multipliers[index] = stage.lr_multiplier * stage.layer_decay ** rank[index]

    def _matched(self, patterns) -> list[int]:
        """Indices of the layers the patterns match that are not inside another match."""
        matched = []
        end = 0
        for index, node in enumerate(self.nodes[1:], start=1):
            if index >= end and _matches(node.path, patterns):
                matched.append(index)
                end = node.end
        return matched

    def _selected(self, patterns) -> list[int]:
        """Indices of the layers the patterns match and of all layers inside them."""
        return [i for m in self._matched(patterns) for i in range(m, self.nodes[m].end)]

    def _ranks_from_output(self, patterns, candidates) -> dict[int, int]:
        """Candidate index -> rank, from the output, of the matched layer that holds it.

        Only matched layers that hold a candidate are ranked, so `top_n`
        and skipped BatchNormalization layers leave no gaps.
        """
        owner = {}
        for match in self._matched(patterns):
            for index in candidates:
                if match <= index < self.nodes[match].end:
                    owner[index] = match
        ranked = sorted(set(owner.values()), key=lambda m: self.nodes[m].depth, reverse=True)
        position = {match: rank for rank, match in enumerate(ranked)}
        return {index: position[owner[index]] for index in candidates}

    def _check_patterns(self) -> None:
        paths = [node.path for node in self.nodes[1:]]
        for stage in self.schedule.stages:
            for pattern in stage.freeze + stage.unfreeze:
                if not any(_matches(path, [pattern]) for path in paths):
                    top = sorted({p for p in paths if p.count("/") <= 1})
                    raise ValueError(
                        f"Pattern {pattern!r} of stage at {stage.at} matches no layer. "
                        f"Layer paths start with: {top}; "
                        "`mmtask.transfer.layer_paths(model)` lists them all."
                    )

    def _schedulable_variables(self) -> list:
        """Every variable trainable in some state, in a fixed order.

        Found by setting each state on the model and asking Keras, then
        setting the starting state back.
        """
        found = {}
        for count in range(len(self.schedule.stages) + 1):
            self.apply(self.resolve(count))
            for variable in self.model.trainable_variables:
                found.setdefault(id(variable), variable)
        self.apply(self.base)
        return list(found.values())


def _prepare_optimizer(model, variables) -> bool:
    """Makes `model.optimizer` a DiscriminativeOptimizer built over `variables`.

    Returns whether the optimizer was replaced.
    """
    optimizer = model.optimizer
    if isinstance(optimizer, DiscriminativeOptimizer) and optimizer.knows(variables):
        return False
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        raise ValueError(
            "FineTuning does not support a LossScaleOptimizer, which Keras adds under "
            "the mixed_float16 policy (mixed_precision: float16). Expected another "
            "optimizer: use mixed_precision: bfloat16, which needs no loss scaling. "
            f"Received: {type(optimizer).__name__}"
        )
    if optimizer.built and int(ops.convert_to_numpy(optimizer.iterations)) > 0:
        raise ValueError(
            "FineTuning must set up the optimizer before its first step, but it has "
            f"taken {int(ops.convert_to_numpy(optimizer.iterations))} steps over "
            "other variables. Compile the model again before `fit`."
        )
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if optimizer.built:
            # Built by `fit` over the variables trainable now, but unused: a
            # copy with the same settings replaces it.
            if isinstance(optimizer, DiscriminativeOptimizer):
                optimizer = optimizer.inner_optimizer
            optimizer = type(optimizer).from_config(optimizer.get_config())
        if not isinstance(optimizer, DiscriminativeOptimizer):
            optimizer = DiscriminativeOptimizer(optimizer)
        optimizer.build(variables)
    model.optimizer = optimizer
    return True


def _layer_tree(root) -> list[_Node]:
    """The root and its sublayers, in pre-order, each with its path."""
    nodes: list[_Node] = []
    seen = {id(root)}

    def visit(layer, path, parent):
        index = len(nodes)
        nodes.append(_Node(path, layer, parent))
        for name, child in _children(layer):
            if id(child) not in seen:
                seen.add(id(child))
                visit(child, f"{path}/{name}" if path else name, index)
        nodes[index].end = len(nodes)

    visit(root, "", None)
    inner_weights = [set() for _ in nodes]
    for node in nodes[1:]:
        inner_weights[node.parent].update(id(w) for w in node.layer.weights)
    for node, inner in zip(nodes, inner_weights, strict=True):
        node.own_weights = [w for w in node.layer.weights if id(w) not in inner]
        node.is_batchnorm = isinstance(node.layer, keras.layers.BatchNormalization)
    unused = {
        f"{node.path}/{sub}" if node.path else sub
        for node in nodes
        if isinstance(node.layer, Encoder)
        for sub in node.layer.unused_sublayers
    }
    for index, node in enumerate(nodes):
        if node.path in unused:
            for inner in nodes[index : node.end]:
                inner.unused = True
    depth = _depth_order(root)
    for node in nodes:
        node.depth = depth[id(node.layer)]
    return nodes


def _depth_order(root) -> dict[int, int]:
    """Layer id -> position in a walk that takes functional models' layers input to output.

    Attribute order (which paths follow) need not be the order data flows in:
    keras-hub's BERT keeps its token embedding in a private attribute, so it
    would come after the transformer blocks.
    """
    order: dict[int, int] = {}

    def visit(layer):
        order[id(layer)] = len(order)
        inner = list(layer.layers) if isinstance(layer, keras.Model) else []
        for child in inner + [child for _, child in _children(layer)]:
            if id(child) not in order:
                visit(child)

    visit(root)
    return order


def _children(layer):
    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, keras.layers.Layer):
            yield attr, value
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(item, keras.layers.Layer):
                    yield f"{attr}/{key}", item
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, keras.layers.Layer):
                    yield f"{attr}/{i}", item
    if isinstance(layer, keras.Model):
        for sublayer in layer.layers:
            yield sublayer.name, sublayer


def _matches(path: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)
