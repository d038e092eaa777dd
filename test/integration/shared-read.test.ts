import assert from 'node:assert/strict';
import net from 'node:net';
import test, { type TestContext } from 'node:test';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import type { NativeWriter } from '../../src/core/native.js';
import { buildModules } from '../../src/app/modules.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { RtmpServer } from '../../src/server.js';
import { nativeOrSkip } from '../helpers/native.js';
import { loopbackDefault, sleep, until } from '../helpers/server.js';
import { playCounting, publishSynthetic } from '../helpers/synthetic.js';

/**
 * The real addon, with its dupFd counted (or made to fail); with `poller` its batched reader too
 * (NativeSocketReader), else as an addon built before it (SharedSocketReader, Node.js's onread).
 */
function countingWriter(real: NativeWriter, fail = false, poller = true): { writer: NativeWriter; dups: number[]; watched: number[]; windows: number[] } {
  const dups: number[] = [];
  const watched: number[] = [];
  /** every read window the server set (pollerSetWindow) */
  const windows: number[] = [];
  const writer: NativeWriter = {
    writeSlots: (...a) => real.writeSlots(...a),
    trimHeap: () => real.trimHeap?.(),
    dupFd: (fd) => {
      dups.push(fd);
      if (fail) throw new Error('EMFILE: too many open files');
      return real.dupFd!(fd);
    },
  };
  if (poller) {
    writer.createPoller = (...a) => real.createPoller!(...a);
    writer.pollerWatch = (p, fd, token) => {
      watched.push(fd);
      real.pollerWatch!(p, fd, token);
    };
    writer.pollerUnwatch = (...a) => real.pollerUnwatch!(...a);
    writer.pollerClose = (...a) => real.pollerClose!(...a);
    writer.pollerSetWindow = (p, ms) => {
      windows.push(ms);
      real.pollerSetWindow!(p, ms);
    };
  }
  return { writer, dups, watched, windows };
}

async function serve(t: TestContext, writer: NativeWriter, sharedRead = true, readWindow?: number): Promise<{ url: string; logs: MemoryLogEntry[]; server: RtmpServer }> {
  const logs: MemoryLogEntry[] = [];
  const server = new RtmpServer(
    loopbackDefault(() => ({ sharedRead, ...(readWindow !== undefined ? { readWindow } : {}) })),
    { logger: memoryLogger(logs), modules: buildModules, nativeWriter: writer, warmup: false },
  );
  await server.start();
  t.after(() => server.stop(1000));
  return { url: `rtmp://127.0.0.1:${server.port}/live`, logs, server };
}

/**
 * A late player gets the cached GOP: frames read by the publisher's connection
 * long before, each into the same shared buffer. Every frame's body is one byte
 * value (its sequence number), so a frame kept as a view of that buffer would
 * show the bytes of a later read.
 */
async function lateJoinerGetsIntactFrames(url: string): Promise<number> {
  // 3000-byte video and 200-byte audio frames: each arrives as one chunk (the zero-copy path of the decoder)
  const pub = await publishSynthetic(url, 'cam', { fps: 25, gop: 50, frameSize: 3000 });
  try {
    await sleep(1200);
    const p = await playCounting(url, 'cam', true);
    try {
      assert.ok(await until(() => p.video >= 40), `late player got ${p.video} video frames`);
      let checked = 0;
      let lastSeq = -1;
      for (const m of p.messages) {
        const body = m.type === MessageType.Video ? m.payload.subarray(5) : m.type === MessageType.Audio ? m.payload.subarray(2) : undefined;
        if (body === undefined || m.payload[1] === 0) continue; // metadata, sequence headers
        const v = body[0]!;
        assert.ok(body.every((b) => b === v), `${m.type === MessageType.Video ? 'video' : 'audio'} frame at ${m.timestamp} ms is not one byte value: a view of a reused read buffer?`);
        if (m.type === MessageType.Video) {
          const seq = Math.round((m.timestamp * 25) / 1000) & 0xff;
          assert.equal(v, seq, `video frame at ${m.timestamp} ms carries frame ${v}, not ${seq}`);
          assert.ok(lastSeq < 0 || seq === ((lastSeq + 1) & 0xff), `frames in order (${lastSeq} then ${seq})`);
          lastSeq = seq;
        }
        checked++;
      }
      return checked;
    } finally {
      await p.client.close();
    }
  } finally {
    await pub.stop();
  }
}

for (const poller of [true, false]) {
  test(`shared_read (${poller ? 'batched native reads' : 'an addon without them: Node.js onread'}): connections read through the shared buffer, and a late player gets the GOP intact`, async (t) => {
    const real = nativeOrSkip(t);
    if (real === undefined) return;
    const { writer, dups, watched } = countingWriter(real, false, poller);
    const { url, logs } = await serve(t, writer);
    const checked = await lateJoinerGetsIntactFrames(url);
    assert.ok(checked >= 60, `checked ${checked} frames`);
    assert.equal(dups.length, 2, 'the publisher and the player were read through the shared buffer');
    assert.equal(watched.length, poller ? 2 : 0, 'read by the native poller');
    assert.ok(logs.some((l) => l.msg === 'native fan-out writer loaded' && l.fields['sharedRead'] === true));
  });
}

test('read_window: with the window on (200 ms: one publisher reads fast enough for it), a late player still gets every frame intact and in order', async (t) => {
  const real = nativeOrSkip(t);
  if (real === undefined) return;
  const { writer, windows } = countingWriter(real);
  const { url } = await serve(t, writer, true, 200);
  const checked = await lateJoinerGetsIntactFrames(url);
  assert.ok(checked >= 60, `checked ${checked} frames`);
  assert.equal(windows[0], 200, 'the window turned on');
});

test('read_window: one publisher and its player at the default window never turn it on (no added latency)', async (t) => {
  const real = nativeOrSkip(t);
  if (real === undefined) return;
  const { writer, windows } = countingWriter(real);
  const { url } = await serve(t, writer);
  assert.ok((await lateJoinerGetsIntactFrames(url)) >= 60);
  assert.deepEqual(windows, [], 'no window set');
});

test('shared_read: a peer that resets a connection the server is closing (stop) does not keep the server from stopping', async (t) => {
  const real = nativeOrSkip(t);
  if (real === undefined) return;
  for (let round = 0; round < 5; round++) {
    const { writer, watched } = countingWriter(real);
    const { server } = await serve(t, writer);
    const clients = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<net.Socket>((resolve) => {
            const c = net.connect(server.port, '127.0.0.1', () => resolve(c));
            c.on('error', () => undefined);
          }),
      ),
    );
    await until(() => watched.length === 3);
    // the server ends the connections (close(): its FIN) while the peers reset theirs
    const stopped = server.stop(1000);
    for (const c of clients) c.resetAndDestroy();
    // without the fix the socket waited for close()'s 2 s timer (and, in a process with nothing else to do, forever)
    const outcome = await Promise.race([stopped.then(() => 'stopped'), sleep(1500).then(() => 'still stopping')]);
    assert.equal(outcome, 'stopped', `round ${round}`);
  }
});

test('shared_read off, or a dup(2) that fails: the connections are read the usual way and served the same', async (t) => {
  const real = nativeOrSkip(t);
  if (real === undefined) return;
  const off = countingWriter(real);
  const a = await serve(t, off.writer, false);
  assert.ok((await lateJoinerGetsIntactFrames(a.url)) >= 60);
  assert.equal(off.dups.length, 0, 'shared_read off: no dup');
  const failing = countingWriter(real, true);
  const b = await serve(t, failing.writer);
  assert.ok((await lateJoinerGetsIntactFrames(b.url)) >= 60);
  assert.equal(failing.dups.length, 2, 'tried for both connections');
  assert.equal(b.logs.filter((l) => l.msg === 'shared read buffer not used for this connection').length, 2);
});
