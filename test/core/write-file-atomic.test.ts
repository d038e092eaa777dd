import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { writeFileAtomic, writeFileAtomicWith } from '../../src/core/files.js';
import type { NativeWriter } from '../../src/core/native.js';
import { nativeOrSkip } from '../helpers/native.js';
import { mountReadOnlyAndFull, unmountAll } from '../helpers/tmpfs.js';

/**
 * writeFileAtomic through both of its paths: the addon's one thread-pool job
 * (native/files.c) and node:fs/promises. Each test runs for both.
 */

type Write = (file: string, data: string | Buffer | readonly Buffer[]) => Promise<void>;

const PATHS: { name: string; writer: (t: TestContext) => NativeWriter | undefined | false }[] = [
  {
    name: 'native',
    writer: (t) => {
      const w = nativeOrSkip(t);
      if (w === undefined) return false;
      assert.equal(typeof w.writeFileAtomic, 'function', 'the addon npm install built has writeFileAtomic');
      return w;
    },
  },
  { name: 'node:fs', writer: () => undefined },
];

function each(title: string, fn: (t: TestContext, write: Write, dir: string, mounted: string[]) => Promise<void>): void {
  for (const p of PATHS) {
    test(`${title} (${p.name})`, async (t) => {
      const w = p.writer(t);
      if (w === false) return;
      const dir = mkdtempSync(path.join(tmpdir(), 'atomic-'));
      const mounted: string[] = [];
      t.after(() => {
        unmountAll(mounted);
        rmSync(dir, { recursive: true, force: true });
      });
      await fn(t, (file, data) => writeFileAtomicWith(w, file, data), dir, mounted);
    });
  }
}

/** The system error under an ERR_OUTPUT_WRITE_FAILED, checked to look like Node's. */
async function writeFails(p: Promise<void>, code: string, syscall?: string): Promise<NodeJS.ErrnoException> {
  let cause: NodeJS.ErrnoException | undefined;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isServerError(e, ErrorCode.OutputWriteFailed), String(e));
    assert.match(e.message, /^cannot write /);
    assert.ok(e.message.includes(code), `${e.message} names ${code}`);
    assert.ok(e.cause instanceof Error);
    cause = e.cause as NodeJS.ErrnoException;
    return true;
  });
  assert.ok(cause !== undefined);
  assert.equal(cause.code, code);
  assert.equal(typeof cause.errno, 'number');
  assert.ok((cause.errno ?? 0) < 0, 'errno is negative, as in Node');
  if (syscall !== undefined) assert.equal(cause.syscall, syscall);
  // Node's own write errors name no path (a descriptor's)
  if (cause.syscall === 'open' || cause.syscall === 'rename') assert.equal(typeof cause.path, 'string');
  return cause;
}

const pattern = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

each('writes a Buffer, a string and 2000 buffers byte-exact, replaces a file, leaves no temporary file', async (_t, write, dir) => {
  const a = pattern(200_000, 7);
  await write(path.join(dir, 'a.ts'), a);
  assert.ok(readFileSync(path.join(dir, 'a.ts')).equals(a));

  const text = '#EXTM3U\n#EXT-X-VERSION:3\n# caméra ü ✓\n'.repeat(50);
  await write(path.join(dir, 'index.m3u8'), text);
  assert.equal(readFileSync(path.join(dir, 'index.m3u8'), 'utf8'), text);

  // more buffers than IOV_MAX (1024), of many sizes, some empty
  const many = Array.from({ length: 2000 }, (_, i) => pattern(i % 7 === 0 ? 0 : (i * 37) % 1500, i));
  await write(path.join(dir, 'many'), many);
  assert.ok(readFileSync(path.join(dir, 'many')).equals(Buffer.concat(many)));

  // replaces: a shorter file over a longer one (O_TRUNC on a fresh name, then rename)
  await write(path.join(dir, 'a.ts'), [Buffer.from('tw'), Buffer.from('o')]);
  assert.equal(readFileSync(path.join(dir, 'a.ts'), 'utf8'), 'two');
  await write(path.join(dir, 'empty'), []);
  assert.equal(readFileSync(path.join(dir, 'empty')).length, 0);
  assert.deepEqual(readdirSync(dir).sort(), ['a.ts', 'empty', 'index.m3u8', 'many']);
});

each('a reader polling the file during 200 rewrites of different sizes never sees a partial file', async (_t, write, dir) => {
  const file = path.join(dir, 'live.m3u8');
  /** version k: a 4-byte length, then that many bytes of value k (in chunks, so the write is a gather list) */
  const version = (k: number): Buffer[] => {
    const size = 1000 + ((k * 7919) % 120_000);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(size);
    const chunks: Buffer[] = [head];
    for (let left = size; left > 0; left -= 4096) chunks.push(Buffer.alloc(Math.min(4096, left), k & 0xff));
    return chunks;
  };
  await write(file, version(0));
  let reads = 0;
  let bad: string | undefined;
  let stop = false;
  const poll = (): void => {
    if (stop) return;
    const b = readFileSync(file);
    reads++;
    const size = b.length >= 4 ? b.readUInt32BE(0) : -1;
    if (b.length !== size + 4) bad ??= `read ${b.length} bytes of a ${size + 4}-byte version`;
    else if (b.subarray(4).some((x) => x !== b[4])) bad ??= 'mixed versions';
    setImmediate(poll);
  };
  setImmediate(poll);
  for (let k = 1; k <= 200; k++) await write(file, version(k));
  stop = true;
  assert.equal(bad, undefined);
  assert.ok(reads >= 50, `the reader read ${reads} times`);
  const last = readFileSync(file);
  assert.equal(last[4], 200);
  assert.deepEqual(readdirSync(dir), ['live.m3u8']);
});

each('a missing directory: ENOENT at open, no temporary file', async (_t, write, dir) => {
  const cause = await writeFails(write(path.join(dir, 'missing', 'x.ts'), pattern(5000, 1)), 'ENOENT', 'open');
  assert.ok(cause.message.startsWith('ENOENT: '), cause.message);
  await writeFails(write(path.join(dir, 'missing', 'x.ts'), [pattern(10, 1), pattern(10, 2)]), 'ENOENT', 'open');
  assert.deepEqual(readdirSync(dir), []);
});

each('a directory in the way of the rename: the temporary file is gone', async (_t, write, dir) => {
  mkdirSync(path.join(dir, 'busy'));
  writeFileSync(path.join(dir, 'busy', 'inside'), 'x');
  const cause = await writeFails(write(path.join(dir, 'busy'), 'data'), 'EISDIR', 'rename');
  assert.match(cause.path ?? '', /\.busy\..+\.tmp$/);
  assert.deepEqual(readdirSync(dir), ['busy']);
});

each('a path with a NUL byte is refused as a failed write', async (_t, write, dir) => {
  await assert.rejects(write(path.join(dir, 'a\0b'), 'x'), (e: unknown) => isServerError(e, ErrorCode.OutputWriteFailed));
  assert.deepEqual(readdirSync(dir), []);
});

each('a read-only directory (EACCES, not as root), a read-only file system (EROFS) and a full one (ENOSPC): no temporary file left', async (t, write, dir, mounted) => {
  if (process.getuid?.() !== 0) {
    const ro = path.join(dir, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    await writeFails(write(path.join(ro, 'x'), 'x'), 'EACCES', 'open');
    chmodSync(ro, 0o755);
  }
  const fs = mountReadOnlyAndFull(mounted, dir, 'rofs', 'full');
  if (typeof fs === 'string') {
    t.skip(`cannot make a small file system here: ${fs}`);
    return;
  }
  const { ro: rofs, full } = fs;
  await writeFails(write(path.join(rofs, 'x.m3u8'), 'x'), 'EROFS', 'open');
  assert.deepEqual(readdirSync(rofs), []);
  // 200 KB on a 96 KB file system: one buffer, then a gather list
  await writeFails(write(path.join(full, 'big.ts'), pattern(200_000, 3)), 'ENOSPC', 'write');
  assert.deepEqual(readdirSync(full), []);
  await writeFails(write(path.join(full, 'big.ts'), Array.from({ length: 50 }, (_, i) => pattern(4000, i))), 'ENOSPC', 'write');
  assert.deepEqual(readdirSync(full), []);
  // and the file system is usable again: nothing leaked
  await write(path.join(full, 'small'), pattern(20_000, 4));
  assert.ok(readFileSync(path.join(full, 'small')).equals(pattern(20_000, 4)));
});

test('writeFileAtomic uses the addon when it was built with writeFileAtomic', async (t) => {
  const w = nativeOrSkip(t);
  if (w === undefined) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'atomic-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let calls = 0;
  const counting: NativeWriter = {
    ...w,
    writeFileAtomic: (...args) => {
      calls++;
      w.writeFileAtomic!(...args);
    },
  };
  await writeFileAtomicWith(counting, path.join(dir, 'x'), 'x');
  assert.equal(calls, 1);
  // the default path (the addon loaded on first use) writes the same
  await writeFileAtomic(path.join(dir, 'y'), [Buffer.from('y')]);
  assert.equal(readFileSync(path.join(dir, 'y'), 'utf8'), 'y');
});
