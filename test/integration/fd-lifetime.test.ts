import assert from 'node:assert/strict';
import fs, { fstatSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import test, { type TestContext } from 'node:test';
import { buildModules } from '../../src/app/modules.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import type { NativeWriter } from '../../src/core/native.js';
import { RtmpServer } from '../../src/server.js';
import { nativeOrSkip } from '../helpers/native.js';
import { loopbackDefault, sleep, until } from '../helpers/server.js';
import { playCounting, publishSynthetic, type CountingPlayer } from '../helpers/synthetic.js';

/**
 * The real addon, checking every slot it is given before the writes: the
 * descriptor must still be open and a socket. A descriptor Node.js closed after
 * a player's FIN (and that no file took yet) fails fstat(2) with EBADF.
 */
function checkingWriter(real: NativeWriter): { writer: NativeWriter; violations: string[] } {
  const violations: string[] = [];
  const writer: NativeWriter = {
    writeSlots: (fds, idx, bufs, n, written) => {
      for (let i = 0; i < n; i++) {
        const fd = fds[i]!;
        if (fd < 0) continue;
        try {
          if (!fstatSync(fd).isSocket()) violations.push(`slot ${i}: descriptor ${fd} is not a socket`);
        } catch (e) {
          violations.push(`slot ${i}: descriptor ${fd}: ${(e as { code?: string }).code ?? String(e)}`);
        }
      }
      real.writeSlots(fds, idx, bufs, n, written);
    },
    trimHeap: () => real.trimHeap?.(),
    dupFd: (fd) => real.dupFd!(fd),
  };
  return { writer, violations };
}

/**
 * fs.writeSync()/writevSync() (the direct writes made from JavaScript: every
 * write outside a group, and a group's slots holding several buffers), checked
 * the same way until the test ends: a closed descriptor (EBADF) is a violation.
 */
function checkJsWrites(t: TestContext, violations: string[]): void {
  const { writeSync, writevSync } = fs;
  const check = (fd: number, what: string): void => {
    try {
      fstatSync(fd);
    } catch (e) {
      violations.push(`${what}(${fd}): ${(e as { code?: string }).code ?? String(e)}`);
    }
  };
  const mod = fs as { writeSync: unknown; writevSync: unknown };
  mod.writeSync = (fd: number, ...rest: unknown[]): number => {
    check(fd, 'write');
    return (writeSync as (fd: number, ...a: unknown[]) => number)(fd, ...rest);
  };
  mod.writevSync = (fd: number, ...rest: unknown[]): number => {
    check(fd, 'writev');
    return (writevSync as (fd: number, ...a: unknown[]) => number)(fd, ...rest);
  };
  // the ES modules' named imports of node:fs (src/rtmp/output.ts) follow
  syncBuiltinESMExports();
  t.after(() => {
    mod.writeSync = writeSync;
    mod.writevSync = writevSync;
    syncBuiltinESMExports();
  });
}

async function serve(t: TestContext, writer: NativeWriter, sharedRead: boolean): Promise<{ server: RtmpServer; url: string; logs: MemoryLogEntry[] }> {
  const logs: MemoryLogEntry[] = [];
  const server = new RtmpServer(loopbackDefault(() => ({ sharedRead })), { logger: memoryLogger(logs), modules: buildModules, nativeWriter: writer, warmup: false });
  await server.start();
  t.after(() => server.stop(1000));
  return { server, url: `rtmp://127.0.0.1:${server.port}/live`, logs };
}

for (const sharedRead of [true, false])
test(`30 players leave with a FIN while media flows: no write is ever made to a descriptor Node.js closed; a player beside them keeps playing (shared_read ${sharedRead ? 'on' : 'off'})`, async (t) => {
  const real = nativeOrSkip(t);
  if (real === undefined) return;
  const { writer, violations } = checkingWriter(real);
  checkJsWrites(t, violations);
  const { server, url } = await serve(t, writer, sharedRead);
  // 100 frames a second: a fan-out in nearly every turn of the event loop, so the flush often falls between the close and 'close'
  const pub = await publishSynthetic(url, 'fd', { fps: 100, frameSize: 2000 });
  t.after(() => pub.stop());
  const healthy = await playCounting(url, 'fd');
  t.after(() => healthy.client.destroy());
  const leaving: CountingPlayer[] = [];
  for (let i = 0; i < 30; i++) leaving.push(await playCounting(url, 'fd'));
  t.after(() => leaving.forEach((p) => p.client.destroy()));
  assert.ok(await until(() => leaving.every((p) => p.video >= 5), 20_000), 'every player gets media');
  for (const [i, p] of leaving.entries()) {
    p.client.socket.end(); // the FIN; the player keeps reading, so no reset
    await sleep(i % 3 === 0 ? 0 : 40);
  }
  assert.ok(await until(() => server.connections === 2, 20_000), `the leaving players are gone (connections: ${server.connections})`);
  const videoBefore = healthy.video;
  await sleep(500);
  assert.ok(healthy.video >= videoBefore + 10, `the healthy player still plays (${videoBefore} -> ${healthy.video} video frames)`);
  assert.deepEqual(violations.slice(0, 10), [], `${violations.length} writes to a descriptor that was not the player's socket`);
});
