// ioredis's Cluster against three Sluice nodes (SLUICE_CLUSTER_ADDRS), run by
// compat/cluster_test.go: the shared sequence through the cluster client,
// each node's clock frozen with DEBUG CLOCK SET, then cluster_multi.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Redis from 'ioredis';
import { seq, clock, check } from './sequence.mjs';

const multi = JSON.parse(readFileSync(new URL('../testdata/cluster_multi.json', import.meta.url), 'utf8'));
const nodes = process.env.SLUICE_CLUSTER_ADDRS.split(',').map((a) => {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
});

test('ioredis Cluster: .call() replays the sequence through three nodes', async () => {
  const c = new Redis.Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 0 }, clusterRetryStrategy: () => null });
  try {
    const setClock = (ns) => Promise.all(c.nodes('master').map((n) => n.call('DEBUG', 'CLOCK', 'SET', ns)));
    await c.call('CLUSTER', 'INFO'); // connect and load the slots
    assert.equal(c.nodes('master').length, 3);
    await Promise.all(c.nodes('master').map((n) => n.flushall()));
    let now;
    for (const step of seq.steps) {
      if (clock(step) !== now) {
        now = clock(step);
        await setClock(now);
      }
      check(step, await c.call(...step.args).catch((e) => e));
    }
    assert.deepEqual(await c.call(...multi.args), multi.reply);
    await assert.rejects(c.call(...multi.crossslot_args), { message: multi.crossslot_error });
  } finally {
    c.disconnect();
  }
});

test('ioredis Cluster: 20 concurrent calls on one key admit exactly the limit', async () => {
  const c = new Redis.Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 0 }, clusterRetryStrategy: () => null });
  try {
    await c.call('CLUSTER', 'INFO');
    await Promise.all(c.nodes('master').map((n) => n.call('DEBUG', 'CLOCK', 'SET', seq.epoch_ns)));
    const replies = await Promise.all(Array.from({ length: 20 }, () => c.call('THROTTLE', 'shared', 9, 10, 60)));
    assert.equal(replies.filter((x) => x[0] === 0).length, 10);
    assert.equal(replies.filter((x) => x[0] === 1).length, 10);
  } finally {
    c.disconnect();
  }
});
