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
        {"a": np.array([[0.9, 0.05, 0.05], [0.2, 0.2, 0.6]])}, {"a": np.array([0, 1])},
        {"a": NAMES},
    )
    path = tmp_path / "report.json"
    report.save(path)
    assert EvaluationReport.from_dict(json.loads(path.read_text())) == report
    broken = json.loads(path.read_text())
    broken["a"]["confusion"] = [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="Invalid confusion matrix for task 'a'"):
        EvaluationReport.from_dict(broken)
