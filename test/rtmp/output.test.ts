import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { loadNativeWriter, type NativeWriter } from '../../src/core/native.js';
import { SocketOutput, WriteGroup } from '../../src/rtmp/output.js';

interface Pair {
  /** the server side: what SocketOutput writes to */
  server: net.Socket;
  /** the client side: reads what arrives */
  client: net.Socket;
  received(): Buffer;
  /** resolves once `n` bytes have arrived in total */
  waitFor(n: number): Promise<Buffer>;
  /** resolves when the client saw the end of the stream */
  ended: Promise<void>;
}

async function pair(t: TestContext, opts: { paused?: boolean; allowHalfOpen?: boolean; pauseOnConnect?: boolean } = {}): Promise<Pair> {
  const srv = net.createServer({ allowHalfOpen: opts.allowHalfOpen === true, pauseOnConnect: opts.pauseOnConnect === true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect(port, '127.0.0.1');
  const server = await accepted;
  await new Promise<void>((r) => (client.readyState === 'open' ? r() : client.once('connect', () => r())));
  srv.close();
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  const chunks: Buffer[] = [];
  let total = 0;
  const waiters: { n: number; resolve: (b: Buffer) => void }[] = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      if (total >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(Buffer.concat(chunks));
      }
    }
  };
  if (opts.paused === true) client.pause();
  client.on('data', (d: Buffer) => {
    chunks.push(d);
    total += d.length;
    check();
  });
  const ended = new Promise<void>((r) => client.once('end', () => r()));
  client.on('error', () => undefined);
  server.on('error', () => undefined);
  return {
    server,
    client,
    received: () => Buffer.concat(chunks),
    waitFor: (n) =>
      new Promise<Buffer>((resolve) => {
        waiters.push({ n, resolve });
        check();
      }),
    ended,
  };
}

/** A recognisable buffer: byte i is (seed + i) mod 251. */
function pattern(seed: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (seed + i) % 251;
  return b;
}

test('direct writes reach the peer in order and are counted; the stream path does the same', async (t) => {
  for (const direct of [true, false]) {
    const p = await pair(t);
    const out = new SocketOutput(p.server, { direct });
    assert.equal(out.direct, direct, 'a TCP socket on this platform has a descriptor');
    const parts = [pattern(1, 10), pattern(2, 3000), pattern(3, 1)];
    for (const b of parts) out.write(b);
    out.cork();
    out.write(pattern(4, 50));
    out.write(pattern(5, 70));
    assert.equal(out.queuedBytes(), 120, 'corked bytes count as queued');
    out.uncork();
    const expected = Buffer.concat([...parts, pattern(4, 50), pattern(5, 70)]);
    const got = await p.waitFor(expected.length);
    assert.ok(got.equals(expected), `bytes in order (direct ${direct})`);
    assert.equal(out.bytesWritten, expected.length);
    assert.equal(out.queuedBytes(), 0);
  }
});

test('a peer that does not read: what the kernel refuses queues in the stream, later writes follow it, nothing is lost or reordered', async (t) => {
  const p = await pair(t, { paused: true });
  const out = new SocketOutput(p.server);
  const parts: Buffer[] = [];
  // far more than loopback's socket buffers hold
  for (let i = 0; i < 800; i++) {
    const b = pattern(i, 16 * 1024 + (i % 7));
    parts.push(b);
    if (i % 3 === 0) {
      out.cork();
      out.write(b);
      const small = pattern(i + 1000, 5);
      parts.push(small);
      out.write(small);
      out.uncork();
    } else {
      out.write(b);
    }
  }
  const expected = Buffer.concat(parts);
  assert.equal(out.shortWrites, 1, 'the kernel refused once; what came after waited in the backlog, not in the stream');
  assert.ok(out.queuedBytes() > 0, 'what waits is counted, so the drop policy can see it');
  assert.ok(out.bytesWritten < expected.length, 'bytes count as written once the kernel or the stream took them');
  p.client.resume();
  const got = await p.waitFor(expected.length);
  assert.equal(got.length, expected.length);
  assert.ok(got.equals(expected), 'same bytes, same order');
  await new Promise((r) => setImmediate(r));
  assert.equal(out.queuedBytes(), 0);
  assert.equal(out.bytesWritten, expected.length, 'every byte counted once');
  // once drained, writes go direct again
  const before = out.shortWrites;
  out.write(pattern(7, 100));
  const all = await p.waitFor(expected.length + 100);
  assert.ok(all.subarray(expected.length).equals(pattern(7, 100)));
  assert.equal(out.shortWrites, before);
});

/**
 * The group's writers: JavaScript, and the native addon when npm install built it (counted, so a test sees it
 * was used): its single-buffer writes alone (gather writes by fs.writevSync, as an addon without sendList), and
 * with its gather writes (sendList).
 */
function writers(): { name: string; native: NativeWriter | undefined; calls: () => number; listCalls: () => number }[] {
  const list: { name: string; native: NativeWriter | undefined; calls: () => number; listCalls: () => number }[] = [
    { name: 'js', native: undefined, calls: () => 0, listCalls: () => 0 },
  ];
  const load = loadNativeWriter();
  if (load.writer !== undefined) {
    const real = load.writer;
    let n = 0;
    list.push({
      name: 'native',
      native: { writeSlots: (...args) => (n++, real.writeSlots(...args)) },
      calls: () => n,
      listCalls: () => 0,
    });
    const sendList = real.sendList;
    assert.ok(sendList !== undefined, 'the addon built from native/fanout.c has sendList');
    let m = 0;
    let l = 0;
    list.push({
      name: 'native with sendList',
      native: { writeSlots: (...args) => (m++, real.writeSlots(...args)), sendList: (...args) => (l++, sendList(...args)) },
      calls: () => m,
      listCalls: () => l,
    });
  }
  return list;
}

for (const w of writers())
test(`a write group holds writes until it closes: one write per output, several buffers gathered, order kept (${w.name})`, async (t) => {
  const a = await pair(t);
  const b = await pair(t);
  const group = new WriteGroup({ native: w.native });
  const outA = new SocketOutput(a.server, { group });
  const outB = new SocketOutput(b.server, { group });
  outA.write(pattern(0, 5)); // outside the group: leaves at once
  await a.waitFor(5);
  group.begin();
  outA.write(pattern(1, 100));
  outB.write(pattern(2, 200));
  outA.write(pattern(3, 300)); // a second buffer for A: gathered into one writev
  group.begin(); // nested: only the outermost end() writes
  outB.cork();
  outB.write(pattern(4, 10));
  outB.uncork();
  group.end();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(a.received().length, 5, 'nothing leaves while the group is open');
  assert.equal(b.received().length, 0);
  group.end();
  const gotA = await a.waitFor(405);
  const gotB = await b.waitFor(210);
  assert.ok(gotA.equals(Buffer.concat([pattern(0, 5), pattern(1, 100), pattern(3, 300)])));
  assert.ok(gotB.equals(Buffer.concat([pattern(2, 200), pattern(4, 10)])));
  assert.equal(outA.bytesWritten, 405);
  assert.equal(outB.bytesWritten, 210);
  // the next round starts clean
  group.begin();
  outB.write(pattern(5, 7));
  group.end();
  assert.ok((await b.waitFor(217)).subarray(210).equals(pattern(5, 7)));
  if (w.native !== undefined) assert.equal(w.calls(), 2, 'the native writer made the single-buffer writes of both rounds');
  if (w.native?.sendList !== undefined) assert.equal(w.listCalls(), 2, 'A\'s two buffers and B\'s two left in one native gather write each');
});

for (const w of writers())
test(`end() inside a group writes the grouped bytes before the FIN; destroy() drops them and never touches the descriptor again (${w.name})`, async (t) => {
  const a = await pair(t);
  const b = await pair(t);
  const c = await pair(t);
  const group = new WriteGroup({ native: w.native });
  const outA = new SocketOutput(a.server, { group });
  const outB = new SocketOutput(b.server, { group });
  const outC = new SocketOutput(c.server, { group });
  group.begin();
  outA.write(pattern(1, 50));
  outB.write(pattern(2, 60));
  outB.write(pattern(3, 70));
  outC.write(pattern(4, 80));
  outA.end();
  outB.destroy();
  outB.write(pattern(5, 10)); // after destroy: ignored
  outA.write(pattern(6, 10)); // after end: ignored
  group.end();
  await a.ended;
  assert.ok(a.received().equals(pattern(1, 50)), 'A got its bytes, then the end');
  assert.ok((await c.waitFor(80)).equals(pattern(4, 80)), 'C unaffected');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.received().length, 0, 'B got nothing after destroy');
  assert.equal(outB.bytesWritten, 0);
});

test('a peer that went away: the failed write (or the read meeting the reset first) closes the socket with an error', async (t) => {
  // half-open allowed: the server side stays writable after the peer's FIN, so the writes meet the reset
  const p = await pair(t, { allowHalfOpen: true });
  const out = new SocketOutput(p.server);
  const errors: string[] = [];
  p.server.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
  const closed = new Promise((r) => p.server.once('close', r));
  p.client.destroy();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(p.server.destroyed, false);
  for (let i = 0; i < 20 && !p.server.destroyed; i++) {
    out.write(pattern(i, 64 * 1024));
    await new Promise((r) => setTimeout(r, 5));
  }
  await closed;
  assert.ok(errors.length >= 1 && errors.every((c) => c === ErrorCode.WriteFailed || c === 'ECONNRESET'), `errors: ${errors.join(',')}`);
  out.write(pattern(0, 10)); // closed: ignored, no throw
});

for (const w of writers())
test(`a group of many players sharing buffers, some not reading: every byte arrives in order, the short writes go to the stream (${w.name})`, async (t) => {
  // more slots than the group's first arrays (256) and more distinct buffers than the native writer's stack list (64)
  const pairs: Pair[] = [];
  for (let i = 0; i < 300; i++) pairs.push(await pair(t, { paused: i % 50 === 0 }));
  const group = new WriteGroup({ native: w.native });
  const outs = pairs.map((p, i) => new SocketOutput(p.server, { group, native: i % 7 !== 3 }));
  const sent: Buffer[][] = pairs.map(() => []);
  for (let round = 0; round < 40; round++) {
    group.begin();
    // one shared message, then for some rounds a buffer per player (a distinct buffer each)
    const shared = pattern(round, 20_000 + round);
    for (let i = 0; i < outs.length; i++) {
      outs[i]!.write(shared);
      sent[i]!.push(shared);
      if (round % 10 === 9) {
        const own = pattern(round * 1000 + i, 10 + (i % 13));
        outs[i]!.write(own);
        sent[i]!.push(own);
      }
    }
    group.end();
    if (round % 8 === 0) await new Promise((r) => setImmediate(r));
  }
  // then big messages for a few of them: more than the kernel holds for the ones not reading
  const few = [0, 1, 3, 50, 51, 100, 150, 200, 250, 299];
  for (let round = 0; round < 16; round++) {
    group.begin();
    const shared = pattern(round + 77, 1 << 20);
    for (const i of few) {
      outs[i]!.write(shared);
      sent[i]!.push(shared);
    }
    group.end();
    await new Promise((r) => setImmediate(r));
  }
  const stuck = outs.filter((_, i) => i % 50 === 0);
  assert.ok(stuck.every((o) => o.shortWrites >= 1), 'players that do not read were refused by the kernel');
  for (const [i, p] of pairs.entries()) if (i % 50 === 0) p.client.resume();
  for (const [i, p] of pairs.entries()) {
    const expected = Buffer.concat(sent[i]!);
    const got = await p.waitFor(expected.length);
    assert.ok(got.equals(expected), `player ${i}: same bytes, same order`);
  }
  await new Promise((r) => setImmediate(r));
  for (const [i, o] of outs.entries()) assert.equal(o.bytesWritten, Buffer.concat(sent[i]!).length, `player ${i}: every byte counted once`);
  // one call per round that had a single-buffer slot: every round of the first phase, and the second's until its players lag
  if (w.native !== undefined) assert.ok(w.calls() >= 40 && w.calls() <= 56, `native calls: ${w.calls()}`);
});

/** The socket's descriptor number while it has one. */
function fdOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle: { fd: number } | null })._handle?.fd;
  assert.ok(typeof fd === 'number' && fd >= 0);
  return fd;
}

/**
 * Opens files in `dir` until one gets descriptor number `fd` (Linux gives the
 * lowest free number: the ones below it that are free get taken first, then
 * closed again). Returns that file's path and descriptor; throws if `fd` is not free.
 */
function openAs(t: TestContext, dir: string, fd: number): { path: string; fd: number } {
  const extra: number[] = [];
  try {
    for (let i = 0; i < 1000; i++) {
      const path = join(dir, `file-${i}`);
      const got = openSync(path, 'w');
      if (got === fd) {
        t.after(() => closeSync(got));
        return { path, fd: got };
      }
      extra.push(got);
      if (got > fd) break;
    }
  } finally {
    for (const e of extra) closeSync(e);
  }
  throw new Error(`descriptor ${fd} is not free`);
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-output-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

for (const w of writers())
for (const mode of ['direct', 'group'] as const)
test(`the peer's FIN: Node.js closes the descriptor before 'close'; a file that gets its number in the gap receives nothing (${w.name}, ${mode})`, async (t) => {
  // allowHalfOpen false, as the server's: 'end', then Node.js ends and destroys the socket itself
  const p = await pair(t);
  const group = new WriteGroup({ native: w.native });
  const out = new SocketOutput(p.server, { group });
  const dir = tempDir(t);
  out.write(pattern(0, 100));
  await p.waitFor(100);
  const fd = fdOf(p.server);
  let closeEmitted = false;
  p.server.once('close', () => (closeEmitted = true));
  const write = (seed: number): void => {
    if (mode === 'direct') {
      out.write(pattern(seed, 1000));
      return;
    }
    group.begin();
    out.write(pattern(seed, 1000));
    out.write(pattern(seed + 1, 10)); // a second buffer: the gathered (writev) slot
    group.end();
  };
  const done = new Promise<{ path: string }>((resolve, reject) => {
    p.server.once('finish', () =>
      // the turn that emitted 'finish' destroys the socket next, synchronously: its descriptor is closed by this tick
      process.nextTick(() => {
        try {
          assert.equal(p.server.destroyed, true);
          assert.equal(closeEmitted, false, "'close' comes later");
          const file = openAs(t, dir, fd);
          write(1);
          // the hub's flush runs in the check phase, still before 'close'
          setImmediate(() => {
            try {
              assert.equal(closeEmitted, false, "still before 'close'");
              write(3);
              resolve(file);
            } catch (e) {
              reject(e instanceof Error ? e : new Error(String(e)));
            }
          });
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      }),
    );
  });
  p.client.end(); // the FIN
  const file = await done;
  assert.equal(statSync(file.path).size, 0, 'the file that took the number received no media');
  assert.equal(out.queuedBytes(), 0);
  out.write(pattern(5, 10)); // closed: ignored
  assert.equal(statSync(file.path).size, 0);
});

for (const w of writers())
test(`a socket destroyed behind the output's back while its group slot waits: the slot is dropped, the descriptor's new owner receives nothing (${w.name})`, async (t) => {
  const a = await pair(t);
  const b = await pair(t);
  const group = new WriteGroup({ native: w.native });
  const outA = new SocketOutput(a.server, { group });
  const outB = new SocketOutput(b.server, { group });
  const dir = tempDir(t);
  const fd = fdOf(a.server);
  group.begin();
  outA.write(pattern(1, 500));
  outB.write(pattern(1, 500));
  a.server.destroy(); // not through the output: a timeout, an error, another module
  const file = openAs(t, dir, fd);
  group.end();
  assert.equal(fstatSync(file.fd).size, 0, 'the file that took the number received nothing');
  assert.ok((await b.waitFor(500)).equals(pattern(1, 500)), 'the other player got its bytes');
  assert.equal(outA.bytesWritten, 0);
});

for (const w of writers())
for (const mode of ['direct', 'group'] as const)
test(`a write that fails (EPIPE/ECONNRESET) destroys the socket with ${ErrorCode.WriteFailed}; nothing is handed to the stream (${w.name}, ${mode})`, async (t) => {
  // the server side does not read: the reset is met by the write, not by a read
  const p = await pair(t, { pauseOnConnect: true, allowHalfOpen: true });
  const group = new WriteGroup({ native: w.native });
  const out = new SocketOutput(p.server, { group });
  const errors: unknown[] = [];
  p.server.on('error', (e) => errors.push(e));
  const closed = new Promise((r) => p.server.once('close', r));
  p.client.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(p.server.destroyed, false);
  if (mode === 'direct') {
    out.write(pattern(1, 1000));
  } else {
    group.begin();
    out.write(pattern(1, 1000));
    group.end();
  }
  assert.equal(p.server.destroyed, true, 'destroyed at once');
  assert.equal(p.server.writableLength, 0, 'nothing was handed to the stream');
  await closed;
  assert.equal(errors.length, 1);
  const e = errors[0];
  assert.ok(isServerError(e, ErrorCode.WriteFailed), String(e));
  assert.match(e.message, /EPIPE|ECONNRESET/);
  assert.equal(out.bytesWritten, 0);
});

for (const direct of [true, false]) {
  test(`the output cap counts every queued buffer, not only its bytes: a peer that never reads 18-byte replies is cut off long before they hold the cap's bytes (${direct ? 'direct' : 'stream'} writes)`, async (t) => {
    const p = await pair(t, { paused: true });
    const cap = 32 * 1024 * 1024;
    let overflowed: number | undefined;
    const out = new SocketOutput(p.server, { direct, maxQueuedBytes: cap, onOverflow: (q) => (overflowed = q) });
    // fill the kernel's buffers first (loopback takes a few MiB): what follows waits in our queue
    out.write(Buffer.alloc(12 * 1024 * 1024));
    const reply = Buffer.alloc(18, 1);
    let writes = 0;
    // by bytes alone, the cap would take well over 1.1 million of these replies
    for (; writes < 400_000 && overflowed === undefined; writes++) {
      out.write(reply);
      if (writes % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    assert.notEqual(overflowed, undefined, `the output overflowed (${writes} replies written)`);
    // at 128 per buffer the replies' cost reached the cap while their bytes were a fraction of it
    assert.ok(overflowed! < cap / 2, `cut with ${overflowed} bytes queued`);
  });
}
