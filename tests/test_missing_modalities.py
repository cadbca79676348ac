"""Posts missing a text or an image: read, batched, predicted, exported, trained for."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import TASKS, make_batch, make_model

from mmtask.data import make_dataset, read_mvsa, write_synthetic_mvsa
from mmtask.demo import demo_spec
from mmtask.errors import DataError, MmtaskError
from mmtask.evaluation import report_from_predictions
from mmtask.export import export_saved_model
from mmtask.models.presence import FillMissing, ModalityPresence
from mmtask.training import train

CHANCE = 1 / 3


def test_presence_of_texts_and_images():
    layer = ModalityPresence()
    images = np.zeros((3, 4, 4, 3), "float32")
    images[1] = np.nan
    presence = layer({"text": tf.constant(["a tweet", "", "  \n "]), "image": images})
    assert np.asarray(presence["text"]).tolist() == [1.0, 0.0, 0.0]
    assert np.asarray(presence["image"]).tolist() == [1.0, 0.0, 1.0]


def test_fill_missing_zeroes_only_non_finite_values():
    layer = FillMissing()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (3, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer(images)), images)
    images[1] = np.nan
    images[2, 0, 0, 0] = np.inf
    filled = np.asarray(layer(images))
    assert not filled[1].any() and filled[2, 0, 0, 0] == 0.0
    np.testing.assert_array_equal(filled[0], images[0])
    np.testing.assert_array_equal(filled[2].ravel()[1:], images[2].ravel()[1:])
    # The same inside a traced function, where the branch is taken on the batch.
    np.testing.assert_array_equal(np.asarray(tf.function(layer)(images)), filled)
    # Values keep their dtype under mixed precision, as before the layer existed.
    assert FillMissing(dtype="mixed_bfloat16")(images).dtype == tf.float32


def test_modality_dropout_hides_one_modality_never_both():
    layer = ModalityPresence(dropout=0.3, seed=1)
    n = 20000
    texts = tf.constant(["x"] * (n - 100) + [""] * 100)
    images = np.zeros((n, 1, 1, 3), "float32")
    presence = {
        m: np.asarray(p) for m, p in layer({"text": texts, "image": images}, training=True).items()
    }
    both = slice(0, n - 100)
    hidden_text = 1 - presence["text"][both]
    hidden_image = 1 - presence["image"][both]
    assert 0.28 < hidden_text.mean() < 0.32 and 0.28 < hidden_image.mean() < 0.32
    assert not (hidden_text * hidden_image).any()
    # A post that has only its image keeps it.
    assert presence["image"][n - 100 :].all() and not presence["text"][n - 100 :].any()
    # No dropout outside training.
    inference = layer({"text": texts, "image": images}, training=False)
    assert np.asarray(inference["image"]).all()
    with pytest.raises(ValueError, match=r"\[0, 0.5\]"):
        ModalityPresence(dropout=0.6)


def test_missing_image_leaves_the_text_head_alone():
    model = make_model()
    x, _ = make_batch(6)
    without_image = dict(x, image=np.full_like(x["image"], np.nan))
    full = model.predict(x, verbose=0)
    partial = model.predict(without_image, verbose=0)
    np.testing.assert_allclose(partial["text_task"], full["text_task"], atol=1e-6)
    for task in TASKS:
        assert np.isfinite(partial[task]).all()
    assert not np.allclose(partial["post_task"], full["post_task"], atol=1e-4)


def test_readers_keep_posts_without_a_modality_when_allowed(tmp_path):
    root = write_synthetic_mvsa(tmp_path / "mvsa", num_posts=20, seed=0)
    (root / "data" / "3.jpg").unlink()
    (root / "data" / "5.txt").unlink()
    with pytest.raises(DataError):
        read_mvsa(root)
    posts = read_mvsa(root, allow_missing=["image", "text"])
    assert len(posts) == 20
    assert posts.image_paths[posts.ids.index("3")] == ""
    assert posts.texts[posts.ids.index("5")] == ""
    assert posts.report.missing == {"image": ["3"], "text": ["5"]}
    assert "kept without image [3]" in posts.report.summary()
    features, _, _ = next(iter(make_dataset(posts, image_size=8, batch_size=20)))
    assert np.isnan(features["image"].numpy()[posts.ids.index("3")]).all()
    assert features["text"].numpy()[posts.ids.index("5")] == b""
    (root / "data" / "5.jpg").unlink()  # post 5 now has neither
    with pytest.raises(DataError, match="text file of post 5"):
        read_mvsa(root, allow_missing=["image", "text"])
    with pytest.raises(MmtaskError, match="allow_missing"):
        read_mvsa(root, allow_missing=["audio"])


SERVE = r"""
import json, sys
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
jpeg = open(sys.argv[2], "rb").read()
out = served.serve(text=tf.constant(["good sun", "good sun", ""]),
                   image_bytes=tf.constant([jpeg, b"", jpeg]))
print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if k.endswith("probabilities")}))
"""


def test_export_serves_posts_with_a_missing_modality(tmp_path):
    model = make_model(image_size=16)
    path = export_saved_model(model, tmp_path / "exported")
    jpeg = tmp_path / "x.jpg"
    jpeg.write_bytes(tf.io.encode_jpeg(np.full((16, 16, 3), 120, np.uint8)).numpy())
    completed = subprocess.run(
        [sys.executable, "-c", SERVE, str(path), str(jpeg)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    served = {
        k: np.array(v) for k, v in json.loads(completed.stdout.strip().splitlines()[-1]).items()
    }
    for probabilities in served.values():
        assert np.isfinite(probabilities).all()
    # Post 1 lacks its image: its text head equals post 0's, which has it.
    np.testing.assert_allclose(
        served["text_task_probabilities"][1], served["text_task_probabilities"][0], atol=1e-6
    )
    assert not np.allclose(
        served["post_task_probabilities"][1], served["post_task_probabilities"][0], atol=1e-4
    )


@pytest.fixture(scope="module")
def trained_with_dropout(tmp_path_factory):
    root = write_synthetic_mvsa(tmp_path_factory.mktemp("synthetic"), num_posts=300, seed=3)
    spec = demo_spec(epochs=8)
    spec.model.modality_dropout = 0.3
    result = train(spec, read_mvsa(root, split="train"), read_mvsa(root, split="val"), verbose=0)
    return result.model, read_mvsa(root, split="val")


@pytest.mark.parametrize("removed", ["image", "text"])
def test_post_head_beats_chance_with_one_modality_removed(trained_with_dropout, removed):
    model, val_posts = trained_with_dropout
    features, _, _ = next(iter(make_dataset(val_posts, model=model, batch_size=len(val_posts))))
    if removed == "image":
        features["image"] = tf.fill(tf.shape(features["image"]), float("nan"))
    else:
        features["text"] = tf.fill(tf.shape(features["text"]), "")
    probabilities = model.predict(tf.data.Dataset.from_tensors(features), verbose=0)
    report = report_from_predictions(probabilities, val_posts.labels, val_posts.label_names)
    assert report.tasks["post_sentiment"].accuracy > CHANCE + 0.1
    kept = "text_sentiment" if removed == "image" else "image_sentiment"
    assert report.tasks[kept].accuracy > CHANCE + 0.25


def test_spec_rejects_too_much_modality_dropout():
    from mmtask.builder import build_model
    from mmtask.errors import SpecError
    from mmtask.spec import ModelSpec

    spec = ModelSpec.from_dict({"modality_dropout": 0.7, "image_size": 16})
    with pytest.raises((SpecError, ValueError), match="modality_dropout"):
        build_model(spec, {"post_sentiment": ["a", "b"]}, train_texts=["x"])
