"""A fusion module chosen by name in a spec builds, trains and survives a `.keras` round trip."""

import keras
import numpy as np
import pytest
from tiny_models import NAMES, TASKS, make_batch

from mmtask.builder import build_model
from mmtask.spec import ModelSpec


def tiny_spec(fusion: dict) -> ModelSpec:
    return ModelSpec.from_dict(
        {
            "image_size": 16,
            "text_encoder": {
                "name": "transformer",
                "options": {
                    "max_tokens": 32,
                    "sequence_length": 6,
                    "embed_dim": 8,
                    "intermediate_dim": 8,
                },
            },
            "image_encoder": {"name": "small_cnn", "options": {"filters": [4], "output_dim": 6}},
            "fusion": fusion,
        }
    )


@pytest.fixture
def spec_round_trip(tmp_path):
    """Builds the model a spec with `fusion` names, saves it and loads it back.

    Returns the model, after asserting that the loaded model predicts the same.
    """

    def check(fusion: dict):
        keras.utils.set_random_seed(0)
        x, _ = make_batch(n=8)
        model = build_model(
            tiny_spec(fusion), {t: NAMES for t in TASKS}, train_texts=list(x["text"])
        )
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded.fusion) is type(model.fusion)
        assert loaded.fusion.get_config() == model.fusion.get_config()
        # Calling the models (rather than `predict`) avoids tracing two predict functions.
        expected = model(x, training=False)
        actual = loaded(x, training=False)
        for task in TASKS:
            np.testing.assert_allclose(actual[task], expected[task], atol=1e-6)
        return model

    return check
