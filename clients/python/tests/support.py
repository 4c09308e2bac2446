"""What the tests share: the Sluice under test (SLUICE_ADDR, set by
python_test.go) and one clock for it and for Python.

The server's clock is frozen with DEBUG CLOCK SET, and time.time is patched
to read the same instant, so every decision and every header is exact.
"""

from __future__ import annotations

import os
import time
import unittest
from unittest import mock

import redis

ADDR = os.environ.get("SLUICE_ADDR", "")
URL = f"sluice://{ADDR}"
EPOCH_NS = 1893456000000000000  # 2030-01-01T00:00:00Z
EPOCH = EPOCH_NS // 10**9

requires_sluice = unittest.skipUnless(ADDR, "SLUICE_ADDR is not set (run through python_test.go)")


def server() -> "redis.Redis":
    return redis.Redis.from_url(f"redis://{ADDR}", socket_timeout=10)


class Clock:
    """The server's clock and time.time, frozen together and moved in steps
    of whole nanoseconds."""

    def __init__(self, test: unittest.TestCase, at_ns: int = EPOCH_NS) -> None:
        self.ns = at_ns
        self._r = server()
        patcher = mock.patch.object(time, "time", self.time)
        patcher.start()
        test.addCleanup(patcher.stop)
        test.addCleanup(self._r.execute_command, "DEBUG", "CLOCK", "REAL")
        self.set(at_ns)

    def time(self) -> float:
        return self.ns / 1e9

    def set(self, at_ns: int) -> None:
        self.ns = at_ns
        self._r.execute_command("DEBUG", "CLOCK", "SET", at_ns)

    def advance(self, seconds: float) -> None:
        self.set(self.ns + round(seconds * 1e9))
