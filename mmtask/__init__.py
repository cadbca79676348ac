"""mmtask: multi-task, cross-modal (text + image) models on Keras 3.

Shared encoders and a fusion trunk feed one head per task, trained jointly
with weighted, masked losses; data comes in through tf.data and models go out
as `.keras` files or SavedModels that serve raw text and image bytes.

The public names load on first use (PEP 562), so `import mmtask` and the
`mmtask --help` command do not import TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SOURCES = {
    "build_model": "mmtask.builder",
    "Posts": "mmtask.data",
    "make_dataset": "mmtask.data",
    "read_manifest": "mmtask.data",
    "read_mvsa": "mmtask.data",
    "read_posts": "mmtask.data",
    "DataError": "mmtask.errors",
    "MmtaskError": "mmtask.errors",
    "SpecError": "mmtask.errors",
    "EvaluationReport": "mmtask.evaluation",
    "evaluate_model": "mmtask.evaluation",
    "export_saved_model": "mmtask.export",
    "MultiTaskEnsemble": "mmtask.models",
    "MultiTaskModel": "mmtask.models",
    "ComponentSpec": "mmtask.spec",
    "ModelSpec": "mmtask.spec",
    "OptimizerSpec": "mmtask.spec",
    "RunSpec": "mmtask.spec",
    "TaskSpec": "mmtask.spec",
    "TrainingSpec": "mmtask.spec",
    "load_model": "mmtask.training",
    "save_run": "mmtask.training",
    "train": "mmtask.training",
    "SearchSpace": "mmtask.tuning",
    "tune": "mmtask.tuning",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    """Import a public name, or a subpackage (`mmtask.encoders`), when first asked for."""
    if name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name]), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
