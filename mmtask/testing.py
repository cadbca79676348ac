"""One check for every mmtask part: declared outputs, serialization, a training step, gradients.

Every registered part (encoders, fusion modules, loss weightings, alignment
modules) and every head goes through `run_layer_test`, so each part's own test
can stay short and assert its behaviour; `check_dtype_policy` checks that a
part returns, under a mixed-precision policy, the dtypes it declares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from mmtask.mixed_precision import dtype_policy


def run_layer_test(
    build: Callable[..., keras.layers.Layer],
    init_kwargs: Mapping,
    input_data,
    expected_output_shape=None,
    call_kwargs: Mapping | None = None,
    expect_all_gradients: bool = True,
    no_gradient_expected: Sequence[str] = (),
    seed: int = 0,
) -> keras.layers.Layer:
    """Check a part the way every mmtask part must behave.

    - `build(**init_kwargs)` (a class, or a factory such as a registry's
      `load_encoder`) gives a layer; called eagerly on `input_data` (with
      `call_kwargs`), its outputs have `expected_output_shape` (a shape, or a
      dict of shapes of some of the outputs it returns in a dict), if given;
    - called on symbolic inputs of the same shapes (batch unknown), it gives
      the structure, shapes and dtypes of the eager outputs: what
      `compute_output_spec` declares is what `call` returns;
    - `from_config(get_config())` gives the same config, and
      `keras.layers.serialize` / `deserialize` with copied weights gives the
      same outputs;
    - one SGD step on a loss from the outputs (a fixed random projection of
      every float output, plus the losses the layer adds) is finite and
      changes every trainable weight, and, when `expect_all_gradients`, every
      trainable weight receives a non-zero gradient, except weights whose
      path contains one of `no_gradient_expected`.

    Weights are initialised from a fixed seed, so the check is deterministic.

    Args:
        build: callable. The part's class or a factory returning the layer.
        init_kwargs: mapping. Arguments of `build`.
        input_data: array(s) in the structure the layer's `call` takes.
        expected_output_shape: tuple | structure of tuples | None.
        call_kwargs: mapping | None. More arguments of `call`.
        expect_all_gradients: bool. Whether every trainable weight must get a gradient.
        no_gradient_expected: sequence of str. Parts of weight paths exempted.
        seed: int. Seed of the weights and of the loss projection.

    Returns:
        The layer built by the check.
    """
    call_kwargs = dict(call_kwargs or {})
    keras.utils.set_random_seed(seed)
    layer = build(**init_kwargs)
    name = type(layer).__name__
    output = layer(input_data, training=False, **call_kwargs)

    actual = [_shape_and_dtype(x) for x in keras.tree.flatten(output)]
    if expected_output_shape is not None:
        shapes = _shapes(output)
        if isinstance(shapes, Mapping) and isinstance(expected_output_shape, Mapping):
            # Only the outputs named: `{"vector": (4, 3)}` for an encoder.
            shapes = {k: shapes.get(k) for k in expected_output_shape}
        if shapes != _shapes(expected_output_shape):
            raise AssertionError(
                f"{name} output shape: expected {expected_output_shape}, got {shapes}"
            )
    check_declared_outputs(layer, input_data, output, call_kwargs)

    config = layer.get_config()
    rebuilt_config = type(layer).from_config(config).get_config()
    if rebuilt_config != config:
        raise AssertionError(f"{name} config does not round-trip:\n{config}\n!=\n{rebuilt_config}")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    clone(input_data, training=False, **call_kwargs)
    clone.set_weights(layer.get_weights())
    for got, want in zip(
        keras.tree.flatten(clone(input_data, training=False, **call_kwargs)),
        keras.tree.flatten(output),
        strict=True,
    ):
        np.testing.assert_allclose(
            _numpy(got), _numpy(want), atol=1e-6, err_msg=f"{name} differs after serialization"
        )

    exempt = tuple(no_gradient_expected) if expect_all_gradients else None
    _check_training_step(layer, input_data, call_kwargs, actual, seed, name, exempt)
    return layer


def check_declared_outputs(layer, input_data, output, call_kwargs: Mapping | None = None) -> None:
    """Raise unless `layer` on symbolic inputs declares the structure, shapes, dtypes of `output`.

    Dimensions the symbolic call leaves unknown (the batch, a length that
    depends on the inputs) match any size.
    """
    symbolic = keras.tree.map_structure(_symbolic, input_data)
    declared = layer(symbolic, **dict(call_kwargs or {}))
    name = type(layer).__name__
    try:
        keras.tree.assert_same_structure(declared, output)
    except (ValueError, TypeError):
        raise AssertionError(
            f"{name} declares the output structure {_shapes(declared)}, "
            f"but returns {_shapes(output)}"
        ) from None
    for symbolic_output, real_output in zip(
        keras.tree.flatten(declared), keras.tree.flatten(output), strict=True
    ):
        shape, dtype = tuple(symbolic_output.shape), _dtype(symbolic_output)
        real_shape, real_dtype = _shape_and_dtype(real_output)
        same_shape = len(shape) == len(real_shape) and all(
            d is None or d == r for d, r in zip(shape, real_shape, strict=True)
        )
        if not same_shape or dtype != real_dtype:
            raise AssertionError(
                f"{name} declares {shape} {dtype} (compute_output_spec) but returns "
                f"{real_shape} {real_dtype}"
            )


def check_dtype_policy(
    build: Callable[..., keras.layers.Layer],
    init_kwargs: Mapping,
    input_data,
    policy: str,
    call_kwargs: Mapping | None = None,
) -> keras.layers.Layer:
    """Build a part under the global dtype `policy`; it must return the dtypes it declares.

    The policy is set while the part is built and called, then restored.
    """
    with dtype_policy(policy):
        layer = build(**init_kwargs)
        output = layer(input_data, training=False, **dict(call_kwargs or {}))
        check_declared_outputs(layer, input_data, output, call_kwargs)
    return layer


def _check_training_step(layer, input_data, call_kwargs, actual, seed, name, exempt) -> None:
    """One SGD step; with `exempt` not None, every weight not exempted must get a gradient.

    The gradients are checked on the step's own pass: after a step, a large
    update may legitimately silence units (saturated ReLU6 in a tiny backbone).
    """
    before = [np.array(_numpy(v)) for v in layer.trainable_variables]
    gradients, loss = _gradients(layer, input_data, call_kwargs, actual, seed)
    if not np.isfinite(loss):
        raise AssertionError(f"{name}: the training step's loss is {loss}")
    if exempt is not None:
        no_gradient = [
            v.path
            for v, g in zip(layer.trainable_variables, gradients, strict=True)
            if (g is None or not np.any(_numpy(g))) and not any(part in v.path for part in exempt)
        ]
        if no_gradient:
            raise AssertionError(f"{name}: no gradient reaches {no_gradient}")
    steps = [
        (g, v, old)
        for g, v, old in zip(gradients, layer.trainable_variables, before, strict=True)
        if g is not None and np.any(_numpy(g))
    ]
    if steps:
        keras.optimizers.SGD(0.1).apply_gradients([(g, v) for g, v, _ in steps])
    unchanged = [v.path for _, v, old in steps if np.array_equal(old, _numpy(v))]
    if unchanged:
        raise AssertionError(f"{name}: a training step left {unchanged} unchanged")


def _gradients(layer, input_data, call_kwargs, actual, seed):
    """Gradients of a training call's loss: a fixed random projection of the float outputs.

    A random projection, so no weight can escape it the way a bias escapes a
    shift-invariant target or softmax escapes a sum; plus the layer's own
    losses (a reconstruction or contrastive loss).
    """
    rng = np.random.default_rng(seed)
    projections = [
        rng.normal(size=shape).astype("float32") for shape, dtype in actual if "float" in dtype
    ]
    with tf.GradientTape() as tape:
        result = layer(input_data, training=True, **call_kwargs)
        floats = [x for x in keras.tree.flatten(result) if "float" in _dtype(x)]
        target = sum(
            tf.reduce_sum(tf.cast(x, "float32") * p)
            for x, p in zip(floats, projections, strict=True)
        )
        target += sum(tf.cast(loss, "float32") for loss in layer.losses)
    return tape.gradient(target, layer.trainable_variables), float(_numpy(target))


def _shapes(structure):
    """Tensors (or shape tuples) in dicts and lists, as the same structure of shape tuples."""
    if isinstance(structure, Mapping):
        return {k: _shapes(v) for k, v in structure.items()}
    if isinstance(structure, list):
        return [_shapes(v) for v in structure]
    if isinstance(structure, tuple):
        return tuple(structure)
    return tuple(int(d) if d is not None else None for d in structure.shape)


def _symbolic(x):
    """A symbolic input like `x`: batch (its first dimension) unknown, strings as "string"."""
    x = np.asarray(x)
    dtype = "string" if x.dtype.kind in "OUS" else str(x.dtype)
    shape = (None, *x.shape[1:]) if x.ndim else ()
    return keras.KerasTensor(shape, dtype=dtype)


def _shape_and_dtype(x) -> tuple:
    return (tuple(int(d) for d in keras.ops.shape(x)), _dtype(x))


def _dtype(x) -> str:
    return keras.backend.standardize_dtype(x.dtype)


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(x, "float32")))
