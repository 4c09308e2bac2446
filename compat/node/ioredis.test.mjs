// ioredis against a running Sluice (SLUICE_ADDR), run by compat/node_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { host, port, seq, epoch, check, replay, plan, assertProtocol } from './sequence.mjs';

function connect(protocol) {
  return new Redis({ host, port, protocol, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
}

for (const protocol of [2, 3]) {
  test(`ioredis RESP${protocol}: .call('THROTTLE', ...) replays the sequence`, async () => {
    const r = connect(protocol);
    await r.connect();
    try {
      await r.flushall();
      await assertProtocol((args) => r.call(...args), protocol);
      await replay((args) => r.call(...args));
    } finally {
      r.disconnect();
    }
  });

  test(`ioredis RESP${protocol}: pipeline`, async () => {
    const r = connect(protocol);
    await r.connect();
    try {
      await r.flushall();
      const { cmds, at } = plan();
      const p = r.pipeline();
      for (const c of cmds) p.call(...c);
      const results = await p.exec(); // [[err, reply], ...]
      assert.equal(results.length, cmds.length);
      seq.steps.forEach((step, i) => {
        const [err, reply] = results[at[i]];
        check(step, err ?? reply);
      });
    } finally {
      r.disconnect();
    }
  });
}

test('ioredis: 20 concurrent calls on one key admit exactly the limit', async () => {
  const r = connect(3);
  await r.connect();
  try {
    await r.call('DEBUG', 'CLOCK', 'SET', String(epoch));
    const replies = await Promise.all(Array.from({ length: 20 }, () => r.call('THROTTLE', 'shared', 9, 10, 60)));
    assert.equal(replies.filter((x) => x[0] === 0).length, 10);
    assert.equal(replies.filter((x) => x[0] === 1).length, 10);
  } finally {
    r.disconnect();
  }
});
