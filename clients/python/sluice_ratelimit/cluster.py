"""A redis-py ``RedisCluster`` that follows a failover.

redis-py reloads its slot map after connection errors (its
``NodesManager.initialize``). In redis-py 4.3.x that reload deep-copies the
client's connection arguments, which hold the client's own bound
``on_connect`` method: once the client holds connections (and their thread
locks), the copy fails with ``cannot pickle '_thread.lock' object``, and
every later command on the dead node's slots raises
``RedisClusterException`` until the application builds a new client.

:class:`RedisCluster` is redis-py's class with one change: deep-copying the
client returns the client itself, so the copied ``on_connect`` is bound to
the live client (what the reload means to pass on) and the reload succeeds.
A redis-py that does not copy the client is unaffected.
"""

from typing import Any, Dict

import redis.cluster

__all__ = ["RedisCluster"]


class RedisCluster(redis.cluster.RedisCluster):  # type: ignore[misc]
    """redis-py's ``RedisCluster``, whose slot map reload after a node's
    death works on redis-py 4.3 (see the module's doc). Use it as
    redis-py's::

        from redis.cluster import ClusterNode
        from sluice_ratelimit.cluster import RedisCluster

        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", 7000)])
        rc.execute_command("THROTTLE", "user123", 15, 30, 60, 1)

    ``copy.deepcopy(client)`` returns the client itself: a client shares
    its connections and cannot be copied anyway.
    """

    def __deepcopy__(self, memo: Dict[int, Any]) -> "RedisCluster":
        return self
