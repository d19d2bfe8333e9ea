"""Token buckets with the marketplaces' documented limits (period, requests, burst)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    period_s: float
    requests: int
    burst: int

    @property
    def rate(self) -> float:
        return self.requests / self.period_s


class TokenBucket:
    """Starts full; refills `limit.rate` tokens per second up to `limit.burst`; may go into debt."""

    __slots__ = ("limit", "stamp", "tokens")

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.limit.burst), self.tokens + (now - self.stamp) * self.limit.rate)
            self.stamp = now

    def try_take(self, now: float, cost: float = 1.0) -> bool:
        self._refill(now)
        # a tiny tolerance so a client that waits exactly the advertised interval is not refused by rounding
        if self.tokens + 1e-6 >= cost:
            self.tokens -= cost
            return True
        return False

    def charge(self, now: float, cost: float) -> None:
        """Take extra tokens after the fact (WB charges a 4xx on Marketplace as 10 requests)."""
        self._refill(now)
        self.tokens -= cost

    def remaining(self) -> int:
        return max(0, int(self.tokens + 1e-6))

    def retry_after(self, cost: float = 1.0) -> int:
        """Whole seconds until `cost` tokens are available (at least 1)."""
        return max(1, math.ceil((cost - self.tokens) / self.limit.rate - 1e-9))

    def reset_after(self) -> int:
        """Whole seconds until the bucket is full again."""
        return max(0, math.ceil((self.limit.burst - self.tokens) / self.limit.rate - 1e-9))
