"""The sluice:// storage against the limits library's own reference, its
in-memory storage: the same random sequence of hits, tests, window stats
and clears, under one clock, must get the same answers for the
fixed-window, fixed-window-elastic-expiry and moving-window strategies.
Then the gcra strategy, and limits' asyncio API on async+sluice://.

Every operation happens at an instant whose fraction of a second is unique
(k/512 s for the k-th), so no two operations are ever a whole number of
seconds apart: limits' storages compare float timestamps with >= at the
window's edge, Sluice counts in nanoseconds, and the instant exactly one
window later (where the two could differ by definition) never occurs.
"""

import asyncio
import random
import unittest

from limits import parse
from limits.aio import strategies as aio_strategies
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES

import sluice_ratelimit  # noqa: F401  registers sluice://
from sluice_ratelimit.storage import AsyncSluiceStorage, SluiceStorage
from support import EPOCH, EPOCH_NS, URL, Clock, requires_sluice, server

ITEMS = ["3/second", "5/10 seconds", "2/minute", "4 per 3 seconds"]


@requires_sluice
class ParityTest(unittest.TestCase):
    def setUp(self):
        server().flushall()
        self.clock = Clock(self)

    def replay(self, strategy, seed, steps=500):
        rng = random.Random(seed)
        server().flushall()
        memory = MemoryStorage()
        sluice = storage_from_string(URL, socket_timeout=10)
        self.assertIsInstance(sluice, SluiceStorage)
        ref, got = STRATEGIES[strategy](memory), STRATEGIES[strategy](sluice)
        items = [parse(s) for s in ITEMS]
        seconds = 0
        for k in range(steps):
            seconds += rng.choice([0, 0, 0, 0, 1, 2, 7])
            self.clock.set(EPOCH_NS + seconds * 10**9 + k * 1_953_125)  # k/512 s
            item, who = rng.choice(items), rng.choice(["alice", "bob"])
            op = rng.random()
            where = f"step {k} (t={seconds}+{k}/512 s) {strategy} {item} {who}"
            if op < 0.55:
                cost = rng.choice([1, 1, 1, 2])
                self.assertEqual(ref.hit(item, who, cost=cost), got.hit(item, who, cost=cost), f"{where}: hit cost {cost}")
            elif op < 0.75:
                self.assertEqual(ref.test(item, who), got.test(item, who), f"{where}: test")
            elif op < 0.97:
                self.assertEqual(ref.get_window_stats(item, who), got.get_window_stats(item, who), f"{where}: stats")
            else:
                ref.clear(item, who)
                got.clear(item, who)
        memory.reset()

    def test_fixed_window(self):
        for seed in range(3):
            self.replay("fixed-window", seed)

    def test_fixed_window_elastic_expiry(self):
        for seed in range(3):
            self.replay("fixed-window-elastic-expiry", seed)

    def test_moving_window(self):
        for seed in range(3):
            self.replay("moving-window", seed)

    def test_storage_basics(self):
        s = storage_from_string(URL, socket_timeout=10)
        self.assertTrue(s.check())
        self.assertEqual(s.incr("k", 60), 1)
        self.assertEqual(s.incr("k", 60, amount=4), 5)
        self.assertEqual(s.get("k"), 5)
        self.assertEqual(s.get_expiry("k"), EPOCH + 60)
        s.clear("k")
        self.assertEqual(s.get("k"), 0)
        s.incr("LIMITER/a/1/1/minute", 60)
        s.incr("other", 60)
        # limits' reset deletes its own keys (LIMITER*) through SCAN
        self.assertEqual(s.reset(), 1)
        self.assertEqual((s.get("LIMITER/a/1/1/minute"), s.get("other")), (0, 1))
        self.assertFalse(storage_from_string("sluice://127.0.0.1:1", socket_connect_timeout=0.2).check())


@requires_sluice
class GCRATest(unittest.TestCase):
    def setUp(self):
        server().flushall()
        self.clock = Clock(self)
        self.storage = storage_from_string(URL, socket_timeout=10)
        self.gcra = STRATEGIES["gcra"](self.storage)

    def test_smooth(self):
        """10/minute: all ten at once, then one every 6 s, no window edge."""
        item = parse("10/minute")
        self.assertEqual(self.gcra.get_window_stats(item, "u"), (EPOCH, 10))
        for i in range(10):
            self.assertTrue(self.gcra.hit(item, "u"), i)
        self.assertFalse(self.gcra.test(item, "u"))
        self.assertFalse(self.gcra.hit(item, "u"))
        self.assertEqual(self.gcra.get_window_stats(item, "u"), (EPOCH + 6, 0), "one more fits in 6 s")
        self.clock.advance(6)
        self.assertEqual(self.gcra.get_window_stats(item, "u"), (EPOCH + 60, 1), "full again 54 s later")
        self.assertTrue(self.gcra.hit(item, "u"))
        self.assertFalse(self.gcra.hit(item, "u"))
        self.clock.advance(60)
        self.assertTrue(self.gcra.hit(item, "u", cost=10))
        self.gcra.clear(item, "u")
        self.assertEqual(self.gcra.get_window_stats(item, "u"), (EPOCH + 66, 10))

    def test_needs_sluice(self):
        from limits.errors import ConfigurationError

        with self.assertRaisesRegex(ConfigurationError, "gcra strategy needs a sluice:// storage"):
            STRATEGIES["gcra"](MemoryStorage())


@requires_sluice
class AsyncTest(unittest.TestCase):
    def setUp(self):
        server().flushall()
        self.clock = Clock(self)

    def test_async_strategies(self):
        async def main():
            storage = storage_from_string("async+" + URL, socket_timeout=10)
            self.assertIsInstance(storage, AsyncSluiceStorage)
            self.assertTrue(await storage.check())
            item = parse("2/minute")
            for name in ("fixed-window", "moving-window", "gcra"):
                limiter = aio_strategies.STRATEGIES[name](storage)
                self.assertEqual([await limiter.hit(item, name) for _ in range(3)], [True, True, False], name)
                self.assertFalse(await limiter.test(item, name), name)
                reset, remaining = await limiter.get_window_stats(item, name)
                self.assertEqual(remaining, 0, name)
            self.assertEqual(await storage.get("LIMITER/fixed-window/2/1/minute"), 3)
            self.assertEqual(await storage.get_expiry("LIMITER/fixed-window/2/1/minute"), EPOCH + 60)
            self.assertEqual(await storage.get_moving_window("LIMITER/moving-window/2/1/minute", 2, 60), (EPOCH, 2))
            await storage.clear("LIMITER/moving-window/2/1/minute")
            self.assertEqual(await storage.get_moving_window("LIMITER/moving-window/2/1/minute", 2, 60), (EPOCH, 0))
            self.assertEqual(await storage.incr("e", 60, elastic_expiry=True), 1)
            await storage.storage.close()

        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
