"""Tests for app.py against a real Sluice.

SLUICE_ADDR (host:port of a Sluice started with --enable-debug-command) must
be set; flask_test.go starts one and runs this file with /usr/bin/python3 and
PYTHONPATH=clients/python. The server clock is frozen with DEBUG CLOCK SET and
time.time patched to match, so every header is exact.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import redis

import app as example

ADDR = os.environ.get("SLUICE_ADDR", "")
URL = f"sluice://{ADDR}"
EPOCH = 1893456000  # 2030-01-01T00:00:00Z


def sluice():
    return redis.Redis.from_url(f"redis://{ADDR}", socket_timeout=10)


def rate_headers(resp):
    names = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"]
    return {n: resp.headers[n] for n in names if n in resp.headers}


@unittest.skipUnless(ADDR, "SLUICE_ADDR is not set (run through flask_test.go)")
class AppTest(unittest.TestCase):
    def setUp(self):
        sluice().flushall()
        self.freeze(0)
        patcher = mock.patch.object(time, "time", lambda: self.now)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.client = example.create_app({"SLUICE_URL": URL, "SLUICE_TIMEOUT": 10}).test_client()

    def freeze(self, seconds):
        self.now = EPOCH + seconds
        sluice().execute_command("DEBUG", "CLOCK", "SET", self.now * 10**9)

    def get(self, path="/", ip="192.0.2.7", client=None, **kw):
        return (client or self.client).get(path, environ_base={"REMOTE_ADDR": ip}, **kw)

    def test_anonymous(self):
        resp = self.get()
        self.assertEqual((resp.status_code, resp.get_json()), (200, {"hello": "anonymous"}))
        self.assertEqual(rate_headers(resp), {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": str(EPOCH + 72 + 1),  # full again in 72 s (Flask-Limiter adds 1)
            "Retry-After": "73",  # Flask-Limiter sends it on every response
        })
        for _ in range(49):
            self.assertEqual(self.get().status_code, 200)
        resp = self.get()
        self.assertEqual(resp.status_code, 429)
        self.assertEqual(resp.get_json(), {"error": "too many requests", "limit": "50 per 1 hour"})
        self.assertEqual(rate_headers(resp)["Retry-After"], "73")
        self.assertEqual(self.get(ip="192.0.2.8").status_code, 200, "another address has its own budget")
        self.freeze(72)
        self.assertEqual([self.get().status_code for _ in range(2)], [200, 429], "one more every 72 s")

    def test_api_key_and_basic_auth(self):
        resp = self.get(headers={"X-API-Key": "demo-key"})
        self.assertEqual(resp.get_json(), {"hello": "demo"})
        self.assertEqual(rate_headers(resp)["X-RateLimit-Limit"], "5000")
        resp = self.get(auth=("demo", "demo-password"))
        self.assertEqual((resp.get_json(), resp.headers["X-RateLimit-Remaining"]), ({"hello": "demo"}, "4998"))
        self.assertEqual(self.get().headers["X-RateLimit-Remaining"], "49", "anonymous has its own budget")

    def test_bad_credentials_are_counted_as_anonymous(self):
        for creds in ({"headers": {"X-API-Key": "guess"}}, {"auth": ("demo", "wrong")}):
            resp = self.get(**creds)
            self.assertEqual(resp.status_code, 401)
            self.assertEqual(resp.headers["X-RateLimit-Limit"], "50")
        self.assertEqual(self.get().headers["X-RateLimit-Remaining"], "47")

    def test_forwarded_for(self):
        behind_proxy = example.create_app({"SLUICE_URL": URL, "TRUSTED_PROXY_HOPS": 1}).test_client()
        for ip in ("203.0.113.1", "203.0.113.2"):
            resp = self.get(ip="10.0.0.1", client=behind_proxy, headers={"X-Forwarded-For": f"6.6.6.6, {ip}"})
            self.assertEqual(resp.headers["X-RateLimit-Remaining"], "49", ip)
        # Without trusted proxies the header is ignored: both count against the peer.
        for remaining, ip in (("49", "203.0.113.3"), ("48", "203.0.113.4")):
            resp = self.get(ip="10.0.0.1", headers={"X-Forwarded-For": ip})
            self.assertEqual(resp.headers["X-RateLimit-Remaining"], remaining)

    def test_sluice_unreachable(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = f"sluice://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening
            fail_open = example.create_app({"SLUICE_URL": closed, "SLUICE_TIMEOUT": 0.2}).test_client()
            with self.assertLogs("flask-limiter", "ERROR"):
                resp = self.get(client=fail_open)
            self.assertEqual((resp.status_code, rate_headers(resp)), (200, {}))
            fail_closed = example.create_app({"SLUICE_URL": closed, "SLUICE_FAIL_OPEN": False}).test_client()
            resp = self.get(client=fail_closed)
            self.assertEqual((resp.status_code, rate_headers(resp)), (503, {"Retry-After": "1"}))

    def test_gunicorn_workers_share_one_budget(self):
        """gunicorn -w 4 serving 80 concurrent requests from one address: exactly 50 pass."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "4", "-b", "127.0.0.1:0", "app:create_app()"],
            env={**os.environ, "SLUICE_URL": URL, "SLUICE_TIMEOUT": "10"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.addCleanup(proc.stderr.close)
        self.addCleanup(proc.wait, 30)
        self.addCleanup(proc.terminate)
        port, booted = None, 0
        for line in proc.stderr:  # gunicorn logs its address, then each worker
            if m := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line):
                port = m.group(1)
            booted += "Booting worker" in line
            if port and booted == 4:
                break
        self.assertIsNotNone(port, "gunicorn did not start")
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # never let its log block it

        def get(_):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
                    return resp.status
            except urllib.error.HTTPError as e:
                return e.code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(get, range(80)))
        self.assertEqual((codes.count(200), codes.count(429)), (50, 30))


if __name__ == "__main__":
    unittest.main()
