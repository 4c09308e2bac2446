"""The asyncio client: every Sluice command, typed, on redis.asyncio."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import redis.asyncio

from . import _commands as cmd
from .types import Counter, Lease, LeaseUpdate, Limit, LogWindow, MultiResult, PolicyResult, Result


class AsyncSluice:
    """Sends Sluice's commands through a ``redis.asyncio`` client and decodes
    the replies; the same methods as :class:`Sluice`, awaited.

    >>> sl = AsyncSluice.from_url("sluice://127.0.0.1:6379")
    >>> r = await sl.throttle("user:42", Limit(30, 60, burst=15))

    Errors from the server (``ERR ...``) raise ``redis.ResponseError``;
    connection problems raise redis-py's ``ConnectionError`` and
    ``TimeoutError``.
    """

    def __init__(self, client: "redis.asyncio.Redis[Any]") -> None:
        self.redis = client

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "AsyncSluice":
        """Connects to ``sluice://[user:password@]host:port`` (``sluices://``
        for TLS, ``sluice+unix:///path``; ``redis://`` URLs work too).
        ``options`` go to ``redis.asyncio.Redis.from_url`` (``socket_timeout``, ...)."""
        return cls(redis.asyncio.Redis.from_url(cmd.url_for_redis(url), **options))

    async def _run(self, command: cmd.Command) -> Any:
        args, decode = command
        return decode(await self.redis.execute_command(*args))

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def close(self) -> None:
        """Closes the connection pool."""
        await self.redis.close()

    async def throttle(self, key: str, limit: Limit, quantity: int = 1) -> Result:
        """THROTTLE: charges ``quantity`` to ``key`` under ``limit`` (GCRA).
        0 peeks, a negative quantity refunds."""
        return await self._run(cmd.throttle(key, limit, quantity))

    async def throttle_multi(self, checks: Sequence[Tuple[str, Limit]], quantity: int = 1) -> MultiResult:
        """THROTTLE.MULTI: one request against several limits at once,
        admitted only when every limit admits it (nothing is charged
        otherwise)."""
        return await self._run(cmd.throttle_multi(checks, quantity))

    async def throttle_window(self, key: str, count: int, period: int, quantity: int = 1, algorithm: str = "sliding") -> Result:
        """THROTTLE.WINDOW: ``count`` per ``period`` seconds in windows aligned
        to the epoch, ``algorithm`` "sliding" (the default) or "fixed"."""
        return await self._run(cmd.throttle_window(key, count, period, quantity, algorithm))

    async def policy_throttle(self, policy: str, key: str, quantity: int = 1, headers: bool = False) -> PolicyResult:
        """POLICY.THROTTLE: a request under a named policy of the server's
        policy file; with ``headers`` also the RateLimit-Policy and RateLimit
        field values."""
        return await self._run(cmd.policy_throttle(policy, key, quantity, headers))

    async def policy_list(self) -> List[str]:
        return await self._run(cmd.policy_list())

    async def policy_get(self, name: str) -> Optional[Dict[str, Any]]:
        """POLICY.GET: ``{"name", "algorithm", "limit", "overrides"}`` or None."""
        return await self._run(cmd.policy_get(name))

    async def lease_acquire(self, key: str, max: int, ttl: float) -> Lease:
        """LEASE.ACQUIRE: one of at most ``max`` concurrent leases on ``key``,
        expiring after ``ttl`` seconds unless renewed."""
        return await self._run(cmd.lease_acquire(key, max, ttl))

    async def lease_release(self, key: str, lease_id: int) -> LeaseUpdate:
        return await self._run(cmd.lease_release(key, lease_id))

    async def lease_renew(self, key: str, lease_id: int, ttl: float) -> LeaseUpdate:
        return await self._run(cmd.lease_renew(key, lease_id, ttl))

    async def counter_incrby(self, key: str, increment: int, ttl: float, elastic: bool = False) -> Counter:
        """COUNTER.INCRBY: adds to an expiring counter that starts at 0 and
        lasts ``ttl`` seconds from its first increment (from every one when
        ``elastic``)."""
        return await self._run(cmd.counter_incrby(key, increment, ttl, elastic))

    async def counter_get(self, key: str) -> Counter:
        return await self._run(cmd.counter_get(key))

    async def slidinglog_acquire(self, key: str, limit: int, period: float, quantity: int = 1) -> Result:
        """SLIDINGLOG.ACQUIRE: admits when the requests of the last ``period``
        seconds plus ``quantity`` stay within ``limit`` (an exact moving
        window)."""
        return await self._run(cmd.slidinglog_acquire(key, limit, period, quantity))

    async def slidinglog_get(self, key: str, period: float) -> LogWindow:
        return await self._run(cmd.slidinglog_get(key, period))
