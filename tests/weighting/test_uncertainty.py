"""UncertaintyWeighting: the Kendall et al. formula, learnt log-variances, saving, selection."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmtask.errors import SpecError
from mmtask.registry import WEIGHTINGS
from mmtask.weighting import UncertaintyWeighting


def losses(**values):
    return {t: np.float32(v) for t, v in values.items()}


def test_starts_at_zero_log_variance_named_after_tasks():
    weighting = UncertaintyWeighting(["a", "b"], {"a": 3.0})
    weighting.build()
    assert [v.name for v in weighting.trainable_weights] == ["a", "b"]
    assert [float(v.numpy()) for v in weighting.trainable_weights] == [0.0, 0.0]
    # At s = 0 the weight is half the static weight.
    assert {t: float(w) for t, w in weighting.effective_weights().items()} == {"a": 1.5, "b": 0.5}


def test_total_and_weights_follow_the_formula():
    weighting = UncertaintyWeighting(["a", "b", "c"], {"a": 2.0, "b": 0.5})
    weighting.build()
    weighting.log_variances["a"].assign(0.7)
    weighting.log_variances["b"].assign(-0.3)
    total = weighting(losses(a=1.2, b=0.4, c=2.0))
    expected = (
        2.0 * (0.5 * math.exp(-0.7) * 1.2 + 0.5 * 0.7)
        + 0.5 * (0.5 * math.exp(0.3) * 0.4 + 0.5 * -0.3)
        + 1.0 * (0.5 * 2.0)
    )
    assert float(total) == pytest.approx(expected, rel=1e-6)
    weights = {t: float(w) for t, w in weighting.effective_weights().items()}
    assert weights == pytest.approx(
        {"a": 2.0 * 0.5 * math.exp(-0.7), "b": 0.5 * 0.5 * math.exp(0.3), "c": 0.5}, rel=1e-6
    )


def test_gradient_pulls_log_variance_towards_log_of_loss():
    # d total / d s = w * 0.5 * (1 - exp(-s) * L): negative (s rises) while L > exp(s).
    weighting = UncertaintyWeighting(["a", "b"], {"a": 2.0})
    weighting.build()
    weighting.log_variances["b"].assign(0.5)
    with tf.GradientTape() as tape:
        total = weighting(losses(a=3.0, b=0.2))
    grad_a, grad_b = tape.gradient(total, [weighting.log_variances[t] for t in "ab"])
    assert float(grad_a) == pytest.approx(2.0 * 0.5 * (1 - 3.0), rel=1e-6)
    assert float(grad_b) == pytest.approx(0.5 * (1 - math.exp(-0.5) * 0.2), rel=1e-6)


def test_missing_or_unlabelled_task_adds_nothing():
    weighting = UncertaintyWeighting(["a", "b", "c"])
    weighting.build()
    for task in "abc":
        weighting.log_variances[task].assign(0.4)
    with tf.GradientTape() as tape:
        # "b" has no labelled example in the batch (loss 0); "c" has no labels at all.
        total = weighting(losses(a=1.5, b=0.0))
    grads = tape.gradient(total, [weighting.log_variances[t] for t in "abc"])
    assert float(total) == pytest.approx(0.5 * math.exp(-0.4) * 1.5 + 0.5 * 0.4, rel=1e-6)
    assert grads[1] is None or float(grads[1]) == 0.0
    assert grads[2] is None


def test_config_round_trip():
    weighting = UncertaintyWeighting(["a", "b"], {"b": 0.25}, name="w")
    restored = UncertaintyWeighting.from_config(weighting.get_config())
    assert restored.tasks == ["a", "b"]
    assert restored.static_weights == {"a": 1.0, "b": 0.25}
    assert restored.name == "w"
    assert isinstance(keras.layers.deserialize(keras.layers.serialize(weighting)), type(weighting))


@pytest.mark.parametrize("weights, match", [({"z": 1.0}, "unknown tasks"), ({"a": -1.0}, ">= 0")])
def test_bad_weights_are_errors(weights, match):
    with pytest.raises(ValueError, match=match):
        UncertaintyWeighting(["a", "b"], weights)


def test_selectable_by_name_in_the_registry():
    weighting = WEIGHTINGS.build("uncertainty", tasks=["a", "b"], weights={"a": 2.0})
    assert isinstance(weighting, UncertaintyWeighting)
    assert weighting.static_weights == {"a": 2.0, "b": 1.0}
    with pytest.raises(SpecError, match="unknown tasks"):
        WEIGHTINGS.build("uncertainty", tasks=["a"], weights={"b": 1.0})


def test_selectable_by_name_in_a_model_spec(build_with_weighting):
    model = build_with_weighting("uncertainty")
    assert isinstance(model.weighting, UncertaintyWeighting)
    assert model.weighting.static_weights == {"a": 0.5, "b": 1.0}
    trainable = {id(v) for v in model.trainable_variables}
    assert all(id(v) in trainable for v in model.weighting.log_variances.values())


@pytest.fixture(scope="module")
def fitted(make_image_model, color_images):
    """A model fit on a learnable task ("clean") and one with fresh random labels ("noisy")."""
    x, labels = color_images
    model = make_image_model(UncertaintyWeighting(["clean", "noisy"]))
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    n = len(labels)
    data = (
        tf.data.Dataset.from_tensors((x, {"clean": labels}))
        .repeat(60)
        .map(lambda x, y: (x, {**y, "noisy": tf.random.uniform((n,), 0, 4, tf.int32)}))
    )
    history = model.fit(data, epochs=1, shuffle=False, verbose=0).history
    return model, history


def test_noisy_task_gets_the_lower_weight(fitted):
    model, history = fitted
    # The construction worked: one task was learnt, the other stayed at chance, log(4).
    assert history["clean_loss"][-1] < 0.8 * math.log(4) < history["noisy_loss"][-1]
    log_variance = {t: float(v.numpy()) for t, v in model.weighting.log_variances.items()}
    assert log_variance["noisy"] > 0.0 > log_variance["clean"]
    weights = {t: float(w) for t, w in model.weighting.effective_weights().items()}
    assert weights["noisy"] < weights["clean"]
    # The weights logged in History are the ones the weighting applied.
    assert history["noisy_loss_weight"][-1] < history["clean_loss_weight"][-1]


def test_log_variances_train_with_the_model(fitted):
    model, _ = fitted
    trainable = {id(v) for v in model.trainable_variables}
    for variable in model.weighting.log_variances.values():
        assert id(variable) in trainable
        assert float(variable.numpy()) != 0.0  # moved from its initial value during fit


def test_keras_file_keeps_learnt_log_variances(fitted, tmp_path):
    model, _ = fitted
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.weighting, UncertaintyWeighting)
    for task, variable in model.weighting.log_variances.items():
        restored = loaded.weighting.log_variances[task]
        assert float(restored.numpy()) == float(variable.numpy())
        assert any(restored is v for v in loaded.trainable_variables)


def fitted_weights_with_a_regression_task(x, classes, regression_head):
    """Effective weights after fitting a colour classifier beside `regression_head`."""
    from mmtask.encoders import SmallCNNImageEncoder
    from mmtask.heads import ClassificationHead
    from mmtask.models import MultiTaskModel

    keras.utils.set_random_seed(0)
    weighting = UncertaintyWeighting(["colour", "amount"])
    model = MultiTaskModel(
        encoders={"image": SmallCNNImageEncoder(filters=(4,), output_dim=8, dropout=0.0)},
        heads={"colour": ClassificationHead(4, name="colour"), "amount": regression_head},
        task_inputs={"colour": "image", "amount": "image"},
        label_names={"colour": ["black", "red", "green", "blue"], "amount": ["amount"]},
        weighting=weighting,
        image_size=(8, 8),
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    rng = np.random.default_rng(1)
    amounts = (100.0 * classes + rng.normal(0, 50.0, len(classes)))[:, None].astype("float32")
    model.fit(x, {"colour": classes, "amount": amounts}, epochs=8, batch_size=16, verbose=0)
    return {t: float(w) for t, w in weighting.effective_weights().items()}, amounts


def test_balances_a_large_scale_regression_loss_against_a_cross_entropy(color_images):
    """A regression loss in large raw units gets a smaller learnt weight than a cross-entropy.

    Told mean 0 and std 1, the regression head's loss is in the target's raw
    units (a scale of ~100, squared errors of ~10^4): uncertainty weighting
    turns its weight down. Standardised with the data's own mean and std (what
    `build_model` does), the same target keeps a weight near the
    cross-entropy's.
    """
    from mmtask.heads import RegressionHead

    x, classes = color_images
    raw, amounts = fitted_weights_with_a_regression_task(
        x, classes, RegressionHead(mean=[0.0], std=[1.0], name="amount")
    )
    standardised, _ = fitted_weights_with_a_regression_task(
        x, classes, RegressionHead.from_data(["amount"], amounts, name="amount")
    )
    assert raw["amount"] < 0.6 * raw["colour"]
    assert raw["amount"] / raw["colour"] < 0.6 * standardised["amount"] / standardised["colour"]
