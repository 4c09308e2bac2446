"""redis-py's RedisCluster when the node of a slot dies and a new map gives
the slot to another node: no node answers -MOVED for it, so the client must
reload its map by itself.

Run by compat/cluster_failover_test.go, which starts three nodes with the
map 0-5460, 5461-10921, 10922-16383 and sets SLUICE_CLUSTER_ADDRS (the
three), SLUICE_KILL_PID (the first node's process) and
SLUICE_CLUSTER_MAP_V2 (the map where the second node also serves 0-5460).
The test builds the client, kills the first node with SIGKILL, pushes
version 2 to the live nodes, then sends a key of slot 0-5460.

Debian's redis-py 4.3.4 does not recover: after the connection errors it
reloads its map (NodesManager.initialize), which opens new connections
with a deep copy of its connection arguments; these hold the client's
bound on_connect method, whose object (the client, with its connections)
holds thread locks, so the copy fails ("cannot pickle '_thread.lock' object") and every later command
raises RedisClusterException. A new RedisCluster loads the new map and
serves the key. README's Failover table states both; if this test fails on
the first assertion, redis-py now reloads by itself: update the table.
"""

import os
import signal
import socket
import time
import unittest

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

ADDRS = [a.rpartition(":") for a in os.environ["SLUICE_CLUSTER_ADDRS"].split(",")]
STARTUP = [ClusterNode(h, int(p)) for h, _, p in ADDRS]
LIVE = [redis.Redis(host=h, port=int(p), socket_timeout=10) for h, _, p in ADDRS[1:]]
MAP_V2 = os.environ["SLUICE_CLUSTER_MAP_V2"]


def refuses(host, port):
    """Whether host:port refuses connections (the node is dead)."""
    try:
        socket.create_connection((host, port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


def new_client():
    return RedisCluster(startup_nodes=STARTUP, socket_timeout=10)


class RedisClusterFailoverTest(unittest.TestCase):
    def test_recreate_after_a_failed_reload(self):
        rc = new_client()
        try:
            key = next(k for k in ("user%d" % i for i in range(10000)) if rc.keyslot(k) <= 5460)
            self.assertEqual(rc.get_node_from_key(key).name, "%s:%s" % (ADDRS[0][0], ADDRS[0][2]), "the client holds the old map")
            pid = int(os.environ["SLUICE_KILL_PID"])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not refuses(ADDRS[0][0], int(ADDRS[0][2])):
                self.assertLess(time.monotonic(), deadline, "the killed node still accepts connections")
                time.sleep(0.01)
            for n in LIVE:
                n.execute_command("CLUSTERX", "SETNODES", MAP_V2, 2)
            for attempt in range(3):
                with self.assertRaises(RedisClusterException, msg="attempt %d" % attempt) as cm:
                    rc.execute_command("THROTTLE", key, 9, 10, 60)
                self.assertIn("cannot pickle", str(cm.exception))
        finally:
            rc.close()
        rc = new_client()
        try:
            got = rc.execute_command("THROTTLE", key, 9, 10, 60)
            self.assertEqual(got[:3], [0, 10, 9], "a fresh key on its new node")
            self.assertEqual(rc.get_node_from_key(key).name, "%s:%s" % (ADDRS[1][0], ADDRS[1][2]))
        finally:
            rc.close()


if __name__ == "__main__":
    unittest.main()
