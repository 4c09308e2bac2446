// node-redis against a running Sluice (SLUICE_ADDR), run by compat/node_test.go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { host, port, seq, epoch, check, replay, plan, assertProtocol } from './sequence.mjs';

async function connect(RESP) {
  const c = createClient({ socket: { host, port, reconnectStrategy: false, connectTimeout: 5000 }, RESP });
  c.on('error', () => {}); // failures surface as rejected commands
  await c.connect();
  return c;
}

for (const RESP of [2, 3]) {
  test(`node-redis RESP${RESP}: sendCommand replays the sequence`, async () => {
    const c = await connect(RESP);
    try {
      await c.sendCommand(['FLUSHALL']);
      await assertProtocol((args) => c.sendCommand(args), RESP);
      await replay((args) => c.sendCommand(args));
    } finally {
      c.destroy();
    }
  });

  test(`node-redis RESP${RESP}: pipelined sendCommand`, async () => {
    const c = await connect(RESP);
    try {
      await c.sendCommand(['FLUSHALL']);
      const { cmds, at } = plan();
      // Commands issued in the same tick are written as one pipeline.
      const results = await Promise.all(cmds.map((args) => c.sendCommand(args).catch((e) => e)));
      seq.steps.forEach((step, i) => check(step, results[at[i]]));
    } finally {
      c.destroy();
    }
  });
}

test('node-redis: a pool of 10 connections admits exactly the limit on one key', async () => {
  const clients = await Promise.all(Array.from({ length: 10 }, () => connect(3)));
  try {
    await clients[0].sendCommand(['DEBUG', 'CLOCK', 'SET', String(epoch)]);
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) => clients[i % 10].sendCommand(['THROTTLE', 'shared', '19', '20', '60'])),
    );
    assert.equal(replies.filter((x) => x[0] === 0).length, 20);
    assert.equal(replies.filter((x) => x[0] === 1).length, 20);
  } finally {
    clients.forEach((c) => c.destroy());
  }
});
