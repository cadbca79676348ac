"""A model with a head of every type, trained on the synthetic typed manifest.

One brief training serves every test: each head beats its trivial baseline,
History, saving, `mmtask predict` and the SavedModel give each type its own
figures and outputs.
"""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmtask.cli import main
from mmtask.data import read_manifest, write_synthetic_manifest
from mmtask.export import export_saved_model
from mmtask.spec import RunSpec
from mmtask.training import train

COLUMNS = ["sentiment", "flagged", "topics", "score"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("typed")
    path = write_synthetic_manifest(folder / "typed.csv", num_posts=300, seed=0)
    posts = read_manifest(path, image_column=None, text_column="text", label_columns=COLUMNS)
    train_posts, val_posts = posts.split(0.2, seed=0)
    encoder = {"embed_dim": 32, "intermediate_dim": 32, "sequence_length": 16, "max_tokens": 200}
    spec = RunSpec.from_dict(
        {
            "model": {
                "text_encoder": {"name": "transformer", "options": encoder},
                "image_encoder": None,
                "fusion": None,
                "tasks": [{"name": c, "input": "text"} for c in COLUMNS],
            },
            "training": {"epochs": 8, "batch_size": 16, "learning_rate": 3e-3},
        }
    )
    result = train(spec, train_posts, val_posts, verbose=0)
    model_path = folder / "model.keras"
    result.model.save(model_path)
    return result, val_posts, path, model_path


def test_manifest_columns_are_read_as_their_types(trained):
    _, posts, _, _ = trained
    assert posts.label_types == {
        "sentiment": "classification",
        "flagged": "binary",
        "topics": "multilabel",
        "score": "regression",
    }
    assert posts.label_names["topics"] == ["food", "sport", "travel"]


def test_every_head_beats_its_trivial_baseline(trained):
    result, _, _, _ = trained
    tasks = result.report.tasks
    assert tasks["sentiment"].accuracy > tasks["sentiment"].majority_rate + 0.2
    assert tasks["flagged"].accuracy > tasks["flagged"].majority_rate + 0.2
    assert tasks["topics"].subset_accuracy > tasks["topics"].majority_set_rate + 0.2
    assert tasks["score"].mae < 0.6 * tasks["score"].baseline_mae
    assert tasks["score"].r2 > 0.3


def test_history_holds_each_types_metrics(trained):
    history = trained[0].history
    expected = {
        "sentiment": ["accuracy", "macro_f1"],
        "flagged": ["accuracy", "f1", "auc"],
        "topics": ["micro_f1", "macro_f1", "subset_accuracy"],
        "score": ["mae", "rmse", "r2"],
    }
    for task, metrics in expected.items():
        for name in ["loss", "loss_weight", *metrics]:
            assert f"{task}_{name}" in history and f"val_{task}_{name}" in history
    assert "score_accuracy" not in history


def test_saved_model_file_keeps_the_regression_units(trained):
    result, posts, _, model_path = trained
    loaded = keras.saving.load_model(model_path)
    x = {"text": np.asarray(posts.texts[:8], dtype=object)}
    expected = result.model.predict(x, verbose=0)
    got = loaded.predict(x, verbose=0)
    for task in COLUMNS:
        np.testing.assert_allclose(got[task], expected[task], rtol=1e-5, atol=1e-6)
    assert loaded.heads["score"].mean == result.model.heads["score"].mean
    assert loaded.label_types == result.model.label_types
    assert 40 < float(np.mean(got["score"])) < 130  # original units (50 + 20 per word)


def test_predict_writes_columns_per_type(trained, tmp_path):
    _, _, manifest, model_path = trained
    out = tmp_path / "predictions.csv"
    args = ["predict", "--model", str(model_path), "--data", str(manifest), "--image-column", ""]
    assert main([*args, "--text-column", "text", "--out", str(out), "--verbose", "0"]) == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "id",
        "sentiment_label",
        "sentiment_prob_negative",
        "sentiment_prob_neutral",
        "sentiment_prob_positive",
        "flagged_label",
        "flagged_prob_true",
        "topics_labels",
        "topics_prob_food",
        "topics_prob_sport",
        "topics_prob_travel",
        "score_value",
    ]
    assert len(rows) == 300
    assert {r["flagged_label"] for r in rows} == {"false", "true"}
    assert all(
        set(filter(None, r["topics_labels"].split("|"))) <= {"food", "sport", "travel"}
        for r in rows
    )
    assert 40 < np.mean([float(r["score_value"]) for r in rows]) < 130


def test_export_gives_each_types_outputs(trained, tmp_path):
    result, posts, _, _ = trained
    path = export_saved_model(result.model, tmp_path / "exported")
    loaded = tf.saved_model.load(str(path))  # kept: its variables die with it
    served = loaded.serve(text=tf.constant(posts.texts[:5]))
    assert sorted(served) == [
        "flagged_label",
        "flagged_probability",
        "score_value",
        "sentiment_label",
        "sentiment_probabilities",
        "topics_labels",
        "topics_probabilities",
    ]
    predicted = result.model.predict({"text": np.asarray(posts.texts[:5], object)}, verbose=0)
    np.testing.assert_allclose(served["score_value"], predicted["score"], rtol=1e-4)
    probabilities = predicted["topics"]
    decoded = [b.decode() for b in served["topics_labels"].numpy()]
    assert decoded == result.model.heads["topics"].decode(
        probabilities, ["food", "sport", "travel"]
    )
    positive = predicted["flagged"][:, 0] >= 0.5
    assert [b.decode() for b in served["flagged_label"].numpy()] == [
        "true" if p else "false" for p in positive
    ]
