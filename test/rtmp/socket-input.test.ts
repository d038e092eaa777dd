import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { loadNativeWriter } from '../../src/core/native.js';
import { SocketOutput, WriteGroup, descriptorOf } from '../../src/rtmp/output.js';
import { SharedSocketReader } from '../../src/rtmp/socket-input.js';
import { nativeOrSkip } from '../helpers/native.js';

/** A listener that accepts paused (as the server's do); each accepted socket comes out of next(). */
async function pausedListener(t: TestContext): Promise<{ port: number; next(): Promise<net.Socket> }> {
  const waiting: ((s: net.Socket) => void)[] = [];
  const srv = net.createServer({ pauseOnConnect: true }, (s) => waiting.shift()?.(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => srv.close());
  return { port: (srv.address() as net.AddressInfo).port, next: () => new Promise((r) => waiting.push(r)) };
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
    const r = reader.adopt(acc, (data, length) => got.push({ who, text: data.toString('utf8', 0, length), shared: data === reader.buffer }));
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
  const r = reader.adopt(acc, () => undefined);
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
  const r = reader.adopt(acc, () => assert.fail('no shared reads'));
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
