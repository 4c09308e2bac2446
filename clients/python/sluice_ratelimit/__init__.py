"""Python client for Sluice, the rate-limiting server that speaks the Redis
protocol, and a ``sluice://`` storage for the limits library.

- :class:`Sluice` (sync) and :class:`AsyncSluice` (asyncio): every Sluice
  command, typed, on redis-py.
- Flask-Limiter, SlowAPI and anything else built on limits: ``import
  sluice_ratelimit`` registers the ``sluice://`` storage and the ``gcra``
  strategy (see :mod:`sluice_ratelimit.storage`), so an app switches with
  ``storage_uri="sluice://host:6379"``.
- :mod:`sluice_ratelimit.cluster`: redis-py's ``RedisCluster`` with its
  slot-map reload after a node's death fixed for redis-py 4.3.
- :mod:`sluice_ratelimit.testing`: a pytest/unittest-friendly helper that
  starts a real Sluice on a free loopback port with a frozen clock.
"""

from .aio import AsyncSluice
from .client import Sluice
from .types import Counter, Lease, LeaseUpdate, Limit, LogWindow, MultiResult, PolicyResult, Result, parse_rule

__version__ = "0.2.0"

__all__ = [
    "Sluice",
    "AsyncSluice",
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

try:  # the limits library is optional: register the storage when it is there
    import limits as _limits  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:
    from . import storage as _storage  # noqa: F401  (registers sluice://)
