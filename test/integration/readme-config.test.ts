/**
 * Issue 16's "must show": nginx-rtmp's README example configuration (the
 * fixture, hosts and paths adjusted: ports 0, directories in a temporary
 * tree) runs: ffmpeg publishes to its `hls` and `dash` applications and both
 * are read over its own http{} block, and its `rtmp_stat all` page lists the
 * two HTTP readers as HLS and DASH viewers of their streams.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { startServer } from '../helpers/server.js';

const FIXTURE = fileURLToPath(new URL('../config/fixtures/real/nginx-rtmp-readme.conf', import.meta.url));

/** The README file with its ports and directories moved; exec_static's webcam and the example.com relays dropped (no camera, no DNS here). */
function adjust(text: string, dir: string): string {
  return text
    .replace('listen 1935;', 'listen 127.0.0.1:0;')
    .replace('listen      8080;', 'listen 127.0.0.1:0;')
    .replace(/\/tmp\/(av|vc|hls|dash)\b/g, `${dir}/$1`)
    .replace(/\/var\/(flvs|mp4s)/g, `${dir}/$1`)
    .replace(/root \/tmp;/g, `root ${dir};`)
    .replace(/exec_static [^;]+;/, '')
    .replace(/(push|pull) rtmp[^;]*example\.com[^;]*;/g, '')
    .replace(/on_(publish|play|done|record_done) http:\/\/localhost:8080\/\w+;/g, '');
}

test("nginx-rtmp's README configuration runs: publish to hls and dash, read both over its http block", { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'readme-conf-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const d of ['av', 'vc', 'hls', 'dash', 'flvs', 'mp4s']) await mkdir(path.join(dir, d));
  const text = adjust(await readFile(FIXTURE, 'utf8'), dir);
  const cfg = parseConfigText(text, FIXTURE);
  const srv = await startServer(t, cfg);
  const httpPort = srv.server.http?.addresses()[0]?.port;
  assert.ok(httpPort !== undefined);
  const base = `http://127.0.0.1:${httpPort}`;
  const hls = await runFfmpeg(publishArgs(`${srv.url}/hls/movie`, 20, { size: '320x240', rate: 25, gop: 25 }), 60_000);
  const dash = await runFfmpeg(publishArgs(`${srv.url}/dash/movie`, 20, { size: '320x240', rate: 25, gop: 25 }), 60_000);
  t.after(() => {
    hls.kill();
    dash.kill();
  });
  const ok = async (url: string): Promise<Response | undefined> => {
    const r = await fetch(url).catch(() => undefined);
    return r?.status === 200 ? r : undefined;
  };
  let playlist: Response | undefined;
  let mpd: Response | undefined;
  const deadline = Date.now() + 40_000;
  while ((playlist === undefined || mpd === undefined) && Date.now() < deadline) {
    playlist ??= await ok(`${base}/hls/movie.m3u8`);
    mpd ??= await ok(`${base}/dash/movie.mpd`);
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(playlist !== undefined, 'the HLS playlist is served');
  assert.ok(mpd !== undefined, 'the DASH MPD is served');
  assert.equal(playlist.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  assert.equal(playlist.headers.get('cache-control'), 'no-cache');
  assert.equal(mpd.headers.get('content-type'), 'application/dash+xml');
  const m3u8 = await playlist.text();
  assert.match(m3u8, /^#EXTM3U/);
  const fragment = m3u8.split('\n').find((l) => l !== '' && !l.startsWith('#'));
  assert.ok(fragment !== undefined, m3u8);
  const ts = await fetch(new URL(fragment, `${base}/hls/movie.m3u8`));
  assert.equal(ts.status, 200);
  assert.equal(ts.headers.get('content-type'), 'video/mp2t');
  const bytes = Buffer.from(await ts.arrayBuffer());
  assert.ok(bytes.length > 188 && bytes.length % 188 === 0 && bytes[0] === 0x47, 'an MPEG-TS fragment');
  assert.match(await mpd.text(), /<MPD[\s>]/);
  // the stat page (`location /stat { rtmp_stat all; }`) shows this client as a viewer of each stream
  const stat = await fetch(`${base}/stat`);
  assert.equal(stat.status, 200);
  const xml = await stat.text();
  for (const [app, protocol] of [['hls', 'hls'], ['dash', 'dash']] as const) {
    const section = xml.split('<application>').find((a) => a.startsWith(`\r\n<name>${app}</name>`)) ?? '';
    assert.match(section, new RegExp(`<stream>\\r\\n<name>movie</name>.*<client><id>${protocol}-\\w+</id><address>127\\.0\\.0\\.1</address>.*<protocol>${protocol}</protocol></client>`, 's'), section);
    assert.match(section, /<nclients>2<\/nclients>/, section);
  }
});
