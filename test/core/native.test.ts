import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { loadNativeWriter } from '../../src/core/native.js';
import { nativeOrSkip } from '../helpers/native.js';

async function socketPair(t: TestContext, opts: { pauseOnConnect?: boolean } = {}): Promise<{ server: net.Socket; client: net.Socket; fd: number }> {
  const srv = net.createServer({ pauseOnConnect: opts.pauseOnConnect === true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  srv.close();
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  client.on('error', () => undefined);
  server.on('error', () => undefined);
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  assert.ok(fd >= 0);
  return { server, client, fd };
}

function collect(sock: net.Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  return new Promise((resolve) => {
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      if (total >= n) resolve(Buffer.concat(chunks));
    });
  });
}

test('a missing addon is reported with a reason, not thrown', () => {
  const load = loadNativeWriter('/nonexistent/rtmp_fanout.node');
  assert.equal(load.writer, undefined);
  assert.match(load.writer === undefined ? load.reason : '', /not built/);
});

test('an addon built before write errors were reported (a bad descriptor gets 0) is not used, with a reason', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-native-old-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'old-addon.cjs');
  writeFileSync(path, 'module.exports = { writeSlots(fds, idx, bufs, n, written) { written.fill(0, 0, n); } };\n');
  const r = loadNativeWriter(path);
  assert.equal(r.writer, undefined);
  assert.match(r.writer === undefined ? r.reason : '', /older build .*rebuild/);
});

test('writeSlots writes each slot\'s buffer to its descriptor and reports what the kernel took', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const a = await socketPair(t);
  const b = await socketPair(t);
  const bufs = [Buffer.from('hello '), Buffer.from('world')];
  const fds = Int32Array.from([a.fd, b.fd, -1, a.fd]);
  const idx = Int32Array.from([0, 1, 0, 1]);
  const written = new Int32Array(4);
  const gotA = collect(a.client, 11);
  const gotB = collect(b.client, 5);
  w.writeSlots(fds, idx, bufs, 4, written);
  assert.deepEqual([...written], [6, 5, -1, 5], 'a skipped slot (fd -1) gets -1');
  assert.equal((await gotA).toString(), 'hello world', 'two slots of one descriptor, in slot order');
  assert.equal((await gotB).toString(), 'world');
});

test('a full socket buffer: a partial write, then 0 (EAGAIN), never a block', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const a = await socketPair(t);
  a.client.pause();
  const big = Buffer.alloc(1 << 20, 7);
  const written = new Int32Array(1);
  let total = 0;
  const seen: number[] = [];
  for (let i = 0; i < 64; i++) {
    w.writeSlots(Int32Array.of(a.fd), Int32Array.of(0), [big], 1, written);
    seen.push(written[0]!);
    total += written[0]!;
    if (written[0] === 0) break;
  }
  assert.equal(seen.at(-1), 0, 'the kernel refused at last, and the call returned');
  assert.ok(seen.some((n) => n > 0 && n < big.length) || seen[0] === big.length, `partial or whole writes first: ${seen.join(',')}`);
  const got = collect(a.client, total);
  a.client.resume();
  const all = await got;
  assert.ok(all.subarray(0, total).every((x) => x === 7), 'what was reported written arrived');
});

test('an error is -errno, told from EAGAIN (0): a bad descriptor gets -EBADF, a reset connection -EPIPE/-ECONNRESET', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const written = new Int32Array(2);
  w.writeSlots(Int32Array.of(1_000_000, -1), Int32Array.of(0, 0), [Buffer.from('abc')], 2, written);
  assert.deepEqual([...written], [-osConstants.errno.EBADF, -1]);
  // a peer that reset the connection: an error, and no SIGPIPE kills the process
  // (the server side does not read, or Node.js would meet the reset first and close the descriptor)
  const a = await socketPair(t, { pauseOnConnect: true });
  a.client.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 20));
  const out = new Int32Array(1);
  for (let i = 0; i < 3; i++) {
    w.writeSlots(Int32Array.of(a.fd), Int32Array.of(0), [Buffer.alloc(1000)], 1, out);
    assert.ok(out[0] === -osConstants.errno.EPIPE || out[0] === -osConstants.errno.ECONNRESET, `got ${out[0]}`);
  }
});

test('a descriptor that is not a socket (a file, a pipe) is never written: -ENOTSOCK, 0 bytes', (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-native-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'not-a-socket');
  const fd = openSync(file, 'w');
  t.after(() => closeSync(fd));
  // a pipe too (a FIFO, opened at both ends at once with O_RDWR)
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const pipeFd = openSync(fifo, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  t.after(() => closeSync(pipeFd));
  const written = new Int32Array(2);
  w.writeSlots(Int32Array.of(fd, pipeFd), Int32Array.of(0, 0), [Buffer.from('media')], 2, written);
  assert.deepEqual([...written], [-osConstants.errno.ENOTSOCK, -osConstants.errno.ENOTSOCK]);
  assert.equal(statSync(file).size, 0, 'the file received nothing');
  assert.throws(() => readSync(pipeFd, Buffer.alloc(16)), (e: unknown) => (e as { code?: unknown }).code === 'EAGAIN', 'the pipe received nothing');
});

test('wrong arguments throw a TypeError and write nothing', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const a = await socketPair(t);
  const call = (...args: unknown[]): void => (w.writeSlots as (...a: unknown[]) => void)(...args);
  const fds = Int32Array.of(a.fd);
  const idx = Int32Array.of(0);
  const written = Int32Array.of(99);
  const bad: [string, unknown[]][] = [
    ['too few arguments', [fds, idx, [Buffer.from('x')], 1]],
    ['fds not an Int32Array', [[a.fd], idx, [Buffer.from('x')], 1, written]],
    ['a Float64Array', [new Float64Array(1), idx, [Buffer.from('x')], 1, written]],
    ['bufs not an array', [fds, idx, Buffer.from('x'), 1, written]],
    ['a string among the buffers', [fds, idx, ['x'], 1, written]],
    ['idx out of range', [fds, Int32Array.of(1), [Buffer.from('x')], 1, written]],
    ['negative idx', [fds, Int32Array.of(-1), [Buffer.from('x')], 1, written]],
    ['n beyond the arrays', [fds, idx, [Buffer.from('x')], 2, written]],
    ['negative n', [fds, idx, [Buffer.from('x')], -1, written]],
    ['written too short', [Int32Array.of(a.fd, a.fd), Int32Array.of(0, 0), [Buffer.from('x')], 2, written]],
  ];
  for (const [what, args] of bad) assert.throws(() => call(...args), (e: unknown) => e instanceof TypeError && (e as { code?: string }).code === 'ERR_NATIVE_ARGS', what);
  assert.equal(written[0], 99, 'nothing reported');
  a.client.setTimeout(50);
  const data: Buffer[] = [];
  a.client.on('data', (d: Buffer) => data.push(d));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(data.length, 0, 'nothing written');
  // many distinct buffers (beyond the stack list of 64)
  const many = Array.from({ length: 200 }, (_, i) => Buffer.from([i]));
  const got = collect(a.client, 200);
  const n = 200;
  w.writeSlots(new Int32Array(n).fill(a.fd), Int32Array.from({ length: n }, (_, i) => i), many, n, new Int32Array(n));
  assert.deepEqual([...(await got)], Array.from({ length: 200 }, (_, i) => i));
});

test('trimHeap gives the C heap\'s free pages back (glibc), and says whether it released any', (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  assert.equal(typeof w.trimHeap, 'function');
  const glibc = typeof (process.report.getReport() as { header?: { glibcVersionRuntime?: unknown } }).header?.glibcVersionRuntime === 'string';
  // many freed blocks below the mmap threshold, with a live one after them holding the heap's top in place
  const blocks = Array.from({ length: 2000 }, () => Buffer.alloc(60_000, 1));
  const keep = Buffer.alloc(60_000, 2);
  blocks.length = 0;
  const r = w.trimHeap!();
  if (glibc) assert.equal(typeof r, 'boolean');
  else assert.equal(r, undefined);
  assert.equal(keep[0], 2);
});

test('dupFd: a second descriptor for the same socket, which outlives the first; bad descriptors and arguments throw', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  assert.equal(typeof w.dupFd, 'function');
  const dupFd = w.dupFd!.bind(w);
  const a = await socketPair(t);
  const copy = dupFd(a.fd);
  assert.ok(Number.isInteger(copy) && copy >= 0 && copy !== a.fd);
  // the original socket closes its descriptor; the connection lives on in the copy
  a.server.destroy();
  await new Promise((r) => a.server.once('close', r));
  const got = collect(a.client, 5);
  const view = new net.Socket({ fd: copy, readable: true, writable: true });
  t.after(() => view.destroy());
  view.write('hello');
  assert.equal((await got).toString(), 'hello');
  const back = new Promise<string>((r) => view.once('data', (d: Buffer) => r(d.toString())));
  a.client.write('back');
  assert.equal(await back, 'back');
  const fd = openSync('/dev/null', 'r');
  closeSync(fd);
  assert.throws(() => dupFd(fd), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'ERR_NATIVE_DUP' && /bad file descriptor/i.test(e.message));
  for (const bad of [-1, 'x', undefined]) {
    assert.throws(() => (dupFd as (x: unknown) => number)(bad), (e: unknown) => e instanceof TypeError && (e as { code?: string }).code === 'ERR_NATIVE_ARGS', String(bad));
  }
});
