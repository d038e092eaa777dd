import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import type { NativeWriter } from '../../src/core/native.js';
import { BatchedWrites, closeFile, type OpenedFile } from '../../src/record/disk.js';
import { nativeOrSkip } from '../helpers/native.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'batched-writes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function opened(path: string, flags: string, dev = 1): Promise<OpenedFile> {
  return { fh: await open(path, flags), dev, batch: undefined, pos: 0, shift: 0, ownsMetadata: true };
}

test('native writeAt: several files in one job, each at its position, every byte; a failing entry reports its errno and the others are written', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  assert.ok(w.writeAt !== undefined, 'the addon has writeAt');
  const dir = tempDir(t);
  const a = await open(join(dir, 'a'), 'w');
  const b = await open(join(dir, 'b'), 'w');
  writeFileSync(join(dir, 'ro'), 'read only');
  const ro = await open(join(dir, 'ro'), 'r');
  t.after(async () => {
    await Promise.all([a.close(), b.close(), ro.close()]);
  });
  // 1 500 buffers for one entry: more than IOV_MAX per pwritev(2)
  const many = Array.from({ length: 1500 }, (_, i) => Buffer.from([i & 0xff, (i >> 8) & 0xff]));
  const bufs = [Buffer.from('hello '), Buffer.from('world'), ...many, Buffer.from('XY'), Buffer.from('zz')];
  const results = new Int32Array(4).fill(99);
  await new Promise<void>((resolve) =>
    w.writeAt!(Int32Array.of(a.fd, b.fd, ro.fd, a.fd), Float64Array.of(0, 10, 0, 11), Int32Array.of(2, 1500, 1, 1), bufs, results, resolve),
  );
  assert.equal(results[0], 0);
  assert.equal(results[1], 0);
  assert.equal(results[2], -9, 'EBADF: a descriptor opened read-only');
  assert.equal(results[3], 0);
  assert.equal(readFileSync(join(dir, 'a'), 'latin1'), 'hello worldzz');
  const got = readFileSync(join(dir, 'b'));
  assert.equal(got.length, 10 + 3000);
  assert.ok(got.subarray(0, 10).equals(Buffer.alloc(10)), 'a hole before the position');
  assert.ok(got.subarray(10).equals(Buffer.concat(many)), 'the 1 500 buffers in order');
  assert.equal(readFileSync(join(dir, 'ro'), 'latin1'), 'read only');
  // wrong arguments throw and queue nothing
  const done = (): void => assert.fail('nothing queued');
  assert.throws(() => w.writeAt!(Int32Array.of(a.fd), Float64Array.of(0), Int32Array.of(2), [Buffer.from('x')], new Int32Array(1), done), TypeError, 'counts must add up');
  assert.throws(() => w.writeAt!(Int32Array.of(a.fd), Float64Array.of(-1), Int32Array.of(1), [Buffer.from('x')], new Int32Array(1), done), TypeError, 'a negative position');
  assert.throws(() => w.writeAt!(Int32Array.of(a.fd), Float64Array.of(0.5), Int32Array.of(1), [Buffer.from('x')], new Int32Array(1), done), TypeError, 'a position that is not whole');
  assert.throws(() => w.writeAt!(Int32Array.of(a.fd, b.fd), Float64Array.of(0), Int32Array.of(1, 0), [Buffer.from('x')], new Int32Array(2), done), TypeError, 'positions shorter than fds');
  assert.throws(() => w.writeAt!(Int32Array.of(a.fd), Float64Array.of(0), Int32Array.of(1), ['x' as unknown as Buffer], new Int32Array(1), done), TypeError, 'not a Buffer');
});

test('BatchedWrites: the writes of one turn leave as one job per device; each settles with its own result; closeFile waits for a write in flight', async (t) => {
  const dir = tempDir(t);
  const jobs: { fds: number[]; positions: number[]; counts: number[]; results: Int32Array; done: () => void }[] = [];
  const native: Pick<Required<NativeWriter>, 'writeAt'> = {
    writeAt: (fds, positions, counts, _bufs, results, done) => jobs.push({ fds: [...fds], positions: [...positions], counts: [...counts], results, done }),
  };
  const batch = new BatchedWrites(native);
  const f1 = await opened(join(dir, '1'), 'w', 7);
  const f2 = await opened(join(dir, '2'), 'w', 7);
  const f3 = await opened(join(dir, '3'), 'w', 8);
  const w1 = batch.write(f1, '1', [Buffer.from('a'), Buffer.from('b')], 0);
  const w2 = batch.write(f2, '2', [Buffer.from('c')], 5);
  const w3 = batch.write(f3, '3', [Buffer.from('d')], 9);
  assert.equal(jobs.length, 0, 'nothing leaves before the end of the turn');
  await new Promise((r) => setImmediate(r));
  assert.equal(jobs.length, 2, 'one job per device');
  assert.deepEqual(jobs[0]!.fds, [f1.fh.fd, f2.fh.fd]);
  assert.deepEqual(jobs[0]!.positions, [0, 5]);
  assert.deepEqual(jobs[0]!.counts, [2, 1]);
  assert.deepEqual(jobs[1]!.fds, [f3.fh.fd]);
  // f1's file may not close while its write is in flight
  let closed = false;
  const closing = closeFile(f1.fh).then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(closed, false, 'closeFile waits for the job');
  jobs[0]!.results[1] = -28; // ENOSPC for the second entry
  jobs[0]!.done();
  await w1;
  await assert.rejects(w2, (e: Error & { code?: string; cause?: NodeJS.ErrnoException }) => {
    assert.equal(e.code, 'ERR_OUTPUT_WRITE_FAILED');
    assert.match(e.message, /cannot write 2: ENOSPC: no space left on device, write '2'/);
    assert.equal(e.cause?.code, 'ENOSPC');
    return true;
  });
  await closing;
  assert.equal(closed, true);
  jobs[1]!.done();
  await w3;
  // a closed file: the write fails at once (no job with a descriptor -1)
  await assert.rejects(batch.write(f1, '1', [Buffer.from('x')], 2), /the file is closed/);
  await new Promise((r) => setImmediate(r));
  assert.equal(jobs.length, 2);
  await Promise.all([closeFile(f2.fh), closeFile(f3.fh)]);
});

test('BatchedWrites with the real addon: a recorder-like sequence of writes lands at its positions', async (t) => {
  const w = nativeOrSkip(t);
  if (w?.writeAt === undefined) return;
  const dir = tempDir(t);
  const batch = new BatchedWrites({ writeAt: w.writeAt.bind(w) });
  const f = await opened(join(dir, 'rec'), 'w');
  let pos = 0;
  let expected = '';
  for (let i = 0; i < 20; i++) {
    const parts = [Buffer.from(`<${i}>`), Buffer.from('x'.repeat(i))];
    const p = batch.write(f, 'rec', parts, pos);
    for (const b of parts) pos += b.length;
    expected += `<${i}>${'x'.repeat(i)}`;
    if (i % 3 === 0) await p;
  }
  await closeFile(f.fh);
  assert.equal(readFileSync(join(dir, 'rec'), 'latin1'), expected);
});
