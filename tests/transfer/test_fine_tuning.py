"""FineTuning on a MultiTaskModel with a tiny pretrained-style EfficientNet backbone.

One 4-epoch run (module fixture) is checked epoch by epoch: what trains,
what stays fixed, the learning-rate multipliers, and that a run interrupted
and resumed with BackupAndRestore ends where the uninterrupted one does.
"""

import keras
import numpy as np
import pytest
from tiny_models import tiny_efficientnet_backbone

from mmtask.encoders import KerasHubImageEncoder, TransformerTextEncoder
from mmtask.fusion import ConcatFusion
from mmtask.heads import ClassificationHead
from mmtask.models import MultiTaskModel
from mmtask.transfer import (
    DiscriminativeOptimizer,
    FineTuneSchedule,
    FineTuning,
    Stage,
    layer_paths,
)

EPOCHS = 4
SCHEDULE = FineTuneSchedule(
    unit="epoch",
    stages=[
        Stage(at=0, freeze="encoders/*"),
        Stage(at=1, unfreeze="encoders/image/backbone", top_n=2, lr_multiplier=0.1),
        Stage(at=3, unfreeze="*"),
    ],
)


def tiny_backbone():
    return tiny_efficientnet_backbone()


def make_model(with_text=True):
    keras.utils.set_random_seed(0)
    # Without text, the head reads the pooled backbone features directly: a
    # 4-unit ReLU projection alone can die and stop every gradient.
    encoders = {
        "image": KerasHubImageEncoder(backbone=tiny_backbone(), output_dim=4 if with_text else None)
    }
    if with_text:
        encoders["text"] = TransformerTextEncoder(
            max_tokens=16,
            sequence_length=4,
            embed_dim=8,
            intermediate_dim=8,
            vocabulary=["a", "b", "c"],
            dropout=0.0,
        )
    return MultiTaskModel(
        encoders=encoders,
        fusion=ConcatFusion(units=(4,), dropout=0.0) if with_text else None,
        heads={"post": ClassificationHead(2, dropout=0.0)},
        task_inputs={"post": "fused" if with_text else "image"},
        label_names={"post": ["no", "yes"]},
        image_size=(16, 16),
    )


def make_data(n=8):
    rng = np.random.default_rng(0)
    x = {
        "text": np.array([" ".join(rng.choice(["a", "b", "c"], 3)) for _ in range(n)], object),
        "image": rng.uniform(0, 255, (n, 16, 16, 3)).astype("float32"),
    }
    return x, {"post": rng.integers(0, 2, n).astype("int32")}


class Recorder(keras.callbacks.Callback):
    """Every weight's value, trainable flag and multiplier, at the start and after each epoch."""

    def __init__(self):
        super().__init__()
        self.values, self.trainable, self.multipliers = [], [], []

    def record(self, model):
        self.values.append([v.numpy().copy() for v in model.weights])
        self.trainable.append([v.trainable for v in model.weights])
        optimizer = getattr(model, "optimizer", None)
        known = isinstance(optimizer, DiscriminativeOptimizer)
        self.multipliers.append(
            [optimizer.lr_multiplier(v) if known and v.trainable else None for v in model.weights]
        )

    def on_epoch_end(self, epoch, logs=None):
        self.record(self.model)


def fit(model, epochs=EPOCHS, callbacks=(), schedule=SCHEDULE, optimizer=None):
    x, y = make_data()
    x = {m: x[m] for m in model.modalities}
    model.compile(optimizer=optimizer or keras.optimizers.Adam(0.01))
    return model.fit(
        x,
        y,
        batch_size=4,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[FineTuning(schedule), *callbacks],
    )


@pytest.fixture(scope="module")
def run():
    model = make_model()
    recorder = Recorder()
    recorder.record(model)
    history = fit(model, callbacks=[recorder])
    return model, recorder, history.history


def groups(model):
    """Weight indices by role, found from the layers themselves (not from layer paths)."""
    index = {id(v): i for i, v in enumerate(model.weights)}

    def of(layers, name=None):
        return {index[id(v)] for layer in layers for v in layer.weights if name in (None, v.name)}

    backbone = model.encoders["image"].backbone
    batchnorms = [
        layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    weighted = [layer for layer in backbone.layers if layer.weights and layer not in batchnorms]
    return {
        "head_fusion": of([model.heads["post"], model.fusion]),
        "text": of([model.encoders["text"]]),
        "projection": of([model.encoders["image"].projection]),
        "backbone_top": of(weighted[-2:]),
        "backbone_lower": of(weighted[:-2]),
        "bn_statistics": of(batchnorms, "moving_mean") | of(batchnorms, "moving_variance"),
        "bn_scale_shift": of(batchnorms, "gamma") | of(batchnorms, "beta"),
    }


def changed(recorder, epoch, indices):
    """Indices among `indices` whose value changed during `epoch`."""
    before, after = recorder.values[epoch], recorder.values[epoch + 1]
    return {i for i in indices if not np.array_equal(before[i], after[i])}


def test_layer_paths_follow_the_model_structure(run):
    model = run[0]
    paths = layer_paths(model)
    backbone = model.encoders["image"].backbone
    assert paths["encoders/image/backbone"] is backbone
    assert paths["encoders/image/backbone/top_conv"] is backbone.get_layer("top_conv")
    assert paths["encoders/text/blocks/0"] is model.encoders["text"].blocks[0]
    assert paths["heads/post"] is model.heads["post"]
    assert paths["fusion"] is model.fusion


def test_frozen_weights_stay_and_unfrozen_ones_train_stage_by_stage(run):
    model, recorder, _ = run
    g = groups(model)
    assert all(g.values()), {k: len(v) for k, v in g.items()}
    trains = {
        # epoch: the groups that must change; every other group must not.
        0: {"head_fusion"},
        1: {"head_fusion", "backbone_top"},
        2: {"head_fusion", "backbone_top"},
        3: {"head_fusion", "backbone_top", "backbone_lower", "text", "projection"},
    }
    for epoch, expected in trains.items():
        for name, indices in g.items():
            moved = changed(recorder, epoch, indices)
            if name in expected:
                assert moved == indices, (epoch, name, sorted(indices - moved))
            else:
                assert not moved, (epoch, name, sorted(moved))


def test_batchnorm_stays_frozen_under_the_default_policy(run):
    model, recorder, _ = run
    g = groups(model)
    for index in g["bn_statistics"] | g["bn_scale_shift"]:
        np.testing.assert_array_equal(recorder.values[0][index], recorder.values[-1][index])
    assert not any(recorder.trainable[-1][i] for i in g["bn_scale_shift"])
    for layer in model.encoders["image"].backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable, layer.name


def test_learning_rate_multipliers_apply_to_the_unfrozen_group(run):
    model, recorder, _ = run
    g = groups(model)
    for epoch in (1, 2):  # recorder index epoch + 1: after that epoch
        multipliers = recorder.multipliers[epoch + 1]
        trainable = {i for i, m in enumerate(multipliers) if m is not None}
        assert trainable == g["head_fusion"] | g["backbone_top"]
        np.testing.assert_allclose([multipliers[i] for i in g["backbone_top"]], 0.1, rtol=1e-6)
        assert {multipliers[i] for i in g["head_fusion"]} == {1.0}
    assert {m for m in recorder.multipliers[-1] if m is not None} == {1.0}


def test_logs_trainable_parameter_counts(run):
    model, _, history = run
    g = groups(model)
    sizes = [int(np.prod(v.shape)) for v in model.weights]
    top = sum(sizes[i] for i in g["backbone_top"])
    counts = history["trainable_params"]
    assert len(counts) == EPOCHS
    assert counts[1] - counts[0] == top and counts[2] == counts[1]
    assert counts[3] == sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert counts[3] > counts[2]


def test_resumed_run_follows_the_same_schedule(run, tmp_path):
    model_a = run[0]

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("Interrupted")

    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="Interrupted"):
        fit(make_model(), callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt()])
    model_b = make_model()
    history = fit(model_b, callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert len(history.history["loss"]) == EPOCHS - 2  # resumed at epoch 2

    for a, b in zip(model_a.weights, model_b.weights, strict=True):
        assert a.trainable == b.trainable, a.path
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    for a, b in zip(layer_paths(model_a).values(), layer_paths(model_b).values(), strict=True):
        assert a.trainable == b.trainable, a.name
    for a, b in zip(model_a.optimizer.variables, model_b.optimizer.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


class BatchRecorder(keras.callbacks.Callback):
    def __init__(self, variables):
        super().__init__()
        self.variables = variables
        self.values = [[v.numpy().copy() for v in variables]]

    def on_train_batch_end(self, batch, logs=None):
        self.values.append([v.numpy().copy() for v in self.variables])


def test_step_schedule_changes_at_the_given_step():
    model = make_model(with_text=False)
    top_conv = model.encoders["image"].backbone.get_layer("top_conv")
    recorder = BatchRecorder([top_conv.kernel])
    schedule = FineTuneSchedule(
        unit="step",
        stages=[
            Stage(at=0, freeze="encoders/image/backbone"),
            Stage(at=3, unfreeze="encoders/image/backbone/top_*"),
        ],
    )
    fit(model, epochs=3, schedule=schedule, callbacks=[recorder])  # 2 steps an epoch
    steps = len(recorder.values) - 1
    moved = [
        not np.array_equal(recorder.values[s][0], recorder.values[s + 1][0]) for s in range(steps)
    ]
    assert moved == [False, False, False, True, True, True]


def test_batchnorm_trains_when_the_policy_says_so():
    model = make_model(with_text=False)
    backbone = model.encoders["image"].backbone
    batchnorms = [
        layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    statistics = [v for layer in batchnorms for v in (layer.moving_mean, layer.moving_variance)]
    recorder = BatchRecorder(statistics)
    schedule = FineTuneSchedule(
        unit="epoch",
        batchnorm="train",
        stages=[
            Stage(at=0, freeze="encoders/image/backbone"),
            Stage(at=1, unfreeze="encoders/image/backbone"),
        ],
    )
    fit(model, epochs=2, schedule=schedule, callbacks=[recorder])
    initial, after_epoch_0, final = recorder.values[0], recorder.values[2], recorder.values[-1]
    for i, variable in enumerate(statistics):
        np.testing.assert_array_equal(after_epoch_0[i], initial[i], err_msg=variable.path)
        assert not np.array_equal(final[i], initial[i]), variable.path
    assert all(layer.trainable for layer in batchnorms)


def test_works_in_a_plain_keras_fit_and_checks_its_patterns():
    def plain_model():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        hidden = keras.layers.Dense(4, name="body")(inputs)
        outputs = keras.layers.Dense(1, name="out")(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return model

    x, y = np.ones((4, 3), "float32"), np.ones((4, 1), "float32")
    model = plain_model()
    body = model.get_layer("body").kernel.numpy().copy()
    schedule = FineTuneSchedule(stages=[Stage(at=0, freeze="body")])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[FineTuning(schedule)])
    np.testing.assert_array_equal(model.get_layer("body").kernel.numpy(), body)
    assert [v.path for v in model.trainable_weights] == ["out/kernel", "out/bias"]

    with pytest.raises(ValueError, match="'encoders/\\*' of stage at 0 matches no layer"):
        FineTuning(SCHEDULE).set_model(plain_model())

    used = plain_model()
    used.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="before its first step"):
        used.fit(x, y, epochs=1, verbose=0, callbacks=[FineTuning(schedule)])


def test_layer_decay_ranks_the_matched_layers_from_the_output():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    hidden = inputs
    for i in range(3):
        hidden = keras.layers.Dense(3, name=f"block_{i}")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    schedule = FineTuneSchedule(
        stages=[
            Stage(at=0, freeze="*"),
            Stage(at=0, unfreeze="block_*", lr_multiplier=0.5, layer_decay=0.1),
            Stage(at=0, unfreeze="out"),
        ]
    )
    model.fit(
        np.ones((4, 3)), np.ones((4, 1)), epochs=1, verbose=0, callbacks=[FineTuning(schedule)]
    )
    multipliers = {v.path: model.optimizer.lr_multiplier(v) for v in model.trainable_weights}
    expected = {"out": 1.0, "block_2": 0.5, "block_1": 0.05, "block_0": 0.005}
    for path, multiplier in multipliers.items():
        assert multiplier == pytest.approx(expected[path.split("/")[0]]), path
    assert len(multipliers) == 8

    with pytest.raises(ValueError, match="`layer_decay` must be a number in"):
        Stage(at=0, unfreeze="x", layer_decay=0.0)
    with pytest.raises(ValueError, match="ranks layers to unfreeze"):
        Stage(at=0, freeze="x", layer_decay=0.5)
