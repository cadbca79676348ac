"""Every head type: its contract (masked loss, gradients, config) and what only it does."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmtask.heads  # noqa: F401  (registers the head types)
from mmtask.data.posts import LABEL_FORMS
from mmtask.heads import BinaryHead, ClassificationHead, MultiLabelHead, RegressionHead
from mmtask.registry import HEADS

# Head type -> (a head, labels of 6 posts: the last two missing, other labels for them).
CASES = {
    "classification": (
        lambda: ClassificationHead(3, hidden_units=(4,), name="t"),
        np.array([0, 2, 1, 1, -1, -1]),
        np.array([0, 2, 1, 1, 2, 0]),
    ),
    "binary": (
        lambda: BinaryHead(hidden_units=(4,), name="t"),
        np.array([0, 1, 1, 0, -1, -1]),
        np.array([0, 1, 1, 0, 1, 0]),
    ),
    "multilabel": (
        lambda: MultiLabelHead(3, hidden_units=(4,), name="t"),
        np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0], [-1, -1, -1], [-1, -1, -1]]),
        np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]),
    ),
    "regression": (
        lambda: RegressionHead(mean=[10.0, -2.0], std=[5.0, 0.5], hidden_units=(4,), name="t"),
        np.array(
            [[12.0, -2.0], [3.0, -1.5], [10.0, -3.0], [20.0, -2.2], [np.nan] * 2, [np.nan] * 2]
        ),
        np.array([[12.0, -2.0], [3.0, -1.5], [10.0, -3.0], [20.0, -2.2], [99.0, 9.0], [0.0, 0.0]]),
    ),
}
INPUTS = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")


def test_registry_names_the_label_types_of_the_data():
    assert HEADS.names() == sorted(LABEL_FORMS)
    for name in HEADS.names():
        assert HEADS.get(name).task_type == name
        assert HEADS.get(name).label_form == LABEL_FORMS[name]


def masked_loss(head, labels):
    labels, mask = head.labels_and_mask(labels)
    return float(head.masked_loss(labels, mask, head(INPUTS)))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_missing_labels_add_nothing_and_the_mean_is_over_labelled_posts(kind):
    make, labels, filled = CASES[kind]
    head = make()
    loss = masked_loss(head, labels)
    # The mean over the 4 labelled posts alone: as if the missing ones were not there.
    labelled, mask = head.labels_and_mask(labels[:4])
    alone = float(head.masked_loss(labelled, mask, head(INPUTS[:4])))
    assert loss == pytest.approx(alone, rel=1e-5)
    # With the missing ones labelled, the loss changes (so the mask did the work).
    assert masked_loss(head, filled) != pytest.approx(loss, rel=1e-3)
    no_label, mask = head.labels_and_mask(labels[4:])
    assert float(head.masked_loss(no_label, mask, head(INPUTS[4:]))) == 0.0


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_weight_gets_a_gradient(kind):
    make, labels, _ = CASES[kind]
    head = make()
    head(INPUTS)
    with tf.GradientTape() as tape:
        labelled, mask = head.labels_and_mask(labels)
        loss = head.masked_loss(labelled, mask, head(INPUTS, training=True))
    gradients = tape.gradient(loss, head.trainable_weights)
    assert len(gradients) == 4
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in gradients)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_config_round_trip_gives_the_same_outputs(kind):
    head = CASES[kind][0]()
    expected = head(INPUTS)
    restored = keras.layers.deserialize(keras.layers.serialize(head))
    restored(INPUTS)
    restored.set_weights(head.get_weights())
    np.testing.assert_allclose(restored(INPUTS), expected, rtol=1e-6)
    assert type(restored) is HEADS.get(kind)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_metrics_are_named_after_the_task_and_ignore_missing_posts(kind):
    make, labels, filled = CASES[kind]
    head = make()
    outputs = head(INPUTS)
    results = []
    for given in (labels, filled[:4]):
        metrics = head.build_metrics("t")
        prepared, mask = head.labels_and_mask(given)
        head.update_metrics(metrics, prepared, outputs[: len(given)], mask)
        results.append({name: float(m.result()) for name, m in metrics.items()})
    assert all(m.name == f"t_{name}" for name, m in head.build_metrics("t").items())
    assert results[0] == pytest.approx(results[1])


def test_regression_head_returns_original_units_and_standardises_the_loss():
    labels = np.array([[1.0], [3.0], [np.nan]])
    head = RegressionHead.from_data(["y"], labels)
    assert (head.mean, head.std) == ([2.0], [1.0])
    scaled = RegressionHead.from_data(["y"], 1000 * labels)
    inputs = INPUTS[:3]
    head(inputs)
    scaled(inputs)
    scaled.set_weights(head.get_weights())
    # The same weights predict the same standardised value: 1000x in 1000x units...
    np.testing.assert_allclose(scaled(inputs), 1000 * head(inputs), rtol=1e-5)
    # ... and the loss, on standardised values, is the same in both units.
    assert masked_loss_of(scaled, 1000 * labels, inputs) == pytest.approx(
        masked_loss_of(head, labels, inputs), rel=1e-5
    )
    zero = RegressionHead(mean=[1000.0], std=[50.0], name="z")
    zero(inputs)
    zero.set_weights([np.zeros_like(w) for w in zero.get_weights()])
    np.testing.assert_allclose(zero(inputs), 1000.0)


def masked_loss_of(head, labels, inputs):
    labels, mask = head.labels_and_mask(labels)
    return float(head.masked_loss(labels, mask, head(inputs)))


def test_huber_loss_grows_linearly_where_mse_grows_quadratically():
    def loss(kind, target):
        head = RegressionHead(mean=[0.0], std=[1.0], loss=kind, name=kind)
        head(INPUTS[:1])
        head.set_weights([np.zeros_like(w) for w in head.get_weights()])
        return masked_loss_of(head, np.array([[target]]), INPUTS[:1])

    assert loss("mse", 10.0) == pytest.approx(100.0)
    assert loss("huber", 10.0) == pytest.approx(9.5)  # 10 - 0.5 beyond delta 1
    assert loss("huber", 0.5) == pytest.approx(loss("mse", 0.5) / 2)


def test_thresholds_decide_the_decoded_labels():
    binary = BinaryHead(threshold=0.7)
    columns = binary.predict_columns("t", np.array([[0.6], [0.8]]), ["no", "yes"])
    assert columns == {"t_label": ["no", "yes"], "t_prob_yes": ["0.600000", "0.800000"]}
    multilabel = MultiLabelHead(3, threshold=0.4)
    outputs = np.array([[0.5, 0.1, 0.9], [0.2, 0.3, 0.1]])
    columns = multilabel.predict_columns("t", outputs, ["a", "b", "c"])
    assert columns["t_labels"] == ["a|c", ""]
    assert columns["t_prob_b"] == ["0.100000", "0.300000"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ClassificationHead(1), "at least 2 classes"),
        (lambda: BinaryHead(threshold=1.0), "threshold"),
        (lambda: RegressionHead(mean=[0.0], std=[0.0]), "std > 0"),
        (lambda: RegressionHead(mean=[0.0], std=[1.0], loss="l1"), "expected one of"),
        (lambda: RegressionHead.from_data(["y"], None), "training targets"),
        (lambda: BinaryHead.from_data(["a", "b", "c"]), "exactly 2 class names"),
    ],
)
def test_bad_head_options_say_what_was_expected(make, message):
    with pytest.raises(ValueError, match=message):
        make()
