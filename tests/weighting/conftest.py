"""A tiny image-only multi-task model, and images whose colour is a learnable label."""

import keras
import numpy as np
import pytest

from mmtask.builder import build_model
from mmtask.encoders import SmallCNNImageEncoder
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.spec import ModelSpec

# Black, red, green, blue: class k is an image of colour k plus noise.
COLORS = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], "float32")


@pytest.fixture(scope="session")
def make_image_model():
    """Returns a function: weighting -> a small CNN model with a 4-class head per task."""

    def make(weighting):
        keras.utils.set_random_seed(0)
        tasks = weighting.tasks
        return MultiTaskModel(
            encoders={"image": SmallCNNImageEncoder(filters=(4,), output_dim=8, dropout=0.0)},
            heads={t: ClassificationHead(len(COLORS), name=t) for t in tasks},
            task_inputs={t: "image" for t in tasks},
            label_names={t: ["black", "red", "green", "blue"] for t in tasks},
            weighting=weighting,
            image_size=(8, 8),
        )

    return make


@pytest.fixture(scope="session")
def color_images():
    """64 inputs of 8x8 images, and their colour classes (a label the model can learn)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(COLORS), 64).astype("int32")
    images = COLORS[labels][:, None, None, :] + rng.normal(0, 20, (64, 8, 8, 3))
    return {"image": images.astype("float32")}, labels


@pytest.fixture(scope="session")
def build_with_weighting():
    """Builds through a spec an image-only model: tasks a (weight 0.5) and b, and `weighting`."""
    def build(weighting):
        spec = ModelSpec.from_dict(
            {
                "text_encoder": None,
                "fusion": None,
                "image_encoder": {
                    "name": "small_cnn",
                    "options": {"filters": [4], "output_dim": 8},
                },
                "image_size": 8,
                "tasks": [
                    {"name": "a", "input": "image", "weight": 0.5},
                    {"name": "b", "input": "image"},
                ],
                "weighting": weighting,
            }
        )
        return build_model(spec, {"a": ["x", "y"], "b": ["x", "y"]})

    return build
