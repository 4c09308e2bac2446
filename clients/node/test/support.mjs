// What the tests share: the Sluice under test (SLUICE_ADDR, set by
// node_test.go), its clock, and an Express app on a free loopback port.
import { once } from 'node:events';
import Redis from 'ioredis';
import { Sluice } from '../index.js';

export const addr = process.env.SLUICE_ADDR ?? '';
if (!addr) throw new Error('SLUICE_ADDR is not set (run through node_test.go)');
export const [host, port] = addr.split(':');
export const EPOCH_MS = 1893456000000; // 2030-01-01T00:00:00Z

export function redis() {
  return new Redis({ host, port: Number(port), maxRetriesPerRequest: 0 });
}

export function sluice() {
  return new Sluice(`sluice://${addr}`);
}

/** Freezes the server clock at EPOCH_MS + ms, and flushes everything when asked. */
export async function freeze(r, ms = 0, { flush = false } = {}) {
  if (flush) await r.flushall();
  await r.call('DEBUG', 'CLOCK', 'SET', String((BigInt(EPOCH_MS) + BigInt(ms)) * 1_000_000n));
}

/** Starts app on 127.0.0.1 with a free port; returns its base URL and a close function. */
export async function serve(app) {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

export const RATE_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'ratelimit', 'ratelimit-policy', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'retry-after'];

/** The rate-limit headers of a fetch Response, by lower-case name. */
export function rateHeaders(res) {
  return Object.fromEntries(RATE_HEADERS.filter((h) => res.headers.has(h)).map((h) => [h, res.headers.get(h)]));
}
