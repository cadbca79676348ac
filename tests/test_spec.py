"""Specs: strict parsing from dicts, YAML and JSON; the builder and its registry errors."""

import json

import pytest

from mmtask.builder import build_model
from mmtask.errors import SpecError
from mmtask.spec import ComponentSpec, ModelSpec, RunSpec, TaskSpec

LABELS = {
    t: ["negative", "neutral", "positive"]
    for t in ("text_sentiment", "image_sentiment", "post_sentiment")
}
TINY = {
    "image_size": 16,
    "text_encoder": {
        "name": "transformer",
        "options": {"max_tokens": 50, "sequence_length": 4, "embed_dim": 8, "intermediate_dim": 8},
    },
    "image_encoder": {"name": "small_cnn", "options": {"filters": [4], "output_dim": 4}},
    "fusion": {"name": "concat", "options": {"units": [4]}},
}


def test_default_tasks_come_from_the_data():
    spec = ModelSpec()
    assert spec.tasks is None and spec.fusion.name == "concat"
    mvsa = spec.with_tasks_for(["text_sentiment", "image_sentiment", "post_sentiment"])
    assert [(t.name, t.input) for t in mvsa.tasks] == [
        ("text_sentiment", "text"),
        ("image_sentiment", "image"),
        ("post_sentiment", "fused"),
    ]
    other = spec.with_tasks_for(["mood", "topic"])
    assert [(t.name, t.input) for t in other.tasks] == [("mood", "fused"), ("topic", "fused")]
    given = ModelSpec(tasks=[TaskSpec("mood", input="text")])
    assert given.with_tasks_for(["mood", "topic"]) is given


def test_from_dict_builds_nested_specs():
    spec = RunSpec.from_dict(
        {
            "model": {"tasks": [{"name": "a", "input": "text", "weight": 2.0}], "fusion": "concat"},
            "training": {"epochs": 2},
        }
    )
    assert spec.model.tasks == [TaskSpec("a", input="text", weight=2.0)]
    assert spec.model.fusion == ComponentSpec("concat")
    assert spec.training.epochs == 2


@pytest.mark.parametrize(
    "data, message",
    [
        ({"model": {"fusoin": "concat"}}, r"Unknown key\(s\) \['fusoin'\] in `spec.model`"),
        ({"model": {"tasks": [{"name": "a", "wieght": 1}]}}, r"spec.model.tasks\[0\]"),
        ({"training": {"epochs": 1, "lr": 0.1}}, r"\['lr'\]"),
        ({"model": {"tasks": "text"}}, "must be a list"),
    ],
)
def test_unknown_keys_are_errors(data, message):
    with pytest.raises(SpecError, match=message):
        RunSpec.from_dict(data)


def test_yaml_and_json_files_agree(tmp_path):
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text(
        "model:\n  image_size: 32\n  tasks:\n    - name: post_sentiment\n      weight: 0.5\n"
        "training:\n  epochs: 3\n"
    )
    json_path = tmp_path / "run.json"
    json_path.write_text(
        json.dumps(
            {
                "model": {"image_size": 32, "tasks": [{"name": "post_sentiment", "weight": 0.5}]},
                "training": {"epochs": 3},
            }
        )
    )
    from_yaml = RunSpec.from_file(yaml_path)
    assert from_yaml == RunSpec.from_file(json_path)
    assert from_yaml.model.image_size == 32 and from_yaml.training.epochs == 3
    # A saved spec loads back equal.
    saved = tmp_path / "saved.json"
    from_yaml.save(saved)
    assert RunSpec.from_file(saved) == from_yaml


def test_bad_spec_files(tmp_path):
    with pytest.raises(SpecError, match="not found"):
        RunSpec.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(SpecError, match="Could not parse"):
        RunSpec.from_file(bad)
    txt = tmp_path / "spec.txt"
    txt.write_text("{}")
    with pytest.raises(SpecError, match=".yaml, .yml or .json"):
        RunSpec.from_file(txt)


def test_build_model_from_spec_wires_tasks_and_weights():
    spec = ModelSpec.from_dict(
        {
            **TINY,
            "tasks": [
                {"name": "text_sentiment", "input": "text", "weight": 0.5},
                {"name": "post_sentiment", "input": "fused", "hidden_units": [4]},
            ],
        }
    )
    model = build_model(spec, LABELS, train_texts=["good day", "bad night"])
    assert model.tasks == ["text_sentiment", "post_sentiment"]
    assert model.task_inputs == {"text_sentiment": "text", "post_sentiment": "fused"}
    assert model.weighting.effective_weights() == {"text_sentiment": 0.5, "post_sentiment": 1.0}
    assert model.image_size == (16, 16)
    # The vocabulary was adapted on the training texts.
    assert "good" in model.encoders["text"].vectorizer.get_vocabulary()


def test_unknown_component_name_lists_choices():
    spec = ModelSpec.from_dict({**TINY, "fusion": "attention_typo"})
    with pytest.raises(
        SpecError, match=r"expected one of \[.*'concat'.*\].*fusion='attention_typo'"
    ):
        build_model(spec, LABELS, train_texts=["x"])


def test_unknown_component_option_is_an_error():
    spec = ModelSpec.from_dict({**TINY, "fusion": {"name": "concat", "options": {"unit": [4]}}})
    with pytest.raises(SpecError, match="Invalid options for fusion 'concat'"):
        build_model(spec, LABELS, train_texts=["x"])


def test_task_without_labels_in_data():
    spec = ModelSpec.from_dict({**TINY, "tasks": [{"name": "humour"}]})
    with pytest.raises(SpecError, match=r"\['humour'\] of the spec have no labels"):
        build_model(spec, LABELS, train_texts=["x"])


def test_bad_task_input():
    spec = ModelSpec.from_dict({**TINY, "tasks": [{"name": "post_sentiment", "input": "audio"}]})
    with pytest.raises(SpecError, match="Invalid input for task 'post_sentiment'"):
        build_model(spec, LABELS, train_texts=["x"])


def test_task_type_comes_from_the_spec_or_the_data():
    import numpy as np

    from mmtask.heads import BinaryHead, ClassificationHead, RegressionHead

    spec = ModelSpec.from_dict(
        {
            "image_encoder": None,
            "fusion": None,
            "tasks": [
                {"name": "a", "input": "text"},
                {"name": "b", "input": "text", "type": "binary", "options": {"threshold": 0.3}},
                {"name": "c", "input": "text"},
            ],
        }
    )
    names = {"a": ["x", "y"], "b": ["no", "yes"], "c": ["c"]}
    model = build_model(
        spec,
        names,
        train_texts=["x y"],
        label_types={"c": "regression"},
        train_labels={"c": np.array([[1.0], [3.0]])},
    )
    assert [type(model.heads[t]) for t in "abc"] == [ClassificationHead, BinaryHead, RegressionHead]
    assert model.heads["b"].threshold == 0.3 and model.heads["c"].mean == [2.0]
    with pytest.raises(SpecError, match="a regression head reads value labels.*classification"):
        bad = ModelSpec.from_dict(
            {**spec.to_dict(), "tasks": [{"name": "a", "type": "regression"}]}
        )
        build_model(bad, names, train_texts=["x"], label_types={"a": "classification"})
    with pytest.raises(SpecError, match="Invalid value for `type`"):
        bad = ModelSpec.from_dict({**spec.to_dict(), "tasks": [{"name": "a", "type": "ordinal"}]})
        build_model(bad, names, train_texts=["x"])
