"""Flask-Limiter on sluice://: an app written for Flask-Limiter, unchanged
but for its storage_uri, behaves as it does on Flask-Limiter's own
memory:// storage.

ReplayTest runs one app twice, on memory:// and on sluice://, and replays
the same random requests through both under one clock (the server's, frozen
with DEBUG CLOCK SET, and time.time patched to match): every status code and
every rate-limit header must agree, for the fixed-window, the elastic and
the moving-window strategies. The app exercises what Flask-Limiter users
write: default limits, several limits on a route, exemptions, shared limits,
custom key functions, costs, per-method limits, conditional deductions,
blueprint limits and renamed headers. BehaviourTest then checks the
headline behaviours on sluice:// alone, and that four worker processes
share one budget.
"""

import multiprocessing
import random
import unittest

from flask import Blueprint, Flask, jsonify, request
from flask_limiter import HeaderNames, Limiter
from flask_limiter.util import get_remote_address

import sluice_ratelimit  # noqa: F401  registers sluice://
from support import EPOCH, EPOCH_NS, URL, Clock, requires_sluice, server

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "X-Quota-Left")


def build(storage_uri, strategy="fixed-window", **limiter_options):
    """The app under test: every route shows one Flask-Limiter feature."""
    app = Flask(__name__)
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=storage_uri,
        storage_options=limiter_options.pop("storage_options", {"socket_timeout": 10} if storage_uri.startswith("sluice") else {}),
        strategy=strategy,
        default_limits=["50/hour"],
        headers_enabled=True,
        header_name_mapping={HeaderNames.REMAINING: "X-Quota-Left"} if limiter_options.pop("rename", False) else {},
        **limiter_options,
    )

    @app.route("/")
    def index():  # the default limit: 50 per hour per IP
        return "ok"

    @app.route("/multi")
    @limiter.limit("2/second; 5/minute")
    def multi():
        return "ok"

    @app.route("/exempt")
    @limiter.exempt
    def exempt():
        return "ok"

    shared = limiter.shared_limit("3/minute", scope="pair")

    @app.route("/shared1")
    @shared
    def shared1():
        return "ok"

    @app.route("/shared2")
    @shared
    def shared2():
        return "ok"

    @app.route("/user")
    @limiter.limit("2/minute", key_func=lambda: request.headers.get("X-User", "anonymous"))
    def user():
        return "ok"

    @app.route("/expensive")
    @limiter.limit("5/minute", cost=2)
    def expensive():
        return "ok"

    @app.route("/write", methods=["GET", "POST"])
    @limiter.limit("1/minute", per_method=True, methods=["POST"])
    def write():
        return "ok"

    @app.route("/flaky")
    @limiter.limit("2/minute", deduct_when=lambda response: response.status_code == 500)
    def flaky():
        return ("boom", 500) if request.args.get("fail") else "ok"

    @app.route("/admin")
    @limiter.limit("1/minute", exempt_when=lambda: request.headers.get("X-Admin") == "yes")
    def admin():
        return "ok"

    bp = Blueprint("bp", __name__)

    @bp.route("/bp")
    def in_blueprint():
        return "ok"

    limiter.limit("3/minute")(bp)
    app.register_blueprint(bp)

    @app.errorhandler(429)
    def too_many(e):
        return jsonify(error="too many requests", limit=str(e.description)), 429

    return app, limiter


REQUESTS = [
    ("GET", "/", {}),
    ("GET", "/multi", {}),
    ("GET", "/exempt", {}),
    ("GET", "/shared1", {}),
    ("GET", "/shared2", {}),
    ("GET", "/user", {"X-User": "alice"}),
    ("GET", "/user", {"X-User": "bob"}),
    ("GET", "/expensive", {}),
    ("POST", "/write", {}),
    ("GET", "/write", {}),
    ("GET", "/flaky?fail=1", {}),
    ("GET", "/flaky", {}),
    ("GET", "/admin", {"X-Admin": "yes"}),
    ("GET", "/admin", {}),
    ("GET", "/bp", {}),
]


def rate_headers(resp):
    return {h: resp.headers[h] for h in RATE_HEADERS if h in resp.headers}


@requires_sluice
class ReplayTest(unittest.TestCase):
    def setUp(self):
        server().flushall()
        self.clock = Clock(self)

    def replay(self, strategy, seed, steps=300, **options):
        server().flushall()
        rng = random.Random(seed)
        memory = build("memory://", strategy, **dict(options)).__getitem__(0).test_client()
        sluice = build(URL, strategy, **dict(options)).__getitem__(0).test_client()
        seconds = 0
        counts, refused = {}, set()
        for k in range(steps):
            seconds += rng.choice([0] * 12 + [1, 1, 2, 30, 300])
            # Each request at an instant of its own fraction of a second
            # (k/512 s): no two are a whole number of seconds apart.
            self.clock.set(EPOCH_NS + seconds * 10**9 + k * 1_953_125)
            method, path, headers = rng.choice(REQUESTS)
            ip = rng.choice(["192.0.2.1", "192.0.2.2"])
            want = memory.open(path, method=method, headers=headers, environ_base={"REMOTE_ADDR": ip})
            got = sluice.open(path, method=method, headers=headers, environ_base={"REMOTE_ADDR": ip})
            where = f"step {k}, t={seconds}+{k}/512 s: {method} {path} {headers} from {ip}"
            self.assertEqual(want.status_code, got.status_code, where)
            self.assertEqual(rate_headers(want), rate_headers(got), where)
            self.assertEqual(want.get_data(), got.get_data(), where)
            counts[got.status_code] = counts.get(got.status_code, 0) + 1
            if got.status_code == 429:
                refused.add(path)
        # The sequence must have exercised refusals on many routes.
        self.assertGreater(counts.get(429, 0), steps // 40, counts)
        self.assertGreater(counts.get(200, 0), steps // 4, counts)
        self.assertGreaterEqual(len(refused), 4, refused)

    def test_fixed_window(self):
        for seed in range(3):
            self.replay("fixed-window", seed)

    def test_fixed_window_elastic_expiry(self):
        for seed in range(2):
            self.replay("fixed-window-elastic-expiry", seed)

    def test_moving_window(self):
        for seed in range(3):
            self.replay("moving-window", seed)

    def test_options(self):
        self.replay("fixed-window", 7, rename=True, retry_after="http-date")
        self.replay("moving-window", 8, fail_on_first_breach=False, key_prefix="myapp")


def worker(url, barrier, results, requests):
    """One worker process (as gunicorn -w 4 runs them): its own app, its own
    connection pool."""
    app, _ = build(url)
    client = app.test_client()
    barrier.wait(timeout=60)
    results.put([client.get("/", environ_base={"REMOTE_ADDR": "198.51.100.20"}).status_code for _ in range(requests)])


@requires_sluice
class BehaviourTest(unittest.TestCase):
    def setUp(self):
        server().flushall()
        self.clock = Clock(self)

    def get(self, client, path="/", ip="192.0.2.7", **kw):
        return client.get(path, environ_base={"REMOTE_ADDR": ip}, **kw)

    def test_fifty_per_hour_per_ip(self):
        for strategy, retry_after in (("fixed-window", "3601"), ("moving-window", "3601"), ("gcra", "73")):
            server().flushall()
            self.clock.set(EPOCH_NS)
            client = build(URL, strategy)[0].test_client()
            codes = [self.get(client).status_code for _ in range(60)]
            self.assertEqual(codes, [200] * 50 + [429] * 10, strategy)
            resp = self.get(client)
            self.assertEqual(resp.status_code, 429)
            self.assertEqual(resp.get_json(), {"error": "too many requests", "limit": "50 per 1 hour"})
            self.assertEqual(resp.headers["X-RateLimit-Limit"], "50", strategy)
            self.assertEqual(resp.headers["X-RateLimit-Remaining"], "0", strategy)
            self.assertEqual(resp.headers["Retry-After"], retry_after, strategy)
            self.assertEqual(self.get(client, ip="192.0.2.8").status_code, 200, "another address has its own budget")
            self.clock.advance(3600)
            self.assertEqual(self.get(client).status_code, 200, f"{strategy}: an hour later")

    def test_gcra_is_smooth(self):
        """50/hour under gcra: the 50 at once, then one more every 72 s."""
        client = build(URL, "gcra")[0].test_client()
        for _ in range(50):
            self.assertEqual(self.get(client).status_code, 200)
        resp = self.get(client)
        self.assertEqual((resp.status_code, resp.headers["X-RateLimit-Reset"]), (429, str(EPOCH + 72 + 1)))
        self.clock.advance(72)
        self.assertEqual([self.get(client).status_code for _ in range(2)], [200, 429])

    def test_headers(self):
        client = build(URL)[0].test_client()
        resp = self.get(client, "/multi")
        self.assertEqual(rate_headers(resp), {
            "X-RateLimit-Limit": "2",
            "X-RateLimit-Remaining": "1",
            "X-RateLimit-Reset": str(EPOCH + 1 + 1),
            "Retry-After": "2",
        })

    def test_storage_unreachable(self):
        app, limiter = build("sluice://127.0.0.1:1", swallow_errors=True, storage_options={"socket_connect_timeout": 0.2})
        with self.assertLogs("flask-limiter", "ERROR"):
            self.assertEqual(self.get(app.test_client()).status_code, 200, "swallow_errors: fail open")

    def test_four_workers_share_one_budget(self):
        """Four processes, each its own app and pool, 20 requests each from
        one address after a barrier: exactly 50 of the 80 pass."""
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=worker, args=(URL, barrier, results, 20)) for _ in range(4)]
        for p in procs:
            p.start()
        codes = [code for _ in procs for code in results.get(timeout=120)]
        for p in procs:
            p.join(timeout=30)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual((len(codes), codes.count(200), codes.count(429)), (80, 50, 30))


if __name__ == "__main__":
    unittest.main()
