"""Hyperparameter search over the fields of a run spec, scored by k-fold cross-validation."""

from mmtask.tuning.folds import k_folds
from mmtask.tuning.search_space import Dimension, SearchSpace
from mmtask.tuning.tuner import TuningResult, fold_score, tune

__all__ = ["Dimension", "SearchSpace", "TuningResult", "fold_score", "k_folds", "tune"]
