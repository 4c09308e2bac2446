#!/usr/bin/env bash
# Installs every client the tests in compat/, clients/, examples/, deploy/
# and server/ drive, so none of them skips: redis-cli and redis-benchmark
# (redis-tools; redis-server for the bench comparisons), redis-py, Flask,
# Flask-Limiter, limits, gunicorn, venv and pip for Debian's /usr/bin/python3,
# the locked Node packages (ioredis, node-redis, express) in compat/node,
# clients/node and examples/express, promtool (Debian's prometheus package)
# for the checks of deploy/, chromium for the status page's browser test, and
# etcd (Debian's etcd-server, 3.4) for the failover test on processes.
# Node.js 20+ with npm must already be on the machine (Debian's nodejs is 18).
#
# Run as root from anywhere: compat/ci-deps.sh. Then run the tests with
# SLUICE_COMPAT_STRICT=1 so that a client still missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")"

need=()
for pkg in redis-tools redis-server python3-redis python3-flask python3-flask-limiter python3-limits gunicorn python3-venv python3-pip prometheus chromium etcd-server; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v npm >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "compat/ci-deps.sh: Node.js 20 or later with npm is required for the Node tests (compat/node, clients/node, examples/express)" >&2
  exit 1
fi
(cd node && npm ci --no-audit --no-fund)
(cd ../clients/node && npm ci --no-audit --no-fund)     # express, express-rate-limit, ioredis, typescript
(cd ../examples/express && npm ci --no-audit --no-fund) # links ../../clients/node: after it
