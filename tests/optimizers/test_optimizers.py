"""Optimizers a run spec chooses: AdamW that decays only kernels, warm-up then decay, clipping."""

import math

import keras
import numpy as np
import pytest

from mmtask import RunSpec
from mmtask.errors import SpecError
from mmtask.optimizers import KernelDecayAdamW, WarmupDecay, build_optimizer
from mmtask.spec import OptimizerSpec
from mmtask.transfer import DiscriminativeOptimizer


def rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_warmup_rises_linearly_then_cosine_decays_to_the_floor():
    schedule = WarmupDecay(1.0, total_steps=14, warmup_steps=4, decay="cosine", floor=0.1)
    assert [round(rate(schedule, s), 6) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert rate(schedule, 4) == pytest.approx(1.0)
    # Half-way through the 10 decay steps the cosine is at the middle of [floor, peak].
    assert rate(schedule, 9) == pytest.approx(0.1 + 0.9 * 0.5)
    assert rate(schedule, 14) == pytest.approx(0.1)
    assert rate(schedule, 100) == pytest.approx(0.1)


def test_linear_and_constant_shapes_and_round_trip():
    linear = WarmupDecay(2.0, total_steps=10, warmup_steps=0, decay="linear")
    assert [rate(linear, s) for s in (0, 5, 10)] == pytest.approx([2.0, 1.0, 0.0])
    constant = WarmupDecay(2.0, total_steps=10, warmup_steps=2, decay="none")
    assert [rate(constant, s) for s in (0, 1, 2, 9)] == pytest.approx([1.0, 2.0, 2.0, 2.0])
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(linear))
    assert isinstance(again, WarmupDecay)
    assert rate(again, 5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="`decay` must be one of"):
        WarmupDecay(1.0, 10, decay="step")
    with pytest.raises(ValueError, match="warmup_steps <= total_steps"):
        WarmupDecay(1.0, 10, warmup_steps=11)


def decay_one_step(optimizer):
    """Variables of a Dense + LayerNormalization model after one step with zero gradients."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.LayerNormalization()]
    )
    for variable in model.trainable_variables:
        variable.assign(np.ones(variable.shape, "float32"))
    optimizer.build(model.trainable_variables)
    zeros = [np.zeros(v.shape, "float32") for v in model.trainable_variables]
    optimizer.apply(zeros, model.trainable_variables)
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "fine_tuning_wrapper"])
def test_adamw_decays_kernels_only(wrapped):
    optimizer = KernelDecayAdamW(learning_rate=0.1, weight_decay=0.5)
    if wrapped:
        optimizer = DiscriminativeOptimizer(optimizer)
    after = decay_one_step(optimizer)
    kernel = next(v for p, v in after.items() if p.endswith("/kernel"))
    np.testing.assert_allclose(kernel, 1 - 0.1 * 0.5)
    for path, value in after.items():
        if not path.endswith("kernel"):
            np.testing.assert_array_equal(value, 1.0, err_msg=path)
    # Keras' own AdamW would decay the bias and the normalisation weights too.
    plain = decay_one_step(keras.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5))
    assert any(not p.endswith("kernel") and not np.all(v == 1) for p, v in plain.items())


def test_adamw_rule_survives_its_config():
    optimizer = KernelDecayAdamW(learning_rate=0.1, weight_decay=0.5)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again) is KernelDecayAdamW
    after = decay_one_step(again)
    assert all(np.all(v == 1) for p, v in after.items() if not p.endswith("kernel"))


def test_build_optimizer_from_spec():
    default = build_optimizer(OptimizerSpec(), 1e-3, epochs=3, steps_per_epoch=5)
    assert type(default) is keras.optimizers.Adam
    assert float(default.learning_rate) == pytest.approx(1e-3)
    assert default.global_clipnorm is None

    spec = OptimizerSpec(
        name="adamw", weight_decay=0.05, clipnorm=1.0, warmup_epochs=0.5, decay="cosine"
    )
    optimizer = build_optimizer(spec, 1e-3, epochs=4, steps_per_epoch=10)
    assert type(optimizer) is KernelDecayAdamW
    assert optimizer.weight_decay == pytest.approx(0.05)
    assert optimizer.global_clipnorm == pytest.approx(1.0)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupDecay)
    assert (schedule.total_steps, schedule.warmup_steps) == (40, math.ceil(0.5 * 10))
    assert rate(schedule, 4) == pytest.approx(1e-3)


def test_optimizer_spec_is_checked_and_read_from_a_run_spec():
    spec = RunSpec.from_dict(
        {"training": {"optimizer": {"name": "adamw", "warmup_epochs": 1, "decay": "linear"}}}
    )
    assert spec.training.optimizer == OptimizerSpec(name="adamw", warmup_epochs=1, decay="linear")
    assert RunSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="applies to name: adamw"):
        RunSpec.from_dict({"training": {"optimizer": {"weight_decay": 0.1}}})
    with pytest.raises(SpecError, match="Unknown key"):
        RunSpec.from_dict({"training": {"optimizer": {"lr": 0.1}}})
    with pytest.raises(SpecError, match="`name` must be one of"):
        RunSpec.from_dict({"training": {"optimizer": {"name": "sgd"}}})
