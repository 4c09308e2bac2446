"""The values Sluice's commands take and return, shared by the sync and the
asyncio client."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "Limit",
    "Result",
    "MultiResult",
    "PolicyResult",
    "Lease",
    "LeaseUpdate",
    "Counter",
    "LogWindow",
    "parse_rule",
]


@dataclass(frozen=True)
class Limit:
    """A GCRA rate: ``count`` requests per ``period`` seconds, in bursts.

    ``burst`` is THROTTLE's ``max_burst``: ``burst + 1`` requests fit at once
    and the reply's ``limit`` is ``burst + 1``. It defaults to ``count - 1``,
    so ``Limit(50, 3600)`` lets all 50 of an hour's requests through at once,
    as the rule ``"50/hour"`` does in policy files, Flask-Limiter and the
    ``gcra`` strategy. ``Limit(30, 60, burst=15)`` is
    ``THROTTLE key 15 30 60``: 16 at once, then one every 2 seconds.
    """

    count: int
    period: int
    burst: Optional[int] = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count {self.count} must be >= 1")
        if int(self.period) != self.period or self.period < 1:
            raise ValueError(f"period {self.period} must be a whole number of seconds, >= 1")
        if self.burst is not None and self.burst < 0:
            raise ValueError(f"burst {self.burst} must be >= 0")

    @property
    def max_burst(self) -> int:
        """THROTTLE's max_burst argument."""
        return self.count - 1 if self.burst is None else self.burst

    def args(self) -> Tuple[int, int, int]:
        """THROTTLE's max_burst, count and period."""
        return self.max_burst, self.count, int(self.period)

    @classmethod
    def parse(cls, rule: str) -> "Limit":
        """Parses one limit of the rule notation: ``"100/minute"``,
        ``"10 per second"``, ``"5000/hour burst 499"``."""
        limits = parse_rule(rule)
        if len(limits) != 1:
            raise ValueError(f"rule {rule!r} holds {len(limits)} limits; use parse_rule")
        return limits[0]


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(
    r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*(?:burst\s+(\d+))?\s*$",
    re.IGNORECASE,
)


def parse_rule(rule: str) -> List[Limit]:
    """Parses the rule notation Sluice's policy files share with the limits
    library: limits separated by ``;`` or ``,``, each
    ``COUNT (/|per) [MULTIPLE] UNIT [burst MAX_BURST]``."""
    out = []
    for part in re.split(r"[;,]", rule):
        if not part.strip():
            continue
        m = _RATE.match(part)
        if not m:
            raise ValueError(f"limit {part.strip()!r}: want COUNT/[MULTIPLE] UNIT [burst N], e.g. '100/minute'")
        count, multiple, unit, burst = m.groups()
        period = int(multiple or 1) * _UNITS[unit.lower()]
        out.append(Limit(int(count), period, None if burst is None else int(burst)))
    if not out:
        raise ValueError(f"rule {rule!r} holds no limit")
    return out


@dataclass(frozen=True)
class Result:
    """One decision, as THROTTLE's five numbers. Durations are seconds.

    ``retry_after`` is 0 when the request was admitted, the time until the
    same request would be admitted when it was refused, and -1 when it was
    refused because its quantity can never fit. ``reset_after`` is the time
    until the limit is full again.
    """

    limited: bool
    limit: int
    remaining: int
    retry_after: float
    reset_after: float

    @property
    def allowed(self) -> bool:
        return not self.limited

    @classmethod
    def from_reply(cls, reply: Sequence[Any], unit: float = 1.0) -> "Result":
        """Decodes [limited, limit, remaining, retry_after, reset_after];
        ``unit`` is the reply's time unit in seconds (0.001 for the
        commands that answer in milliseconds)."""
        if len(reply) != 5:
            raise ValueError(f"reply {reply!r}: want five integers")
        limited, limit, remaining, retry, reset = (int(x) for x in reply)
        if retry >= 0:
            retry_after = retry * unit
        else:
            retry_after = -1.0 if limited else 0.0
        return cls(bool(limited), limit, remaining, retry_after, reset * unit)


@dataclass(frozen=True)
class MultiResult:
    """THROTTLE.MULTI's reply: the overall decision and one per limit."""

    overall: Result
    each: List[Result]

    @property
    def limited(self) -> bool:
        return self.overall.limited


@dataclass(frozen=True)
class PolicyResult:
    """POLICY.THROTTLE's reply; with ``headers=True`` also the values of the
    IETF draft's RateLimit-Policy and RateLimit fields."""

    result: Result
    headers: Dict[str, str]

    @property
    def limited(self) -> bool:
        return self.result.limited


@dataclass(frozen=True)
class Lease:
    """LEASE.ACQUIRE's reply. ``lease_id`` is None when refused;
    ``free_after`` is 0 while a slot is free, else seconds until the
    earliest lease expires."""

    acquired: bool
    max: int
    in_flight: int
    free_after: float
    lease_id: Optional[int]


@dataclass(frozen=True)
class LeaseUpdate:
    """LEASE.RELEASE's and LEASE.RENEW's reply: ``ok`` is False when the
    lease had expired or was released already."""

    ok: bool
    in_flight: int


@dataclass(frozen=True)
class Counter:
    """COUNTER.INCRBY's and COUNTER.GET's reply: the value and the seconds
    until the counter expires (``ttl`` None when there is no counter)."""

    value: int
    ttl: Optional[float]


@dataclass(frozen=True)
class LogWindow:
    """SLIDINGLOG.GET's reply: the requests counted in the period, and the
    seconds until the oldest of them and the last of them leave it."""

    count: int
    next_leaves: float
    all_leave: float


def _ms(seconds: float, what: str) -> int:
    """Seconds as whole milliseconds, rounded up (at least 1)."""
    if seconds <= 0:
        raise ValueError(f"{what} {seconds} must be positive")
    return max(1, math.ceil(seconds * 1000 - 1e-9))


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def policy_from_reply(reply: Any) -> Optional[Dict[str, Any]]:
    """Decodes POLICY.GET's map (RESP3) or flat list (RESP2)."""
    if reply is None:
        return None
    if isinstance(reply, (list, tuple)):
        reply = dict(zip(reply[::2], reply[1::2]))
    out = {_str(k): v for k, v in reply.items()}
    overrides = out.get("overrides") or {}
    if isinstance(overrides, (list, tuple)):
        overrides = dict(zip(overrides[::2], overrides[1::2]))
    return {
        "name": _str(out["name"]),
        "algorithm": _str(out["algorithm"]),
        "limit": _str(out["limit"]),
        "overrides": {_str(k): _str(v) for k, v in overrides.items()},
    }
