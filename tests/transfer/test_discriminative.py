"""DiscriminativeOptimizer: per-variable learning-rate multipliers on the inner update rule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmtask.transfer import DiscriminativeOptimizer


def _variables(n, value=1.0, shape=(3,)):
    return [keras.Variable(np.full(shape, value, "float32"), name=f"v{i}") for i in range(n)]


def _step(optimizer, variables, grads):
    before = [v.numpy().copy() for v in variables]
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads], variables)
    return [v.numpy() - b for v, b in zip(variables, before, strict=True)]


def test_sgd_moves_a_variable_by_its_multiplier_times_the_learning_rate():
    variables = _variables(3)
    optimizer = DiscriminativeOptimizer(keras.optimizers.SGD(0.5))
    optimizer.build(variables)
    optimizer.set_lr_multipliers([(variables[1], 0.1), (variables[2], 3.0)])
    grad = np.array([0.2, -1.0, 4.0], "float32")
    full, tenth, triple = _step(optimizer, variables, [grad] * 3)
    np.testing.assert_allclose(full, -0.5 * grad, rtol=1e-6)
    np.testing.assert_allclose(tenth, 0.1 * full, rtol=1e-5)
    np.testing.assert_allclose(triple, 3.0 * full, rtol=1e-5)


def test_multipliers_change_inside_a_traced_step_without_retracing():
    variables = _variables(2)
    optimizer = DiscriminativeOptimizer(keras.optimizers.SGD(1.0))
    optimizer.build(variables)
    grad = keras.ops.ones((3,))

    @tf.function
    def step():
        optimizer.apply([grad, grad], variables)

    optimizer.set_lr_multipliers([(variables[1], 0.5)])
    step()
    optimizer.set_lr_multipliers([(variables[0], 0.25)])
    step()
    np.testing.assert_allclose(variables[0].numpy(), 1.0 - 1.0 - 0.25)
    np.testing.assert_allclose(variables[1].numpy(), 1.0 - 0.5 - 1.0)
    assert step.experimental_get_tracing_count() == 1


def test_adam_first_step_moves_multiplier_times_learning_rate():
    # Adam's first step is lr * sign(g) whatever the gradient's size: scaling
    # gradients would change nothing, scaling the learning rate does.
    variables = _variables(2)
    optimizer = DiscriminativeOptimizer(keras.optimizers.Adam(0.01))
    optimizer.build(variables)
    optimizer.set_lr_multipliers([(variables[1], 0.25)])
    grad = np.array([3.0, -0.5, 1e-2], "float32")
    full, quarter = _step(optimizer, variables, [grad, grad])
    np.testing.assert_allclose(np.abs(full), 0.01, rtol=1e-3)
    np.testing.assert_allclose(quarter, -0.25 * 0.01 * np.sign(grad), rtol=1e-3)


def test_updates_a_subset_and_keeps_the_inner_step_count():
    variables = _variables(2)
    inner = keras.optimizers.Adam(0.01)
    optimizer = DiscriminativeOptimizer(inner)
    optimizer.build(variables)
    grad = np.ones(3, "float32")
    first = _step(optimizer, variables[1:], [grad])
    np.testing.assert_array_equal(variables[0].numpy(), np.ones(3))
    assert np.all(first[0] != 0)
    # Adam's bias correction reads the inner step count: with a constant
    # gradient, a variable moves by exactly lr on its second step too (a
    # stale count of 1 would move it by 1.34 lr).
    both = _step(optimizer, variables, [grad, grad])
    np.testing.assert_allclose(np.abs(both[1]), 0.01, rtol=1e-3)
    assert np.all(both[0] != 0)
    assert int(optimizer.iterations.numpy()) == int(inner.iterations.numpy()) == 2


def test_weight_decay_scales_with_the_multiplier():
    variables = _variables(2, value=2.0)
    optimizer = DiscriminativeOptimizer(keras.optimizers.AdamW(0.1, weight_decay=0.5))
    optimizer.build(variables)
    optimizer.set_lr_multipliers([(variables[1], 0.1)])
    zero = np.zeros(3, "float32")  # No gradient: only the decay moves them.
    full, tenth = _step(optimizer, variables, [zero, zero])
    np.testing.assert_allclose(full, -2.0 * 0.5 * 0.1, rtol=1e-5)
    np.testing.assert_allclose(tenth, -2.0 * 0.5 * 0.1 * 0.1, rtol=1e-5)


def test_learning_rate_is_the_inner_optimizers():
    inner = keras.optimizers.SGD(0.5)
    optimizer = DiscriminativeOptimizer(inner)
    optimizer.build(_variables(1))
    optimizer.learning_rate = 0.25
    assert float(inner.learning_rate.numpy()) == pytest.approx(0.25)
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.25)


def test_config_round_trip_and_unknown_variables():
    optimizer = DiscriminativeOptimizer(keras.optimizers.Adam(0.003, clipnorm=1.0))
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, DiscriminativeOptimizer)
    assert isinstance(restored.inner_optimizer, keras.optimizers.Adam)
    assert restored.clipnorm == 1.0
    assert restored.inner_optimizer.get_config()["learning_rate"] == pytest.approx(0.003)
    restored.build(_variables(1))
    with pytest.raises(ValueError, match="Unknown variable"):
        restored.set_lr_multipliers([(_variables(1)[0], 0.5)])


def test_rejects_unsupported_inner_settings():
    with pytest.raises(ValueError, match="use_ema"):
        DiscriminativeOptimizer(keras.optimizers.Adam(use_ema=True))
    with pytest.raises(ValueError, match="takes none of its own"):
        DiscriminativeOptimizer(keras.optimizers.Adam(), clipnorm=1.0)
    built = keras.optimizers.Adam()
    built.build(_variables(1))
    with pytest.raises(ValueError, match="must not be built"):
        DiscriminativeOptimizer(built)
