"""A storage for the limits library (and so for Flask-Limiter and SlowAPI)
that keeps every count in Sluice, registered under ``sluice://``,
``sluices://`` (TLS) and ``sluice+unix://`` (``async+sluice://`` for
limits' asyncio API), plus a ``gcra`` strategy.

Importing :mod:`sluice_ratelimit` registers them; an app then changes one
line::

    limiter = Limiter(get_remote_address, app=app, storage_uri="sluice://127.0.0.1:6379")

The strategies map onto Sluice commands that do exactly what limits' own
storages do, each in one atomic step on the server:

- ``fixed-window`` and ``fixed-window-elastic-expiry``: ``COUNTER.INCRBY``
  (a counter from the first hit, lasting the window; every hit counts).
- ``moving-window``: ``SLIDINGLOG.ACQUIRE`` and ``SLIDINGLOG.GET`` (the exact
  log of the last window's requests, timed by the server's clock, so every
  worker agrees).
- ``gcra`` (added by this package): ``THROTTLE``. "100/minute" admits 100 at
  once and then one every 0.6 s: smooth, no window edges.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional, Tuple

import redis
import redis.asyncio
from limits.aio import strategies as aio_strategies
from limits.aio.storage import MovingWindowSupport as AsyncMovingWindowSupport
from limits.aio.storage import Storage as AsyncStorage
from limits.errors import ConfigurationError
from limits.limits import RateLimitItem
from limits.storage import MovingWindowSupport, Storage
from limits import strategies

from . import _commands as cmd
from .types import Limit, Result

__all__ = ["SluiceStorage", "AsyncSluiceStorage", "GCRARateLimiter", "AsyncGCRARateLimiter"]

# The key prefix of limits' RateLimitItem namespaces; reset() deletes these.
_NAMESPACE = "LIMITER"


def _ms(seconds: int) -> int:
    return int(seconds) * 1000


def _expiry(ttl: Optional[float]) -> int:
    """limits' get_expiry: the Unix time the counter ends (now when none)."""
    return int(time.time() + max(ttl or 0.0, 0.0))


def _window(reply: Any, expiry: int) -> Tuple[int, int]:
    """limits' get_moving_window from SLIDINGLOG.GET's reply: (the instant
    the newest counted request was made, how many count). limits' own
    storages return the newest entry's time as the window's start, so the
    reset in get_window_stats is when the window is empty again."""
    count, reset_ms = int(reply[0]), int(reply[2])
    now = time.time()
    if count == 0:
        return int(now), 0
    return int(now + reset_ms / 1000 - expiry), count


class SluiceStorage(Storage, MovingWindowSupport):
    """limits storage on Sluice, through redis-py.

    :param uri: ``sluice://[user:password@]host:port`` (``sluices://`` for
     TLS, ``sluice+unix:///path/to/socket``)
    :param connection_pool: a redis-py pool to use instead of the URI's
    :param options: passed to ``redis.Redis.from_url`` (``socket_timeout``,
     ``ssl_ca_certs``, ...); Flask-Limiter's ``storage_options``
    """

    STORAGE_SCHEME = ["sluice", "sluices", "sluice+unix"]

    def __init__(self, uri: str, connection_pool: Optional[Any] = None, **options: Any) -> None:
        super().__init__(uri, **options)
        if connection_pool is not None:
            self.storage = redis.Redis(connection_pool=connection_pool, **options)
        else:
            self.storage = redis.Redis.from_url(cmd.url_for_redis(uri), **options)

    def _run(self, command: cmd.Command) -> Any:
        args, decode = command
        return decode(self.storage.execute_command(*args))

    def incr(self, key: str, expiry: int, elastic_expiry: bool = False, amount: int = 1) -> int:
        return self._run(cmd.counter_incrby(key, amount, expiry, elastic_expiry)).value

    def get(self, key: str) -> int:
        return self._run(cmd.counter_get(key)).value

    def get_expiry(self, key: str) -> int:
        return _expiry(self._run(cmd.counter_get(key)).ttl)

    def check(self) -> bool:
        try:
            return bool(self.storage.ping())
        except redis.RedisError:
            return False

    def reset(self) -> Optional[int]:
        """Deletes every key of limits' namespace (``LIMITER*``), as limits'
        Redis storage does, found with SCAN."""
        try:
            keys = list(self.storage.scan_iter(match=_NAMESPACE + "*", count=1000))
        except redis.ResponseError as e:
            raise NotImplementedError(f"sluice: reset needs SCAN: {e}") from e
        return int(self.storage.delete(*keys)) if keys else 0

    def clear(self, key: str) -> None:
        self.storage.delete(key)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return not self._run(cmd.slidinglog_acquire(key, limit, expiry, amount)).limited

    def get_moving_window(self, key: str, limit: int, expiry: int) -> Tuple[int, int]:
        args, _ = cmd.slidinglog_get(key, expiry)
        return _window(self.storage.execute_command(*args), expiry)

    def throttle(self, key: str, limit: Limit, quantity: int) -> Result:
        """THROTTLE, for the gcra strategy."""
        return self._run(cmd.throttle(key, limit, quantity))


class AsyncSluiceStorage(AsyncStorage, AsyncMovingWindowSupport):
    """limits' asyncio storage on Sluice, through ``redis.asyncio``, under
    ``async+sluice://`` (``async+sluices://``, ``async+sluice+unix://``)."""

    STORAGE_SCHEME = ["async+sluice", "async+sluices", "async+sluice+unix"]

    def __init__(self, uri: str, connection_pool: Optional[Any] = None, **options: Any) -> None:
        super().__init__(uri, **options)
        uri = uri[len("async+"):] if uri.startswith("async+") else uri
        if connection_pool is not None:
            self.storage = redis.asyncio.Redis(connection_pool=connection_pool, **options)
        else:
            self.storage = redis.asyncio.Redis.from_url(cmd.url_for_redis(uri), **options)

    async def _run(self, command: cmd.Command) -> Any:
        args, decode = command
        return decode(await self.storage.execute_command(*args))

    async def incr(self, key: str, expiry: int, elastic_expiry: bool = False, amount: int = 1) -> int:
        return (await self._run(cmd.counter_incrby(key, amount, expiry, elastic_expiry))).value

    async def get(self, key: str) -> int:
        return (await self._run(cmd.counter_get(key))).value

    async def get_expiry(self, key: str) -> int:
        return _expiry((await self._run(cmd.counter_get(key))).ttl)

    async def check(self) -> bool:
        try:
            return bool(await self.storage.ping())
        except redis.RedisError:
            return False

    async def reset(self) -> Optional[int]:
        try:
            keys = [k async for k in self.storage.scan_iter(match=_NAMESPACE + "*", count=1000)]
        except redis.ResponseError as e:
            raise NotImplementedError(f"sluice: reset needs SCAN: {e}") from e
        return int(await self.storage.delete(*keys)) if keys else 0

    async def clear(self, key: str) -> None:
        await self.storage.delete(key)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return not (await self._run(cmd.slidinglog_acquire(key, limit, expiry, amount))).limited

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> Tuple[int, int]:
        args, _ = cmd.slidinglog_get(key, expiry)
        return _window(await self.storage.execute_command(*args), expiry)

    async def throttle(self, key: str, limit: Limit, quantity: int) -> Result:
        return await self._run(cmd.throttle(key, limit, quantity))


def _gcra_limit(item: RateLimitItem) -> Limit:
    """"N per period" as GCRA: N at once (max_burst N-1), N per period."""
    return Limit(item.amount, item.get_expiry())


def _stats(item: RateLimitItem, r: Result) -> Tuple[int, int]:
    """(reset, remaining) for limits' get_window_stats from a peek: reset is
    when one more request fits if none remains, else when the limit is full
    again (Unix seconds)."""
    wait = r.reset_after
    if r.remaining == 0:
        # The TAT must fall to at most (limit-1) emission intervals ahead.
        wait = max(0.0, r.reset_after - (r.limit - 1) * item.get_expiry() / item.amount)
    return int(time.time() + math.ceil(wait)), r.remaining


def _need_sluice(storage: Any) -> None:
    if not hasattr(storage, "throttle"):
        raise ConfigurationError(
            f"the gcra strategy needs a sluice:// storage, not {type(storage).__name__}"
        )


class GCRARateLimiter(strategies.RateLimiter):
    """The GCRA strategy: THROTTLE. "100/minute" lets 100 requests through
    at once, then one every 0.6 s. Register name: ``gcra`` (Flask-Limiter:
    ``strategy="gcra"`` or ``RATELIMIT_STRATEGY = "gcra"``)."""

    def __init__(self, storage: Any) -> None:
        _need_sluice(storage)
        super().__init__(storage)

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return not self.storage.throttle(item.key_for(*identifiers), _gcra_limit(item), cost).limited  # type: ignore[attr-defined]

    def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        return self.storage.throttle(item.key_for(*identifiers), _gcra_limit(item), 0).remaining >= 1  # type: ignore[attr-defined]

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> Tuple[int, int]:
        return _stats(item, self.storage.throttle(item.key_for(*identifiers), _gcra_limit(item), 0))  # type: ignore[attr-defined]


class AsyncGCRARateLimiter(aio_strategies.RateLimiter):
    """The GCRA strategy for limits' asyncio API (``async+sluice://``)."""

    def __init__(self, storage: Any) -> None:
        _need_sluice(storage)
        super().__init__(storage)

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        r = await self.storage.throttle(item.key_for(*identifiers), _gcra_limit(item), cost)  # type: ignore[attr-defined]
        return not r.limited

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        r = await self.storage.throttle(item.key_for(*identifiers), _gcra_limit(item), 0)  # type: ignore[attr-defined]
        return r.remaining >= 1

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> Tuple[int, int]:
        return _stats(item, await self.storage.throttle(item.key_for(*identifiers), _gcra_limit(item), 0))  # type: ignore[attr-defined]


strategies.STRATEGIES.setdefault("gcra", GCRARateLimiter)  # type: ignore[arg-type]
aio_strategies.STRATEGIES.setdefault("gcra", AsyncGCRARateLimiter)  # type: ignore[arg-type]
