import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { sleep, until } from '../helpers/server.js';
import { filesOf, readPlaylist, startHlsServer } from './helpers.js';

/**
 * The disk bound: 2 minutes of streaming with hls_playlist_length 10s
 * and hls_cleanup on leave only the recent fragments on disk; when the
 * publisher leaves the playlist ends, and two playlist lengths later the
 * stream's files are gone. ffmpeg publishes the 2 minutes of media as fast as
 * it encodes them (no -re): the cleanup counts media time, so the bound is the
 * same as in real time, and the file fits the suite's 120 s per file.
 */

const SECONDS = 120;

test('2 minutes with hls_playlist_length 10s and hls_cleanup on: old fragments are gone, the playlist ends, then the files go', { timeout: 110_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hls-cleanup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const srv = await startHlsServer(t, `hls on; hls_path ${dir}; hls_fragment 2s; hls_playlist_length 10s; hls_cleanup on;`);
  const args = publishArgs(`${srv.url}/live/cam`, SECONDS, { size: '160x120', rate: 15, gop: 15 }).filter((a) => a !== '-re');
  const run = await runFfmpeg(args, 90_000);
  t.after(() => run.kill());
  let most = 0;
  let exited = false;
  void run.done.then(() => (exited = true));
  // sample the directory while it streams: never more than the window plus what left it within a playlist length
  while (!exited) {
    await sleep(50);
    most = Math.max(most, (await filesOf(dir, '.ts')).length);
  }
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.ok(await until(() => srv.server.hub.get('live', 'cam') === undefined, 10_000));
  let p = await readPlaylist(join(dir, 'cam.m3u8'));
  for (let i = 0; i < 50 && p?.ended !== true; i++) {
    await sleep(100);
    p = await readPlaylist(join(dir, 'cam.m3u8'));
  }
  assert.ok(p?.ended === true, p?.text);
  // about 60 fragments were made; the playlist holds the last 5 (10 s)
  assert.ok(p.mediaSeq >= 50, p.text);
  assert.equal(p.segments.length, 5, p.text);
  const left = await filesOf(dir, '.ts');
  assert.ok(most <= 12, `at most ${most} fragments on disk at once`);
  assert.ok(left.length <= 12, left.join(' '));
  assert.ok(!left.includes('cam-0.ts') && !left.includes(`cam-${p.mediaSeq - 7}.ts`), left.join(' '));
  for (const s of p.segments) assert.ok(left.includes(s.uri), `${s.uri} of the playlist is on disk`);
  // two playlist lengths after the end, nothing of the stream is left
  await sleep(21_000);
  assert.deepEqual(await filesOf(dir, '.ts'), []);
  assert.deepEqual(await filesOf(dir, '.m3u8'), []);
});
