// The example against a real Sluice (SLUICE_ADDR, set by express_test.go)
// whose clock is frozen with DEBUG CLOCK SET, so every header is exact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Sluice } from 'sluice-ratelimit';
import { createApp } from './app.mjs';

const addr = process.env.SLUICE_ADDR;
const admin = new Sluice(`sluice://${addr}`);
let server, url, app;
before(async () => {
  await admin.redis.flushall();
  await admin.call('DEBUG', 'CLOCK', 'SET', '1893456000000000000');
  app = createApp({ sluiceUrl: `sluice://${addr}` });
  server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  server.close();
  await app.locals.sluice.quit();
  await admin.quit();
});

const headers = (res) => Object.fromEntries(['ratelimit', 'ratelimit-policy', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'retry-after'].filter((h) => res.headers.has(h)).map((h) => [h, res.headers.get(h)]));

test('anonymous: 50 at once, then one every 72 s', async () => {
  const first = await fetch(url + '/');
  assert.deepEqual(await first.json(), { hello: 'anonymous' });
  assert.deepEqual(headers(first), {
    ratelimit: '"anon"; r=49; t=72',
    'ratelimit-policy': `"anon"; q=50; w=3600; pk=:${first.headers.get('ratelimit-policy').split('pk=:')[1]}`,
    'x-ratelimit-limit': '50',
    'x-ratelimit-remaining': '49',
  });
  for (let i = 0; i < 49; i++) assert.equal((await fetch(url + '/items')).status, 200);
  const refused = await fetch(url + '/');
  assert.equal(refused.status, 429);
  assert.deepEqual(await refused.json(), { error: 'too many requests' });
  assert.equal(refused.headers.get('retry-after'), '72');
  assert.equal(refused.headers.get('ratelimit'), '"anon"; r=0; t=3600');
  await admin.call('DEBUG', 'CLOCK', 'SET', String(1893456000000000000n + 72_000_000_000n));
  assert.deepEqual([(await fetch(url + '/')).status, (await fetch(url + '/')).status], [200, 429]);
});

test('an API key has its own, larger budget', async () => {
  const res = await fetch(url + '/', { headers: { 'x-api-key': 'demo-key' } });
  assert.deepEqual(await res.json(), { hello: 'demo' });
  assert.equal(res.headers.get('ratelimit'), '"user"; r=4999; t=1');
  assert.equal(res.headers.get('x-ratelimit-limit'), '5000');
});
