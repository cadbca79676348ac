"""Source-task pre-training of the text encoder, saved, then carried into a joint model."""

import keras
import numpy as np
import pytest

from mmtask.builder import build_model
from mmtask.data import read_mvsa, write_synthetic_mvsa
from mmtask.errors import MmtaskError
from mmtask.spec import ComponentSpec, ModelSpec, OptimizerSpec
from mmtask.transfer import load_encoder, pretrain_text_encoder, save_encoder

SMALL_TEXT = ComponentSpec(
    "transformer",
    {"max_tokens": 500, "sequence_length": 16, "embed_dim": 16, "intermediate_dim": 16},
)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = write_synthetic_mvsa(tmp_path_factory.mktemp("source"), num_posts=240, seed=5)
    posts = read_mvsa(root)
    return posts


@pytest.fixture(scope="module")
def pretrained(source):
    return pretrain_text_encoder(
        source.texts,
        source.labels["text_sentiment"],
        3,
        SMALL_TEXT,
        epochs=6,
        batch_size=32,
        learning_rate=3e-3,
        verbose=0,
    )


def test_pretraining_learns_the_source_task(pretrained):
    assert pretrained.validation_accuracy > 0.6
    assert len(pretrained.history["loss"]) == 6
    assert pretrained.history["loss"][-1] < pretrained.history["loss"][0]


def test_pretraining_follows_the_optimizer_spec(source):
    """AdamW's decoupled decay shrinks the encoder's kernels; plain Adam, same seed, does not."""

    def kernel_norm(optimizer):
        result = pretrain_text_encoder(
            source.texts[:64],
            source.labels["text_sentiment"][:64],
            3,
            SMALL_TEXT,
            epochs=1,
            batch_size=16,
            learning_rate=1e-3,
            optimizer=optimizer,
            validation_fraction=0,
            verbose=0,
        )
        kernels = [v for v in result.encoder.weights if v.path.endswith("kernel")]
        return float(np.sqrt(sum(np.sum(np.square(v.numpy())) for v in kernels)))

    adam = kernel_norm(None)
    assert kernel_norm(OptimizerSpec("adamw", weight_decay=100.0)) < 0.8 * adam


def test_saved_encoder_round_trip(pretrained, tmp_path):
    path = save_encoder(pretrained.encoder, tmp_path / "text_encoder.keras", "text")
    loaded = load_encoder(path)
    texts = np.array(["happy sunny day", "awful broken night"], object)
    np.testing.assert_allclose(
        loaded(texts)["vector"], pretrained.encoder(texts)["vector"], atol=1e-6
    )
    with pytest.raises(MmtaskError, match="No saved encoder"):
        load_encoder(tmp_path / "missing.keras")


def test_encoder_saved_frozen_loads_frozen(pretrained, tmp_path):
    pretrained.encoder.trainable = False
    try:
        path = save_encoder(pretrained.encoder, tmp_path / "frozen.keras", "text")
    finally:
        pretrained.encoder.trainable = True
    loaded = load_encoder(path, trainable=False)
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(loaded(inputs)["vector"]))
    assert [v.path for v in model.trainable_variables] == ["head/kernel", "head/bias"]


@pytest.mark.parametrize("trainable", [True, False])
def test_joint_model_starts_from_the_pretrained_encoder(pretrained, source, tmp_path, trainable):
    path = save_encoder(pretrained.encoder, tmp_path / "text_encoder.keras", "text")
    spec = ModelSpec(
        image_size=16,
        text_encoder=ComponentSpec("saved", {"path": str(path), "trainable": trainable}),
        image_encoder=ComponentSpec("small_cnn", {"filters": [4], "output_dim": 4}),
        fusion=ComponentSpec("concat", {"units": [8]}),
    )
    other_texts = ["zebra quantum xylophone"] * 10  # must not replace the source vocabulary
    model = build_model(spec, source.label_names, other_texts)
    text_encoder = model.encoders["text"]
    assert text_encoder.vectorizer.get_vocabulary() == (
        pretrained.encoder.vectorizer.get_vocabulary()
    )
    before = [w.copy() for w in text_encoder.get_weights()]
    for mine, theirs in zip(before, pretrained.encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)

    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = {
        "text": np.array(source.texts[:16], object),
        "image": np.random.default_rng(0).uniform(0, 255, (16, 16, 16, 3)).astype("float32"),
    }
    y = {t: source.labels[t][:16] for t in model.tasks}
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    changed = [
        not np.array_equal(a, b) for a, b in zip(before, text_encoder.get_weights(), strict=True)
    ]
    assert any(changed) == trainable

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    for task, probs in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[task], probs, atol=1e-6)
