"""Each Sluice command as its arguments and a decoder of its reply, so the
sync and the asyncio client share one definition of every command."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple

from .types import (
    Counter,
    Lease,
    LeaseUpdate,
    Limit,
    LogWindow,
    MultiResult,
    PolicyResult,
    Result,
    _ms,
    _str,
    policy_from_reply,
)

Command = Tuple[Tuple[Any, ...], Callable[[Any], Any]]


def _five(reply: Any) -> Result:
    return Result.from_reply(reply)


def _five_ms(reply: Any) -> Result:
    return Result.from_reply(reply, 0.001)


def throttle(key: str, limit: Limit, quantity: int) -> Command:
    return ("THROTTLE", key, *limit.args(), quantity), _five


def throttle_multi(checks: Sequence[Tuple[str, Limit]], quantity: int) -> Command:
    if not checks:
        raise ValueError("throttle_multi needs at least one (key, limit)")
    args: List[Any] = ["THROTTLE.MULTI", quantity]
    for key, limit in checks:
        args += [key, *limit.args()]

    def decode(reply: Any) -> MultiResult:
        return MultiResult(Result.from_reply(reply[0]), [Result.from_reply(r) for r in reply[1:]])

    return tuple(args), decode


def throttle_window(key: str, count: int, period: int, quantity: int, algorithm: str) -> Command:
    if algorithm not in ("fixed", "sliding"):
        raise ValueError(f"algorithm {algorithm!r}: want 'fixed' or 'sliding'")
    return ("THROTTLE.WINDOW", key, count, int(period), quantity, "ALGO", algorithm), _five


def policy_throttle(policy: str, key: str, quantity: int, headers: bool) -> Command:
    args: Tuple[Any, ...] = ("POLICY.THROTTLE", policy, key, quantity)
    if headers:
        args += ("HEADERS",)

    def decode(reply: Any) -> PolicyResult:
        h: Dict[str, str] = {}
        if headers:
            h = {"RateLimit-Policy": _str(reply[5]), "RateLimit": _str(reply[6])}
        return PolicyResult(Result.from_reply(reply[:5]), h)

    return args, decode


def policy_list() -> Command:
    return ("POLICY.LIST",), lambda reply: [_str(n) for n in reply]


def policy_get(name: str) -> Command:
    return ("POLICY.GET", name), policy_from_reply


def lease_acquire(key: str, max: int, ttl: float) -> Command:
    def decode(reply: Any) -> Lease:
        limited, mx, in_flight, free_after_ms, lease_id = (int(x) for x in reply)
        return Lease(not limited, mx, in_flight, free_after_ms / 1000, None if lease_id < 0 else lease_id)

    return ("LEASE.ACQUIRE", key, max, _ms(ttl, "ttl")), decode


def _lease_update(reply: Any) -> LeaseUpdate:
    return LeaseUpdate(bool(int(reply[0])), int(reply[1]))


def lease_release(key: str, lease_id: int) -> Command:
    return ("LEASE.RELEASE", key, lease_id), _lease_update


def lease_renew(key: str, lease_id: int, ttl: float) -> Command:
    return ("LEASE.RENEW", key, lease_id, _ms(ttl, "ttl")), _lease_update


def _counter(reply: Any) -> Counter:
    value, ttl_ms = int(reply[0]), int(reply[1])
    return Counter(value, None if ttl_ms < 0 else ttl_ms / 1000)


def counter_incrby(key: str, increment: int, ttl: float, elastic: bool) -> Command:
    args: Tuple[Any, ...] = ("COUNTER.INCRBY", key, increment, _ms(ttl, "ttl"))
    if elastic:
        args += ("ELASTIC",)
    return args, _counter


def counter_get(key: str) -> Command:
    return ("COUNTER.GET", key), _counter


def slidinglog_acquire(key: str, limit: int, period: float, quantity: int) -> Command:
    return ("SLIDINGLOG.ACQUIRE", key, limit, _ms(period, "period"), quantity), _five_ms


def slidinglog_get(key: str, period: float) -> Command:
    def decode(reply: Any) -> LogWindow:
        count, next_ms, reset_ms = (int(x) for x in reply)
        return LogWindow(count, next_ms / 1000, reset_ms / 1000)

    return ("SLIDINGLOG.GET", key, _ms(period, "period")), decode


def url_for_redis(url: str) -> str:
    """Maps sluice://, sluices:// and sluice+unix:// to the redis-py URL."""
    for ours, theirs in (("sluice+unix://", "unix://"), ("sluices://", "rediss://"), ("sluice://", "redis://")):
        if url.startswith(ours):
            return theirs + url[len(ours):]
    return url


