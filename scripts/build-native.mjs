// npm's install script: builds native/ (the fan-out's write loop, batched reads) with
// node-gyp. It never fails the install: without a compiler or Node's headers
// the server makes the same writes from JavaScript, a little slower. What
// happened is written to build/native-status.json (the tests read it) and
// printed on one line.
import { spawnSync } from 'node:child_process';
import process from 'node:process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const statusFile = join(root, 'build', 'native-status.json');
const addon = join(root, 'build', 'Release', 'rtmp_fanout.node');

function finish(built, reason) {
  // a failed build leaves no older addon behind: the server uses what the status says
  if (!built) rmSync(addon, { force: true });
  mkdirSync(dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, JSON.stringify({ built, reason, node: process.version, at: new Date().toISOString() }, null, 2) + '\n');
  process.stdout.write(`${built ? 'rtmp-server: native fan-out writer built' : `rtmp-server: native fan-out writer not built (${reason}); the server writes from JavaScript instead`}\n`);
}

if (process.env.RTMP_SERVER_SKIP_NATIVE === '1') {
  finish(false, 'RTMP_SERVER_SKIP_NATIVE=1');
} else if (process.platform === 'win32') {
  finish(false, 'not used on Windows');
} else {
  // npm gives its bundled node-gyp's path to install scripts; else the one on PATH
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp !== undefined && gyp !== '' ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: 180_000 });
  if (r.error !== undefined || r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').filter((l) => /ERR!|error/i.test(l)).slice(0, 3).join(' | ');
    finish(false, r.error !== undefined ? r.error.message : `node-gyp exited with ${r.status}: ${out}`);
  } else if (!existsSync(addon)) {
    finish(false, `node-gyp finished without ${addon}`);
  } else {
    // load it once, as the server will
    try {
      const mod = createRequire(import.meta.url)(addon);
      if (typeof mod.writeSlots !== 'function') throw new Error('no writeSlots export');
      finish(true, undefined);
    } catch (e) {
      finish(false, `built but does not load: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
