"""One check for every mmtask layer: shape, config round trip, serialization, gradient flow.

New encoders, fusion modules and heads call `run_layer_test` from their test,
so each component's own test can stay short and assert its behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf


def run_layer_test(
    layer_cls: type,
    init_kwargs: Mapping,
    input_data,
    expected_output_shape: tuple,
    expect_all_gradients: bool = True,
    no_gradient_expected: Sequence[str] = (),
    seed: int = 0,
) -> keras.layers.Layer:
    """Check a layer class the way every mmtask component must behave.

    - called on `input_data`, the output has `expected_output_shape`;
    - `from_config(get_config())` gives the same config;
    - `keras.layers.serialize` / `deserialize` with copied weights gives the same output;
    - every trainable weight receives a non-zero gradient from the output
      (when `expect_all_gradients`), except weights whose path contains one of
      `no_gradient_expected` (parts of a backbone the layer does not use).

    Weights are initialised from a fixed seed, so the check is deterministic.
    Returns the layer built by the check.
    """
    keras.utils.set_random_seed(seed)
    layer = layer_cls(**init_kwargs)
    output = layer(input_data, training=False)
    actual_shape = tuple(keras.ops.shape(output))
    if actual_shape != tuple(expected_output_shape):
        raise AssertionError(
            f"{layer_cls.__name__} output shape: expected {expected_output_shape}, "
            f"got {actual_shape}"
        )

    config = layer.get_config()
    rebuilt_config = layer_cls.from_config(config).get_config()
    if rebuilt_config != config:
        raise AssertionError(
            f"{layer_cls.__name__} config does not round-trip:\n{config}\n!=\n{rebuilt_config}"
        )

    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    clone(input_data, training=False)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(clone(input_data, training=False)),
        keras.ops.convert_to_numpy(output),
        atol=1e-6,
        err_msg=f"{layer_cls.__name__} gives other outputs after serialization",
    )

    if expect_all_gradients:
        # A fixed random projection of the output: no weight can escape it the
        # way a bias escapes a shift-invariant target or softmax escapes a sum.
        projection = np.random.default_rng(seed).normal(size=actual_shape).astype("float32")
        with tf.GradientTape() as tape:
            result = layer(input_data, training=True)
            target = tf.reduce_sum(tf.cast(result, "float32") * projection)
        gradients = tape.gradient(target, layer.trainable_variables)
        no_gradient = [
            v.path
            for v, g in zip(layer.trainable_variables, gradients, strict=True)
            if (g is None or not np.any(np.asarray(tf.convert_to_tensor(g))))
            and not any(part in v.path for part in no_gradient_expected)
        ]
        if no_gradient:
            raise AssertionError(f"{layer_cls.__name__}: no gradient reaches {no_gradient}")
    return layer
