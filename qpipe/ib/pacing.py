"""Request pacing for Interactive Brokers' historical data.

IB allows at most 60 historical-data requests in any 10 minutes, 6 for one contract within
2 seconds, and no identical request within 15 seconds; a request over the limit comes back
as error 162 (a "pacing violation"), as do queries with no data. :class:`Pacer` waits before
a request when the next one would break a window; the caller caches answers so an identical
request is never repeated.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Pacer:
    """Sliding-window limits: at most ``max_requests`` per ``window`` seconds overall and
    ``per_key`` per ``key_window`` seconds for one key (a contract). ``clock`` and ``sleep``
    are injectable for tests; times are seconds."""

    max_requests: int = 60
    window: float = 600.0
    per_key: int = 6
    key_window: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _all: deque[float] = field(default_factory=deque, init=False, repr=False)
    _keys: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)

    def wait(self, key: str) -> float:
        """Wait until a request for ``key`` keeps within both windows, record it, and return
        the seconds waited."""
        waited = 0.0
        while True:
            now = self.clock()
            delay = max(
                _delay(self._all, self.max_requests, self.window, now),
                _delay(self._keys.setdefault(key, deque()), self.per_key, self.key_window, now),
            )
            if delay <= 0:
                break
            self.sleep(delay)
            waited += delay
        self._all.append(now)
        self._keys[key].append(now)
        return waited


def _delay(stamps: deque[float], limit: int, window: float, now: float) -> float:
    """Seconds until one more request fits: drops stamps older than ``window``."""
    while stamps and stamps[0] + window <= now:  # the same sum as the delay below
        stamps.popleft()
    return stamps[0] + window - now if len(stamps) >= limit else 0.0
