"""Every registered encoder builds and trains one step with every registered fusion.

Parametrized over the registries, so a new part is covered when it registers.
Each text encoder is paired with the default image encoder and each image
encoder with the default text encoder (the full text x image x fusion product
costs much more and adds no pairing of an encoder with a fusion); stand-ins
for presets, weights files and SavedModels are written once per module.
"""

import keras
import numpy as np
import pytest
from stand_ins import encoder_options
from tiny_models import NAMES, make_batch

import mmtask.builder  # noqa: F401  (registers every built-in part)
from mmtask.builder import build_model
from mmtask.registry import FUSIONS, IMAGE_ENCODERS, TEXT_ENCODERS
from mmtask.spec import ComponentSpec, ModelSpec, TaskSpec

DEFAULT = {"text": "transformer", "image": "small_cnn"}
ENCODER_PAIRS = sorted(
    {(text, DEFAULT["image"]) for text in TEXT_ENCODERS.names()}
    | {(DEFAULT["text"], image) for image in IMAGE_ENCODERS.names()}
)
# Small widths for the fusions known now; a new fusion is tried with its defaults.
FUSION_OPTIONS = {
    "autoencoder": {"bottleneck_dim": 8, "hidden_units": 8},
    "concat": {"units": [8]},
    "cross_attention": {"units": 8, "num_heads": 2},
    "gated": {"units": 8},
}
IMAGE_SIZE, BATCH = 32, 4


@pytest.fixture(scope="module")
def options(tmp_path_factory):
    """(modality, encoder name) -> spec options, each stand-in written on first use."""
    root = tmp_path_factory.mktemp("stand_ins")
    made = {}

    def get(modality: str, name: str) -> dict:
        if (modality, name) not in made:
            made[modality, name] = encoder_options(name, modality, root / f"{modality}_{name}")
        return made[modality, name]

    return get


def inputs_for(model, raw: dict) -> dict:
    """Raw texts and images, or random features for the encoders that read features."""
    rng = np.random.default_rng(0)
    return {
        m: (
            rng.normal(size=(BATCH, *encoder.example_shape(model.image_size))).astype("float32")
            if encoder.reads == "features"
            else raw[m]
        )
        for m, encoder in model.encoders.items()
    }


@pytest.mark.parametrize("fusion", FUSIONS.names())
@pytest.mark.parametrize(("text", "image"), ENCODER_PAIRS)
def test_encoders_and_fusion_build_and_train_one_step(options, text, image, fusion):
    keras.utils.set_random_seed(0)
    spec = ModelSpec(
        image_size=IMAGE_SIZE,
        text_encoder=ComponentSpec(text, options("text", text)),
        image_encoder=ComponentSpec(image, options("image", image)),
        fusion=ComponentSpec(fusion, FUSION_OPTIONS.get(fusion, {})),
        tasks=[TaskSpec("post_task", input="fused")],
    )
    raw, labels = make_batch(n=BATCH, image_size=IMAGE_SIZE)
    # Default safe mode builds every part but those that run a SavedModel's
    # graph; the tf_hub stand-ins are this test's own files, so trusted.
    trusted = "tf_hub" in (text, image)
    model = build_model(
        spec, {"post_task": NAMES}, train_texts=list(raw["text"]), safe_mode=not trusted
    )
    model.compile(optimizer="adam")
    history = model.fit(
        inputs_for(model, raw),
        {"post_task": labels["post_task"]},
        batch_size=BATCH,
        epochs=1,
        verbose=0,
    ).history
    assert np.isfinite(history["loss"][0])
