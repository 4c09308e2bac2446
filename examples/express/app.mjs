// An Express API rate-limited through Sluice. Anonymous clients get 50
// requests per hour and clients with an API key 5000, each budget per key
// and IP address, smooth (GCRA: all 50 at once if a client likes, then one
// more every 72 s), shared by every process and host that asks the same
// Sluice. Responses carry the IETF draft-8 RateLimit fields and
// express-rate-limit's X-RateLimit-*; a refused request gets 429 with
// Retry-After.
import express from 'express';
import { Sluice, rateLimit } from 'sluice-ratelimit';

export function createApp({ sluiceUrl = 'sluice://127.0.0.1:6379', apiKeys = { 'demo-key': 'demo' }, failOpen = true, trustProxy = false } = {}) {
  const app = express();
  app.set('trust proxy', trustProxy); // e.g. 1 behind one load balancer: req.ip is the client's address
  const client = new Sluice(sluiceUrl);
  const user = (req) => apiKeys[req.get('x-api-key')] ?? null;
  app.use(
    rateLimit({
      client,
      algorithm: 'gcra',
      windowMs: 60 * 60 * 1000,
      limit: (req) => (user(req) ? 5000 : 50),
      keyGenerator: (req) => `${user(req) ?? 'anonymous'}@${req.ip}`,
      standardHeaders: 'draft-8',
      identifier: (req) => (user(req) ? 'user' : 'anon'),
      passOnStoreError: failOpen, // Sluice unreachable: serve (logged) rather than fail
      message: { error: 'too many requests' },
    }),
  );
  app.get('/', (req, res) => res.json({ hello: user(req) ?? 'anonymous' }));
  app.get('/items', (req, res) => res.json({ items: ['a', 'b', 'c'] }));
  app.locals.sluice = client;
  return app;
}
