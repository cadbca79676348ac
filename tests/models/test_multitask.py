"""MultiTaskModel: masked per-task losses, weighting, metrics, compile rules, saving."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import NAMES, TASKS, make_batch, make_model

from mmtask.models import MultiTaskModel
from mmtask.weighting import StaticWeighting


def cross_entropy(probabilities, labels):
    return -np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0))


class MaskedLossTest(tf.test.TestCase):
    def test_loss_is_mean_over_labelled_examples_only(self):
        model = make_model()
        x, y = make_batch()
        y["post_task"][[0, 3, 5, 6, 7, 8, 9, 10]] = -1  # 4 of 12 labelled
        predictions = model.predict_on_batch(x)
        losses = model.task_losses(y, predictions)
        keep = y["post_task"] >= 0
        expected = cross_entropy(predictions["post_task"][keep], y["post_task"][keep]).mean()
        self.assertAllClose(losses["post_task"], expected, rtol=1e-5)
        full = cross_entropy(predictions["text_task"], y["text_task"]).mean()
        self.assertAllClose(losses["text_task"], full, rtol=1e-5)

    def test_labels_of_masked_examples_do_not_matter(self):
        model = make_model()
        x, y = make_batch()
        predictions = model.predict_on_batch(x)
        mask = np.ones(12, "float32")
        mask[:5] = 0
        other = {t: v.copy() for t, v in y.items()}
        other["image_task"][:5] = (other["image_task"][:5] + 1) % 3
        a = model.task_losses(y, predictions, {"image_task": mask})
        b = model.task_losses(other, predictions, {"image_task": mask})
        self.assertAllClose(a["image_task"], b["image_task"])
        # ... and the unmasked loss does depend on them.
        c = model.task_losses(other, predictions)
        self.assertNotAllClose(a["image_task"], c["image_task"])

    def test_negative_label_and_zero_mask_are_the_same(self):
        model = make_model()
        x, y = make_batch()
        predictions = model.predict_on_batch(x)
        with_negative = {t: v.copy() for t, v in y.items()}
        with_negative["text_task"][2:6] = -1
        mask = np.ones(12, "float32")
        mask[2:6] = 0
        a = model.task_losses(with_negative, predictions)
        b = model.task_losses(y, predictions, {"text_task": mask})
        self.assertAllClose(a["text_task"], b["text_task"])

    def test_one_sample_weight_array_applies_to_every_task(self):
        model = make_model()
        x, y = make_batch()
        predictions = model.predict_on_batch(x)
        weights = np.ones(12, "float32")
        weights[:4] = 0
        shared = model.task_losses(y, predictions, weights)
        per_task = model.task_losses(y, predictions, {t: weights for t in TASKS})
        unweighted = model.task_losses(y, predictions)
        for task in TASKS:
            self.assertAllClose(shared[task], per_task[task])
            self.assertNotAllClose(shared[task], unweighted[task])

    def test_task_without_any_label_adds_zero(self):
        model = make_model()
        x, y = make_batch()
        y["post_task"][:] = -1
        losses = model.task_losses(y, model.predict_on_batch(x))
        self.assertEqual(float(losses["post_task"]), 0.0)

    def test_total_is_weighted_sum(self):
        weights = {"text_task": 0.5, "image_task": 2.0, "post_task": 0.0}
        model = make_model(weights)
        model.compile(optimizer="sgd")
        x, y = make_batch()
        result = model.evaluate(x, y, batch_size=12, verbose=0, return_dict=True)
        expected = sum(w * result[f"{t}_loss"] for t, w in weights.items())
        self.assertAllClose(result["loss"], expected, rtol=1e-5)


def test_history_has_per_task_losses_and_metrics():
    model = make_model()
    model.compile(optimizer="adam")
    x, y = make_batch(16)
    history = model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=8, verbose=0).history
    for task in TASKS:
        for metric in ("loss", "accuracy", "macro_f1", "loss_weight"):
            assert f"{task}_{metric}" in history
            assert f"val_{task}_{metric}" in history


def test_metrics_ignore_unlabelled_examples():
    model = make_model()
    model.compile(optimizer="adam")
    x, y = make_batch(20, seed=3)
    predicted = {t: p.argmax(-1) for t, p in model.predict(x, verbose=0).items()}
    # Unlabel every example the model gets right: the masked accuracy must be 0.
    for task in TASKS:
        y[task][predicted[task] == y[task]] = -1
    result = model.evaluate(x, y, batch_size=20, verbose=0, return_dict=True)
    for task in TASKS:
        assert result[f"{task}_accuracy"] == 0.0


def test_logged_task_losses_are_those_of_the_outputs_they_are_logged_for():
    model = make_model()
    model.compile(optimizer="adam")
    x, y = make_batch(12, seed=5)
    y["text_task"][:3] = -1
    outputs = model.predict(x, verbose=0)
    keep = {task: y[task] >= 0 for task in TASKS}

    def expected(predicted, task):
        return cross_entropy(predicted[task][keep[task]], y[task][keep[task]]).mean()

    # evaluate: the losses of the step's loss are logged, masked as in training.
    result = model.evaluate(x, y, batch_size=12, verbose=0, return_dict=True)
    for task in TASKS:
        assert result[f"{task}_loss"] == pytest.approx(expected(outputs, task), rel=1e-4)
    # Losses computed for one batch of outputs are never logged for another.
    other = {task: np.roll(p, 1, axis=0) for task, p in outputs.items()}
    model.compute_loss(x, y, {task: tf.constant(p) for task, p in outputs.items()})
    model.reset_metrics()
    model.compute_metrics(x, y, {task: tf.constant(p) for task, p in other.items()})
    for task in TASKS:
        logged = float(model.task_loss_trackers[task].result())
        assert logged == pytest.approx(expected(other, task), rel=1e-4)


def test_macro_f1_matches_numpy():
    from mmtask.evaluation import classification_report

    model = make_model()
    model.compile(optimizer="adam")
    x, y = make_batch(24, seed=4)
    y["text_task"][:6] = -1
    result = model.evaluate(x, y, batch_size=24, verbose=0, return_dict=True)
    predicted = model.predict(x, verbose=0)["text_task"].argmax(-1)
    keep = y["text_task"] >= 0
    expected = classification_report("t", y["text_task"][keep], predicted[keep], NAMES)
    assert result["text_task_macro_f1"] == pytest.approx(expected.macro_f1, abs=1e-5)
    assert result["text_task_accuracy"] == pytest.approx(expected.accuracy, abs=1e-5)


def test_fit_on_dataset_with_one_sample_weight_array():
    model = make_model()
    model.compile(optimizer="adam")
    x, y = make_batch(16)
    weights = np.ones(16, "float32")
    weights[::2] = 0
    data = tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(8)
    history = model.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_training_reduces_loss():
    model = make_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = make_batch(24, seed=5)
    before = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    model.fit(x, y, epochs=40, batch_size=24, verbose=0)
    after = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    assert after < 0.8 * before


def test_compile_rejects_keras_losses():
    model = make_model()
    with pytest.raises(ValueError, match="computes its own"):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")


def test_labels_for_unknown_task_are_an_error():
    model = make_model()
    x, y = make_batch()
    y["typo_task"] = y["text_task"]
    with pytest.raises(ValueError, match="unknown tasks"):
        model.task_losses(y, model.predict_on_batch(x))


def test_fused_task_needs_fusion():
    from mmtask.heads import ClassificationHead

    good = make_model()
    with pytest.raises(ValueError, match="needs `fusion`"):
        MultiTaskModel(
            encoders=good.encoders,
            heads={"post_task": ClassificationHead(3)},
            task_inputs={"post_task": "fused"},
            label_names={"post_task": NAMES},
        )


def test_keras_file_round_trip(tmp_path):
    model = make_model()
    model.compile(optimizer="adam")
    x, y = make_batch()
    model.fit(x, y, epochs=1, batch_size=6, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode stays on
    assert isinstance(loaded, MultiTaskModel)
    assert loaded.label_names == model.label_names
    assert loaded.task_inputs == model.task_inputs
    expected = model.predict(x, verbose=0)
    actual = loaded.predict(x, verbose=0)
    for task in TASKS:
        np.testing.assert_allclose(actual[task], expected[task], atol=1e-6)
    # The loaded model is compiled and keeps training.
    loaded.fit(x, y, epochs=1, batch_size=6, verbose=0)


def test_frozen_layers_stay_frozen_after_a_keras_file_round_trip(tmp_path):
    model = make_model()
    model.encoders["text"].trainable = False
    model.compile(optimizer="adam")
    x, y = make_batch()
    model.fit(x, y, epochs=1, batch_size=6, verbose=0)
    model.save(tmp_path / "model.keras")
    with warnings.catch_warnings():
        # Keras warns when the saved optimizer state does not fit the variables.
        warnings.simplefilter("error", UserWarning)
        loaded = keras.models.load_model(tmp_path / "model.keras")
    assert [v.path for v in loaded.trainable_variables] == [
        v.path for v in model.trainable_variables
    ]
    frozen = [v.numpy() for v in loaded.encoders["text"].weights]
    loaded.fit(x, y, epochs=1, batch_size=6, verbose=0)
    for before, variable in zip(frozen, loaded.encoders["text"].weights, strict=True):
        np.testing.assert_array_equal(before, variable.numpy())


def test_text_only_model_without_fusion():
    from mmtask.encoders import TransformerTextEncoder
    from mmtask.heads import ClassificationHead

    keras.utils.set_random_seed(0)
    model = MultiTaskModel(
        encoders={
            "text": TransformerTextEncoder(
                max_tokens=16,
                sequence_length=4,
                embed_dim=8,
                intermediate_dim=8,
                vocabulary=["a", "b"],
            )
        },
        heads={"t": ClassificationHead(2)},
        task_inputs={"t": "text"},
        label_names={"t": ["no", "yes"]},
    )
    model.compile(optimizer="adam")
    history = model.fit(
        {"text": np.array(["a", "b"], object)}, {"t": np.array([0, 1])}, epochs=1, verbose=0
    ).history
    assert "t_loss" in history


class RecordingWeighting(StaticWeighting):
    def __init__(self, tasks, weights=None, **kwargs):
        super().__init__(tasks, weights, **kwargs)
        self.seen = []

    def on_epoch_end(self, epoch_losses):
        self.seen.append(dict(epoch_losses))


def test_weighting_sees_each_epochs_task_losses_and_weights_are_logged():
    base = make_model()
    weights = {"text_task": 0.25, "image_task": 1.0, "post_task": 2.0}
    weighting = RecordingWeighting(list(TASKS), weights)
    model = MultiTaskModel(
        encoders=base.encoders,
        heads=base.heads,
        task_inputs=base.task_inputs,
        label_names=base.label_names,
        fusion=base.fusion,
        weighting=weighting,
        image_size=base.image_size,
    )
    model.compile(optimizer="adam")
    x, y = make_batch(16)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history
    assert len(weighting.seen) == 2
    for epoch, seen in enumerate(weighting.seen):
        assert seen == pytest.approx({t: history[f"{t}_loss"][epoch] for t in TASKS})
    for task, weight in weights.items():
        assert history[f"{task}_loss_weight"] == pytest.approx([weight, weight])


def test_fit_on_a_dataset_does_not_warn_about_shuffle():
    model = make_model()
    model.compile(optimizer="adam")
    x, y = make_batch(8)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data, epochs=1, verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)]
