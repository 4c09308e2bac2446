"""redis-py against a running Sluice.

Run by compat/python_test.go, which starts the server and sets SLUICE_ADDR
(host:port, with DEBUG enabled). Replays ../testdata/sequence.json (the
README example and a burst-exhaustion sequence under a frozen clock) one
command at a time and as a pipeline, in RESP2 and, with redis-py >= 5.0,
RESP3; then shares one client among threads.
"""

import json
import os
import threading
import unittest

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "testdata", "sequence.json")) as f:
    SEQ = json.load(f)
EPOCH = int(SEQ["epoch_ns"])
HOST, _, PORT = os.environ["SLUICE_ADDR"].rpartition(":")
REDIS_PY = tuple(int(x) for x in redis.__version__.split(".")[:2])


def client(protocol=2, **kw):
    if protocol != 2:
        kw["protocol"] = protocol
    r = redis.Redis(host=HOST, port=int(PORT), socket_timeout=10, **kw)
    r.flushall()
    return r


def clock(step):
    return EPOCH + step["at_s"] * 1_000_000_000


def check(test, step, got):
    """got is a reply or the exception redis-py raised or returned."""
    if "error" in step:
        test.assertIsInstance(got, redis.ResponseError, step["name"])
        # redis-py strips a leading "ERR " from the message.
        test.assertIn(str(got), (step["error"], step["error"][len("ERR "):]), step["name"])
    else:
        test.assertNotIsInstance(got, Exception, step["name"])
        test.assertEqual(got, step["reply"], step["name"])
        test.assertTrue(all(type(x) is int for x in got), step["name"])


class RedisPyTest(unittest.TestCase):
    def replay(self, r, protocol=2):
        info = r.execute_command("CLIENT", "INFO")
        self.assertIn(f" resp={protocol} ", info.decode() if isinstance(info, bytes) else str(info))
        now = None
        for step in SEQ["steps"]:
            if clock(step) != now:
                now = clock(step)
                self.assertIn(r.execute_command("DEBUG", "CLOCK", "SET", now), (b"OK", "OK", True))
            try:
                got = r.execute_command(*step["args"])
            except redis.ResponseError as e:
                got = e
            check(self, step, got)

    def pipeline(self, r):
        p = r.pipeline(transaction=False)
        now = None
        at = []  # index of each step's reply
        n = 0
        for step in SEQ["steps"]:
            if clock(step) != now:
                now = clock(step)
                p.execute_command("DEBUG", "CLOCK", "SET", now)
                n += 1
            p.execute_command(*step["args"])
            at.append(n)
            n += 1
        replies = p.execute(raise_on_error=False)
        self.assertEqual(len(replies), n)
        for step, i in zip(SEQ["steps"], at):
            check(self, step, replies[i])

    def test_resp2(self):
        self.replay(client())

    def test_resp2_pipeline(self):
        self.pipeline(client())

    @unittest.skipIf(REDIS_PY < (5, 0), f"redis-py {redis.__version__} has no RESP3 (protocol=3 arrived in 5.0)")
    def test_resp3(self):
        self.replay(client(protocol=3), protocol=3)

    @unittest.skipIf(REDIS_PY < (5, 0), f"redis-py {redis.__version__} has no RESP3 (protocol=3 arrived in 5.0)")
    def test_resp3_pipeline(self):
        self.pipeline(client(protocol=3))

    def test_threads_share_a_pool(self):
        """16 threads x 10 calls through one client on one key: exactly the limit of 50 fits."""
        r = client(max_connections=16)
        r.execute_command("DEBUG", "CLOCK", "SET", EPOCH)
        results = []
        lock = threading.Lock()
        start = threading.Barrier(16)

        def work():
            start.wait(timeout=10)
            for _ in range(10):
                reply = r.execute_command("THROTTLE", "shared", 49, 50, 3600)
                with lock:
                    results.append(reply[0])

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        self.assertEqual(len(results), 160)
        self.assertEqual(results.count(0), 50)
        self.assertEqual(results.count(1), 110)


if __name__ == "__main__":
    unittest.main()
