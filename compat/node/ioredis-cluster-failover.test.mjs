// ioredis's Cluster when the node of a slot dies and a new map gives the
// slot to another node, so that no node answers -MOVED for it. Run by
// compat/cluster_failover_test.go, which starts three nodes with the map
// 0-5460, 5461-10921, 10922-16383 and sets SLUICE_CLUSTER_ADDRS,
// SLUICE_KILL_PID (the first node's process) and SLUICE_CLUSTER_MAP_V2 (the
// second node also serves 0-5460). With its default options the client
// follows on its own: once the dead node's connection has ended, a command
// for its slots goes to a random master, which serves or redirects it; a
// command caught by the closing connection fails with "Connection is
// closed.", on which ioredis refreshes its slots after retryDelayOnFailover
// and sends the command to a random master again. Its slot map may stay
// stale meanwhile (no periodic refresh by default).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import Redis from 'ioredis';

const nodes = process.env.SLUICE_CLUSTER_ADDRS.split(',').map((a) => {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
});

// refuses resolves whether host:port refuses connections (the node is dead).
const refuses = ({ host, port }) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  s.once('connect', () => { s.destroy(); resolve(false); });
  s.once('error', (e) => resolve(e.code === 'ECONNREFUSED'));
});

test('ioredis Cluster follows a map change after its node died, with default options', async () => {
  const c = new Redis.Cluster(nodes);
  c.on('error', () => {});
  c.on('node error', () => {});
  try {
    await c.call('CLUSTER', 'INFO'); // connect and load the slots
    let key;
    for (let i = 0; key === undefined; i++) {
      if (Number(await c.call('CLUSTER', 'KEYSLOT', `user${i}`)) <= 5460) key = `user${i}`;
    }
    assert.equal((await c.call('THROTTLE', key, 9, 10, 60))[0], 0);

    process.kill(Number(process.env.SLUICE_KILL_PID), 'SIGKILL');
    const deadline = Date.now() + 10000;
    while (!(await refuses(nodes[0]))) {
      assert.ok(Date.now() < deadline, 'the killed node still accepts connections');
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const n of nodes.slice(1)) {
      const r = new Redis({ ...n, lazyConnect: true, maxRetriesPerRequest: 0 });
      await r.call('CLUSTERX', 'SETNODES', process.env.SLUICE_CLUSTER_MAP_V2, 2);
      r.disconnect();
    }
    // The first command after the change is served, by the new node (a fresh key).
    assert.deepEqual((await c.call('THROTTLE', key, 9, 10, 60)).slice(0, 3), [0, 10, 9]);
  } finally {
    c.disconnect();
  }
});
