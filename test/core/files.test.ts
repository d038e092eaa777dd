import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { checkPathSegment, outputPath, writeFileAtomic } from '../../src/core/files.js';

test('outputPath keeps every untrusted name inside its root', () => {
  const root = '/srv/rec';
  assert.equal(outputPath(root, 'live', 'cam1.flv'), '/srv/rec/live/cam1.flv');
  assert.equal(outputPath(root, 'caméra ü.flv'), '/srv/rec/caméra ü.flv');
  const bad = ['', '.', '..', '../x', 'a/b', 'a\\b', 'a\0b', 'a\nb', '\u007f', 'x'.repeat(256), 'é'.repeat(128)];
  for (const name of bad) {
    assert.throws(() => outputPath(root, name), (e: unknown) => isServerError(e, ErrorCode.OutputPathUnsafe), JSON.stringify(name));
  }
  assert.equal(checkPathSegment('x'.repeat(255)), 'x'.repeat(255));
  // a root given with dot segments is resolved first
  assert.equal(outputPath('/srv/rec/../rec', 'a'), '/srv/rec/a');
});

test('writeFileAtomic replaces a file in one rename and leaves no temporary file', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'index.m3u8');
  await writeFileAtomic(file, 'one');
  await writeFileAtomic(file, [Buffer.from('tw'), Buffer.from('o')]);
  const many = Array.from({ length: 1500 }, (_, i) => Buffer.from([i & 0xff]));
  await writeFileAtomic(path.join(dir, 'many'), many);
  assert.equal(await readFile(file, 'utf8'), 'two');
  assert.equal((await readFile(path.join(dir, 'many'))).length, 1500);
  assert.deepEqual((await readdir(dir)).sort(), ['index.m3u8', 'many']);
  await assert.rejects(writeFileAtomic(path.join(dir, 'missing', 'x'), 'x'), (e: unknown) => isServerError(e, ErrorCode.OutputWriteFailed));
  assert.deepEqual((await readdir(dir)).sort(), ['index.m3u8', 'many']);
});
