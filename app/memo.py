"""A small cache of values made from arrays, keyed by what they were made from.

Some views are redrawn at every step of a slider, yet part of each drawing does not change with it: the step
anatomy's x₀ panel and the training data beneath every panel are the same for every t. `remembered` keeps the last
few such values, keyed by a digest of the arrays' bytes (with their dtype and shape) and of the other parts' reprs, so
equal inputs from any session share them and changed inputs never hit a stale one. Shared by every session of the
server, hence the lock; values must not be changed by their users.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

MAX_VALUES = 16  # values kept, the least recently used dropped first (a panel's picture ~0.1 MB, a layer of
# training data beneath the panels ~9 MB)
Value = TypeVar("Value")

_values: OrderedDict[bytes, Any] = OrderedDict()
_lock = threading.Lock()


def digest(*parts: object) -> bytes:
    """A 16-byte key for ``parts``: numpy arrays by dtype, shape and bytes, anything else by its repr."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).data)
        else:
            h.update(repr(part).encode())
        h.update(b"\0")
    return h.digest()


def remembered(key: bytes, make: Callable[[], Value]) -> Value:
    """The value kept for ``key`` (a `digest`), else ``make()``, kept from now on. Two sessions that miss at once
    both make it: the same value, so either may stay."""
    with _lock:
        if key in _values:
            _values.move_to_end(key)
            return _values[key]
    value = make()
    with _lock:
        _values[key] = value
        while len(_values) > MAX_VALUES:
            _values.popitem(last=False)
    return value
