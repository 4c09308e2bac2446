// sluice-ratelimit: the Node.js client for Sluice, the rate-limiting server
// that speaks the Redis protocol (on ioredis), an Express middleware with
// express-rate-limit's options, and a store for express-rate-limit itself.
// Types are in index.d.ts; README.md shows each use.

import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import Redis from 'ioredis';

const UNITS = { second: 1, minute: 60, hour: 3600, day: 86400 };
const RATE = /^\s*(\d+)\s*(?:\/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*(?:burst\s+(\d+))?\s*$/i;

/**
 * Parses the rule notation Sluice's policy files share with the Python
 * limits library: limits separated by ';' or ',', each
 * `COUNT (/|per) [MULTIPLE] UNIT [burst MAX_BURST]`, e.g. "100/minute",
 * "10/second; 1000/day", "5000/hour burst 499". Returns [{count, period,
 * burst}] with period in seconds and burst undefined when not given.
 */
export function parseRule(rule) {
  const out = [];
  for (const part of String(rule).split(/[;,]/)) {
    if (!part.trim()) continue;
    const m = RATE.exec(part);
    if (!m) throw new TypeError(`limit ${JSON.stringify(part.trim())}: want COUNT/[MULTIPLE] UNIT [burst N], e.g. '100/minute'`);
    const [, count, multiple, unit, burst] = m;
    out.push(limit(Number(count), Number(multiple ?? 1) * UNITS[unit.toLowerCase()], burst === undefined ? undefined : Number(burst)));
  }
  if (out.length === 0) throw new TypeError(`rule ${JSON.stringify(rule)} holds no limit`);
  return out;
}

/**
 * A GCRA limit: `count` requests per `period` seconds. `burst` is
 * THROTTLE's max_burst: burst + 1 requests fit at once (the reply's
 * `limit`); it defaults to count - 1, all of a period's requests at once,
 * as "50/hour" means in policy files.
 */
export function limit(count, period, burst) {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`count ${count} must be an integer >= 1`);
  if (!Number.isSafeInteger(period) || period < 1) throw new RangeError(`period ${period} must be a whole number of seconds >= 1`);
  if (burst !== undefined && (!Number.isSafeInteger(burst) || burst < 0)) throw new RangeError(`burst ${burst} must be an integer >= 0`);
  return { count, period, burst: burst ?? count - 1 };
}

function throttleArgs(l) {
  const { count, period, burst } = limit(l.count, l.period, l.burst);
  return [burst, count, period];
}

/** Decodes THROTTLE's five numbers; `unit` is the reply's time unit in ms. */
function result(reply, unit = 1000) {
  const [limited, lim, remaining, retry, reset] = reply.map(Number);
  return {
    limited: limited === 1,
    limit: lim,
    remaining,
    // 0 when admitted, -1 when refused and the quantity can never fit.
    retryAfterMs: retry >= 0 ? retry * unit : limited === 1 ? -1 : 0,
    resetAfterMs: reset * unit,
  };
}

const str = (v) => (Buffer.isBuffer(v) ? v.toString() : String(v));

function pairs(v) {
  if (v instanceof Map) return [...v.entries()];
  if (Array.isArray(v)) return v.flatMap((_, i) => (i % 2 ? [] : [[v[i], v[i + 1]]]));
  return Object.entries(v ?? {});
}

function positiveMs(ms, what) {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`${what} ${ms} must be a positive number of milliseconds`);
  return Math.ceil(ms);
}

/**
 * Sends Sluice's commands through an ioredis client and decodes the
 * replies. Pass an ioredis instance (Redis or Cluster), or what
 * `new Redis(...)` takes: a URL (sluice://, sluices:// for TLS, redis://)
 * or options. Server errors reject with ioredis's ReplyError.
 */
export class Sluice {
  constructor(redis = {}) {
    if (typeof redis === 'string') redis = new Redis(redis.replace(/^sluice(s?):\/\//, 'redis$1://'));
    else if (!(redis instanceof Redis) && typeof redis?.call !== 'function') redis = new Redis(redis);
    this.redis = redis;
  }

  call(...args) {
    return this.redis.call(...args.map((a) => (typeof a === 'number' ? String(a) : a)));
  }

  /** THROTTLE: charges quantity to key under a GCRA limit; 0 peeks, negative refunds. */
  async throttle(key, lim, quantity = 1) {
    return result(await this.call('THROTTLE', key, ...throttleArgs(lim), quantity));
  }

  /** THROTTLE.MULTI: one request against several limits, all or nothing. */
  async throttleMulti(checks, quantity = 1) {
    if (!checks.length) throw new RangeError('throttleMulti needs at least one {key, limit}');
    const reply = await this.call('THROTTLE.MULTI', quantity, ...checks.flatMap((c) => [c.key, ...throttleArgs(c.limit)]));
    return { ...result(reply[0]), each: reply.slice(1).map((r) => result(r)) };
  }

  /** THROTTLE.WINDOW: count per period seconds, windows aligned to the epoch. */
  async throttleWindow(key, { count, period, algorithm = 'sliding' }, quantity = 1) {
    if (algorithm !== 'sliding' && algorithm !== 'fixed') throw new RangeError(`algorithm ${algorithm}: want 'sliding' or 'fixed'`);
    return result(await this.call('THROTTLE.WINDOW', key, count, period, quantity, 'ALGO', algorithm));
  }

  /** POLICY.THROTTLE: a request under a named policy; headers adds the RateLimit field values. */
  async policyThrottle(policy, key, { quantity = 1, headers = false } = {}) {
    const reply = await this.call('POLICY.THROTTLE', policy, key, quantity, ...(headers ? ['HEADERS'] : []));
    const r = result(reply.slice(0, 5));
    if (headers) r.headers = { 'RateLimit-Policy': str(reply[5]), RateLimit: str(reply[6]) };
    return r;
  }

  async policyList() {
    return (await this.call('POLICY.LIST')).map(str);
  }

  /** POLICY.GET: {name, algorithm, limit, overrides} or null. */
  async policyGet(name) {
    const reply = await this.call('POLICY.GET', name);
    if (reply == null) return null;
    const m = Object.fromEntries(pairs(reply).map(([k, v]) => [str(k), v]));
    return {
      name: str(m.name),
      algorithm: str(m.algorithm),
      limit: str(m.limit),
      overrides: Object.fromEntries(pairs(m.overrides).map(([k, v]) => [str(k), str(v)])),
    };
  }

  /** LEASE.ACQUIRE: one of at most max concurrent leases, expiring after ttlMs. */
  async leaseAcquire(key, max, ttlMs) {
    const [limited, mx, inFlight, freeAfterMs, id] = (await this.call('LEASE.ACQUIRE', key, max, positiveMs(ttlMs, 'ttl'))).map(Number);
    return { acquired: limited === 0, max: mx, inFlight, freeAfterMs, leaseId: id < 0 ? null : id };
  }

  async leaseRelease(key, leaseId) {
    const [ok, inFlight] = (await this.call('LEASE.RELEASE', key, leaseId)).map(Number);
    return { ok: ok === 1, inFlight };
  }

  async leaseRenew(key, leaseId, ttlMs) {
    const [ok, inFlight] = (await this.call('LEASE.RENEW', key, leaseId, positiveMs(ttlMs, 'ttl'))).map(Number);
    return { ok: ok === 1, inFlight };
  }

  /** COUNTER.INCRBY: a counter from 0 that lasts ttlMs from its first increment (every one if elastic). */
  async counterIncrBy(key, increment, ttlMs, { elastic = false } = {}) {
    const [value, ttl] = (await this.call('COUNTER.INCRBY', key, increment, positiveMs(ttlMs, 'ttl'), ...(elastic ? ['ELASTIC'] : []))).map(Number);
    return { value, ttlMs: ttl < 0 ? null : ttl };
  }

  async counterGet(key) {
    const [value, ttl] = (await this.call('COUNTER.GET', key)).map(Number);
    return { value, ttlMs: ttl < 0 ? null : ttl };
  }

  /** SLIDINGLOG.ACQUIRE: admits when the last periodMs's requests plus quantity stay within max. */
  async slidingLogAcquire(key, max, periodMs, quantity = 1) {
    return result(await this.call('SLIDINGLOG.ACQUIRE', key, max, positiveMs(periodMs, 'period'), quantity), 1);
  }

  async slidingLogGet(key, periodMs) {
    const [count, nextLeavesMs, allLeaveMs] = (await this.call('SLIDINGLOG.GET', key, positiveMs(periodMs, 'period'))).map(Number);
    return { count, nextLeavesMs, allLeaveMs };
  }

  /** Closes the ioredis connection. */
  quit() {
    return this.redis.quit();
  }
}

const ALGORITHMS = ['fixed-window', 'sliding-window', 'moving-window', 'gcra'];

/**
 * The default key: the client's IP address (req.ip, so Express's 'trust
 * proxy' setting applies), an IPv6 address reduced to its /56 network as
 * express-rate-limit does (one subscriber holds a whole /64 or more), an
 * IPv4-mapped address to its IPv4 form.
 */
export function ipKey(ip) {
  if (typeof ip !== 'string') return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  const addr = ip.split('%')[0];
  if (!isIPv6(addr)) return ip;
  const [head, tail] = addr.split('::');
  const part = (s) =>
    (s ? s.split(':') : []).flatMap((g) => {
      if (!g.includes('.')) return [g];
      const [a, b, c, d] = g.split('.').map(Number); // an IPv4 tail: two groups
      return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
    });
  const h = part(head), t = tail === undefined ? [] : part(tail);
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16));
  groups[3] &= 0xff00;
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/56`;
}

/** express-rate-limit's draft-8 partition key: a hash of the client's key. */
function partitionKey(key) {
  return Buffer.from(createHash('sha256').update(key).digest('hex').slice(0, 12)).toString('base64');
}

/** express-rate-limit's default draft-8 policy name: "100-in-1min". */
function defaultIdentifier(lim, windowMs) {
  const s = windowMs / 1000, m = s / 60, h = m / 60, d = h / 24;
  const dur = s < 60 ? `${s}sec` : m < 60 ? `${m}min` : h < 24 ? `${h}hr${h > 1 ? 's' : ''}` : `${d}day${d > 1 ? 's' : ''}`;
  return `${lim}-in-${dur}`;
}

/**
 * An Express middleware that rate-limits through Sluice, with
 * express-rate-limit's options where they apply: windowMs and limit (a
 * number or a function of (req, res)), or rule ("100/minute", several
 * limits with ';' for gcra), or policy (a named policy of the server's
 * policy file); keyGenerator, skip, handler, message, statusCode,
 * standardHeaders (false, 'draft-6', 'draft-7', 'draft-8'), legacyHeaders,
 * identifier, requestPropertyName, passOnStoreError. algorithm picks how
 * Sluice counts: 'fixed-window' (the default, express-rate-limit's: a
 * counter from the first hit, every hit counts), 'sliding-window',
 * 'moving-window' (exact) or 'gcra' (smooth; burst sets max_burst).
 */
export function rateLimit(options = {}) {
  const o = {
    windowMs: 60_000,
    limit: 5,
    algorithm: 'fixed-window',
    prefix: 'rl:',
    message: 'Too many requests, please try again later.',
    statusCode: 429,
    legacyHeaders: true,
    standardHeaders: false,
    requestPropertyName: 'rateLimit',
    passOnStoreError: false,
    keyGenerator: (req) => ipKey(req.ip),
    skip: () => false,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  };
  if (o.client == null) throw new TypeError('sluice rateLimit: client (a Sluice, an ioredis client or a URL) is required');
  const sluice = o.client instanceof Sluice ? o.client : new Sluice(o.client);
  if (o.standardHeaders === true) o.standardHeaders = 'draft-6';
  if (![false, 'draft-6', 'draft-7', 'draft-8'].includes(o.standardHeaders)) {
    throw new RangeError(`sluice rateLimit: standardHeaders ${o.standardHeaders}: want false, 'draft-6', 'draft-7' or 'draft-8'`);
  }
  if (!ALGORITHMS.includes(o.algorithm)) throw new RangeError(`sluice rateLimit: algorithm ${o.algorithm}: want one of ${ALGORITHMS.join(', ')}`);
  let rates = null;
  if (o.rule !== undefined) {
    rates = parseRule(o.rule);
    if (rates.length > 1 && o.algorithm !== 'gcra') throw new RangeError('sluice rateLimit: a rule of several limits needs algorithm gcra (or a named policy)');
    if (o.algorithm !== 'gcra' && rates[0].burst !== rates[0].count - 1) throw new RangeError('sluice rateLimit: burst applies only to algorithm gcra');
  } else if (o.policy === undefined && (!Number.isFinite(o.windowMs) || o.windowMs <= 0)) {
    throw new RangeError(`sluice rateLimit: windowMs ${o.windowMs} must be positive`);
  }
  const wholeSeconds = (ms) => {
    if (ms % 1000 !== 0) throw new RangeError(`sluice rateLimit: algorithm ${o.algorithm} counts whole seconds; windowMs ${ms} is not`);
    return ms / 1000;
  };
  if (rates === null && o.policy === undefined && (o.algorithm === 'gcra' || o.algorithm === 'sliding-window')) wholeSeconds(o.windowMs);

  // decide returns {limited, limit, remaining, used, retryAfterMs, resetAfterMs, windowMs, items}.
  async function decide(key, req, res) {
    if (o.policy !== undefined) {
      const r = await sluice.policyThrottle(o.policy, o.prefix + key, { headers: true });
      return { ...r, used: r.limit - r.remaining, windowMs: r.resetAfterMs, policyHeaders: r.headers };
    }
    const limits = rates ?? [{ count: typeof o.limit === 'function' ? await o.limit(req, res) : o.limit, period: undefined, burst: o.burst }];
    const windowMs = rates ? rates[0].period * 1000 : o.windowMs;
    const { count } = limits[0];
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`sluice rateLimit: limit ${count} must be an integer >= 1`);
    const k = `${o.prefix}${key}`;
    switch (o.algorithm) {
      case 'fixed-window': {
        const c = await sluice.counterIncrBy(k, 1, windowMs);
        const ttl = c.ttlMs ?? windowMs;
        const limited = c.value > count;
        return { limited, limit: count, remaining: Math.max(count - c.value, 0), used: c.value, retryAfterMs: limited ? ttl : 0, resetAfterMs: ttl, windowMs };
      }
      case 'moving-window': {
        const r = await sluice.slidingLogAcquire(k, count, windowMs);
        return { ...r, used: count - r.remaining, windowMs };
      }
      case 'sliding-window': {
        const r = await sluice.throttleWindow(k, { count, period: wholeSeconds(windowMs), algorithm: 'sliding' });
        return { ...r, used: count - r.remaining, windowMs };
      }
      default: {
        const checks = limits.map((l, i) => ({ key: limits.length > 1 ? `${k}:${i}` : k, limit: { count: l.count, period: l.period ?? wholeSeconds(windowMs), burst: l.burst } }));
        const r = await sluice.throttleMulti(checks);
        return { ...r, used: r.limit - r.remaining, windowMs, items: limits.length > 1 ? r.each.map((e, i) => ({ ...e, windowMs: limits[i].period * 1000 })) : undefined };
      }
    }
  }

  function setHeaders(res, info, d, key, req) {
    const resetSeconds = Math.max(0, Math.ceil(d.resetAfterMs / 1000));
    const windowSeconds = Math.ceil(d.windowMs / 1000);
    if (o.legacyHeaders) {
      res.setHeader('X-RateLimit-Limit', String(info.limit));
      res.setHeader('X-RateLimit-Remaining', String(info.remaining));
      res.setHeader('Date', new Date().toUTCString());
      res.setHeader('X-RateLimit-Reset', String(Math.ceil(info.resetTime.getTime() / 1000)));
    }
    if (d.policyHeaders && o.standardHeaders) {
      // A named policy: the server words RateLimit and RateLimit-Policy.
      res.setHeader('RateLimit-Policy', d.policyHeaders['RateLimit-Policy']);
      res.setHeader('RateLimit', d.policyHeaders.RateLimit);
      return;
    }
    switch (o.standardHeaders) {
      case 'draft-6':
        res.setHeader('RateLimit-Policy', `${info.limit};w=${windowSeconds}`);
        res.setHeader('RateLimit-Limit', String(info.limit));
        res.setHeader('RateLimit-Remaining', String(info.remaining));
        if (resetSeconds) res.setHeader('RateLimit-Reset', String(resetSeconds));
        break;
      case 'draft-7':
        res.setHeader('RateLimit-Policy', (d.items ?? [d]).map((it) => `${it.limit};w=${Math.ceil(it.windowMs / 1000)}`).join(', '));
        res.setHeader('RateLimit', `limit=${info.limit}, remaining=${info.remaining}, reset=${resetSeconds}`);
        break;
      case 'draft-8': {
        const pk = partitionKey(key);
        const items = d.items ?? [d];
        const names = items.map((it) => (typeof o.identifier === 'function' ? o.identifier(req, res) : o.identifier) ?? defaultIdentifier(it.limit, it.windowMs));
        res.setHeader('RateLimit-Policy', items.map((it, i) => `"${names[i]}"; q=${it.limit}; w=${Math.ceil(it.windowMs / 1000)}; pk=:${pk}:`).join(', '));
        res.setHeader('RateLimit', items.map((it, i) => `"${names[i]}"; r=${it.remaining}; t=${Math.max(0, Math.ceil(it.resetAfterMs / 1000))}`).join(', '));
        break;
      }
    }
  }

  return async function sluiceRateLimit(req, res, next) {
    try {
      if (await o.skip(req, res)) return next();
      const key = await o.keyGenerator(req, res);
      let d;
      try {
        d = await decide(key, req, res);
      } catch (err) {
        if (err instanceof RangeError || !o.passOnStoreError) throw err;
        console.error('sluice rateLimit: Sluice unavailable, allowing the request without rate-limiting:', err.message);
        return next();
      }
      const info = { limit: d.limit, used: d.used, remaining: d.remaining, resetTime: new Date(Date.now() + d.resetAfterMs), key };
      req[o.requestPropertyName] = info;
      if (!res.headersSent) setHeaders(res, info, d, key, req);
      if (!d.limited) return next();
      if ((o.legacyHeaders || o.standardHeaders) && !res.headersSent) {
        const retry = d.retryAfterMs >= 0 ? d.retryAfterMs : d.resetAfterMs;
        res.setHeader('Retry-After', String(Math.max(0, Math.ceil(retry / 1000))));
      }
      if (o.handler) return await o.handler(req, res, next, o);
      res.status(o.statusCode);
      const message = typeof o.message === 'function' ? await o.message(req, res) : o.message;
      if (!res.writableEnded) res.send(message);
    } catch (err) {
      next(err);
    }
  };
}

/**
 * A store for express-rate-limit itself: `rateLimit({ ..., store: new
 * SluiceStore({ client }) })`. It keeps express-rate-limit's semantics (a
 * counter per client from the first hit, lasting windowMs) in Sluice's
 * COUNTER commands, so every process shares the counts.
 */
export class SluiceStore {
  constructor({ client, prefix = 'rl:' } = {}) {
    if (client == null) throw new TypeError('SluiceStore: client (a Sluice, an ioredis client or a URL) is required');
    this.sluice = client instanceof Sluice ? client : new Sluice(client);
    this.prefix = prefix;
    this.localKeys = false;
    this.windowMs = 60_000;
  }

  init(options) {
    this.windowMs = options.windowMs;
  }

  #info(c) {
    return { totalHits: c.value, resetTime: new Date(Date.now() + (c.ttlMs ?? this.windowMs)) };
  }

  async get(key) {
    const c = await this.sluice.counterGet(this.prefix + key);
    return c.ttlMs === null ? undefined : this.#info(c);
  }

  async increment(key) {
    return this.#info(await this.sluice.counterIncrBy(this.prefix + key, 1, this.windowMs));
  }

  async decrement(key) {
    await this.sluice.counterIncrBy(this.prefix + key, -1, this.windowMs);
  }

  async resetKey(key) {
    await this.sluice.redis.del(this.prefix + key);
  }
}

export default rateLimit;
