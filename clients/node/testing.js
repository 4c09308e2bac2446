// sluice-ratelimit/testing: a real Sluice for an app's tests. startSluice()
// runs the sluice binary ($SLUICE_BIN, else `sluice` on PATH; build it with
// `go build -o sluice ./cmd/sluice`) on a free loopback port, in memory,
// with DEBUG enabled so a test can freeze its clock and get exact answers:
//
//   import { startSluice } from 'sluice-ratelimit/testing';
//   const sluice = await startSluice();
//   await sluice.freeze(Date.UTC(2030, 0, 1));
//   app.use(rateLimit({ client: sluice.url, limit: 5 }));
//   ...
//   await sluice.close();
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { Sluice } from './index.js';

const READY = /sluice ready.*?\baddr(?:=|":")([^\s"]+)/;

/** A port free on 127.0.0.1 just now (sluice's --port 0 means no plaintext listener, as in Redis). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a sluice; resolves to {addr, url, client, freeze(ms), release(), flush(), close()}. */
export async function startSluice({ binary = process.env.SLUICE_BIN || 'sluice', args = [], timeoutMs = 15_000 } = {}) {
  const port = await freePort();
  const proc = spawn(binary, ['--bind', '127.0.0.1', '--port', String(port), '--enable-debug-command', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice did not start in ${timeoutMs} ms:\n${log.slice(-20).join('\n')}`)), timeoutMs);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary} (build it with go build -o sluice ./cmd/sluice, then set SLUICE_BIN): ${err.message}`));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sluice exited with ${code}:\n${log.slice(-20).join('\n')}`));
    });
    createInterface({ input: proc.stderr }).on('line', (line) => {
      log.push(line);
      const m = READY.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  proc.removeAllListeners('exit');
  const client = new Sluice(`sluice://${addr}`);
  return {
    addr,
    url: `sluice://${addr}`,
    client,
    log,
    /** Stops the server clock at unixMs (DEBUG CLOCK SET). */
    freeze: (unixMs) => client.call('DEBUG', 'CLOCK', 'SET', String(BigInt(Math.round(unixMs)) * 1_000_000n)),
    /** Makes the server follow the real clock again. */
    release: () => client.call('DEBUG', 'CLOCK', 'REAL'),
    /** Forgets every limit (FLUSHALL). */
    flush: () => client.redis.flushall(),
    /** Stops the server. */
    async close() {
      await client.quit().catch(() => {});
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}
