"""The synchronous client: every Sluice command, typed, on redis-py."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import redis

from . import _commands as cmd
from .types import Counter, Lease, LeaseUpdate, Limit, LogWindow, MultiResult, PolicyResult, Result


class Sluice:
    """Sends Sluice's commands through a redis-py client and decodes the
    replies. It is as thread-safe as the redis-py client is (a
    ``redis.Redis`` with its connection pool is).

    >>> sl = Sluice.from_url("sluice://127.0.0.1:6379")
    >>> r = sl.throttle("user:42", Limit(30, 60, burst=15))
    >>> r.limited, r.remaining
    (False, 15)

    Errors from the server (``ERR ...``) raise ``redis.ResponseError``;
    connection problems raise redis-py's ``ConnectionError`` and
    ``TimeoutError``.
    """

    def __init__(self, client: "redis.Redis[Any]") -> None:
        self.redis = client

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "Sluice":
        """Connects to ``sluice://[user:password@]host:port`` (``sluices://``
        for TLS, ``sluice+unix:///path``; ``redis://`` URLs work too).
        ``options`` go to ``redis.Redis.from_url`` (``socket_timeout``, ...)."""
        return cls(redis.Redis.from_url(cmd.url_for_redis(url), **options))

    def _run(self, command: cmd.Command) -> Any:
        args, decode = command
        return decode(self.redis.execute_command(*args))

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def throttle(self, key: str, limit: Limit, quantity: int = 1) -> Result:
        """THROTTLE: charges ``quantity`` to ``key`` under ``limit`` (GCRA).
        0 peeks, a negative quantity refunds."""
        return self._run(cmd.throttle(key, limit, quantity))

    def throttle_multi(self, checks: Sequence[Tuple[str, Limit]], quantity: int = 1) -> MultiResult:
        """THROTTLE.MULTI: one request against several limits at once,
        admitted only when every limit admits it (nothing is charged
        otherwise)."""
        return self._run(cmd.throttle_multi(checks, quantity))

    def throttle_window(self, key: str, count: int, period: int, quantity: int = 1, algorithm: str = "sliding") -> Result:
        """THROTTLE.WINDOW: ``count`` per ``period`` seconds in windows aligned
        to the epoch, ``algorithm`` "sliding" (the default) or "fixed"."""
        return self._run(cmd.throttle_window(key, count, period, quantity, algorithm))

    def policy_throttle(self, policy: str, key: str, quantity: int = 1, headers: bool = False) -> PolicyResult:
        """POLICY.THROTTLE: a request under a named policy of the server's
        policy file; with ``headers`` also the RateLimit-Policy and RateLimit
        field values."""
        return self._run(cmd.policy_throttle(policy, key, quantity, headers))

    def policy_list(self) -> List[str]:
        return self._run(cmd.policy_list())

    def policy_get(self, name: str) -> Optional[Dict[str, Any]]:
        """POLICY.GET: ``{"name", "algorithm", "limit", "overrides"}`` or None."""
        return self._run(cmd.policy_get(name))

    def lease_acquire(self, key: str, max: int, ttl: float) -> Lease:
        """LEASE.ACQUIRE: one of at most ``max`` concurrent leases on ``key``,
        expiring after ``ttl`` seconds unless renewed."""
        return self._run(cmd.lease_acquire(key, max, ttl))

    def lease_release(self, key: str, lease_id: int) -> LeaseUpdate:
        return self._run(cmd.lease_release(key, lease_id))

    def lease_renew(self, key: str, lease_id: int, ttl: float) -> LeaseUpdate:
        return self._run(cmd.lease_renew(key, lease_id, ttl))

    def counter_incrby(self, key: str, increment: int, ttl: float, elastic: bool = False) -> Counter:
        """COUNTER.INCRBY: adds to an expiring counter that starts at 0 and
        lasts ``ttl`` seconds from its first increment (from every one when
        ``elastic``)."""
        return self._run(cmd.counter_incrby(key, increment, ttl, elastic))

    def counter_get(self, key: str) -> Counter:
        return self._run(cmd.counter_get(key))

    def slidinglog_acquire(self, key: str, limit: int, period: float, quantity: int = 1) -> Result:
        """SLIDINGLOG.ACQUIRE: admits when the requests of the last ``period``
        seconds plus ``quantity`` stay within ``limit`` (an exact moving
        window)."""
        return self._run(cmd.slidinglog_acquire(key, limit, period, quantity))

    def slidinglog_get(self, key: str, period: float) -> LogWindow:
        return self._run(cmd.slidinglog_get(key, period))
