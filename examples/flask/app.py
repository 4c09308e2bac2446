"""A Flask API rate-limited by Flask-Limiter, with the counts kept in Sluice.

Anonymous clients get 50 requests per hour, clients with credentials (an
X-API-Key header or HTTP basic auth) 5000 per hour, each budget per user and
client address. The "gcra" strategy makes them smooth: all 50 at once if a
client likes, then one more every 72 s. Every worker process and replica
shares the budgets, because they live in Sluice:

    SLUICE_URL=sluice://127.0.0.1:6379 gunicorn -w 4 'app:create_app()'
"""

import hmac
import os

import redis
import sluice_ratelimit  # noqa: F401  registers sluice:// with Flask-Limiter
from flask import Flask, g, jsonify, request
from flask_limiter import Limiter
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(config=None):
    app = Flask(__name__)
    app.config.update(
        SLUICE_URL=os.environ.get("SLUICE_URL", "sluice://127.0.0.1:6379"),
        SLUICE_TIMEOUT=float(os.environ.get("SLUICE_TIMEOUT", "0.1")),
        SLUICE_FAIL_OPEN=os.environ.get("SLUICE_FAIL_OPEN", "1") != "0",
        TRUSTED_PROXY_HOPS=int(os.environ.get("TRUSTED_PROXY_HOPS", "0")),
        API_KEYS={"demo-key": "demo"},  # use your real authentication
        USERS={"demo": "demo-password"},
    )
    app.config.update(config or {})
    if app.config["TRUSTED_PROXY_HOPS"]:  # request.remote_addr is what the proxies saw
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXY_HOPS"])

    @app.before_request
    def authenticate():  # before the limiter: it keys and sizes budgets by g.user
        g.user, g.bad_credentials = None, False
        key, auth = request.headers.get("X-API-Key"), request.authorization
        if key is not None:
            users = [u for k, u in app.config["API_KEYS"].items() if hmac.compare_digest(key.encode(), k.encode())]
            g.user = users[0] if users else None
        elif auth is not None:
            password = app.config["USERS"].get(auth.username or "", "")
            ok = password and hmac.compare_digest((auth.password or "").encode(), password.encode())
            g.user = auth.username if ok else None
        g.bad_credentials = (key is not None or auth is not None) and g.user is None

    timeout = app.config["SLUICE_TIMEOUT"]
    Limiter(
        lambda: f"{g.user or 'anonymous'}@{request.remote_addr}",
        app=app,
        storage_uri=app.config["SLUICE_URL"],
        storage_options={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        strategy="gcra",
        default_limits=[lambda: "5000/hour" if g.user else "50/hour"],
        headers_enabled=True,
        swallow_errors=app.config["SLUICE_FAIL_OPEN"],  # Sluice unreachable: serve, and log it
    )

    @app.before_request
    def refuse_bad_credentials():  # after the limiter, so that guessing is counted
        if g.bad_credentials:
            return jsonify(error="invalid credentials"), 401, {"WWW-Authenticate": 'Basic realm="api"'}

    @app.errorhandler(redis.RedisError)
    def limiter_unavailable(e):  # only reached with SLUICE_FAIL_OPEN=0
        return jsonify(error="rate limiter unavailable"), 503, {"Retry-After": "1"}

    @app.errorhandler(429)
    def too_many_requests(e):
        return jsonify(error="too many requests", limit=str(e.description)), 429

    @app.get("/")
    def index():
        return jsonify(hello=g.user or "anonymous")

    @app.get("/items")
    def items():
        return jsonify(items=["a", "b", "c"])

    return app
