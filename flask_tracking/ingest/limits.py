"""Token buckets in memory: the collector's abuse limits, cheap enough for every event.

Each worker process keeps its own buckets (no database, no shared store on the hot path), so
with W workers an address or a site may get up to W times a limit; the defaults leave room
for that (docs/security.md says how they were chosen).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`; a request takes one or is refused."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        """Take a token if one is left at monotonic time `now`."""
        # A moment read before another thread's (threads race to the lock) adds nothing and
        # takes nothing away: time never runs backwards for a bucket.
        self.tokens = min(self.burst, self.tokens + max(now - self.stamp, 0.0) * self.rate)
        self.stamp = max(self.stamp, now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class KeyedBuckets:
    """One token bucket per key (an address, a site), in bounded memory.

    Past `max_keys` keys, the older half is forgotten: a forgotten key starts again with a full
    bucket, which only ever errs towards accepting. A rate of 0 turns the limit off.
    """

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_keys = max_keys
        self._buckets: dict[Hashable, list[float]] = {}  # key -> [tokens, stamp]
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Tell whether this limit applies at all."""
        return self.rate > 0

    def take(self, key: Hashable, now: float) -> bool:
        """Take one of `key`'s tokens at monotonic time `now`; False when it has none left."""
        if self.rate <= 0:
            return True
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._forget_older_half()
                self._buckets[key] = [self.burst - 1.0, now]
                return True
            # `now` may be a little older than the bucket's stamp: the caller read the clock
            # before another thread took the lock. That must not cost tokens.
            tokens = min(self.burst, bucket[0] + max(now - bucket[1], 0.0) * self.rate)
            bucket[1] = max(bucket[1], now)
            if tokens < 1.0:
                bucket[0] = tokens
                return False
            bucket[0] = tokens - 1.0
            return True

    def _forget_older_half(self) -> None:
        keys = list(self._buckets)  # insertion order: the oldest first
        for key in keys[: len(keys) // 2]:
            del self._buckets[key]
