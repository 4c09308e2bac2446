"""Every command of the sync and the asyncio client against a real Sluice."""

import asyncio
import unittest

import redis

from sluice_ratelimit import (
    AsyncSluice,
    Counter,
    Lease,
    LeaseUpdate,
    Limit,
    LogWindow,
    Result,
    Sluice,
    parse_rule,
)
from support import URL, Clock, requires_sluice, server


class LimitTest(unittest.TestCase):
    def test_burst_is_max_burst(self):
        self.assertEqual(Limit(30, 60, burst=15).args(), (15, 30, 60))
        self.assertEqual(Limit(50, 3600).args(), (49, 50, 3600), "count at once by default")
        self.assertEqual(Limit.parse("5000/hour burst 499").args(), (499, 5000, 3600))
        self.assertEqual(parse_rule("10/second; 1000 per 2 days"), [Limit(10, 1), Limit(1000, 172800)])

    def test_invalid(self):
        for bad in (lambda: Limit(0, 60), lambda: Limit(1, 0), lambda: Limit(1, 1.5), lambda: Limit(1, 1, burst=-1)):
            with self.assertRaises(ValueError):
                bad()
        for rule in ("", "100", "100/fortnight", "1/second;; x"):
            with self.assertRaises(ValueError, msg=rule):
                parse_rule(rule)


@requires_sluice
class ClientTest(unittest.TestCase):
    def setUp(self):
        server().flushall()
        self.clock = Clock(self)
        self.sl = Sluice.from_url(URL, socket_timeout=10)

    def test_throttle(self):
        # The README's example: THROTTLE user123 15 30 60.
        self.assertEqual(self.sl.throttle("user123", Limit(30, 60, burst=15)), Result(False, 16, 15, 0.0, 2.0))
        self.assertEqual(self.sl.throttle("user123", Limit(30, 60, burst=15), 0).remaining, 15)
        self.assertEqual(self.sl.throttle("user123", Limit(30, 60, burst=15), 15).remaining, 0)
        self.assertEqual(self.sl.throttle("user123", Limit(30, 60, burst=15)), Result(True, 16, 0, 2.0, 32.0))
        self.assertEqual(self.sl.throttle("user123", Limit(30, 60, burst=15), 17).retry_after, -1.0, "never fits")
        with self.assertRaises(redis.ResponseError):
            self.sl.throttle("user123", Limit(30, 60, burst=15), "x")  # the server refuses it

    def test_throttle_multi(self):
        per_s, per_day = Limit(10, 1, burst=9), Limit(1000, 86400, burst=999)
        r = self.sl.throttle_multi([("u:s", per_s), ("u:d", per_day)], 10)
        self.assertFalse(r.limited)
        self.assertEqual([e.remaining for e in r.each], [0, 990])
        r = self.sl.throttle_multi([("u:s", per_s), ("u:d", per_day)])
        self.assertTrue(r.limited)
        self.assertEqual(r.overall.remaining, 0)
        self.assertEqual(self.sl.throttle("u:d", per_day, 0).remaining, 990, "refused: nothing charged")
        with self.assertRaises(ValueError):
            self.sl.throttle_multi([])

    def test_throttle_window(self):
        for i in range(3):
            self.assertFalse(self.sl.throttle_window("w", 3, 10, algorithm="fixed").limited)
        self.assertEqual(self.sl.throttle_window("w", 3, 10, algorithm="fixed"), Result(True, 3, 0, 10.0, 10.0))
        self.assertFalse(self.sl.throttle_window("s", 3, 10).limited)
        with self.assertRaises(ValueError):
            self.sl.throttle_window("w", 3, 10, algorithm="leaky")

    def test_policy_without_policies(self):
        self.assertEqual(self.sl.policy_list(), [])
        self.assertIsNone(self.sl.policy_get("anon"))
        with self.assertRaisesRegex(redis.ResponseError, "no such policy 'anon'"):
            self.sl.policy_throttle("anon", "k", headers=True)

    def test_lease(self):
        a = self.sl.lease_acquire("db", 2, 1.0)
        self.assertEqual(a, Lease(True, 2, 1, 0.0, a.lease_id))
        self.clock.advance(0.25)
        b = self.sl.lease_acquire("db", 2, 1.0)
        self.assertEqual(self.sl.lease_acquire("db", 2, 1.0), Lease(False, 2, 2, 0.75, None))
        self.assertEqual(self.sl.lease_renew("db", a.lease_id, 5), LeaseUpdate(True, 2))
        self.assertEqual(self.sl.lease_release("db", b.lease_id), LeaseUpdate(True, 1))
        self.assertEqual(self.sl.lease_release("db", b.lease_id), LeaseUpdate(False, 1))

    def test_counter(self):
        self.assertEqual(self.sl.counter_incrby("c", 1, 60), Counter(1, 60.0))
        self.clock.advance(10)
        self.assertEqual(self.sl.counter_incrby("c", 2, 60), Counter(3, 50.0))
        self.assertEqual(self.sl.counter_incrby("c", 1, 60, elastic=True), Counter(4, 60.0))
        self.assertEqual(self.sl.counter_get("c"), Counter(4, 60.0))
        self.assertEqual(self.sl.counter_get("none"), Counter(0, None))

    def test_slidinglog(self):
        self.assertEqual(self.sl.slidinglog_acquire("l", 3, 1, 2), Result(False, 3, 1, 0.0, 1.0))
        self.clock.advance(0.4)
        self.assertFalse(self.sl.slidinglog_acquire("l", 3, 1).limited)
        self.assertEqual(self.sl.slidinglog_acquire("l", 3, 1), Result(True, 3, 0, 0.6, 1.0))
        self.assertEqual(self.sl.slidinglog_get("l", 1), LogWindow(3, 0.6, 1.0))


@requires_sluice
class AsyncClientTest(unittest.TestCase):
    def setUp(self):
        server().flushall()
        self.clock = Clock(self)

    def test_every_command(self):
        async def main():
            sl = AsyncSluice.from_url(URL, socket_timeout=10)
            try:
                self.assertTrue(await sl.ping())
                self.assertEqual(await sl.throttle("user123", Limit(30, 60, burst=15)), Result(False, 16, 15, 0.0, 2.0))
                m = await sl.throttle_multi([("a", Limit(1, 1)), ("b", Limit(1, 1))])
                self.assertEqual(len(m.each), 2)
                self.assertFalse((await sl.throttle_window("w", 1, 1, algorithm="fixed")).limited)
                self.assertEqual(await sl.policy_list(), [])
                self.assertIsNone(await sl.policy_get("p"))
                lease = await sl.lease_acquire("db", 1, 1)
                self.assertEqual(await sl.lease_renew("db", lease.lease_id, 1), LeaseUpdate(True, 1))
                self.assertEqual(await sl.lease_release("db", lease.lease_id), LeaseUpdate(True, 0))
                self.assertEqual(await sl.counter_incrby("c", 5, 1), Counter(5, 1.0))
                self.assertEqual(await sl.counter_get("c"), Counter(5, 1.0))
                self.assertEqual(await sl.slidinglog_acquire("l", 1, 1), Result(False, 1, 0, 0.0, 1.0))
                self.assertEqual(await sl.slidinglog_get("l", 1), LogWindow(1, 1.0, 1.0))
                # Concurrent tasks share one budget: exactly 10 of 25 pass.
                results = await asyncio.gather(*(sl.throttle("burst", Limit(10, 60)) for _ in range(25)))
                self.assertEqual(sum(not r.limited for r in results), 10)
            finally:
                await sl.close()

        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
