"""`SearchSpace`: which fields of a run spec a search varies, and over what values.

A search-space file maps a run-spec field, named by its dotted path, to one
distribution:

```yaml
training.learning_rate: {log_uniform: [1.0e-4, 3.0e-3]}  # a float, log scale
model.fusion.options.dropout: {uniform: [0.1, 0.5]}       # a float, linear scale
training.epochs: {int: [10, 30], step: 5}                 # an int (step optional)
model.tasks[2].hidden_units: {choice: [[128], [256]]}     # one of a list of values
```

Paths are checked against the recipe before any training: every segment but
the last must exist in it, and the last must be a field of the spec or an
option of the named part (`options.dropout` of fusion `concat`). Each
distribution's values are applied to the recipe and read back with
`RunSpec.from_dict`, so a value the spec refuses is an error at once, not
after an hour of trials.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import yaml

import mmtask.builder  # noqa: F401  (registers every part, whose options paths may name)
from mmtask.errors import SpecError
from mmtask.registry import (
    ALIGNMENTS,
    FUSIONS,
    HEADS,
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    WEIGHTINGS,
)
from mmtask.spec import RunSpec

KINDS = ("choice", "uniform", "log_uniform", "int")
_SEGMENT = re.compile(r"^([A-Za-z_]\w*)((?:\[\d+\])*)$")
_REGISTRIES = {
    "text_encoder": TEXT_ENCODERS,
    "image_encoder": IMAGE_ENCODERS,
    "fusion": FUSIONS,
    "weighting": WEIGHTINGS,
    "alignment": ALIGNMENTS,
}


@dataclass(frozen=True)
class Dimension:
    """One searched field: its path in the run spec and its distribution.

    Args:
        path: str. The field's dotted path, e.g. "model.tasks[2].dropout".
        kind: str. "choice", "uniform", "log_uniform" or "int".
        values: tuple. The choices ("choice"), or the bounds (the others).
        step: float | int | None. The grid step of "uniform" or "int".
    """

    path: str
    kind: str
    values: tuple
    step: float | int | None = None

    @property
    def as_json(self) -> bool:
        """Whether KerasTuner holds the choices as JSON text: it takes scalars of one type only."""
        types = {type(v) for v in self.values}
        return self.kind == "choice" and (
            len(types) > 1 or not all(_scalar(v) for v in self.values)
        )

    def declare(self, hp: keras_tuner.HyperParameters) -> None:
        """Add this dimension to `hp` as a KerasTuner hyperparameter named by its path."""
        if self.kind == "choice":
            hp.Choice(self.path, [json.dumps(v) if self.as_json else v for v in self.values])
        elif self.kind == "int":
            hp.Int(self.path, *self.values, step=self.step or 1)
        else:
            sampling = "log" if self.kind == "log_uniform" else "linear"
            hp.Float(self.path, *self.values, step=self.step, sampling=sampling)

    def value(self, sampled: Any) -> Any:
        """The spec value of a value KerasTuner sampled (see `as_json`).

        Floats lose the rounding noise of stepping a grid (0.30000000000000004 is 0.3).
        """
        if self.as_json:
            return json.loads(sampled)
        if self.kind in ("uniform", "log_uniform"):
            return float(f"{sampled:.12g}")
        return sampled


@dataclass(frozen=True)
class SearchSpace:
    """The searched fields of a run spec (see the module docstring for the file format)."""

    dimensions: tuple[Dimension, ...]

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """Read a `.yaml`/`.yml` or `.json` search-space file."""
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"Search-space file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise SpecError(f"Could not parse search-space file {path}: {error}") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "search space") -> SearchSpace:
        """Parse `{path: {kind: values}}`, checking each entry's form (not yet the paths)."""
        if not isinstance(data, Mapping) or not data:
            raise SpecError(
                f"{where}: expected a mapping of run-spec paths to distributions, e.g. "
                f"`training.learning_rate: {{log_uniform: [1.0e-4, 3.0e-3]}}`. "
                f"Received: {data!r:.200}"
            )
        return cls(tuple(_dimension(str(path), entry, where) for path, entry in data.items()))

    def hyperparameters(self) -> keras_tuner.HyperParameters:
        """A KerasTuner space with one hyperparameter per dimension, named by its path."""
        hp = keras_tuner.HyperParameters()
        for dimension in self.dimensions:
            dimension.declare(hp)
        return hp

    def apply(self, spec: RunSpec, values: Mapping[str, Any]) -> RunSpec:
        """`spec` with each dimension's field set to its value in `values` (KerasTuner's).

        Raises:
            SpecError: a path is not in the spec, or a value makes it invalid.
        """
        data = spec.to_dict()
        for path, value in self.values(values).items():
            _set(data, path, value)
        return RunSpec.from_dict(data)

    def values(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """Path -> spec value, of the values KerasTuner sampled (see `Dimension.as_json`)."""
        return {d.path: d.value(sampled[d.path]) for d in self.dimensions}

    def check(self, spec: RunSpec) -> None:
        """Raise a SpecError naming the path unless every value of every dimension fits `spec`."""
        data = spec.to_dict()
        for dimension in self.dimensions:
            current = _set(copy.deepcopy(data), dimension.path, None)
            if dimension.kind != "choice" and _is_int(current) and dimension.kind != "int":
                raise SpecError(
                    f"Search-space path {dimension.path!r} is an int in the recipe "
                    f"({current}): search it with `int: [low, high]`, not {dimension.kind}."
                )
            for value in dimension.values:  # every choice, or both bounds
                trial = copy.deepcopy(data)
                _set(trial, dimension.path, value)
                try:
                    RunSpec.from_dict(trial)
                except SpecError as error:
                    raise SpecError(
                        f"Search-space path {dimension.path!r} with value {value!r} gives an "
                        f"invalid spec: {error}"
                    ) from None


def _dimension(path: str, entry: Any, where: str) -> Dimension:
    if not isinstance(entry, Mapping):
        raise SpecError(
            f"{where}: {path!r} must map to a distribution such as {{choice: [16, 32]}}. "
            f"Received: {entry!r:.200}"
        )
    kinds = [k for k in entry if k in KINDS]
    unknown = sorted(set(entry) - set(KINDS) - {"step"})
    if len(kinds) != 1 or unknown:
        raise SpecError(
            f"{where}: {path!r} must have exactly one of {list(KINDS)} (and optionally "
            f"`step`). Received keys: {sorted(entry)}"
        )
    kind = kinds[0]
    values = entry[kind]
    step = entry.get("step")
    if kind == "choice":
        if step is not None:
            raise SpecError(f"{where}: {path!r}: `step` applies to uniform and int, not choice.")
        if not isinstance(values, list) or not values:
            raise SpecError(
                f"{where}: {path!r}: `choice` takes a non-empty list. Received: {values!r}"
            )
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise SpecError(f"{where}: {path!r}: `choice` lists a value twice: {values!r}")
        return Dimension(path, kind, tuple(values))
    numbers = isinstance(values, list) and len(values) == 2
    numbers = numbers and all(_is_number(v) for v in values) and values[0] < values[1]
    if kind == "int":
        numbers = numbers and all(_is_int(v) for v in values)
        numbers = numbers and (step is None or (_is_int(step) and step > 0))
    else:
        numbers = numbers and (step is None or (_is_number(step) and step > 0))
    if kind == "log_uniform":
        numbers = numbers and values[0] > 0
    if not numbers:
        wanted = "two ints" if kind == "int" else "two numbers"
        wanted += ", the first > 0 and" if kind == "log_uniform" else ","
        raise SpecError(
            f"{where}: {path!r}: `{kind}` takes [low, high], {wanted} low < high "
            f"(and a `step` > 0). Received: {kind}={values!r}, step={step!r}"
        )
    return Dimension(path, kind, tuple(values), step)


def _set(data: dict, path: str, value: Any) -> Any:
    """Set the field at `path` of a run-spec dict to `value`; return what it held.

    Every segment but the last must exist; the last must exist too, except
    under a part's `options`, where it must be an option the part takes.
    """
    steps = []
    for segment in path.split("."):
        match = _SEGMENT.match(segment)
        if match is None:
            raise SpecError(
                f"Search-space path {path!r}: {segment!r} is not a field name with optional "
                f"[index] suffixes."
            )
        steps.append(match.group(1))
        steps.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    node = data
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        where = _where(steps[:i])
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                size = f"a list of {len(node)}" if isinstance(node, list) else repr(node)
                raise SpecError(
                    f"Search-space path {path!r}: {where} is {size} in the recipe, so it "
                    f"has no [{step}]."
                    + (" List the tasks in the recipe to tune one." if node is None else "")
                )
        elif not isinstance(node, dict):
            raise SpecError(
                f"Search-space path {path!r}: {where} is {node!r} in the recipe, not a mapping "
                f"with a field {step!r}."
            )
        elif step not in node and not (last and _is_options(steps[:-1])):
            raise SpecError(
                f"Search-space path {path!r}: {where} has no field {step!r}; "
                f"its fields: {sorted(node)}."
            )
        elif step not in node:
            _check_option(path, data, steps[:-2], step)
        if last:
            old = node.get(step) if isinstance(node, dict) else node[step]
            node[step] = value
            return old
        node = node[step]
    raise AssertionError("unreachable: a path has at least one segment")


def _is_options(steps: list) -> bool:
    """Whether `steps` lead to the `options` of a part (an encoder, the fusion, a task's head)."""
    return (
        len(steps) >= 2
        and steps[-1] == "options"
        and (isinstance(steps[-2], int) or steps[-2] in _REGISTRIES)
    )


def _check_option(path: str, data: dict, part_steps: list, option: str) -> None:
    """Raise a SpecError unless the part at `part_steps` takes an option named `option`."""
    part = data
    for step in part_steps:
        part = part[step]
    kind = part_steps[-1]
    if isinstance(kind, int):  # a task's head
        if part.get("type") is None:
            return  # the data decides the head type; the first trial's build checks it
        name, registry = part["type"], HEADS
    else:
        name, registry = part["name"], _REGISTRIES[kind]
    accepted = _options_of(registry.get(name))
    if option not in accepted:
        raise SpecError(
            f"Search-space path {path!r}: {name!r} takes no option {option!r}; "
            f"its options: {sorted(accepted)}."
        )


def _options_of(part_class) -> set[str]:
    """The named constructor arguments of a part, following `**kwargs` up to Keras' Layer."""
    names: set[str] = set()
    classes = part_class.__mro__ if isinstance(part_class, type) else (part_class,)
    for cls in classes:
        if cls in (keras.layers.Layer, keras.Model, object):
            break
        function = cls.__init__ if isinstance(cls, type) else cls
        if isinstance(cls, type) and "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(function).parameters.values()
        names.update(
            p.name
            for p in parameters
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"
        )
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return names


def _where(steps: list) -> str:
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return f"`{text}`" if text else "the spec"


def _scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
