"""Synthetic posts -> train -> evaluate -> export -> reload in a fresh process -> predict."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mmtask.data import read_mvsa, write_synthetic_mvsa
from mmtask.demo import demo_spec
from mmtask.evaluation import classification_report
from mmtask.export import export_saved_model
from mmtask.training import train

CHANCE = 1 / 3

PREDICT_SCRIPT = r"""
import json, sys
from pathlib import Path
import tensorflow as tf
export_dir, posts_file, out_file = sys.argv[1:4]
posts = json.loads(Path(posts_file).read_text())
served = tf.saved_model.load(export_dir)
outputs = served.serve(
    text=tf.constant(posts["texts"]),
    image_bytes=tf.constant([Path(p).read_bytes() for p in posts["image_paths"]]),
)
Path(out_file).write_text(json.dumps(
    {k: v.numpy().tolist() for k, v in outputs.items() if k.endswith("_probabilities")}))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = write_synthetic_mvsa(tmp_path_factory.mktemp("synthetic"), num_posts=300, seed=1)
    train_posts = read_mvsa(root, split="train")
    val_posts = read_mvsa(root, split="val")
    result = train(demo_spec(epochs=8), train_posts, val_posts, verbose=0)
    return result, val_posts


def test_every_head_beats_chance(trained):
    result, val_posts = trained
    for task, report in result.report.tasks.items():
        assert report.count == int((val_posts.labels[task] >= 0).sum())
        assert report.accuracy > CHANCE + 0.25, (task, report.accuracy)
        assert report.macro_f1 > CHANCE + 0.2, (task, report.macro_f1)


def test_post_head_beats_single_modality_heads_on_post_label(trained):
    result, val_posts = trained
    features = {
        "text": np.array(val_posts.texts, object),
        "image": np.stack([_decode(p, result.model.image_size) for p in val_posts.image_paths]),
    }
    predictions = result.model.predict(features, verbose=0)
    post = val_posts.labels["post_sentiment"]
    keep = post >= 0
    names = val_posts.label_names["post_sentiment"]
    accuracy = {
        task: classification_report(
            task, post[keep], predictions[task].argmax(-1)[keep], names
        ).accuracy
        for task in ("text_sentiment", "image_sentiment", "post_sentiment")
    }
    assert accuracy["post_sentiment"] > accuracy["text_sentiment"] + 0.1, accuracy
    assert accuracy["post_sentiment"] > accuracy["image_sentiment"] + 0.1, accuracy


def test_export_reloaded_in_fresh_process_predicts_like_keras(trained, tmp_path):
    result, val_posts = trained
    export_dir = export_saved_model(result.model, tmp_path / "exported")
    posts_file = tmp_path / "posts.json"
    subset = list(range(12))
    posts_file.write_text(
        json.dumps(
            {
                "texts": [val_posts.texts[i] for i in subset],
                "image_paths": [val_posts.image_paths[i] for i in subset],
            }
        )
    )
    out_file = tmp_path / "out.json"
    completed = subprocess.run(
        [sys.executable, "-c", PREDICT_SCRIPT, str(export_dir), str(posts_file), str(out_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = json.loads(out_file.read_text())
    features = {
        "text": np.array([val_posts.texts[i] for i in subset], object),
        "image": np.stack(
            [_decode(val_posts.image_paths[i], result.model.image_size) for i in subset]
        ),
    }
    expected = result.model.predict(features, verbose=0)
    for task in result.model.tasks:
        np.testing.assert_allclose(served[f"{task}_probabilities"], expected[task], atol=1e-5)
        served_labels = np.argmax(served[f"{task}_probabilities"], -1)
        truth = val_posts.labels[task][subset]
        labelled = truth >= 0
        assert (served_labels[labelled] == truth[labelled]).mean() > CHANCE


def _decode(path, image_size):
    import tensorflow as tf

    from mmtask.data import decode_image

    return decode_image(tf.io.read_file(path), image_size).numpy()
