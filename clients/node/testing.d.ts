// Types for sluice-ratelimit/testing (testing.js).
import type { Sluice } from './index.js';

export interface TestSluice {
  addr: string;
  url: string;
  client: Sluice;
  log: string[];
  /** Stops the server clock at unixMs (DEBUG CLOCK SET). */
  freeze(unixMs: number): Promise<unknown>;
  release(): Promise<unknown>;
  flush(): Promise<unknown>;
  close(): Promise<void>;
}

/** Runs the sluice binary ($SLUICE_BIN or PATH) on a free loopback port with DEBUG enabled. */
export function startSluice(options?: { binary?: string; args?: string[]; timeoutMs?: number }): Promise<TestSluice>;
