"""redis-py's RedisCluster against three Sluice nodes.

Run by compat/cluster_test.go, which starts three nodes with
--cluster-enabled, gives them one topology and sets SLUICE_CLUSTER_ADDRS
(host:port,host:port,host:port). Replays ../testdata/sequence.json through
the cluster client (each node's clock frozen with DEBUG CLOCK SET on a
plain connection), then ../testdata/cluster_multi.json.
"""

import json
import os
import unittest

import redis
from redis.cluster import ClusterNode, RedisCluster

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "testdata", "sequence.json")) as f:
    SEQ = json.load(f)
with open(os.path.join(HERE, "..", "testdata", "cluster_multi.json")) as f:
    MULTI = json.load(f)
EPOCH = int(SEQ["epoch_ns"])
ADDRS = [a.rpartition(":") for a in os.environ["SLUICE_CLUSTER_ADDRS"].split(",")]
NODES = [redis.Redis(host=h, port=int(p), socket_timeout=10) for h, _, p in ADDRS]


def clock(step):
    return EPOCH + step["at_s"] * 1_000_000_000


def set_clock(ns):
    for n in NODES:
        n.execute_command("DEBUG", "CLOCK", "SET", ns)


def check(test, step, got):
    if "error" in step:
        test.assertIsInstance(got, redis.ResponseError, step["name"])
        # redis-py strips a leading "ERR " from the message.
        test.assertIn(str(got), (step["error"], step["error"][len("ERR "):]), step["name"])
    else:
        test.assertNotIsInstance(got, Exception, step["name"])
        test.assertEqual(got, step["reply"], step["name"])


class RedisClusterTest(unittest.TestCase):
    def test_sequence(self):
        rc = RedisCluster(startup_nodes=[ClusterNode(ADDRS[0][0], int(ADDRS[0][2]))], socket_timeout=10)
        try:
            self.assertEqual(len(rc.get_primaries()), 3)
            for n in NODES:
                n.flushall()
            now = None
            for step in SEQ["steps"]:
                if clock(step) != now:
                    now = clock(step)
                    set_clock(now)
                try:
                    got = rc.execute_command(*step["args"])
                except redis.ResponseError as e:
                    got = e
                check(self, step, got)
            self.assertEqual(rc.execute_command(*MULTI["args"]), MULTI["reply"])
            # redis-py finds the keys by COMMAND's key positions and refuses
            # keys of two slots itself; the server would say CROSSSLOT.
            with self.assertRaises(redis.exceptions.RedisClusterException) as cm:
                rc.execute_command(*MULTI["crossslot_args"])
            self.assertIn("all keys must map to the same key slot", str(cm.exception))
        finally:
            rc.close()


if __name__ == "__main__":
    unittest.main()
