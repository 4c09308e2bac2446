"""A Flask API rate-limited by Sluice through redis-py.

Anonymous clients get 50 requests per hour (all 50 at once if they like),
clients with credentials (an X-API-Key header or HTTP basic auth) get 5000
per hour with bursts of 500. The budget is kept per user and client address,
under the Sluice key "<policy>:<user>@<ip>", so every worker process (gunicorn
-w 4) and every replica shares it.

Every rate-limited response carries X-RateLimit-Limit/Remaining/Reset and
the IETF draft's RateLimit and RateLimit-Policy fields; a refused request
gets 429 with Retry-After. Run it with:

    SLUICE_URL=redis://127.0.0.1:6379 gunicorn -w 4 'app:create_app()'
"""

import hmac
import logging
import os
from dataclasses import dataclass

import redis
from flask import Flask, g, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    """count requests per period seconds, up to burst of them at once."""

    name: str
    burst: int
    count: int
    period: int

    def throttle_args(self, key, quantity=1):
        # THROTTLE's max_burst is one less than what fits at once.
        return ("THROTTLE", key, self.burst - 1, self.count, self.period, quantity)


ANONYMOUS = Policy("anon", burst=50, count=50, period=3600)
AUTHENTICATED = Policy("user", burst=500, count=5000, period=3600)


def create_app(config=None):
    """Build the app. Settings come from config, else the environment:

    SLUICE_URL          redis://host:port of Sluice (default redis://127.0.0.1:6379)
    SLUICE_TIMEOUT      seconds to wait for Sluice before giving up (default 0.1)
    SLUICE_FAIL_OPEN    1: serve requests unlimited when Sluice is unreachable
                        (the default); 0: refuse them with 503
    TRUSTED_PROXY_HOPS  how many reverse proxies in front of the app append to
                        X-Forwarded-For (default 0: the header is ignored, as a
                        client can send any value it likes)
    API_KEYS            {api key: user name}
    USERS               {user name: password} for basic auth
    """
    app = Flask(__name__)
    app.config.update(
        SLUICE_URL=os.environ.get("SLUICE_URL", "redis://127.0.0.1:6379"),
        SLUICE_TIMEOUT=float(os.environ.get("SLUICE_TIMEOUT", "0.1")),
        SLUICE_FAIL_OPEN=os.environ.get("SLUICE_FAIL_OPEN", "1") != "0",
        TRUSTED_PROXY_HOPS=int(os.environ.get("TRUSTED_PROXY_HOPS", "0")),
        API_KEYS={"demo-key": "demo"},
        USERS={"demo": "demo-password"},
    )
    app.config.update(config or {})

    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        # request.remote_addr becomes the address the trusted proxies saw.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)

    timeout = app.config["SLUICE_TIMEOUT"]
    sluice = redis.Redis.from_url(
        app.config["SLUICE_URL"], socket_timeout=timeout, socket_connect_timeout=timeout
    )
    app.extensions["sluice"] = sluice

    @app.before_request
    def rate_limit():
        user, credentials_ok = authenticate()
        g.user = user
        policy = AUTHENTICATED if user else ANONYMOUS
        key = f"{policy.name}:{user or 'anonymous'}@{request.remote_addr}"
        try:
            limited, limit, remaining, retry_after, reset_after = sluice.execute_command(
                *policy.throttle_args(key)
            )
        except redis.RedisError as e:
            log.warning("rate limiter unavailable: %s", e)
            if app.config["SLUICE_FAIL_OPEN"]:
                return None if credentials_ok else unauthorized()
            return jsonify(error="rate limiter unavailable"), 503, {"Retry-After": "1"}
        g.ratelimit = policy, limit, remaining, reset_after
        if limited:
            return jsonify(error="too many requests", retry_after=retry_after), 429, {
                "Retry-After": str(retry_after)
            }
        # Bad credentials are refused only after they were counted, so
        # guessing keys costs from the anonymous budget.
        return None if credentials_ok else unauthorized()

    @app.after_request
    def rate_limit_headers(response):
        if "ratelimit" in g:
            policy, limit, remaining, reset_after = g.ratelimit
            response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Remaining"] = str(remaining)
            response.headers["X-RateLimit-Reset"] = str(reset_after)
            response.headers["RateLimit-Policy"] = f'"{policy.name}";q={policy.count};w={policy.period}'
            response.headers["RateLimit"] = f'"{policy.name}";r={remaining};t={reset_after}'
        return response

    def authenticate():
        """(user or None, whether the credentials presented, if any, are valid)."""
        api_key = request.headers.get("X-API-Key")
        if api_key is not None:
            for known, user in app.config["API_KEYS"].items():
                if hmac.compare_digest(api_key.encode(), known.encode()):
                    return user, True
            return None, False
        auth = request.authorization
        if auth is not None:
            password = app.config["USERS"].get(auth.username or "")
            if password is not None and hmac.compare_digest((auth.password or "").encode(), password.encode()):
                return auth.username, True
            return None, False
        return None, True

    def unauthorized():
        return jsonify(error="invalid credentials"), 401, {"WWW-Authenticate": 'Basic realm="api"'}

    @app.get("/")
    def index():
        return jsonify(hello=g.get("user") or "anonymous")

    @app.get("/items")
    def items():
        return jsonify(items=["a", "b", "c"])

    return app
