"""TF-Hub-format SavedModels as mmtask encoders: frozen, fine-tuned, saved, exported, refused."""

import io
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.saving.serialization_lib import SafeModeScope
from PIL import Image

from mmtask.builder import build_model
from mmtask.encoders import SavedModelLayer, TFHubImageEncoder, TFHubTextEncoder
from mmtask.errors import MmtaskError
from mmtask.export import export_saved_model
from mmtask.fusion import ConcatFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.spec import ModelSpec
from mmtask.testing import run_layer_test
from mmtask.training import load_model

KERNEL = np.arange(12, dtype="float32").reshape(3, 4) / 10
EMBEDDINGS = np.arange(32, dtype="float32").reshape(8, 4) / 32


class ImageModule(tf.Module):
    """Images in [0, 1] -> a (B, H, W, 4) feature map, with a batch-norm-like statistic."""

    def __init__(self):
        self.kernel = tf.Variable(KERNEL, name="conv/kernel")
        self.moving_mean = tf.Variable(tf.zeros(4), trainable=False, name="bn/moving_mean")

    @tf.function
    def __call__(self, images, training=False):
        features = tf.tanh(tf.einsum("bhwc,cd->bhwd", images, self.kernel))
        if training:
            self.moving_mean.assign(
                0.5 * self.moving_mean + 0.5 * tf.reduce_mean(features, [0, 1, 2])
            )
        return features - self.moving_mean


class TextModule(tf.Module):
    """Strings -> the mean embedding of their words, bucketed by word length."""

    def __init__(self):
        self.embeddings = tf.Variable(EMBEDDINGS, name="text/embeddings")

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)])
    def __call__(self, texts):
        buckets = tf.strings.length(tf.strings.split(texts)) % 8
        return tf.reduce_mean(tf.gather(self.embeddings, buckets), axis=1)


def expected_features(images):
    return np.tanh(np.einsum("bhwc,cd->bhwd", images / 255.0, KERNEL))


def expected_text_vectors(texts):
    return np.stack([EMBEDDINGS[[len(w) % 8 for w in t.split()]].mean(axis=0) for t in texts])


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """Paths of the image and text SavedModels, in TF-Hub's format."""
    root = tmp_path_factory.mktemp("tf_hub")
    image = ImageModule()
    spec = tf.TensorSpec((None, None, None, 3), tf.float32)
    for training in (True, False):
        image.__call__.get_concrete_function(spec, training=training)
    tf.saved_model.save(image, str(root / "image"))
    text = TextModule()
    tf.saved_model.save(text, str(root / "text"), signatures={"serving_default": text.__call__})
    return str(root / "image"), str(root / "text")


def images(n=4, size=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


TEXTS = np.array(["a bb", "ccc dddd e", "ff", "g hhhhh"], object)


def test_layer_calls_the_module_through_its_own_variables(modules):
    layer = SavedModelLayer(modules[0], trainable=True)
    x = images()
    np.testing.assert_allclose(
        np.asarray(layer(x / 255.0)), expected_features(x), rtol=1e-5, atol=1e-6
    )
    names = [v.name for v in layer.weights]
    assert names == ["conv_kernel", "bn_moving_mean"]
    np.testing.assert_array_equal(layer.weights[0].numpy(), KERNEL)
    # The Keras variables are the module's: changing one changes the module's output.
    layer.weights[0].assign(np.zeros((3, 4), "float32"))
    np.testing.assert_array_equal(np.asarray(layer(x / 255.0)), 0.0)


def test_image_encoder_scales_and_pools(modules):
    x = images()
    average = TFHubImageEncoder(modules[0])
    maximum = TFHubImageEncoder(modules[0], pooling="max")
    features = expected_features(x)
    assert average.output_width == 4
    np.testing.assert_allclose(
        np.asarray(average(x)["vector"]), features.mean(axis=(1, 2)), atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(maximum(x)["vector"]), features.max(axis=(1, 2)), atol=1e-6
    )


def test_text_encoder_reads_raw_strings_and_signatures(modules):
    expected = expected_text_vectors(TEXTS)
    np.testing.assert_allclose(np.asarray(TFHubTextEncoder(modules[1])(TEXTS)["vector"]), expected)
    by_signature = SavedModelLayer(modules[1], signature="serving_default")
    np.testing.assert_allclose(np.asarray(by_signature(tf.constant(TEXTS))), expected)
    with pytest.raises(ValueError, match="expected one of \\['serving_default'\\]"):
        SavedModelLayer(modules[1], signature="serve")


def test_sequences(modules):
    x = images()
    out = TFHubImageEncoder(modules[0])(x)
    features = expected_features(x)
    np.testing.assert_allclose(
        np.asarray(out["sequence"]), features.reshape(4, 64, 4), rtol=1e-5, atol=1e-6
    )
    assert np.asarray(out["mask"]).all() and out["mask"].shape == (4, 64)
    with pytest.raises(ValueError, match="pooling='avg'"):
        TFHubImageEncoder(modules[0], pooling=None)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_layer_contract(modules, modality):
    if modality == "image":
        cls, handle, x = TFHubImageEncoder, modules[0], images()
    else:
        cls, handle, x = TFHubTextEncoder, modules[1], TEXTS
    # The contract's config round trip is a deserialization: allowed outside safe mode only.
    with SafeModeScope(False):
        run_layer_test(
            cls,
            {"handle": handle, "output_dim": 5, "trainable_backbone": True},
            x,
            expected_output_shape={"vector": (4, 5)},
        )
    with pytest.raises(ValueError, match="safe mode"):
        cls.from_config(cls(handle).get_config())


def make_model(modules, trainable):
    keras.utils.set_random_seed(0)
    return MultiTaskModel(
        encoders={
            "image": TFHubImageEncoder(modules[0], trainable_backbone=trainable),
            "text": TFHubTextEncoder(modules[1], output_dim=3, trainable_backbone=trainable),
        },
        fusion=ConcatFusion(units=(4,)),
        heads={"post": ClassificationHead(2)},
        task_inputs={"post": "fused"},
        label_names={"post": ["no", "yes"]},
        image_size=(8, 8),
    )


@pytest.mark.parametrize("trainable", [False, True])
def test_fits_with_adam_and_reloads_from_keras_file(modules, trainable, tmp_path):
    model = make_model(modules, trainable)
    x = {"text": TEXTS, "image": images()}
    model.compile(keras.optimizers.Adam(0.1))
    model.fit(x, {"post": np.array([0, 1, 0, 1], "int32")}, batch_size=2, epochs=2, verbose=0)
    kernel, moving_mean = model.encoders["image"].module.weights
    embeddings = model.encoders["text"].module.weights[0]
    if trainable:
        assert not np.allclose(kernel.numpy(), KERNEL)
        assert not np.allclose(embeddings.numpy(), EMBEDDINGS)
        assert np.abs(moving_mean.numpy()).sum() > 0  # the module ran in training mode
    else:
        np.testing.assert_array_equal(kernel.numpy(), KERNEL)
        np.testing.assert_array_equal(embeddings.numpy(), EMBEDDINGS)
        np.testing.assert_array_equal(moving_mean.numpy(), 0.0)
    expected = model.predict(x, verbose=0)["post"]
    model.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match="safe_mode=False"):
        keras.models.load_model(tmp_path / "model.keras")
    # mmtask's loader says the same in one line, as the CLI prints it.
    with pytest.raises(MmtaskError, match="Could not load a model from .*safe_mode=False"):
        load_model(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=False)
    np.testing.assert_array_equal(loaded.encoders["image"].module.weights[0].numpy(), kernel)
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["post"], expected, atol=1e-6)


def test_exported_model_serves_the_module(modules, tmp_path):
    model = make_model(modules, trainable=False)
    pixels = images().round()
    encoded = []
    for image in pixels.astype("uint8"):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    expected = model.predict({"text": TEXTS, "image": pixels}, verbose=0)["post"]
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "export")))
    out = served.serve(text=tf.constant(list(TEXTS)), image_bytes=tf.constant(encoded))
    np.testing.assert_allclose(out["post_probabilities"].numpy(), expected, atol=1e-5)


def test_builds_from_a_spec(modules):
    spec = ModelSpec.from_dict(
        {
            "text_encoder": {"name": "tf_hub", "options": {"handle": modules[1]}},
            "image_encoder": {
                "name": "tf_hub",
                "options": {"handle": modules[0], "output_dim": 6, "pooling": "max"},
            },
            "image_size": 8,
            "tasks": [{"name": "post"}],
        }
    )
    with pytest.raises(MmtaskError, match="--trust-saved-model"):
        build_model(spec, {"post": ["no", "yes"]})
    model = build_model(spec, {"post": ["no", "yes"]}, safe_mode=False)
    assert isinstance(model.encoders["image"], TFHubImageEncoder)
    assert isinstance(model.encoders["text"], TFHubTextEncoder)
    assert model.encoders["image"].output_width == 6
    out = model.predict({"text": TEXTS, "image": images()}, verbose=0)["post"]
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "handle",
    [
        "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5",
        "tfhub.dev/google/nnlm-en-dim50/2",
        "gs://bucket/models/encoder",
    ],
)
def test_remote_handles_fail_at_once(handle):
    started = time.monotonic()
    with pytest.raises(MmtaskError, match="Download it once and pass its local path"):
        TFHubImageEncoder(handle)
    assert time.monotonic() - started < 1


def test_missing_folder_fails_clearly(tmp_path):
    with pytest.raises(MmtaskError, match="TF-Hub module not found"):
        TFHubTextEncoder(str(tmp_path / "nowhere"))
