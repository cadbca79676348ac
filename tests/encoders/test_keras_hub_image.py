"""KerasHubImageEncoder: loads a local preset, scales its input, saves without the preset."""

import shutil
import time
import warnings
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest
from tiny_models import image_only_model, tiny_efficientnet_backbone

from mmtask.encoders import KerasHubImageEncoder, TransformerTextEncoder
from mmtask.errors import MmtaskError
from mmtask.fusion import ConcatFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.testing import run_layer_test

REAL_PRESET = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "weights"
    / "efficientnet_lite0_imagenet"
)


def tiny_backbone():
    keras.utils.set_random_seed(0)
    return tiny_efficientnet_backbone()


@pytest.fixture
def preset(tmp_path):
    backbone = tiny_backbone()
    path = tmp_path / "tiny_preset"
    backbone.save_to_preset(str(path))
    return path, backbone


def test_loads_the_preset_weights(preset):
    path, backbone = preset
    encoder = KerasHubImageEncoder(preset=str(path))
    for loaded, saved in zip(encoder.backbone.get_weights(), backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, saved)
    assert not encoder.backbone.trainable


def test_scales_pixels_before_the_backbone(preset):
    path, backbone = preset
    encoder = KerasHubImageEncoder(preset=str(path), pooling="avg")
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = np.asarray(backbone(images / 127.5 - 1.0)).mean(axis=(1, 2))
    np.testing.assert_allclose(
        np.asarray(encoder(images)["vector"]), expected, rtol=1e-4, atol=1e-5
    )


def test_layer_contract(preset):
    path, _ = preset
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    run_layer_test(
        KerasHubImageEncoder,
        {"preset": str(path), "output_dim": 5, "trainable_backbone": True},
        images,
        expected_output_shape={"vector": (2, 5)},
    )


def test_frozen_backbone_has_no_trainable_weights(preset):
    path, _ = preset
    encoder = KerasHubImageEncoder(preset=str(path), output_dim=4)
    encoder(np.zeros((1, 32, 32, 3), "float32"))
    trainable = {v.path for v in encoder.trainable_variables}
    assert trainable and all("projection" in p for p in trainable)


def test_saved_model_reloads_without_the_preset(preset, tmp_path):
    path, _ = preset
    keras.utils.set_random_seed(0)
    model = MultiTaskModel(
        encoders={
            "image": KerasHubImageEncoder(preset=str(path), output_dim=4),
            "text": TransformerTextEncoder(
                max_tokens=16,
                sequence_length=4,
                embed_dim=8,
                intermediate_dim=8,
                vocabulary=["a", "b"],
            ),
        },
        fusion=ConcatFusion(units=(4,)),
        heads={"post": ClassificationHead(2)},
        task_inputs={"post": "fused"},
        label_names={"post": ["no", "yes"]},
        image_size=(32, 32),
    )
    x = {
        "text": np.array(["a b", "b"], object),
        "image": np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32"),
    }
    expected = model.predict(x, verbose=0)["post"]
    model.save(tmp_path / "model.keras")
    shutil.rmtree(path)
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["post"], expected, atol=1e-6)


def test_missing_folder_and_unreachable_handle_fail_clearly(tmp_path):
    with pytest.raises(MmtaskError, match="Preset folder not found"):
        KerasHubImageEncoder(preset=str(tmp_path / "nowhere"))
    started = time.monotonic()
    with pytest.raises(MmtaskError, match="pass its folder path"):
        KerasHubImageEncoder(preset="efficientnet_lite0_ra_imagenet_does_not_exist")
    assert time.monotonic() - started < 60


def test_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        KerasHubImageEncoder()


@pytest.mark.integration
@pytest.mark.skipif(not REAL_PRESET.is_dir(), reason=f"weights not found at {REAL_PRESET}")
def test_real_efficientnet_lite0_preset():
    encoder = KerasHubImageEncoder(preset=str(REAL_PRESET))
    assert encoder.backbone.count_params() == 3413024
    images = np.random.default_rng(3).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    vectors = np.asarray(encoder(images)["vector"])
    assert vectors.shape == (2, 1280) and np.isfinite(vectors).all()


def test_returns_patches_on_request(preset):
    path, backbone = preset
    encoder = KerasHubImageEncoder(preset=str(path))
    images = np.random.default_rng(4).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    out = encoder(images)
    features = np.asarray(backbone(images / 127.5 - 1.0))
    np.testing.assert_allclose(
        np.asarray(out["sequence"]), features.reshape(2, -1, features.shape[-1]), atol=1e-5
    )
    np.testing.assert_allclose(np.asarray(out["vector"]), features.mean(axis=(1, 2)), atol=1e-5)


def test_warns_when_the_model_image_size_is_not_the_presets(tmp_path):
    path = tmp_path / "preset_with_converter"
    tiny_backbone().save_to_preset(str(path))
    keras_hub.layers.EfficientNetImageConverter(image_size=(24, 24)).save_to_preset(str(path))
    with pytest.warns(
        UserWarning, match="pretrained on 24x24 images, but the model feeds it 32x32"
    ):
        image_only_model(KerasHubImageEncoder(preset=str(path)), 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = image_only_model(KerasHubImageEncoder(preset=str(path)), 24)
    assert model.encoders["image"].get_config()["native_image_size"] == (24, 24)


def test_a_backbone_of_fixed_input_size_refuses_another_size():
    keras.utils.set_random_seed(0)
    config = {**tiny_efficientnet_backbone().get_config(), "input_shape": (24, 24, 3)}
    backbone = keras_hub.models.EfficientNetBackbone.from_config(config)
    with pytest.raises(MmtaskError, match="takes 24x24 images only. Received 32x32"):
        image_only_model(KerasHubImageEncoder(backbone=backbone), 32)
