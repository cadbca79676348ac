"""An HTTP server speaking TensorFlow Serving's REST API for an exported mmtask model."""

from mmtask.serving.http_server import ModelServer
from mmtask.serving.served_model import ServedModel, open_model

__all__ = ["ModelServer", "ServedModel", "open_model"]
