"""Small caches of values made from arrays, keyed by what they were made from.

Some views are redrawn at every step of a slider, yet part of each drawing does not change with it: the step
anatomy's x₀ panel and the training data beneath every panel are the same for every t. Some panels keep what a model
took seconds to sample (the unguided samples of guidance, inpainting's replacement column), for a second click with
another scale or U. A `Memo` keeps the last few such values, keyed by a `digest` of the arrays' bytes (with their dtype
and shape) and of the other parts' reprs, so equal inputs from any session share them and changed inputs never hit a
stale one. Shared by every session of the server, hence the lock; values must not be changed by their users.

There are two, so that pictures do not push out samples: `PICTURES` takes a new panel at every step of a scrub, and
in one memo a few steps of any user's scrub had dropped every kept sample, to be sampled again at the next click.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

Value = TypeVar("Value")


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


class Memo:
    """The last ``max_values`` values made, by key; the least recently used is dropped first."""

    def __init__(self, max_values: int) -> None:
        self.max_values = max_values
        self._values: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def remembered(self, key: bytes, make: Callable[[], Value]) -> Value:
        """The value kept for ``key`` (a `digest`), else ``make()``, kept from now on. Two sessions that miss at once
        both make it: the same value, so either may stay."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.max_values:
                self._values.popitem(last=False)
        return value


PICTURES = Memo(16)  # panels' pictures (~0.1 MB) and the layers of training data beneath them (~9 MB)
SAMPLES = Memo(16)  # what a model gave for a checkpoint (`checkpoint_access.kept_for_checkpoint`): samples, scores
