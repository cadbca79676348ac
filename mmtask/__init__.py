"""mmtask: multi-task, cross-modal (text + image) models on Keras 3.

Shared encoders and a fusion trunk feed one head per task, trained jointly
with weighted, masked losses; data comes in through tf.data and models go out
as `.keras` files or SavedModels that serve raw text and image bytes.
"""

from mmtask.builder import build_model
from mmtask.data import Posts, make_dataset, read_manifest, read_mvsa, read_posts
from mmtask.errors import DataError, MmtaskError, SpecError
from mmtask.evaluation import EvaluationReport, evaluate_model
from mmtask.export import export_saved_model
from mmtask.models import MultiTaskModel
from mmtask.spec import ComponentSpec, ModelSpec, RunSpec, TaskSpec, TrainingSpec
from mmtask.training import load_model, save_run, train

__version__ = "0.1.0"

__all__ = [
    "ComponentSpec",
    "DataError",
    "EvaluationReport",
    "ModelSpec",
    "MmtaskError",
    "MultiTaskModel",
    "Posts",
    "RunSpec",
    "SpecError",
    "TaskSpec",
    "TrainingSpec",
    "build_model",
    "evaluate_model",
    "export_saved_model",
    "load_model",
    "make_dataset",
    "read_manifest",
    "read_mvsa",
    "read_posts",
    "save_run",
    "train",
]
