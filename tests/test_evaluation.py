"""Evaluation reports: metrics checked against values worked out by hand."""

import json

import numpy as np
import pytest

from mmtask.evaluation import classification_report, report_from_predictions

NAMES = ["neg", "neu", "pos"]


def test_classification_report_by_hand():
    labels = [0, 0, 1, 2, 2, 2]
    predicted = [0, 1, 1, 2, 2, 0]
    report = classification_report("t", labels, predicted, NAMES)
    assert report.confusion == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert report.count == 6
    assert report.accuracy == pytest.approx(4 / 6)
    # Per class F1: neg 2*1/(2+2)=0.5, neu 2*1/(1+2)=2/3, pos 2*2/(3+2)=0.8
    assert report.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert report.weighted_f1 == pytest.approx((2 * 0.5 + 1 * 2 / 3 + 3 * 0.8) / 6)


def test_majority_rate_is_the_share_of_the_most_frequent_labelled_class(tmp_path):
    # Labelled: three pos, one neg (the unlabelled -1s are left out): 3 / 4.
    labels = {"a": np.array([2, -1, 2, 0, -1, 2])}
    probabilities = {"a": np.tile([0.8, 0.1, 0.1], (6, 1))}  # always predicts neg
    report = report_from_predictions(probabilities, labels, {"a": NAMES})
    assert report.tasks["a"].majority_rate == 0.75
    assert report.tasks["a"].accuracy == 0.25
    report.save(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["a"]["majority_rate"] == 0.75
    header, row = report.table().splitlines()[:2]
    assert header.split()[:4] == ["task", "n", "majority", "accuracy"]
    assert row.split()[:4] == ["a", "4", "0.7500", "0.2500"]


def test_class_never_seen_nor_predicted_counts_zero_f1():
    report = classification_report("t", [0, 0], [0, 0], NAMES)
    assert report.accuracy == 1.0
    assert report.macro_f1 == pytest.approx(1 / 3)
    assert report.weighted_f1 == 1.0


def test_report_skips_unlabelled_examples(tmp_path):
    probabilities = {"a": np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])}
    labels = {"a": np.array([0, -1, 1])}
    report = report_from_predictions(probabilities, labels, {"a": NAMES})
    assert report.tasks["a"].count == 2
    assert report.tasks["a"].accuracy == 0.5
    path = tmp_path / "report.json"
    report.save(path)
    saved = json.loads(path.read_text())
    assert saved["a"]["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    table = report.table()
    assert "a" in table and "0.5000" in table and "neu" in table


def test_saved_report_loads_back(tmp_path):
    from mmtask.evaluation import EvaluationReport

    report = report_from_predictions(
        {"a": np.array([[0.9, 0.05, 0.05], [0.2, 0.2, 0.6]])},
        {"a": np.array([0, 1])},
        {"a": NAMES},
    )
    path = tmp_path / "report.json"
    report.save(path)
    assert EvaluationReport.from_dict(json.loads(path.read_text())) == report
    broken = json.loads(path.read_text())
    broken["a"]["confusion"] = [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="Invalid confusion matrix for task 'a'"):
        EvaluationReport.from_dict(broken)


def test_modality_contributions_mask_one_input_at_a_time():
    import tensorflow as tf
    from tiny_models import make_batch, make_model

    from mmtask.evaluation import evaluate_model, modality_contributions

    model = make_model()
    x, y = make_batch(24, seed=6)
    masks = {t: np.ones(24, "float32") for t in y}
    data = tf.data.Dataset.from_tensor_slices((x, y, masks)).batch(8)
    contributions = modality_contributions(model, data)
    full = evaluate_model(model, data)
    for task, values in contributions.items():
        assert values["all"] == pytest.approx(full.tasks[task].accuracy)
    # A head that reads one modality does not see the other one masked.
    assert contributions["text_task"]["image_masked"] == contributions["text_task"]["all"]
    assert contributions["image_task"]["text_masked"] == contributions["image_task"]["all"]
    # With its own input masked it sees a constant input: one class for every post.
    text_masked = {k: v for k, v in x.items()}
    text_masked["text"] = np.array([""] * 24, object)
    predicted = model.predict(text_masked, verbose=0)["text_task"].argmax(-1)
    assert len(set(predicted.tolist())) == 1
    expected = float((y["text_task"] == predicted[0]).mean())
    assert contributions["text_task"]["text_masked"] == pytest.approx(expected)


def test_binary_multilabel_and_regression_reports_by_hand(tmp_path):
    from mmtask.evaluation import (
        EvaluationReport,
        binary_report,
        multilabel_report,
        regression_report,
    )

    binary = binary_report("b", [0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.8, 0.9], ["no", "yes"])
    assert binary.accuracy == pytest.approx(3 / 5) and binary.majority_rate == pytest.approx(3 / 5)
    assert binary.f1 == pytest.approx(2 * 2 / (3 + 3))  # tp 2, 3 positives, 3 predicted
    assert binary.auc == pytest.approx(5 / 6)  # 5 of the 6 (positive, negative) pairs ranked right
    labels = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    predicted = np.array([[1, 0], [1, 0], [0, 1], [1, 0]])
    multi = multilabel_report("m", labels, predicted, ["a", "b"])
    assert multi.subset_accuracy == 0.5 and multi.majority_set_rate == 0.5
    assert multi.micro_f1 == pytest.approx(2 * 3 / (4 + 4))
    assert multi.macro_f1 == pytest.approx((1.0 + 0.0) / 2)
    assert multi.support == [3, 1]
    regression = regression_report("r", [[1.0], [3.0]], [[2.0], [3.0]], ["r"], train_mean=[0.0])
    assert (regression.mae, regression.rmse) == (0.5, pytest.approx(np.sqrt(0.5)))
    assert regression.r2 == pytest.approx(1 - 1 / 2)
    assert (regression.baseline_mae, regression.baseline_r2) == (2.0, pytest.approx(1 - 10 / 2))
    report = EvaluationReport({"b": binary, "m": multi, "r": regression})
    report.save(tmp_path / "report.json")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [saved[t]["type"] for t in "bmr"] == ["binary", "multilabel", "regression"]
    assert EvaluationReport.from_dict(saved) == report
    header = report.table().splitlines()[0].split()
    assert header == ["task", "n", "majority", "accuracy", "f1", "auc"]
    saved["r"]["type"] = "ranking"
    with pytest.raises(ValueError, match="`type` is one of"):
        EvaluationReport.from_dict(saved)
