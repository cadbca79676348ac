"""Heads read one representation (text, image or fused) and predict one task, of one type.

Each head type (registered by name in `mmtask.registry.HEADS`, chosen by a
task's `type` in the spec) owns its loss, metrics, decoding, export outputs
and evaluation report.
"""

from mmtask.heads.base import TaskHead
from mmtask.heads.binary import BinaryHead
from mmtask.heads.classification import ClassificationHead
from mmtask.heads.multilabel import MultiLabelHead
from mmtask.heads.regression import RegressionHead

__all__ = ["BinaryHead", "ClassificationHead", "MultiLabelHead", "RegressionHead", "TaskHead"]
