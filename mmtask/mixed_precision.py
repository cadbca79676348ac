"""Mixed precision for a run: the spec's `mixed_precision` as a Keras dtype policy, set for a block.

`bfloat16` computes in bfloat16 with float32 weights and needs no loss
scaling: the choice on CPUs and recent accelerators. `float16` computes in
float16, and Keras wraps the optimizer in a `LossScaleOptimizer`, which a
fine-tuning schedule (`FineTuning`) does not support: use `bfloat16` there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# Spec / CLI value -> Keras dtype policy (None: leave the policy as it is).
MIXED_PRECISION = {"none": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def check_mixed_precision(value: str) -> str:
    """`value` if it names a mixed-precision setting; a ValueError listing them otherwise."""
    if value not in MIXED_PRECISION:
        raise ValueError(
            f"Invalid value for `mixed_precision`: expected one of {list(MIXED_PRECISION)}. "
            f"Received: mixed_precision={value!r}"
        )
    return value


@contextlib.contextmanager
def dtype_policy(policy: str | None) -> Iterator[None]:
    """Set Keras' global dtype policy ("mixed_bfloat16", ...) inside the block, then restore it.

    Layers keep the policy they were built with, so a model built inside the
    block computes in mixed precision after it too. None changes nothing.
    """
    if policy is None:
        yield
        return
    import keras  # Here, so reading a spec does not load Keras.

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
