/**
 * The browser harness's own check, on reference streams ffmpeg writes (not our
 * server): the HLS and DASH players on ffmpeg's muxers, mpegts.js on an FLV
 * file over HTTP and over WebSocket. If these fail, the harness or the
 * browser is broken, not the server. Not part of `npm test` (it costs ~20 s
 * and tests no server code): node --import tsx --test test/browser/harness.selftest.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runFfmpeg } from '../helpers/ffmpeg.js';
import { describePlay, launchChromium, requireMseH264Aac, play, startPageServer, type PlayerKind } from '../helpers/browser.js';

const SECONDS = 9;

test('browser harness: chromium plays ffmpeg reference streams (hls.js, dash.js, mpegts.js over HTTP and WebSocket)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'browser-ref-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const context = await launchChromium(t);
  await requireMseH264Aac(context);

  // encode once (not real time), then remux into HLS and DASH
  const flv = path.join(dir, 'ref.flv');
  const enc = await runFfmpeg([
    '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(SECONDS),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', flv,
  ]);
  const encoded = await enc.done;
  assert.equal(encoded.code, 0, encoded.stderr.slice(-2000));
  await mkdir(path.join(dir, 'hls'));
  await mkdir(path.join(dir, 'dash'));
  const [hls, dash] = await Promise.all([
    runFfmpeg(['-i', flv, '-c', 'copy', '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', path.join(dir, 'hls', 'index.m3u8')]),
    runFfmpeg(['-i', flv, '-c', 'copy', '-f', 'dash', '-seg_duration', '1', '-use_template', '1', '-use_timeline', '1', path.join(dir, 'dash', 'index.mpd')]),
  ]);
  for (const run of [await hls.done, await dash.done]) assert.equal(run.code, 0, run.stderr.slice(-2000));

  const pages = await startPageServer(t);
  pages.mount('ref', dir);
  pages.mountWebSocketFile('/ws/ref.flv', flv);
  const cases: [PlayerKind, string][] = [
    ['hls', `${pages.url}/ref/hls/index.m3u8`],
    ['dash', `${pages.url}/ref/dash/index.mpd`],
    ['mpegts-http', `${pages.url}/ref/ref.flv`],
    ['mpegts-ws', `${pages.url.replace('http:', 'ws:')}/ws/ref.flv`],
  ];
  // all four at once: one browser, four pages
  const results = await Promise.all(cases.map(([kind, url]) => play(context, pages, kind, url, { name: `ref-${kind}`, timeoutMs: 30_000 })));
  for (const r of results) {
    t.diagnostic(`${r.kind}: advanced ${r.advanced.toFixed(2)} s after ${r.elapsedMs} ms`);
    assert.ok(r.reached, describePlay(r));
    assert.deepEqual(r.errors, [], describePlay(r));
    assert.deepEqual(r.consoleErrors, [], describePlay(r));
  }
});
