"""Whether the parts being built from a spec may run a SavedModel's graph.

Loading a `.keras` file that runs a SavedModel graph needs Keras'
`safe_mode=False`; building such a part from a spec needs the same consent.
Keras' own safe-mode scope cannot carry it: it also refuses keras-hub
tokenizers their vocabulary files. `mmtask.build_model` sets this flag while
it builds a spec's parts; parts made directly in Python are made by choice.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_SPEC_SAFE_MODE: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "mmtask_spec_safe_mode", default=None
)


@contextlib.contextmanager
def spec_safe_mode(safe_mode: bool) -> Iterator[None]:
    """Build a spec's parts with (True) or without (False) safe mode."""
    token = _SPEC_SAFE_MODE.set(safe_mode)
    try:
        yield
    finally:
        _SPEC_SAFE_MODE.reset(token)


def building_in_safe_mode() -> bool:
    """True while `build_model` builds a spec's parts in safe mode."""
    return _SPEC_SAFE_MODE.get() is True
