"""redis-py's RedisCluster through an etcd-driven failover, as README's
Failover table tells redis-py users to run it: on RedisClusterException,
make a new RedisCluster.

Run by compat/failover_etcd_test.go with SLUICE_CLUSTER_ADDRS (every node,
host:port,...) and SLUICE_FAILOVER_TAG (a hashtag whose slot the primary
about to be killed serves), and SLUICE_FAILOVER_NAME (this client's part of
the keys). It sends THROTTLE {tag}:<name>:<n> 15 30 60 1 (a fresh key each
time) every 10 ms and checks each reply is exactly a fresh
key's. It prints "ready" after its first reply; the test writes "armed" on
stdin before it kills the primary, and from then on every attempt is
printed as "ok <sent_ns> <done_ns>" or "err <sent_ns> <done_ns> <error>"
(wall clock, the test's clock too). Before "armed" any error ends the
script with status 1. It stops when stdin closes, or after 90 s (status 1).
"""

import os
import sys
import threading
import time

from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

ADDRS = [a.rpartition(":") for a in os.environ["SLUICE_CLUSTER_ADDRS"].split(",")]
STARTUP = [ClusterNode(h, int(p)) for h, _, p in ADDRS]
TAG = os.environ["SLUICE_FAILOVER_TAG"]
NAME = os.environ["SLUICE_FAILOVER_NAME"]
FRESH = [0, 16, 15, -1, 2]

armed = threading.Event()
closed = threading.Event()
out = threading.Lock()


def say(line):
    with out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def read_stdin():
    for line in sys.stdin:
        if line.strip() == "armed":
            armed.set()
            say("armed")
    closed.set()


def new_client():
    return RedisCluster(startup_nodes=STARTUP, socket_timeout=2, socket_connect_timeout=2)


def main():
    threading.Thread(target=read_stdin, daemon=True).start()
    deadline = time.monotonic() + 90
    rc = new_client()
    ready = False
    n = 0
    while not closed.is_set():
        if time.monotonic() > deadline:
            say("no end after 90 s")
            return 1
        n += 1
        sent = time.time_ns()
        err = None
        try:
            if rc is None:
                rc = new_client()
            got = rc.execute_command("THROTTLE", "{%s}:%s:%d" % (TAG, NAME, n), 15, 30, 60, 1)
            if got != FRESH:
                err = "reply %r, want %r" % (got, FRESH)
        except RedisClusterException as e:
            # README: a new client loads the new map.
            err = "%s: %s (new client)" % (type(e).__name__, e)
            if rc is not None:
                rc.close()
            rc = None
        except Exception as e:  # connection errors, timeouts: the same client retries
            err = "%s: %s" % (type(e).__name__, e)
        done = time.time_ns()
        # Read after the attempt: the test kills only once it read "armed",
        # so an attempt the kill broke always sees the flag set.
        if not armed.is_set():
            if err is not None:
                say("error before the kill: %s" % err)
                return 1
            if not ready:
                ready = True
                say("ready")
        elif err is None:
            say("ok %d %d" % (sent, done))
        else:
            say("err %d %d %s" % (sent, done, err.replace("\n", " ")))
        time.sleep(0.01)
    if rc is not None:
        rc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
