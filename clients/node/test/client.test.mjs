// Every command of the client against a real Sluice with a frozen clock.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sluice, limit, parseRule } from '../index.js';
import { addr, freeze, redis } from './support.mjs';

const r = redis();
const sl = new Sluice(r);
before(() => freeze(r, 0, { flush: true }));
after(() => r.quit());

test('limit and parseRule: burst is max_burst, count - 1 by default', () => {
  assert.deepEqual(limit(30, 60, 15), { count: 30, period: 60, burst: 15 });
  assert.deepEqual(limit(50, 3600), { count: 50, period: 3600, burst: 49 });
  assert.deepEqual(parseRule('5000/hour burst 499; 10 per 2 seconds'), [limit(5000, 3600, 499), limit(10, 2)]);
  for (const bad of ['', '100', '100/fortnight']) assert.throws(() => parseRule(bad), TypeError, bad);
  assert.throws(() => limit(0, 1), RangeError);
  assert.throws(() => limit(1, 1.5), RangeError);
});

test('throttle: the README example', async () => {
  const l = { count: 30, period: 60, burst: 15 };
  assert.deepEqual(await sl.throttle('user123', l), { limited: false, limit: 16, remaining: 15, retryAfterMs: 0, resetAfterMs: 2000 });
  await sl.throttle('user123', l, 15);
  assert.deepEqual(await sl.throttle('user123', l), { limited: true, limit: 16, remaining: 0, retryAfterMs: 2000, resetAfterMs: 32000 });
  assert.equal((await sl.throttle('user123', l, 17)).retryAfterMs, -1);
  await assert.rejects(sl.call('THROTTLE', 'k', 'x', 1, 1), /ERR value is not an integer/);
});

test('throttleMulti: all or nothing', async () => {
  const checks = [{ key: 'm:s', limit: limit(10, 1) }, { key: 'm:d', limit: limit(1000, 86400) }];
  const ok = await sl.throttleMulti(checks, 10);
  assert.deepEqual(ok.each.map((e) => e.remaining), [0, 990]);
  const refused = await sl.throttleMulti(checks);
  assert.equal(refused.limited, true);
  assert.equal((await sl.throttle('m:d', limit(1000, 86400), 0)).remaining, 990);
});

test('throttleWindow, policies, leases, counters, sliding logs', async () => {
  assert.equal((await sl.throttleWindow('w', { count: 1, period: 10, algorithm: 'fixed' })).limited, false);
  assert.deepEqual(await sl.throttleWindow('w', { count: 1, period: 10, algorithm: 'fixed' }), { limited: true, limit: 1, remaining: 0, retryAfterMs: 10000, resetAfterMs: 10000 });
  assert.deepEqual(await sl.policyList(), []);
  assert.equal(await sl.policyGet('none'), null);
  await assert.rejects(sl.policyThrottle('none', 'k'), /no such policy/);

  const a = await sl.leaseAcquire('db', 1, 1000);
  assert.deepEqual(a, { acquired: true, max: 1, inFlight: 1, freeAfterMs: 1000, leaseId: a.leaseId });
  assert.equal((await sl.leaseAcquire('db', 1, 1000)).leaseId, null);
  assert.deepEqual(await sl.leaseRenew('db', a.leaseId, 5000), { ok: true, inFlight: 1 });
  assert.deepEqual(await sl.leaseRelease('db', a.leaseId), { ok: true, inFlight: 0 });

  assert.deepEqual(await sl.counterIncrBy('c', 2, 60000), { value: 2, ttlMs: 60000 });
  assert.deepEqual(await sl.counterIncrBy('c', 1, 60000, { elastic: true }), { value: 3, ttlMs: 60000 });
  assert.deepEqual(await sl.counterGet('none'), { value: 0, ttlMs: null });

  assert.deepEqual(await sl.slidingLogAcquire('l', 2, 1000, 2), { limited: false, limit: 2, remaining: 0, retryAfterMs: 0, resetAfterMs: 1000 });
  assert.deepEqual(await sl.slidingLogAcquire('l', 2, 1000), { limited: true, limit: 2, remaining: 0, retryAfterMs: 1000, resetAfterMs: 1000 });
  assert.deepEqual(await sl.slidingLogGet('l', 1000), { count: 2, nextLeavesMs: 1000, allLeaveMs: 1000 });
});

test('a URL connects; 25 concurrent calls share one budget of 10', async () => {
  const own = new Sluice(`sluice://${addr}`);
  try {
    const rs = await Promise.all(Array.from({ length: 25 }, () => own.throttle('burst', limit(10, 60))));
    assert.equal(rs.filter((x) => !x.limited).length, 10);
  } finally {
    await own.quit();
  }
});
