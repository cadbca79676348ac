"""The model code runs on Keras' JAX and PyTorch backends; TensorFlow-only features say so.

A process has one Keras backend, so `backend_checks.py` runs in a child
process per backend. jax and torch are in the `test` extra: a missing one
fails these tests rather than skipping them.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = Path(__file__).with_name("backend_checks.py")
ROOT = CHECKS.parents[2]
EXPECTED_CHECKS = {
    "masked_losses",
    "unlabelled_task_does_not_train",
    "missing_modalities",
    "train_concat_static",
    "train_gated_uncertainty",
    "train_cross_attention_dwa",
    "train_autoencoder_uncertainty",
}


@pytest.fixture(scope="module", params=["jax", "torch"])
def backend_report(request) -> dict:
    """The JSON report of `backend_checks.py` run under `KERAS_BACKEND=<param>`."""
    backend = request.param
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.run(
        [sys.executable, str(CHECKS)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
    )
    lines = child.stdout.strip().splitlines()
    assert lines, f"{backend}: no report (exit {child.returncode}):\n{child.stderr[-4000:]}"
    report = json.loads(lines[-1])
    report["returncode"] = child.returncode
    report["stderr"] = child.stderr[-4000:]
    return report


def test_model_code_runs_on_backend(backend_report):
    failed = {name: r for name, r in backend_report["checks"].items() if r != "ok"}
    assert not failed, "\n\n".join(f"{name}:\n{error}" for name, error in failed.items())
    assert set(backend_report["checks"]) == EXPECTED_CHECKS
    assert backend_report["returncode"] == 0, backend_report["stderr"]


def test_child_ran_on_the_requested_backend(backend_report, request):
    assert backend_report["backend"] == request.node.callspec.params["backend_report"]


def test_tensorflow_only_features_fail_with_a_clear_message(backend_report):
    backend = backend_report["backend"]
    errors = backend_report["tf_only"]
    assert set(errors) == {
        "string_text_encoder",
        "export_saved_model",
        "task_gradient_diagnostics",
    }
    for feature, message in errors.items():
        assert "TensorFlow-only" in message, (feature, message)
        assert "KERAS_BACKEND=tensorflow" in message, (feature, message)
    assert errors["string_text_encoder"].startswith("TransformerTextEncoder reads raw strings")
    assert f"on the {backend} backend" in errors["string_text_encoder"]
    assert errors["export_saved_model"].startswith("export_saved_model is TensorFlow-only")
