"""Export of trained models for serving."""

from mmtask.export.saved_model import export_saved_model, serving_function

__all__ = ["export_saved_model", "serving_function"]
