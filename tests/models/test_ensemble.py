"""Seed ensembles and test-time augmentation: one averaging model that saves and exports."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import NAMES, TASKS, make_batch, make_model

from mmtask.evaluation import evaluate_model
from mmtask.export import export_saved_model
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskEnsemble, MultiTaskModel

SIZE = 16


@pytest.fixture(scope="module")
def members():
    return [make_model(seed=seed, image_size=SIZE) for seed in (0, 1)]


@pytest.fixture(scope="module")
def batch():
    x, labels = make_batch(n=6, image_size=SIZE)
    return x, labels


def predict(model, x):
    return {t: np.asarray(v) for t, v in model.predict_on_batch(x).items()}


def test_outputs_are_the_mean_over_members_and_views(members, batch):
    x, _ = batch
    first, second = (predict(m, x) for m in members)
    ensemble = MultiTaskEnsemble(members)
    for task, value in predict(ensemble, x).items():
        np.testing.assert_allclose(value, (first[task] + second[task]) / 2, atol=1e-6)

    flipped = dict(x, image=x["image"][:, :, ::-1, :].copy())
    tta = MultiTaskEnsemble(members[:1], image_views=["original", "flip"])
    seen_flipped = predict(members[0], flipped)
    for task, value in predict(tta, x).items():
        np.testing.assert_allclose(value, (first[task] + seen_flipped[task]) / 2, atol=1e-6)
    # The text head never reads the image, so flipping leaves it alone.
    np.testing.assert_allclose(predict(tta, x)["text_task"], first["text_task"], atol=1e-6)


def test_crop_view_changes_what_the_image_head_sees(members, batch):
    x, _ = batch
    cropped = predict(MultiTaskEnsemble(members[:1], image_views=["crop"]), x)
    plain = predict(members[0], x)
    assert not np.allclose(cropped["image_task"], plain["image_task"])
    # Cropping a constant image changes nothing.
    flat = dict(x, image=np.full_like(x["image"], 100.0))
    np.testing.assert_allclose(
        predict(MultiTaskEnsemble(members[:1], image_views=["crop"]), flat)["image_task"],
        predict(members[0], flat)["image_task"],
        atol=1e-5,
    )


def test_round_trip_and_export(members, batch, tmp_path):
    x, _ = batch
    ensemble = MultiTaskEnsemble(members, image_views=["original", "flip"])
    expected = predict(ensemble, x)
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    assert isinstance(loaded, MultiTaskEnsemble)
    assert loaded.image_views == ["original", "flip"]
    for task, value in predict(loaded, x).items():
        np.testing.assert_allclose(value, expected[task], atol=1e-6)

    images = [
        tf.io.encode_png(np.random.default_rng(i).integers(0, 256, (SIZE, SIZE, 3), np.uint8))
        for i in range(2)
    ]
    texts = ["good sun", "bad rain"]
    served = tf.saved_model.load(str(export_saved_model(ensemble, tmp_path / "export")))
    outputs = served.serve(text=tf.constant(texts), image_bytes=tf.stack(images))
    decoded = np.stack([tf.io.decode_png(b).numpy().astype("float32") for b in images])
    direct = predict(ensemble, {"text": np.array(texts, object), "image": decoded})
    for task in TASKS:
        np.testing.assert_allclose(
            outputs[f"{task}_probabilities"].numpy(), direct[task], atol=1e-5
        )


def test_evaluates_with_the_heads_of_its_members(members, batch):
    x, labels = batch
    data = tf.data.Dataset.from_tensor_slices(
        (x, labels, {t: np.ones(6, "float32") for t in TASKS})
    ).batch(3)
    report = evaluate_model(MultiTaskEnsemble(members), data)
    mean = predict(MultiTaskEnsemble(members), x)
    for task in TASKS:
        accuracy = float(np.mean(mean[task].argmax(-1) == labels[task]))
        assert report.tasks[task].accuracy == pytest.approx(accuracy)


def test_members_must_agree(members):
    other = MultiTaskModel(
        encoders={"text": members[0].encoders["text"]},
        fusion=None,
        heads={"text_task": ClassificationHead(3)},
        task_inputs={"text_task": "text"},
        label_names={"text_task": NAMES},
        image_size=(SIZE, SIZE),
    )
    with pytest.raises(ValueError, match="must agree on tasks"):
        MultiTaskEnsemble([members[0], other])
    with pytest.raises(ValueError, match="at least one member"):
        MultiTaskEnsemble([])
    with pytest.raises(ValueError, match="`image_views` must be distinct names"):
        MultiTaskEnsemble(members, image_views=["rotate"])
    with pytest.raises(ValueError, match="need an image input"):
        MultiTaskEnsemble([other], image_views=["flip"])
