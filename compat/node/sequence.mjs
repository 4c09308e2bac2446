// Shared by the Node tests: the server address and the sequence that every
// client in compat/ replays (../testdata/sequence.json).
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

export const seq = JSON.parse(readFileSync(new URL('../testdata/sequence.json', import.meta.url), 'utf8'));
const addr = process.env.SLUICE_ADDR;
if (!addr) throw new Error('SLUICE_ADDR (host:port of a Sluice started with --enable-debug-command) is not set');
const i = addr.lastIndexOf(':');
export const host = addr.slice(0, i);
export const port = Number(addr.slice(i + 1));
export const epoch = BigInt(seq.epoch_ns);

// clock is a step's frozen server time in Unix nanoseconds, as a string.
export const clock = (step) => String(epoch + BigInt(step.at_s) * 1_000_000_000n);

// check compares a reply, or the error a client rejected with, to the step.
export function check(step, got) {
  if (step.error !== undefined) {
    assert.ok(got instanceof Error, `${step.name}: expected error ${step.error}, got ${JSON.stringify(got)}`);
    assert.equal(got.message, step.error, step.name);
    return;
  }
  assert.ok(!(got instanceof Error), `${step.name}: ${got}`);
  assert.deepEqual(got, step.reply, step.name);
}

// replay runs the sequence through send(args) -> Promise, one at a time.
export async function replay(send) {
  let now;
  for (const step of seq.steps) {
    if (clock(step) !== now) {
      now = clock(step);
      assert.equal(await send(['DEBUG', 'CLOCK', 'SET', now]), 'OK');
    }
    check(step, await send(step.args).catch((e) => e));
  }
}

// plan lists the commands of the whole sequence, clock changes included, and
// where each step's reply is.
export function plan() {
  const cmds = [];
  const at = [];
  let now;
  for (const step of seq.steps) {
    if (clock(step) !== now) {
      now = clock(step);
      cmds.push(['DEBUG', 'CLOCK', 'SET', now]);
    }
    at.push(cmds.length);
    cmds.push(step.args);
  }
  return { cmds, at };
}

// assertProtocol checks the connection really speaks RESP<n>.
export async function assertProtocol(send, n) {
  const info = String(await send(['CLIENT', 'INFO']));
  assert.match(info, new RegExp(`\\bresp=${n}\\b`), info);
}
