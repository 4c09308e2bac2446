// startSluice runs the real binary (SLUICE_BIN, set by node_test.go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSluice } from 'sluice-ratelimit/testing';
import { limit } from 'sluice-ratelimit';

test('startSluice: a real server with a frozen clock', async () => {
  const sluice = await startSluice();
  try {
    await sluice.freeze(Date.UTC(2030, 0, 1));
    const l = limit(2, 60);
    const rs = [await sluice.client.throttle('k', l), await sluice.client.throttle('k', l), await sluice.client.throttle('k', l)];
    assert.deepEqual(rs.map((r) => r.limited), [false, false, true]);
    assert.equal(rs[2].retryAfterMs, 30_000);
    await sluice.flush();
    assert.equal((await sluice.client.throttle('k', l)).limited, false);
  } finally {
    await sluice.close();
  }
  await assert.rejects(startSluice({ binary: '/nonexistent/sluice' }), /cannot run/);
});
