"""Runs mmtask's model code on the Keras backend of this process and prints one JSON line.

A process has one Keras backend, chosen by `KERAS_BACKEND` before `keras` is
imported, so `test_backends.py` runs this script once per backend in a child
process. Inputs are in-memory NumPy arrays (no tf.data); the text modality is
precomputed token features, since raw-string text encoders are TensorFlow-only.

The JSON line holds `backend`, `checks` (name -> "ok" or the error) and
`tf_only` (TensorFlow-only feature -> the error it raised here). The exit
status is 0 only if every check passed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import keras
import numpy as np
from keras import ops

from mmtask.encoders import PrecomputedEncoder, SmallCNNImageEncoder, TransformerTextEncoder
from mmtask.errors import MmtaskError
from mmtask.export import export_saved_model
from mmtask.fusion import AutoencoderFusion, ConcatFusion, CrossAttentionFusion, GatedFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.weighting import (
    DWAWeighting,
    StaticWeighting,
    TaskGradientDiagnostics,
    UncertaintyWeighting,
)

TASKS = {"text_task": "text", "image_task": "image", "post_task": "fused"}
NAMES = ["neg", "neu", "pos"]
N, IMAGE_SIZE, TEXT_LENGTH, TEXT_DIM = 8, 16, 4, 6
FUSIONS = {
    "concat": lambda: ConcatFusion(units=(8,), dropout=0.1),
    "gated": lambda: GatedFusion(units=8),
    "cross_attention": lambda: CrossAttentionFusion(units=8, num_heads=2),
    "autoencoder": lambda: AutoencoderFusion(bottleneck_dim=8, hidden_units=8, denoising=True),
}
WEIGHTINGS = {
    "static": lambda: StaticWeighting(list(TASKS), {"text_task": 0.5, "image_task": 2.0}),
    "uncertainty": lambda: UncertaintyWeighting(list(TASKS)),
    "dwa": lambda: DWAWeighting(list(TASKS)),
}


def make_model(fusion: str = "concat", weighting: str = "static") -> MultiTaskModel:
    keras.utils.set_random_seed(0)
    return MultiTaskModel(
        encoders={
            "text": PrecomputedEncoder(TEXT_DIM, sequence_length=TEXT_LENGTH, modality="text"),
            "image": SmallCNNImageEncoder(filters=(4, 8), output_dim=8, dropout=0.1),
        },
        fusion=FUSIONS[fusion](),
        heads={t: ClassificationHead(len(NAMES), name=t) for t in TASKS},
        task_inputs=TASKS,
        label_names={t: NAMES for t in TASKS},
        weighting=WEIGHTINGS[weighting](),
        image_size=(IMAGE_SIZE, IMAGE_SIZE),
    )


def make_data(seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    x = {
        "text": rng.normal(size=(N, TEXT_LENGTH, TEXT_DIM)).astype("float32"),
        "image": rng.uniform(0, 255, (N, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32"),
    }
    y = {t: rng.integers(0, len(NAMES), N).astype("int32") for t in TASKS}
    return x, y


def predict(model, x) -> dict:
    return {t: ops.convert_to_numpy(p) for t, p in model(x, training=False).items()}


def numpy_loss(probabilities, labels) -> float:
    """Mean cross-entropy over the labelled (>= 0) examples; 0 if there are none."""
    keep = labels >= 0
    if not keep.any():
        return 0.0
    picked = probabilities[keep][np.arange(keep.sum()), labels[keep]]
    return float(-np.log(np.clip(picked, 1e-7, 1.0)).mean())


def check_masked_losses() -> None:
    """Per-task losses and the weighted total match NumPy; an unlabelled task adds 0."""
    model = make_model()
    x, y = make_data()
    y["post_task"][:] = -1
    y["text_task"][[1, 4, 6]] = -1
    predictions = predict(model, x)
    losses = model.task_losses(y, predictions)
    expected = {t: numpy_loss(predictions[t], y[t]) for t in TASKS}
    for task in TASKS:
        np.testing.assert_allclose(float(losses[task]), expected[task], rtol=1e-5)
    assert float(losses["post_task"]) == 0.0, losses["post_task"]
    total = float(model.compute_loss(x, y, predictions))
    np.testing.assert_allclose(
        total, 0.5 * expected["text_task"] + 2.0 * expected["image_task"], rtol=1e-5
    )


def check_unlabelled_task_does_not_train() -> None:
    """With SGD, a task whose labels are all missing leaves its head and the fusion untouched."""
    model = make_model()
    x, y = make_data()
    y["post_task"][:] = -1
    untouched = model.heads["post_task"].weights + model.fusion.weights
    before = [ops.convert_to_numpy(v) for v in untouched]
    trained_before = ops.convert_to_numpy(model.heads["text_task"].weights[0])
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    assert history["post_task_loss"] == [0.0], history["post_task_loss"]
    for variable, value in zip(untouched, before, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(variable), value, err_msg=variable.path)
    trained_after = ops.convert_to_numpy(model.heads["text_task"].weights[0])
    assert not np.allclose(trained_after, trained_before), "the labelled task did not train"


def check_static_weighting(model: MultiTaskModel, x: dict, y: dict) -> None:
    """`fit` logs every task's loss, accuracy, macro-F1 and static weight; `evaluate` totals."""
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history
    for task in TASKS:
        for metric in ("loss", "accuracy", "macro_f1", "loss_weight"):
            values = history[f"{task}_{metric}"]
            assert len(values) == 2 and np.all(np.isfinite(values)), (task, metric, values)
        assert 0.0 <= history[f"{task}_macro_f1"][-1] <= 1.0
    assert history["image_task_loss_weight"] == [2.0, 2.0], history["image_task_loss_weight"]
    predictions = predict(model, x)
    expected = sum(
        w * numpy_loss(predictions[t], y[t])
        for t, w in {"text_task": 0.5, "image_task": 2.0, "post_task": 1.0}.items()
    )
    results = model.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], expected, rtol=1e-4)


def check_uncertainty_weighting(model: MultiTaskModel, x: dict, y: dict) -> None:
    """The log-variances train with the model and set the logged weights."""
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history
    weighting = model.weighting
    log_variances = {t: float(ops.convert_to_numpy(v)) for t, v in weighting.log_variances.items()}
    assert all(v != 0.0 for v in log_variances.values()), log_variances
    weights = {t: float(ops.convert_to_numpy(w)) for t, w in weighting.effective_weights().items()}
    for task in TASKS:
        np.testing.assert_allclose(weights[task], 0.5 * np.exp(-log_variances[task]), rtol=1e-5)
        assert history[f"{task}_loss_weight"][-1] != 0.5, history


def check_dwa_weighting(model: MultiTaskModel, x: dict, y: dict) -> None:
    """Weights set by the epoch callback are the ones the next epoch's train steps use."""
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history
    assert history["text_task_loss_weight"] == [1.0, 1.0], history["text_task_loss_weight"]
    weights = ops.convert_to_numpy(model.weighting.task_weights)
    assert not np.allclose(weights, 1.0), weights
    np.testing.assert_allclose(weights.sum(), len(TASKS), rtol=1e-5)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    logged = [history[f"{t}_loss_weight"][0] for t in TASKS]
    np.testing.assert_allclose(logged, weights, rtol=1e-5)


WEIGHTING_CHECKS = {
    "static": check_static_weighting,
    "uncertainty": check_uncertainty_weighting,
    "dwa": check_dwa_weighting,
}


def check_training(fusion: str, weighting: str, folder: Path) -> None:
    """A fusion and a weighting train, and survive a `.keras` round trip with equal predictions."""
    model = make_model(fusion, weighting)
    x, y = make_data()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    WEIGHTING_CHECKS[weighting](model, x, y)
    history = model.history.history
    assert np.all(np.isfinite(history["loss"])), history
    if fusion == "autoencoder":
        # Logged by a metric of the layer, which Keras' JAX trainer cannot update.
        if keras.backend.backend() == "jax":
            assert "reconstruction_loss" not in history, history
        else:
            assert history["reconstruction_loss"][0] > 0, history
    path = folder / f"{fusion}_{weighting}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.fusion) is type(model.fusion)
    assert type(loaded.weighting) is type(model.weighting)
    expected, actual = predict(model, x), predict(loaded, x)
    for task in TASKS:
        np.testing.assert_allclose(actual[task], expected[task], atol=1e-6)


def check_missing_modalities() -> None:
    """NaN images and NaN text features are hidden from the fusion; outputs stay finite."""
    model = make_model()
    x, _ = make_data()
    x["image"][:2] = np.nan
    x["text"][2:4] = np.nan
    predictions = predict(model, x)
    for task in TASKS:
        assert np.all(np.isfinite(predictions[task])), task
    presence = model.get_layer("modality_presence")(x)
    np.testing.assert_array_equal(ops.convert_to_numpy(presence["image"]), [0, 0] + [1] * (N - 2))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(presence["text"]), [1, 1, 0, 0] + [1] * (N - 4)
    )


def tf_only_errors(folder: Path) -> dict[str, str]:
    """TensorFlow-only feature -> the message it raised on this backend ("" if none)."""
    features = {
        "string_text_encoder": lambda: MultiTaskModel(
            encoders={"text": TransformerTextEncoder(vocabulary=["a"])},
            heads={"t": ClassificationHead(2)},
            task_inputs={"t": "text"},
            label_names={"t": ["x", "y"]},
        ),
        "export_saved_model": lambda: export_saved_model(make_model(), folder / "export"),
        "task_gradient_diagnostics": lambda: TaskGradientDiagnostics(*make_data()),
    }
    messages = {}
    for name, feature in features.items():
        try:
            feature()
            messages[name] = ""
        except MmtaskError as error:
            messages[name] = str(error)
    return messages


# Each fusion trains with one weighting; together they cover all of both.
TRAINING = [
    ("concat", "static"),
    ("gated", "uncertainty"),
    ("cross_attention", "dwa"),
    ("autoencoder", "uncertainty"),
]


def main() -> int:
    checks = {
        "masked_losses": check_masked_losses,
        "unlabelled_task_does_not_train": check_unlabelled_task_does_not_train,
        "missing_modalities": check_missing_modalities,
    }
    results, seconds = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for fusion, weighting in TRAINING:
            checks[f"train_{fusion}_{weighting}"] = lambda f=fusion, w=weighting: check_training(
                f, w, Path(folder)
            )
        for name, check in checks.items():
            start = time.perf_counter()
            try:
                check()
                results[name] = "ok"
            except Exception:
                results[name] = traceback.format_exc(limit=-3)
            seconds[name] = round(time.perf_counter() - start, 1)
        tf_only = tf_only_errors(Path(folder)) if keras.backend.backend() != "tensorflow" else {}
    report = {
        "backend": keras.backend.backend(),
        "checks": results,
        "seconds": seconds,
        "tf_only": tf_only,
    }
    print(json.dumps(report))
    return 0 if all(r == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
