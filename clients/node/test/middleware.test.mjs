// The Express middleware against express-rate-limit itself: one app with
// express-rate-limit (its MemoryStore) and one with sluice-ratelimit, the
// same options, the same requests under one clock (Node's Date mocked, the
// server's frozen with DEBUG CLOCK SET): every status, body and header must
// agree. Then what only Sluice does: the other algorithms, several limits
// at once, named policies, and failing open or closed.
import { test, before, after, beforeEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import { rateLimit as expressRateLimit } from 'express-rate-limit';
import { Sluice, SluiceStore, rateLimit, ipKey } from '../index.js';
import { EPOCH_MS, freeze, rateHeaders, redis, serve, sluice } from './support.mjs';

const r = redis();
const client = sluice();
after(async () => {
  await client.quit();
  await r.quit();
});

let now = EPOCH_MS;
async function setClock(ms) {
  now = ms;
  mock.timers.setTime(ms);
  await freeze(r, ms - EPOCH_MS);
}
before(() => mock.timers.enable({ apis: ['Date'], now: EPOCH_MS }));
after(() => mock.timers.reset());
beforeEach(async () => {
  await r.flushall();
  await setClock(EPOCH_MS);
});

function app(limiter) {
  const a = express();
  a.get('/health', limiter, (req, res) => res.send('ok'));
  a.get('/api', limiter, (req, res) => res.json({ used: req.rateLimit?.used ?? null, remaining: req.rateLimit?.remaining ?? null }));
  return a;
}

/** Both apps, the same options; returns a function that sends one request to both and compares. */
async function pair(options, ourLimiter = (o) => rateLimit({ ...o, client })) {
  const theirs = await serve(app(expressRateLimit({ ...options, validate: false })));
  const ours = await serve(app(ourLimiter(options)));
  return {
    close: async () => {
      await theirs.close();
      await ours.close();
    },
    async both(path, headers = {}, where = '') {
      const want = await fetch(theirs.url + path, { headers });
      const got = await fetch(ours.url + path, { headers });
      const w = { status: want.status, body: await want.text(), headers: rateHeaders(want), reset: want.headers.get('x-ratelimit-reset') };
      const g = { status: got.status, body: await got.text(), headers: rateHeaders(got), reset: got.headers.get('x-ratelimit-reset') };
      assert.deepEqual(g, w, `${where} ${path} ${JSON.stringify(headers)}`);
      return g;
    },
  };
}

/** A random walk of requests and clock steps, deterministic for a seed. */
async function replay(options, seed, steps = 120, ourLimiter = undefined) {
  let x = seed;
  const rand = (n) => ((x = (x * 1103515245 + 12345) % 2147483648), x % n);
  await r.flushall();
  await setClock(EPOCH_MS);
  const p = await pair(options, ourLimiter);
  const statuses = new Set();
  try {
    for (let k = 0; k < steps; k++) {
      const step = [0, 0, 0, 0, 0, 1000, 7000, 61000][rand(8)];
      if (step) await setClock(now + step);
      const path = rand(5) === 0 ? '/health' : '/api';
      const headers = {};
      if (rand(2)) headers['x-user'] = ['alice', 'bob'][rand(2)];
      if (rand(3) === 0) headers['x-pro'] = '1';
      const got = await p.both(path, headers, `seed ${seed} step ${k} t=${now - EPOCH_MS}ms`);
      statuses.add(got.status);
    }
  } finally {
    await p.close();
  }
  return statuses;
}

const base = { windowMs: 60_000, limit: 3 };

test('the defaults: X-RateLimit-* headers, 429 with Retry-After, as express-rate-limit', async () => {
  const statuses = await replay(base, 1);
  assert.deepEqual([...statuses].sort(), [200, 429]);
});

for (const standardHeaders of ['draft-6', 'draft-7', 'draft-8']) {
  test(`standardHeaders ${standardHeaders}, legacyHeaders off, as express-rate-limit`, async () => {
    await replay({ ...base, standardHeaders, legacyHeaders: false }, 2);
    await replay({ ...base, standardHeaders, identifier: 'api' }, 3);
  });
}

test('keyGenerator, limit as a function, skip, message, statusCode, handler, as express-rate-limit', async () => {
  await replay({
    ...base,
    limit: (req) => (req.headers['x-pro'] ? 5 : 2),
    keyGenerator: (req) => req.headers['x-user'] ?? 'anonymous',
    skip: (req) => req.path === '/health',
    message: { error: 'slow down' },
    statusCode: 503,
    standardHeaders: 'draft-7',
  }, 4);
  await replay({ ...base, handler: (req, res) => res.status(429).json({ handled: req.rateLimit.used }) }, 5);
});

test('express-rate-limit itself with a SluiceStore answers as with its MemoryStore', async () => {
  const withStore = (o) => expressRateLimit({ ...o, validate: false, store: new SluiceStore({ client, prefix: 'store:' }) });
  const statuses = await replay({ ...base, standardHeaders: 'draft-7' }, 6, 120, withStore);
  assert.deepEqual([...statuses].sort(), [200, 429]);
  await replay({ ...base, keyGenerator: (req) => req.headers['x-user'] ?? 'anonymous', limit: (req) => (req.headers['x-pro'] ? 5 : 2) }, 7, 120, withStore);
  const store = new SluiceStore({ client });
  store.init({ windowMs: 60_000 });
  assert.deepEqual(await store.increment('k'), { totalHits: 1, resetTime: new Date(now + 60_000) });
  assert.deepEqual(await store.get('k'), { totalHits: 1, resetTime: new Date(now + 60_000) });
  await store.resetKey('k');
  assert.equal(await store.get('k'), undefined);
});

test('exact headers of the fourth request of three per minute', async () => {
  const { url, close } = await serve(app(rateLimit({ ...base, client, standardHeaders: 'draft-8', identifier: 'api' })));
  try {
    for (let i = 0; i < 3; i++) assert.equal((await fetch(url + '/api')).status, 200);
    await setClock(now + 20_000);
    const res = await fetch(url + '/api');
    assert.equal(res.status, 429);
    assert.equal(await res.text(), 'Too many requests, please try again later.');
    assert.deepEqual(rateHeaders(res), {
      'x-ratelimit-limit': '3',
      'x-ratelimit-remaining': '0',
      ratelimit: '"api"; r=0; t=40',
      'ratelimit-policy': '"api"; q=3; w=60; pk=:MTJjYTE3YjQ5YWYy:',
      'retry-after': '40',
    });
    assert.equal(res.headers.get('x-ratelimit-reset'), String(EPOCH_MS / 1000 + 60));
  } finally {
    await close();
  }
});

test('gcra with a rule of two limits: THROTTLE.MULTI, both charged at once', async () => {
  const { url, close } = await serve(app(rateLimit({ client, rule: '2/second; 5/minute', algorithm: 'gcra', standardHeaders: 'draft-8' })));
  try {
    const codes = [];
    for (let s = 0; s < 4; s++) {
      for (let i = 0; i < 3; i++) codes.push((await fetch(url + '/api')).status);
      await setClock(now + 1000);
    }
    // 2 in the first second, then one a second (the 2/second limit refills
    // at 2 per second, the minute's 5 run out after the fifth).
    assert.deepEqual(codes, [200, 200, 429, 200, 200, 429, 200, 429, 429, 429, 429, 429]);
    const res = await fetch(url + '/api');
    assert.equal(res.headers.get('ratelimit'), '"2-in-1sec"; r=2; t=0, "5-in-1min"; r=0; t=56');
    assert.equal(res.headers.get('retry-after'), '8');
  } finally {
    await close();
  }
});

test('moving-window and sliding-window count as Sluice does', async () => {
  const moving = await serve(app(rateLimit({ client, windowMs: 10_000, limit: 2, algorithm: 'moving-window', prefix: 'mw:' })));
  const sliding = await serve(app(rateLimit({ client, windowMs: 10_000, limit: 2, algorithm: 'sliding-window', prefix: 'sw:' })));
  try {
    const codes = async (u) => [(await fetch(u + '/api')).status, (await fetch(u + '/api')).status, (await fetch(u + '/api')).status];
    assert.deepEqual(await codes(moving.url), [200, 200, 429]);
    assert.deepEqual(await codes(sliding.url), [200, 200, 429]);
    await setClock(now + 9_999);
    assert.equal((await fetch(moving.url + '/api')).status, 429, 'the first two still count');
    await setClock(now + 1);
    assert.equal((await fetch(moving.url + '/api')).status, 200, 'ten seconds after them');
  } finally {
    await moving.close();
    await sliding.close();
  }
  assert.throws(() => rateLimit({ client, windowMs: 1500, algorithm: 'gcra' }), /counts whole seconds/);
});

test('a named policy: POLICY.THROTTLE words RateLimit and RateLimit-Policy', async () => {
  const { url, close } = await serve(app(rateLimit({ client, policy: 'api', standardHeaders: 'draft-8', keyGenerator: () => 'tenant:free' })));
  try {
    const res = await fetch(url + '/api');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('ratelimit-policy'), '"api-1s";q=10;w=1, "api-86400s";q=1000;w=86400');
    assert.equal(res.headers.get('ratelimit'), '"api-1s";r=9;t=1, "api-86400s";r=999;t=87');
  } finally {
    await close();
  }
});

test('Sluice unreachable: passOnStoreError lets requests through, otherwise they fail', async () => {
  const dead = () => {
    const s = new Sluice({ host: '127.0.0.1', port: 1, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, lazyConnect: true });
    s.redis.on('error', () => {});
    return s;
  };
  const open = await serve(app(rateLimit({ client: dead(), passOnStoreError: true })));
  const closed = await serve(app(rateLimit({ client: dead() })).use((err, req, res, next) => res.status(503).send('limiter down')));
  const log = mock.method(console, 'error', () => {});
  try {
    const res = await fetch(open.url + '/api');
    assert.equal(res.status, 200);
    assert.deepEqual(rateHeaders(res), {});
    assert.match(String(log.mock.calls[0]?.arguments[0]), /Sluice unavailable/);
    const refused = await fetch(closed.url + '/api');
    assert.equal(refused.status, 503);
    assert.equal(await refused.text(), 'limiter down');
  } finally {
    log.mock.restore();
    await open.close();
    await closed.close();
  }
});

test('ipKey: IPv6 by /56, IPv4-mapped as IPv4', () => {
  assert.equal(ipKey('192.0.2.1'), '192.0.2.1');
  assert.equal(ipKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(ipKey('2001:db8:abcd:12ff:1:2:3:4'), '2001:db8:abcd:1200::/56');
  assert.equal(ipKey('2001:db8:abcd:1234::'), ipKey('2001:db8:abcd:12ff::99'), 'one /56');
});
