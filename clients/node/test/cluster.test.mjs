// Four Node processes (the cluster module, one port) share one budget of 50
// per hour: of 80 concurrent requests exactly 50 pass, each remaining count
// from 49 down to 0 is reported exactly once, and every refusal carries the
// same exact headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { freeze, redis } from './support.mjs';

test('four cluster workers share one budget', async () => {
  const r = redis();
  await freeze(r, 0, { flush: true });
  await r.quit();
  const app = spawn(process.execPath, [new URL('./fixtures/cluster-app.mjs', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let port;
    for await (const line of createInterface({ input: app.stdout })) {
      const m = /^listening (\d+)$/.exec(line);
      if (m) {
        port = m[1];
        break;
      }
    }
    assert.ok(port, 'the cluster did not start');
    const responses = await Promise.all(Array.from({ length: 80 }, () => fetch(`http://127.0.0.1:${port}/`)));
    const ok = responses.filter((x) => x.status === 200);
    const refused = responses.filter((x) => x.status === 429);
    assert.equal(ok.length, 50);
    assert.equal(refused.length, 30);
    const remaining = ok.map((x) => Number(x.headers.get('x-ratelimit-remaining'))).sort((a, b) => a - b);
    assert.deepEqual(remaining, Array.from({ length: 50 }, (_, i) => i));
    for (const x of refused) {
      assert.equal(x.headers.get('ratelimit'), 'limit=50, remaining=0, reset=3600');
      assert.equal(x.headers.get('ratelimit-policy'), '50;w=3600');
      assert.equal(x.headers.get('retry-after'), '3600');
    }
    const pids = new Set(await Promise.all(ok.map(async (x) => (await x.json()).pid)));
    console.log(`served by ${pids.size} worker processes`);
  } finally {
    app.kill('SIGTERM');
    await once(app, 'exit');
  }
});
