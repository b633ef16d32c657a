"""Housekeeping that need not run at every call: a sweep of old files, done at most once a period.

Every session of the server shares one `Throttle` per chore, hence the lock: of calls that come together, one sweeps.
"""

from __future__ import annotations

import math
import threading
import time


class Throttle:
    """Says when a chore is due: at the first call, then at most once every ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._done_at = -math.inf  # `time.monotonic` of the last time it was due
        self._lock = threading.Lock()

    def due(self) -> bool:
        """True if the chore has not been due for ``seconds``; the caller then does it."""
        with self._lock:
            now = time.monotonic()
            if now - self._done_at < self.seconds:
                return False
            self._done_at = now
            return True
