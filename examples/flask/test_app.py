"""Tests for app.py against a real Sluice.

SLUICE_ADDR (host:port of a Sluice started with --enable-debug-command) must
be set; flask_test.go starts one and runs this file with /usr/bin/python3.
The server clock is frozen with DEBUG CLOCK SET, so every header is exact.
"""

import multiprocessing
import os
import socket
import unittest

import redis

import app as example

ADDR = os.environ.get("SLUICE_ADDR", "")
EPOCH = 1893456000000000000  # 2030-01-01T00:00:00Z
URL = f"redis://{ADDR}"


def sluice():
    return redis.Redis.from_url(URL, socket_timeout=10)


def freeze(seconds=0):
    sluice().execute_command("DEBUG", "CLOCK", "SET", EPOCH + seconds * 1_000_000_000)


def rate_headers(resp):
    names = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit", "Retry-After"]
    return {n: resp.headers[n] for n in names if n in resp.headers}


def worker(barrier, results, requests):
    """One gunicorn-style worker process: its own app and connection pool."""
    client = example.create_app({"SLUICE_URL": URL, "SLUICE_TIMEOUT": 10}).test_client()
    barrier.wait(timeout=30)
    codes = [client.get("/", environ_base={"REMOTE_ADDR": "198.51.100.20"}).status_code for _ in range(requests)]
    results.put(codes)


@unittest.skipUnless(ADDR, "SLUICE_ADDR is not set (run through flask_test.go)")
class AppTest(unittest.TestCase):
    def setUp(self):
        sluice().flushall()
        freeze()
        self.app = example.create_app({"SLUICE_URL": URL, "SLUICE_TIMEOUT": 10})
        self.client = self.app.test_client()

    def get(self, path="/", ip="192.0.2.7", client=None, **kw):
        return (client or self.client).get(path, environ_base={"REMOTE_ADDR": ip}, **kw)

    def test_anonymous_headers(self):
        resp = self.get()
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.get_json(), {"hello": "anonymous"})
        self.assertEqual(rate_headers(resp), {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": "72",
            "RateLimit-Policy": '"anon";q=50;w=3600',
            "RateLimit": '"anon";r=49;t=72',
        })

    def test_anonymous_exhaustion(self):
        for i in range(1, 51):
            resp = self.get()
            self.assertEqual(resp.status_code, 200, i)
            self.assertEqual(resp.headers["X-RateLimit-Remaining"], str(50 - i))
        resp = self.get()
        self.assertEqual(resp.status_code, 429)
        self.assertEqual(resp.get_json(), {"error": "too many requests", "retry_after": 72})
        self.assertEqual(rate_headers(resp), {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "3600",
            "RateLimit-Policy": '"anon";q=50;w=3600',
            "RateLimit": '"anon";r=0;t=3600',
            "Retry-After": "72",
        })
        # Another address has its own budget; 72 s later one more request fits.
        self.assertEqual(self.get(ip="192.0.2.8").status_code, 200)
        freeze(72)
        self.assertEqual(self.get().status_code, 200)
        self.assertEqual(self.get().status_code, 429)

    def test_api_key(self):
        resp = self.get(headers={"X-API-Key": "demo-key"})
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.get_json(), {"hello": "demo"})
        self.assertEqual(rate_headers(resp), {
            "X-RateLimit-Limit": "500",
            "X-RateLimit-Remaining": "499",
            "X-RateLimit-Reset": "1",  # 0.72 s, rounded up
            "RateLimit-Policy": '"user";q=5000;w=3600',
            "RateLimit": '"user";r=499;t=1',
        })
        # The key is user@ip.
        self.assertEqual(sluice().exists("user:demo@192.0.2.7"), 1)
        self.assertEqual(sluice().exists("anon:anonymous@192.0.2.7"), 0)

    def test_user_burst_exhaustion(self):
        for i in range(1, 501):
            resp = self.get(headers={"X-API-Key": "demo-key"})
            self.assertEqual(resp.status_code, 200, i)
        resp = self.get(headers={"X-API-Key": "demo-key"})
        self.assertEqual(resp.status_code, 429)
        self.assertEqual(resp.headers["Retry-After"], "1")
        self.assertEqual(resp.headers["RateLimit"], '"user";r=0;t=360')
        # The same user from another address, and anonymous users, are unaffected.
        self.assertEqual(self.get(ip="192.0.2.99", headers={"X-API-Key": "demo-key"}).headers["RateLimit"], '"user";r=499;t=1')
        self.assertEqual(self.get().headers["RateLimit"], '"anon";r=49;t=72')

    def test_basic_auth(self):
        resp = self.get(auth=("demo", "demo-password"))
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.headers["RateLimit"], '"user";r=499;t=1')

    def test_bad_credentials_are_counted_as_anonymous(self):
        for creds in ({"headers": {"X-API-Key": "guess"}}, {"auth": ("demo", "wrong")}):
            resp = self.get(**creds)
            self.assertEqual(resp.status_code, 401)
            self.assertEqual(resp.headers["RateLimit-Policy"], '"anon";q=50;w=3600')
        self.assertEqual(self.get().headers["X-RateLimit-Remaining"], "47")

    def test_forwarded_for(self):
        behind_proxy = example.create_app({"SLUICE_URL": URL, "TRUSTED_PROXY_HOPS": 1}).test_client()
        for ip in ("203.0.113.1", "203.0.113.2"):
            resp = self.get(ip="10.0.0.1", client=behind_proxy, headers={"X-Forwarded-For": f"6.6.6.6, {ip}"})
            self.assertEqual(resp.headers["X-RateLimit-Remaining"], "49", ip)
        self.assertEqual(sluice().exists("anon:anonymous@203.0.113.1", "anon:anonymous@203.0.113.2"), 2)
        # Without trusted proxies the header is ignored: both count against the peer.
        for remaining, ip in (("49", "203.0.113.3"), ("48", "203.0.113.4")):
            resp = self.get(ip="10.0.0.1", headers={"X-Forwarded-For": ip})
            self.assertEqual(resp.headers["X-RateLimit-Remaining"], remaining)

    def test_sluice_unreachable(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = f"redis://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening
            fail_open = example.create_app({"SLUICE_URL": closed, "SLUICE_TIMEOUT": 0.2}).test_client()
            with self.assertLogs("app", "WARNING") as logs:
                resp = self.get(client=fail_open)
            self.assertEqual(resp.status_code, 200)
            self.assertEqual(rate_headers(resp), {})
            self.assertIn("rate limiter unavailable", logs.output[0])
            fail_closed = example.create_app({"SLUICE_URL": closed, "SLUICE_FAIL_OPEN": False}).test_client()
            with self.assertLogs("app", "WARNING"):
                resp = self.get(client=fail_closed)
            self.assertEqual(resp.status_code, 503)
            self.assertEqual(rate_headers(resp), {"Retry-After": "1"})

    def test_four_workers_share_one_limit(self):
        """4 processes, like gunicorn -w 4, each 20 requests from one address: 50 pass in all."""
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=worker, args=(barrier, results, 20)) for _ in range(4)]
        for p in procs:
            p.start()
        codes = [code for _ in procs for code in results.get(timeout=60)]
        for p in procs:
            p.join(timeout=30)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(len(codes), 80)
        self.assertEqual(codes.count(200), 50)
        self.assertEqual(codes.count(429), 30)


if __name__ == "__main__":
    unittest.main()
