// Types for sluice-ratelimit (index.js).

import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** A GCRA limit: count requests per period seconds, burst + 1 at once (burst is THROTTLE's max_burst). */
export interface Limit {
  count: number;
  /** Seconds, a whole number >= 1. */
  period: number;
  /** THROTTLE's max_burst; defaults to count - 1 (all of a period's requests at once). */
  burst?: number;
}

/** Builds a Limit, checking it; burst defaults to count - 1. */
export function limit(count: number, period: number, burst?: number): Required<Limit>;

/** Parses "100/minute", "10/second; 1000/day", "5000/hour burst 499". */
export function parseRule(rule: string): Required<Limit>[];

/** One decision: THROTTLE's five numbers, durations in milliseconds. */
export interface Result {
  limited: boolean;
  /** The most that fit at once (burst + 1, or the window's count). */
  limit: number;
  remaining: number;
  /** 0 when admitted; when refused, until the same request would be admitted; -1 when it never can. */
  retryAfterMs: number;
  /** Until the limit is full again. */
  resetAfterMs: number;
}

export interface MultiResult extends Result {
  each: Result[];
}

export interface PolicyResult extends Result {
  headers?: { 'RateLimit-Policy': string; RateLimit: string };
}

export interface PolicyInfo {
  name: string;
  algorithm: string;
  limit: string;
  overrides: Record<string, string>;
}

export interface Lease {
  acquired: boolean;
  max: number;
  inFlight: number;
  freeAfterMs: number;
  leaseId: number | null;
}

export interface LeaseUpdate {
  ok: boolean;
  inFlight: number;
}

export interface Counter {
  value: number;
  /** null when there is no counter. */
  ttlMs: number | null;
}

export interface LogWindow {
  count: number;
  nextLeavesMs: number;
  allLeaveMs: number;
}

/** Sluice's commands on ioredis. */
export class Sluice {
  /** An ioredis client, or what new Redis() takes: a URL (sluice://, sluices://, redis://) or options. */
  constructor(redis?: Redis | Cluster | string | RedisOptions);
  readonly redis: Redis | Cluster;
  call(...args: (string | number | Buffer)[]): Promise<unknown>;
  throttle(key: string, limit: Limit, quantity?: number): Promise<Result>;
  throttleMulti(checks: { key: string; limit: Limit }[], quantity?: number): Promise<MultiResult>;
  throttleWindow(key: string, window: { count: number; period: number; algorithm?: 'sliding' | 'fixed' }, quantity?: number): Promise<Result>;
  policyThrottle(policy: string, key: string, options?: { quantity?: number; headers?: boolean }): Promise<PolicyResult>;
  policyList(): Promise<string[]>;
  policyGet(name: string): Promise<PolicyInfo | null>;
  leaseAcquire(key: string, max: number, ttlMs: number): Promise<Lease>;
  leaseRelease(key: string, leaseId: number): Promise<LeaseUpdate>;
  leaseRenew(key: string, leaseId: number, ttlMs: number): Promise<LeaseUpdate>;
  counterIncrBy(key: string, increment: number, ttlMs: number, options?: { elastic?: boolean }): Promise<Counter>;
  counterGet(key: string): Promise<Counter>;
  slidingLogAcquire(key: string, max: number, periodMs: number, quantity?: number): Promise<Result>;
  slidingLogGet(key: string, periodMs: number): Promise<LogWindow>;
  quit(): Promise<unknown>;
}

/** What the middleware puts on req[requestPropertyName] (req.rateLimit), as express-rate-limit does. */
export interface RateLimitInfo {
  limit: number;
  used: number;
  remaining: number;
  resetTime: Date;
  key: string;
}

type Value<T> = T | ((req: Request, res: Response) => T | Promise<T>);

export interface Options {
  /** A Sluice, an ioredis client or a URL. Required. */
  client: Sluice | Redis | Cluster | string;
  /** The window in milliseconds (default 60000); whole seconds for sliding-window and gcra. */
  windowMs?: number;
  /** Requests per window (default 5). */
  limit?: Value<number>;
  /** Instead of windowMs and limit: "100/minute", or several limits for gcra: "10/second; 1000/day". */
  rule?: string;
  /** Instead of a limit: a named policy of the server's policy file (POLICY.THROTTLE). */
  policy?: string;
  /** How Sluice counts (default 'fixed-window', express-rate-limit's). */
  algorithm?: 'fixed-window' | 'sliding-window' | 'moving-window' | 'gcra';
  /** gcra only: THROTTLE's max_burst (default limit - 1). */
  burst?: number;
  /** Prepended to every key (default 'rl:'). */
  prefix?: string;
  keyGenerator?: (req: Request, res: Response) => string | Promise<string>;
  skip?: (req: Request, res: Response) => boolean | Promise<boolean>;
  handler?: (req: Request, res: Response, next: NextFunction, options: Options) => unknown;
  message?: Value<unknown>;
  statusCode?: number;
  /** false (default), true ('draft-6'), 'draft-6', 'draft-7' or 'draft-8'. */
  standardHeaders?: boolean | 'draft-6' | 'draft-7' | 'draft-8';
  /** X-RateLimit-* (default true). */
  legacyHeaders?: boolean;
  /** The draft-8 policy name (default "<limit>-in-<window>"). */
  identifier?: string | ((req: Request, res: Response) => string);
  requestPropertyName?: string;
  /** When Sluice cannot answer: true lets the request through (logged), false (default) passes the error on. */
  passOnStoreError?: boolean;
}

export function rateLimit(options: Options): RequestHandler;
export default rateLimit;

/** A store for express-rate-limit: rateLimit({ ..., store: new SluiceStore({ client }) }). */
export class SluiceStore {
  constructor(options: { client: Sluice | Redis | Cluster | string; prefix?: string });
  readonly localKeys: false;
  prefix: string;
  init(options: { windowMs: number }): void;
  get(key: string): Promise<{ totalHits: number; resetTime: Date } | undefined>;
  increment(key: string): Promise<{ totalHits: number; resetTime: Date }>;
  decrement(key: string): Promise<void>;
  resetKey(key: string): Promise<void>;
}
