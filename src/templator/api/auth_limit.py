"""Failed authentication, limited per client address; a valid token is never limited.

Only failures cost anything: a request whose token is refused counts one failure in
Redis (INCR with the window as expiry, one pipelined round trip), shared by every
worker. Past AUTH_FAILURE_LIMIT in a window the address is limited until the window's
counter expires: every credential it presents that does not verify is answered 429
`rate_limited` with `Retry-After` (from in-process memory, no round trip), but one that
verifies is served as always. The address is the peer's, or the client a configured
proxy names (API_FORWARDED_ALLOW_IPS, none by default): no one can aim the limit at
another client's valid token, by a forged X-Forwarded-For or by sharing its address
(a NAT, the bridge gateway of a container network). Why not block the address outright
(docs/security.md): a 256-bit secret cannot be guessed, so the limit is there to slow
and flag a flood of bad credentials, never to refuse the holder of a good one.
While Redis is down the failures are counted in-process instead (per worker).
"""

from __future__ import annotations

import logging
import math
import time

from prometheus_client import Counter
from redis.exceptions import RedisError

from templator.exceptions import TooManyFailedAuthentications
from templator.redis import RedisClient

log = logging.getLogger("templator.api")

AUTH_FAILURES = Counter(
    "templator_auth_failures_total",
    "Requests whose credentials were refused (401), and those refused because their "
    "address had failed too often (429)",
    ["outcome"],
)
_LOCAL_MAX = 100_000
"""Addresses tracked in-process at most; beyond it the oldest windows are dropped."""


class AuthFailureLimiter:
    """Counts failed authentications per address and blocks an address past the limit."""

    def __init__(self, redis: RedisClient, *, namespace: str, limit: int, window: int) -> None:
        self.redis = redis
        self.namespace = namespace
        self.limit = limit
        self.window = window
        self._blocked: dict[str, float] = {}  # address -> monotonic time it is free again
        self._local: dict[str, tuple[int, float]] = {}  # address -> (failures, window end)

    def _blocked_for(self, address: str) -> float:
        """Seconds `address` stays limited (0 when it is not)."""
        until = self._blocked.get(address) if self._blocked else None
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked[address]
            return 0.0
        return left

    async def failed(self, address: str) -> None:
        """Count one failure of `address`; raise 429 when it is over the limit (an address
        already limited is answered from memory, without counting again)."""
        left = self._blocked_for(address)
        if left:
            AUTH_FAILURES.labels("limited").inc()
            raise self._refusal(left)
        AUTH_FAILURES.labels("refused").inc()
        count, left = await self._count(address)
        if count > self.limit:
            self._blocked[address] = time.monotonic() + left
            if len(self._blocked) > _LOCAL_MAX:
                self._blocked.pop(next(iter(self._blocked)))
            raise self._refusal(left)

    async def _count(self, address: str) -> tuple[int, float]:
        """(failures in the current window, seconds until it ends)."""
        key = f"{self.namespace}:authfail:{address}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
            return int(count), float(ttl if ttl and ttl > 0 else self.window)
        except RedisError as exc:
            log.warning("counting a failed authentication in-process (Redis: %s)", exc)
            return self._count_locally(address)

    def _count_locally(self, address: str) -> tuple[int, float]:
        now = time.monotonic()
        count, ends = self._local.get(address, (0, now + self.window))
        if ends <= now:
            count, ends = 0, now + self.window
        self._local[address] = (count + 1, ends)
        if len(self._local) > _LOCAL_MAX:
            self._local.pop(next(iter(self._local)))
        return count + 1, ends - now

    def _refusal(self, left: float) -> TooManyFailedAuthentications:
        return TooManyFailedAuthentications(
            f"too many failed authentications from this address: retry in {math.ceil(left)} s "
            "(a valid token is still accepted)",
            retry_after=max(1, math.ceil(left)),
        )
