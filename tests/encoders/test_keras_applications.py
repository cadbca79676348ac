"""KerasApplicationsImageEncoder: local weights, its family's preprocessing, save and export."""

import io
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tiny_models import image_only_model

from mmtask.builder import build_model
from mmtask.encoders import KerasApplicationsImageEncoder
from mmtask.errors import MmtaskError, SpecError
from mmtask.export import export_saved_model
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.spec import ModelSpec
from mmtask.testing import run_layer_test

# The smallest application with batch normalization and "tf"-mode preprocessing.
APPLICATION = "MobileNet"
OPTIONS = {"alpha": 0.25}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A weights file of a randomly initialized tiny MobileNet, and its weights."""
    keras.utils.set_random_seed(1)
    application = keras.applications.MobileNet(include_top=False, weights=None, **OPTIONS)
    path = tmp_path_factory.mktemp("applications") / "tiny.weights.h5"
    application.save_weights(path)
    return str(path), application.get_weights()


def images(n=2, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def encoder_from(weights, **kwargs):
    return KerasApplicationsImageEncoder(
        APPLICATION, weights=weights[0], application_options=OPTIONS, **kwargs
    )


def test_loads_the_weights_file(weights):
    keras.utils.set_random_seed(2)  # another random init, which the file must overwrite
    encoder = encoder_from(weights)
    for loaded, saved in zip(encoder.backbone.get_weights(), weights[1], strict=True):
        np.testing.assert_array_equal(loaded, saved)
    assert not encoder.backbone.trainable
    assert encoder.output_width == 256


@pytest.mark.parametrize(
    ("application", "options", "preprocess"),
    [
        # Preprocessing inside the model: pixels go in as they are.
        ("MobileNetV3Small", {"alpha": 0.75, "minimalistic": True}, lambda x: x),
        # "tf" mode: pixels to [-1, 1].
        ("MobileNet", {"alpha": 0.25}, lambda x: x / 127.5 - 1.0),
        # "caffe" mode: BGR, ImageNet means subtracted.
        ("VGG16", {}, lambda x: x[..., ::-1] - np.array([103.939, 116.779, 123.68])),
    ],
)
def test_applies_the_family_preprocessing(application, options, preprocess):
    encoder = KerasApplicationsImageEncoder(application, application_options=options)
    x = images()
    features = np.asarray(encoder.backbone(preprocess(x).astype("float32")))
    np.testing.assert_allclose(
        np.asarray(encoder(x)["vector"]), features.mean(axis=(1, 2)), rtol=1e-4, atol=1e-4
    )


def test_returns_patches_on_request(weights):
    encoder = encoder_from(weights, pooling="max")
    x = images(size=64)
    out = encoder(x)
    features = np.asarray(encoder.backbone(x))
    assert features.shape[1:3] == (2, 2)
    np.testing.assert_allclose(
        np.asarray(out["sequence"]), features.reshape(2, 4, -1), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(np.asarray(out["vector"]), features.max(axis=(1, 2)), atol=1e-5)


def test_layer_contract(weights):
    run_layer_test(
        KerasApplicationsImageEncoder,
        {
            "application": APPLICATION,
            "weights": weights[0],
            "application_options": OPTIONS,
            "output_dim": 5,
            "trainable_backbone": True,
        },
        images(),
        expected_output_shape={"vector": (2, 5)},
    )


def make_model(encoder):
    keras.utils.set_random_seed(0)
    return MultiTaskModel(
        encoders={"image": encoder},
        heads={"post": ClassificationHead(2)},
        task_inputs={"post": "image"},
        label_names={"post": ["no", "yes"]},
        image_size=(32, 32),
    )


def fit_briefly(model, x):
    # Eager steps: two of them cost less than tracing the backbone's training graph.
    model.compile(keras.optimizers.Adam(0.01), run_eagerly=True)
    model.fit(x, {"post": np.array([0, 1, 0, 1], "int32")}, batch_size=2, verbose=0)


def test_frozen_backbone_stays_fixed_and_exports_its_preprocessing(weights, tmp_path):
    model = make_model(encoder_from(weights, output_dim=4))
    pixels = images(4).round()
    fit_briefly(model, {"image": pixels})
    # Nothing in the backbone moves, batch-norm statistics included.
    for now, saved in zip(model.encoders["image"].backbone.get_weights(), weights[1], strict=True):
        np.testing.assert_array_equal(now, saved)
    encoded = []
    for image in pixels.astype("uint8"):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    expected = model.predict({"image": pixels}, verbose=0)["post"]
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "export")))
    out = served.serve(image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(out["post_probabilities"].numpy(), expected, atol=1e-5)


def test_fine_tunes_and_reloads_without_the_weights_file(weights, tmp_path):
    path = tmp_path / "copy.weights.h5"
    path.write_bytes(open(weights[0], "rb").read())
    model = make_model(encoder_from((str(path),), output_dim=4, trainable_backbone=True))
    x = {"image": images(4)}
    fit_briefly(model, x)
    backbone = model.encoders["image"].backbone
    moved = [
        not np.array_equal(a, b) for a, b in zip(backbone.get_weights(), weights[1], strict=True)
    ]
    assert sum(moved) > len(moved) // 2
    expected = model.predict(x, verbose=0)["post"]
    model.save(tmp_path / "model.keras")
    path.unlink()
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["post"], expected, atol=1e-6)


def test_builds_from_a_spec(weights):
    spec = ModelSpec.from_dict(
        {
            "text_encoder": None,
            "fusion": None,
            "image_encoder": {
                "name": "keras_applications",
                "options": {
                    "application": APPLICATION,
                    "weights": weights[0],
                    "application_options": OPTIONS,
                    "output_dim": 6,
                },
            },
            "image_size": 32,
            "tasks": [{"name": "post", "input": "image"}],
        }
    )
    model = build_model(spec, {"post": ["no", "yes"]})
    assert isinstance(model.encoders["image"], KerasApplicationsImageEncoder)
    assert model.encoders["image"].output_width == 6


def test_refuses_downloads_and_unknown_names(tmp_path):
    started = time.monotonic()
    with pytest.raises(MmtaskError, match="weights='imagenet' would download"):
        KerasApplicationsImageEncoder(APPLICATION, weights="imagenet")
    with pytest.raises(MmtaskError, match="remote handle"):
        KerasApplicationsImageEncoder(
            APPLICATION, weights="https://storage.googleapis.com/x/notop.h5"
        )
    with pytest.raises(MmtaskError, match="weights file not found"):
        KerasApplicationsImageEncoder(APPLICATION, weights=str(tmp_path / "none.weights.h5"))
    assert time.monotonic() - started < 1
    with pytest.raises(ValueError, match="expected one of .*'ResNet50'"):
        KerasApplicationsImageEncoder("ResNet51")
    spec = ModelSpec.from_dict(
        {
            "text_encoder": None,
            "fusion": None,
            "image_encoder": {"name": "keras_applications", "options": {"application": "X"}},
            "tasks": [{"name": "post", "input": "image"}],
        }
    )
    with pytest.raises(SpecError, match="Invalid options"):
        build_model(spec, {"post": ["no", "yes"]})


def test_image_size_against_the_weights_and_a_fixed_input_shape(weights):
    with pytest.warns(
        UserWarning, match="pretrained on 40x40 images, but the model feeds it 32x32"
    ):
        image_only_model(encoder_from(weights, native_image_size=40), 32)
    fixed = KerasApplicationsImageEncoder(
        APPLICATION, application_options={**OPTIONS, "input_shape": (40, 40, 3)}
    )
    with pytest.raises(MmtaskError, match="takes 40x40 images only. Received 32x32"):
        image_only_model(fixed, 32)
