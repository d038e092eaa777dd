import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { loadNativeWriter } from '../../src/core/native.js';
import { SocketOutput, WriteGroup, descriptorOf } from '../../src/rtmp/output.js';
import { NativeSocketReader, READ_WINDOW, ReadWindow, SharedSocketReader, type SocketInputHandler } from '../../src/rtmp/socket-input.js';
import { nativeOrSkip } from '../helpers/native.js';

/** A listener that accepts paused (as the server's do); each accepted socket comes out of next(). */
async function pausedListener(t: TestContext): Promise<{ port: number; next(): Promise<net.Socket> }> {
  const waiting: ((s: net.Socket) => void)[] = [];
  const srv = net.createServer({ pauseOnConnect: true }, (s) => waiting.shift()?.(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  return { port: (srv.address() as net.AddressInfo).port, next: () => new Promise((r) => waiting.push(r)) };
}

/** A handler whose data() is `data`; end() and error() fail the test (SharedSocketReader leaves them to Node.js). */
function handler(data: SocketInputHandler['data']): SocketInputHandler {
  return { data, end: () => assert.fail('end() from SharedSocketReader'), error: () => assert.fail('error() from SharedSocketReader') };
}

function connect(t: TestContext, port: number): net.Socket {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => undefined);
  t.after(() => c.destroy());
  return c;
}

test('adopt: reads of every connection land in the one shared buffer, the accepted socket is closed and the connection goes on', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const reader = new SharedSocketReader(w.dupFd!.bind(w), 4096);
  const l = await pausedListener(t);
  const got: { who: number; text: string; shared: boolean }[] = [];
  const adopted: net.Socket[] = [];
  const clients: net.Socket[] = [];
  for (const who of [0, 1]) {
    const accepted = l.next();
    clients.push(connect(t, l.port));
    const acc = await accepted;
    const r = reader.adopt(acc, handler((data, start, end) => got.push({ who, text: data.toString('utf8', start, end), shared: data === reader.buffer })));
    assert.ok(r.socket !== undefined, r.socket === undefined ? r.reason : '');
    t.after(() => r.socket.destroy());
    assert.equal(acc.destroyed, true, 'the accepted socket is closed');
    assert.equal(r.socket.remotePort, clients[who]!.localPort, 'the same connection');
    adopted.push(r.socket);
  }
  clients[0]!.write('zero');
  await new Promise((r) => setTimeout(r, 50));
  clients[1]!.write('one');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(got, [
    { who: 0, text: 'zero', shared: true },
    { who: 1, text: 'one', shared: true },
  ]);
  assert.equal(adopted[0]!.bytesRead, 4, 'bytesRead counts what the shared buffer took');
  // writes go the other way, and the peer's FIN closes the adopted socket
  const back = new Promise<string>((r) => clients[1]!.once('data', (d: Buffer) => r(d.toString())));
  adopted[1]!.write('pong');
  assert.equal(await back, 'pong');
  const closed = new Promise((r) => adopted[0]!.once('close', r));
  clients[0]!.end();
  await closed;
});

test('adopt: the output writes only to the copy, and not after the peer\'s FIN closed it, though a file took the accepted socket\'s number and then the copy\'s', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const reader = new SharedSocketReader(w.dupFd!.bind(w), 4096);
  const l = await pausedListener(t);
  const accepted = l.next();
  const client = connect(t, l.port);
  const acc = await accepted;
  const accFd = descriptorOf(acc);
  const r = reader.adopt(acc, handler(() => undefined));
  assert.ok(r.socket !== undefined, r.socket === undefined ? r.reason : '');
  const socket = r.socket;
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  const copyFd = descriptorOf(socket);
  assert.ok(copyFd >= 0 && copyFd !== accFd);
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-adopt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files: number[] = [];
  t.after(() => files.forEach((f) => closeSync(f)));
  /** opens files until one gets number fd (the lowest free number comes first); the others are closed */
  const openAs = (fd: number): number => {
    const extra: number[] = [];
    try {
      for (let i = 0; i < 1000; i++) {
        const got = openSync(join(dir, `f${files.length}-${i}`), 'w');
        if (got === fd) {
          files.push(got);
          return got;
        }
        extra.push(got);
        if (got > fd) break;
      }
    } finally {
      extra.forEach((f) => closeSync(f));
    }
    throw new Error(`descriptor ${fd} is not free`);
  };
  const group = new WriteGroup({ native: loadNativeWriter().writer });
  const out = new SocketOutput(socket, { group });
  // the accepted socket's number is free at once: a file takes it, the output's writes still reach the peer
  const first = openAs(accFd);
  const got = new Promise<Buffer>((res) => client.once('data', (d: Buffer) => res(d)));
  group.begin();
  out.write(Buffer.from('media'));
  group.end();
  assert.equal((await got).toString(), 'media');
  assert.equal(fstatSync(first).size, 0, 'the accepted socket\'s old number got nothing');
  // the peer's FIN: Node.js destroys the adopted socket and closes the copy before 'close'
  let closeEmitted = false;
  socket.once('close', () => (closeEmitted = true));
  const second = new Promise<number>((res, rej) =>
    socket.once('finish', () =>
      process.nextTick(() => {
        try {
          assert.equal(closeEmitted, false);
          const f = openAs(copyFd);
          setImmediate(() => {
            group.begin();
            out.write(Buffer.alloc(1000, 1));
            group.end();
            out.write(Buffer.alloc(1000, 2));
            res(f);
          });
        } catch (e) {
          rej(e instanceof Error ? e : new Error(String(e)));
        }
      }),
    ),
  );
  client.end();
  const f = await second;
  assert.equal(fstatSync(f).size, 0, 'the copy\'s number, taken in the gap, got nothing');
});

test('adopt: when dup(2) fails the accepted socket is left as it was, to be read the usual way', async (t) => {
  const reader = new SharedSocketReader(() => {
    throw new Error('Too many open files');
  });
  const l = await pausedListener(t);
  const accepted = l.next();
  const c = connect(t, l.port);
  const acc = await accepted;
  t.after(() => acc.destroy());
  const r = reader.adopt(acc, handler(() => assert.fail('no shared reads')));
  assert.equal(r.socket, undefined);
  assert.match(r.socket === undefined ? r.reason : '', /Too many open files/);
  assert.equal(acc.destroyed, false);
  const data = new Promise<string>((res) => acc.once('data', (d: Buffer) => res(d.toString())));
  acc.resume();
  c.write('plain');
  assert.equal(await data, 'plain');
});

test('SharedSocketReader: the buffer size is checked', () => {
  assert.throws(() => new SharedSocketReader(() => 0, 100), RangeError);
  assert.throws(() => new SharedSocketReader(() => 0, 4096.5), RangeError);
  assert.equal(new SharedSocketReader(() => 0).buffer.length, 64 * 1024);
});

/** What a NativeSocketReader's handler got, per connection. */
class Recorder implements SocketInputHandler {
  text = '';
  bytes = 0;
  ends = 0;
  errors: number[] = [];
  /** how many batches (deliveries) delivered data to it */
  calls = 0;
  data(buffer: Buffer, start: number, end: number): void {
    this.text += buffer.toString('latin1', start, end);
    this.bytes += end - start;
    this.calls++;
  }
  end(): void {
    this.ends++;
  }
  error(errno: number): void {
    this.errors.push(errno);
  }
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function nativeReader(t: TestContext, group?: WriteGroup, window?: ReadWindow): NativeSocketReader | undefined {
  const w = nativeOrSkip(t);
  if (w === undefined) return undefined;
  assert.ok(w.createPoller !== undefined, 'the addon has the poller');
  const reader = new NativeSocketReader(w as Required<typeof w>, w.dupFd!.bind(w), group, window);
  t.after(() => reader.close());
  return reader;
}

test('NativeSocketReader: reads of several connections in one batch, in order per connection; the accepted socket stays and writes; the peer\'s FIN and reset reach the handler', async (t) => {
  const reader = nativeReader(t);
  if (reader === undefined) return;
  const l = await pausedListener(t);
  const recs: Recorder[] = [];
  const clients: net.Socket[] = [];
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const accepted = l.next();
    clients.push(connect(t, l.port));
    const acc = await accepted;
    const rec = new Recorder();
    const r = reader.adopt(acc, rec);
    assert.ok(r.socket === acc, 'the accepted socket is the connection\'s');
    acc.on('error', () => undefined);
    t.after(() => acc.destroy());
    recs.push(rec);
    sockets.push(acc);
  }
  // all three are ready before the loop polls again: one batch
  for (let i = 0; i < 3; i++) clients[i]!.write(`hello ${i}`);
  const until0 = Date.now() + 50;
  while (Date.now() < until0); // the data arrives while the loop is busy
  await until('three reads', () => recs.every((r) => r.bytes > 0));
  assert.deepEqual(recs.map((r) => r.text), ['hello 0', 'hello 1', 'hello 2']);
  assert.deepEqual(recs.map((r) => r.calls), [1, 1, 1]);
  // more than one batch buffer's worth from one peer: everything, in order
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 11)) & 0xff;
  clients[0]!.write(big);
  await until('3 MiB', () => recs[0]!.bytes === 7 + big.length, 10_000);
  assert.ok(Buffer.from(recs[0]!.text.slice(7), 'latin1').equals(big), 'the bytes in order');
  // writes go the other way on the accepted socket
  const back = new Promise<string>((r) => clients[1]!.once('data', (d: Buffer) => r(d.toString())));
  sockets[1]!.write('pong');
  assert.equal(await back, 'pong');
  // FIN: end() once, nothing else
  clients[1]!.end();
  await until('end', () => recs[1]!.ends === 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(recs[1]!.ends, 1, 'end() once (the descriptor is no longer watched)');
  // a reset: error(-ECONNRESET)
  clients[2]!.resetAndDestroy();
  await until('error', () => recs[2]!.errors.length + recs[2]!.ends > 0);
  assert.deepEqual(recs[2]!.errors, [-104], 'ECONNRESET');
});

test('NativeSocketReader: a socket closed by Node.js releases its copy (the peer sees the FIN), and no later read reaches its handler', async (t) => {
  const reader = nativeReader(t);
  if (reader === undefined) return;
  const l = await pausedListener(t);
  const accepted = l.next();
  const client = connect(t, l.port);
  const acc = await accepted;
  const rec = new Recorder();
  reader.adopt(acc, rec);
  client.write('a');
  await until('a', () => rec.bytes === 1);
  const ended = new Promise((r) => client.once('end', r));
  acc.destroy();
  await ended; // the FIN came: the poller's copy is closed too
  client.on('error', () => undefined);
  client.write('b');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(rec.text, 'a');
  assert.equal(rec.ends + rec.errors.length, 0);
});

test('NativeSocketReader: a batch\'s writes wait in the write group and leave when the batch ends', async (t) => {
  const group = new WriteGroup({ native: loadNativeWriter().writer });
  const reader = nativeReader(t, group);
  if (reader === undefined) return;
  const l = await pausedListener(t);
  const accepted = l.next();
  const client = connect(t, l.port);
  const acc = await accepted;
  const out = new SocketOutput(acc, { group });
  let openDuring: boolean | undefined;
  reader.adopt(acc, {
    data: (b, s, e) => {
      openDuring = group.open;
      out.write(Buffer.from(b.toString('utf8', s, e).toUpperCase()));
    },
    end: () => undefined,
    error: () => undefined,
  });
  const back = new Promise<string>((r) => client.once('data', (d: Buffer) => r(d.toString())));
  client.write('echo');
  assert.equal(await back, 'ECHO');
  assert.equal(openDuring, true);
});

test('native poller: unwatching a token during a batch forgets that token\'s entries of the batch being delivered', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const l = await pausedListener(t);
  const meta = new Int32Array(3 * 16);
  const seen: number[][] = [];
  let unwatched = false;
  const poller = w.createPoller!(Buffer.alloc(128 * 1024), meta, (count) => {
    const tokens = [];
    for (let i = 0; i < count; i++) {
      tokens.push(meta[i * 3]!);
      if (!unwatched && count === 2) {
        unwatched = true;
        w.pollerUnwatch!(poller, meta[i * 3]! === 0 ? 1 : 0);
      }
    }
    seen.push(tokens);
  });
  t.after(() => w.pollerClose!(poller));
  const clients: net.Socket[] = [];
  for (const token of [0, 1]) {
    const accepted = l.next();
    clients.push(connect(t, l.port));
    const acc = await accepted;
    t.after(() => acc.destroy());
    w.pollerWatch!(poller, w.dupFd!(descriptorOf(acc)), token);
  }
  assert.throws(() => w.pollerWatch!(poller, 0, 1), /already watched/);
  clients[0]!.write('x');
  clients[1]!.write('y');
  const until0 = Date.now() + 50;
  while (Date.now() < until0);
  await until('a batch of two', () => seen.length > 0);
  assert.deepEqual(seen[0]!.length, 2, 'both reads in one batch');
  assert.equal(seen[0]![1], -1, 'the second entry, unwatched while the first was delivered, is forgotten');
  assert.throws(() => w.pollerWatch!(poller, -1, 2), TypeError);
});

/** A poller on `tokens.length` accepted connections; each batch's entries (token, bytes as text) go to `batches` with the time it came. */
async function pollerOn(t: TestContext, n: number): Promise<{ w: Required<NonNullable<ReturnType<typeof nativeOrSkip>>>; poller: ReturnType<NonNullable<ReturnType<typeof nativeOrSkip>>['createPoller'] & {}>; clients: net.Socket[]; batches: { at: number; entries: [number, string][] }[] } | undefined> {
  const w = nativeOrSkip(t);
  if (w === undefined) return undefined;
  assert.ok(w.pollerSetWindow !== undefined, 'the addon has the read window');
  const l = await pausedListener(t);
  const buffer = Buffer.alloc(256 * 1024);
  const meta = new Int32Array(3 * 64);
  const batches: { at: number; entries: [number, string][] }[] = [];
  const poller = w.createPoller!(buffer, meta, (count) => {
    const entries: [number, string][] = [];
    for (let i = 0; i < count; i++) {
      const [token, result, offset] = [meta[i * 3]!, meta[i * 3 + 1]!, meta[i * 3 + 2]!];
      entries.push([token, result > 0 ? buffer.toString('latin1', offset, offset + result) : `<${result}>`]);
    }
    batches.push({ at: performance.now(), entries });
  });
  let closed = false;
  t.after(() => {
    if (!closed) w.pollerClose!(poller);
  });
  const clients: net.Socket[] = [];
  for (let token = 0; token < n; token++) {
    const accepted = l.next();
    clients.push(connect(t, l.port));
    const acc = await accepted;
    t.after(() => acc.destroy());
    w.pollerWatch!(poller, w.dupFd!(descriptorOf(acc)), token);
  }
  const close = w.pollerClose!.bind(w);
  (w as { pollerClose: typeof close }).pollerClose = (p) => {
    closed = true;
    close(p);
  };
  return { w: w as Required<typeof w>, poller, clients, batches };
}

test('native poller: with a read window, reads that arrive within it come in one batch at its end; without, each arrival is its own batch', async (t) => {
  const p = await pollerOn(t, 2);
  if (p === undefined) return;
  const { w, poller, clients, batches } = p;
  // no window: two arrivals 40 ms apart are two batches
  clients[0]!.write('a');
  await until('a', () => batches.length === 1);
  await new Promise((r) => setTimeout(r, 40));
  clients[1]!.write('b');
  await until('b', () => batches.length === 2);
  assert.deepEqual(batches.map((b) => b.entries), [[[0, 'a']], [[1, 'b']]]);
  // a 150 ms window: the first arrival waits for it, the second (40 ms later) joins it, in one batch
  w.pollerSetWindow(poller, 150);
  const sent = performance.now();
  clients[0]!.write('c');
  await new Promise((r) => setTimeout(r, 40));
  clients[1]!.write('d');
  clients[0]!.write('e');
  await until('c, d, e', () => batches.length === 3, 3000);
  const b = batches[2]!;
  assert.deepEqual(b.entries.map(([token, text]) => [token, text]).sort(), [[0, 'ce'], [1, 'd']], 'every connection\'s arrivals of the window, in one batch');
  const waited = b.at - sent;
  assert.ok(waited >= 140, `the batch came at the window's end (${waited.toFixed(1)} ms after the first arrival)`);
  assert.ok(waited < 1000, `and not much later (${waited.toFixed(1)} ms)`);
  // a window that found reads starts the next at once; the next, empty, listens again: a later arrival opens a new window
  await new Promise((r) => setTimeout(r, 400));
  const sent1 = performance.now();
  clients[0]!.write('g');
  await until('g', () => batches.length === 4, 3000);
  assert.deepEqual(batches[3]!.entries, [[0, 'g']]);
  assert.ok(batches[3]!.at - sent1 >= 140, `a new window after the quiet time (${(batches[3]!.at - sent1).toFixed(1)} ms)`);
  // back to no window (ending the window that follows g's at once): the next arrival is delivered in its own turn again
  w.pollerSetWindow(poller, 0);
  await new Promise((r) => setTimeout(r, 20));
  const sent2 = performance.now();
  clients[1]!.write('f');
  await until('f', () => batches.length === 5);
  assert.ok(batches[4]!.at - sent2 < 100, 'no window: no wait');
  assert.throws(() => w.pollerSetWindow(poller, 1001), TypeError);
  assert.throws(() => w.pollerSetWindow(poller, -1), TypeError);
});

test('native poller: unwatching a connection or closing the poller while a window is open delivers nothing more for it', async (t) => {
  const p = await pollerOn(t, 2);
  if (p === undefined) return;
  const { w, poller, clients, batches } = p;
  w.pollerSetWindow(poller, 100);
  clients[0]!.write('x');
  clients[1]!.write('y');
  await new Promise((r) => setTimeout(r, 30));
  w.pollerUnwatch(poller, 1); // inside the window
  await until('the window\'s batch', () => batches.length === 1);
  assert.deepEqual(batches[0]!.entries, [[0, 'x']]);
  // the peer of the unwatched connection: the poller closed its copy; the accepted socket still holds the connection
  clients[0]!.write('z');
  await new Promise((r) => setTimeout(r, 20));
  w.pollerClose(poller); // inside the next window
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(batches.length, 1, 'nothing after close');
  assert.throws(() => w.pollerSetWindow(poller, 5), TypeError, 'a closed poller');
});

test('ReadWindow: on when a window would gather minReads at the measured rate, off below half of it, decided once per period', () => {
  assert.throws(() => new ReadWindow(0), RangeError);
  assert.throws(() => new ReadWindow(READ_WINDOW.MaxMs + 1), RangeError);
  assert.throws(() => new ReadWindow(2.5), RangeError);
  const rw = new ReadWindow({ ms: 4, minReads: 8, periodMs: 100 });
  // 1 000 reads a second: 4 per 4 ms window, below 8: stays off
  let t = 0;
  for (let i = 0; i < 20; i++) assert.equal(rw.batch(10, (t += 10)), undefined);
  assert.equal(rw.active, false);
  // 2 500 reads a second (10 a window): on, said once, at the end of a period
  const changes: number[] = [];
  for (let i = 0; i < 30; i++) {
    const c = rw.batch(25, (t += 10));
    if (c !== undefined) changes.push(c);
  }
  assert.deepEqual(changes, [4]);
  assert.equal(rw.active, true);
  // 1 500 a second (6 a window): between half and minReads: stays on (hysteresis)
  for (let i = 0; i < 30; i++) assert.equal(rw.batch(15, (t += 10)), undefined);
  // 500 a second (2 a window): off
  changes.length = 0;
  for (let i = 0; i < 30; i++) {
    const c = rw.batch(5, (t += 10));
    if (c !== undefined) changes.push(c);
  }
  assert.deepEqual(changes, [0]);
  assert.equal(rw.active, false);
  // the default: one publisher (~75 reads a second) never turns it on; 50 (~3 700) do
  const d = new ReadWindow(READ_WINDOW.Ms);
  t = 0;
  for (let i = 0; i < 300; i++) assert.equal(d.batch(1, (t += 13)), undefined);
  let on: number | undefined;
  for (let i = 0; i < 1000 && on === undefined; i++) on = d.batch(4, (t += 1));
  assert.equal(on, READ_WINDOW.Ms);
});

test('NativeSocketReader with a read window: under a fast stream of reads the window turns on, and every byte still arrives in order per connection', async (t) => {
  const reader = nativeReader(t, undefined, new ReadWindow({ ms: 20, minReads: 2, periodMs: 50 }));
  if (reader === undefined) return;
  const l = await pausedListener(t);
  const recs: Recorder[] = [];
  const clients: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const accepted = l.next();
    clients.push(connect(t, l.port));
    const acc = await accepted;
    acc.on('error', () => undefined);
    t.after(() => acc.destroy());
    const rec = new Recorder();
    reader.adopt(acc, rec);
    recs.push(rec);
  }
  const expected = ['', '', '', ''];
  let activeSeen = false;
  for (let k = 0; k < 60; k++) {
    for (let i = 0; i < 4; i++) {
      const piece = `${i}:${k};`;
      expected[i] += piece;
      clients[i]!.write(piece);
    }
    await new Promise((r) => setTimeout(r, 3));
    activeSeen ||= reader.windowActive;
  }
  await until('every byte', () => recs.every((r, i) => r.text === expected[i]), 5000);
  assert.ok(activeSeen, 'the window turned on under ~1 300 reads a second');
  const calls = recs.reduce((a, r) => a + r.calls, 0);
  assert.ok(calls < 240, `reads were gathered: ${calls} deliveries for 240 writes`);
});
