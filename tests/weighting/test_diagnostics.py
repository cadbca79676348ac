"""Per-task gradient diagnostics on the shared parameters."""

import keras
import numpy as np
import pytest
from tiny_models import NAMES, TASKS, make_batch, make_model

from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.weighting.diagnostics import TaskGradientDiagnostics


def twin_model():
    """Two fused heads with the same weights, plus the text head."""
    base = make_model(dropout=0.0)
    heads = {
        "text_task": base.heads["text_task"],
        "post_a": ClassificationHead(3, name="post_a"),
        "post_b": ClassificationHead(3, name="post_b"),
    }
    model = MultiTaskModel(
        encoders=base.encoders,
        heads=heads,
        task_inputs={"text_task": "text", "post_a": "fused", "post_b": "fused"},
        label_names={t: NAMES for t in heads},
        fusion=base.fusion,
        image_size=base.image_size,
    )
    heads["post_b"].set_weights(heads["post_a"].get_weights())
    return model


def test_identical_tasks_point_the_same_way_and_unlabelled_tasks_pull_nothing():
    model = twin_model()
    x, y = make_batch(12)
    labels = {"text_task": y["text_task"], "post_a": y["post_task"], "post_b": y["post_task"]}
    diagnostics = TaskGradientDiagnostics(x, labels)
    diagnostics.set_model(model)
    logs = diagnostics.measure()
    assert logs["grad_cosine_post_a_vs_post_b"] == pytest.approx(1.0, abs=1e-6)
    assert logs["post_a_grad_norm"] == pytest.approx(logs["post_b_grad_norm"], rel=1e-6)
    assert logs["post_a_grad_norm"] > 0
    # The text head only reaches the text encoder, so it differs from the fused heads.
    assert logs["grad_cosine_text_task_vs_post_a"] < 0.999

    unlabelled = dict(labels, post_b=np.full(12, -1))
    diagnostics = TaskGradientDiagnostics(x, unlabelled)
    diagnostics.set_model(model)
    logs = diagnostics.measure()
    assert logs["post_b_grad_norm"] == 0.0
    assert logs["grad_cosine_post_a_vs_post_b"] == 0.0


def test_logged_in_history_each_epoch():
    model = make_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = make_batch(16)
    history = model.fit(
        x, y, epochs=2, batch_size=8, verbose=0, callbacks=[TaskGradientDiagnostics(x, y)]
    ).history
    for task in TASKS:
        assert len(history[f"{task}_grad_norm"]) == 2
        assert all(v > 0 for v in history[f"{task}_grad_norm"])
    cosines = [k for k in history if k.startswith("grad_cosine_")]
    assert len(cosines) == 3
    assert all(-1.0 <= v <= 1.0 for k in cosines for v in history[k])


def test_measures_a_mix_of_task_types_with_missing_labels():
    from mmtask.heads import BinaryHead, RegressionHead

    base = make_model(dropout=0.0)
    heads = {
        "post_task": base.heads["post_task"],
        "flag": BinaryHead(name="flag"),
        "amount": RegressionHead(mean=[10.0], std=[5.0], name="amount"),
    }
    model = MultiTaskModel(
        encoders=base.encoders,
        heads=heads,
        task_inputs={"post_task": "fused", "flag": "fused", "amount": "fused"},
        label_names={"post_task": NAMES, "flag": ["no", "yes"], "amount": ["amount"]},
        fusion=base.fusion,
        image_size=base.image_size,
    )
    x, y = make_batch(12)
    rng = np.random.default_rng(0)
    amounts = rng.normal(10.0, 5.0, (12, 1)).astype("float32")
    labels = {
        "post_task": y["post_task"],
        "flag": rng.integers(0, 2, 12).astype("int32"),
        "amount": amounts,
    }
    diagnostics = TaskGradientDiagnostics(x, labels)
    diagnostics.set_model(model)
    logs = diagnostics.measure()
    for task in heads:
        assert np.isfinite(logs[f"{task}_grad_norm"]) and logs[f"{task}_grad_norm"] > 0, task
    assert -1.0 <= logs["grad_cosine_flag_vs_amount"] <= 1.0
    # A regression task whose every target is missing (NaN) pulls nothing.
    diagnostics = TaskGradientDiagnostics(x, dict(labels, amount=np.full((12, 1), np.nan, "f4")))
    diagnostics.set_model(model)
    logs = diagnostics.measure()
    assert logs["amount_grad_norm"] == 0.0 and logs["post_task_grad_norm"] > 0
