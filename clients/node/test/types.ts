// Compiled (not run) by `tsc -p test/tsconfig.json`: index.d.ts describes
// the package as TypeScript users call it.
import express from 'express';
import { Redis } from 'ioredis';
import { startSluice } from 'sluice-ratelimit/testing';
import rateLimitDefault, { Sluice, SluiceStore, limit, parseRule, rateLimit, type Result, type RateLimitInfo } from 'sluice-ratelimit';

async function use(): Promise<void> {
  const sl = new Sluice(new Redis());
  const r: Result = await sl.throttle('user:42', { count: 30, period: 60, burst: 15 });
  const wait: number = r.limited ? r.retryAfterMs : 0;
  const m = await sl.throttleMulti([{ key: 'a', limit: limit(10, 1) }, { key: 'b', limit: parseRule('1000/day')[0] }]);
  const each: Result[] = m.each;
  const p = await sl.policyThrottle('api', 'k', { headers: true });
  const h: string | undefined = p.headers?.RateLimit;
  const lease = await sl.leaseAcquire('db', 10, 30_000);
  if (lease.leaseId !== null) await sl.leaseRelease('db', lease.leaseId);
  const c = await sl.counterIncrBy('c', 1, 60_000, { elastic: true });
  const ttl: number | null = c.ttlMs;
  const w = await sl.slidingLogGet('l', 1000);
  void [wait, each, h, ttl, w.count];

  const app = express();
  app.use(rateLimit({ client: sl, windowMs: 60_000, limit: (req) => (req.headers['x-pro'] ? 1000 : 100), standardHeaders: 'draft-8' }));
  app.use(rateLimitDefault({ client: 'sluice://127.0.0.1:6379', rule: '10/second; 1000/day', algorithm: 'gcra' }));
  app.get('/', (req, res) => {
    const info = (req as express.Request & { rateLimit: RateLimitInfo }).rateLimit;
    res.json({ remaining: info.remaining });
  });
  const store = new SluiceStore({ client: sl });
  store.init({ windowMs: 60_000 });

  const fixture = await startSluice({ args: ['--policy-file', 'policies.toml'] });
  await fixture.freeze(Date.UTC(2030, 0, 1));
  app.use(rateLimit({ client: fixture.url }));
  await fixture.close();
}
void use;
