// ioredis's Cluster through an etcd-driven failover, with the setting
// README's Failover table gives (slotsRefreshInterval: 2000). Run by
// compat/failover_etcd_test.go with SLUICE_CLUSTER_ADDRS (every node) and
// SLUICE_FAILOVER_TAG (a hashtag whose slot the primary about to be killed
// serves); the same protocol as python/etcd_failover_client.py: THROTTLE
// {tag}:io:<n> 15 30 60 1 (a fresh key each time) every 10 ms, each reply
// checked exactly; "ready" after the first reply; once the test wrote
// "armed" on stdin every attempt is printed as "ok <sent_ns> <done_ns>" or
// "err <sent_ns> <done_ns> <error>" (wall clock); an error before "armed"
// ends it with status 1. It stops when stdin closes, or after 90 s (status 1).
import { createInterface } from 'node:readline';
import { isDeepStrictEqual } from 'node:util';
import Redis from 'ioredis';

const nodes = process.env.SLUICE_CLUSTER_ADDRS.split(',').map((a) => {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
});
const tag = process.env.SLUICE_FAILOVER_TAG;
const fresh = [0, 16, 15, -1, 2];
// nowNs is the wall clock in Unix nanoseconds (microsecond resolution).
const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;

let armed = false;
let closed = false;
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() === 'armed') {
      armed = true;
      console.log('armed');
    }
  })
  .on('close', () => { closed = true; });

const c = new Redis.Cluster(nodes, { slotsRefreshInterval: 2000 });
c.on('error', () => {});
c.on('node error', () => {});
const deadline = Date.now() + 90000;
let ready = false;
let status = 0;
for (let n = 1; !closed; n++) {
  if (Date.now() > deadline) {
    console.log('no end after 90 s');
    status = 1;
    break;
  }
  const sent = nowNs();
  let err;
  try {
    const got = await c.call('THROTTLE', `{${tag}}:io:${n}`, 15, 30, 60, 1);
    if (!isDeepStrictEqual(got, fresh)) err = `reply ${JSON.stringify(got)}, want ${JSON.stringify(fresh)}`;
  } catch (e) {
    err = String(e && e.message ? e.message : e);
  }
  const done = nowNs();
  // Read after the attempt: the test kills only once it read "armed", so an
  // attempt the kill broke always sees the flag set.
  if (!armed) {
    if (err !== undefined) {
      console.log(`error before the kill: ${err}`);
      status = 1;
      break;
    }
    if (!ready) {
      ready = true;
      console.log('ready');
    }
  } else if (err === undefined) {
    console.log(`ok ${sent} ${done}`);
  } else {
    console.log(`err ${sent} ${done} ${err.replace(/\n/g, ' ')}`);
  }
  await new Promise((r) => setTimeout(r, 10));
}
c.disconnect();
process.exit(status);
