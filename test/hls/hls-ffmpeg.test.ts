import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ffprobe, publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { until } from '../helpers/server.js';
import { checkTs } from '../media/ts-check.js';
import { readPlaylist, startHlsServer } from './helpers.js';

/**
 * HLS end to end: ffmpeg publishes H.264+AAC for 30 s; while it runs, ffprobe
 * reads the playlist over the file system and over HTTP (both streams), and
 * ffmpeg plays the HLS over HTTP for 20 s with no warning or error in its log;
 * once the publisher left, the playlist ends and every fragment passes our TS
 * check.
 */

const SECONDS = 30;

test('ffmpeg publishes; ffprobe (file and HTTP) and a 20 s ffmpeg player read our HLS; TS check of every fragment; EXT-X-ENDLIST', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hls-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const srv = await startHlsServer(t, `hls on; hls_path ${dir}; hls_fragment 2s; hls_playlist_length 60s;`, `location /hls { alias ${dir}; }`);
  assert.ok(srv.httpBase !== undefined);
  const playlist = join(dir, 'cam.m3u8');
  const publisher = await runFfmpeg(publishArgs(`${srv.url}/live/cam`, SECONDS, { rate: 25, gop: 25 }), 60_000);
  t.after(() => publisher.kill());

  // three fragments written: enough for a player to start
  let ready = false;
  for (let i = 0; i < 200 && !ready; i++) {
    const p = await readPlaylist(playlist);
    ready = p !== undefined && p.segments.length >= 3;
    if (!ready) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(ready, 'the playlist has three fragments');

  const url = `${srv.httpBase}/hls/cam.m3u8`;
  const player = await runFfmpeg(['-loglevel', 'warning', '-i', url, '-t', '20', '-map', '0', '-f', 'null', '-'], 60_000);
  t.after(() => player.kill());

  for (const input of [playlist, url]) {
    const probe = await ffprobe(input);
    const types = probe.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();
    assert.deepEqual(types, ['audio:aac', 'video:h264'], `${input}: ${JSON.stringify(probe.streams)}`);
  }

  const played = await player.done;
  assert.equal(played.code, 0, played.stderr.slice(-2000));
  // -hide_banner -loglevel warning: anything printed is a warning or an error
  assert.equal(played.stderr.trim(), '', `ffmpeg player log:\n${played.stderr.slice(-3000)}`);

  const pub = await publisher.done;
  assert.equal(pub.code, 0, pub.stderr.slice(-2000));
  assert.ok(await until(() => srv.server.hub.get('live', 'cam') === undefined, 10_000));
  let final = await readPlaylist(playlist);
  for (let i = 0; i < 50 && final?.ended !== true; i++) {
    await new Promise((r) => setTimeout(r, 100));
    final = await readPlaylist(playlist);
  }
  assert.ok(final?.ended, `EXT-X-ENDLIST once the publisher left:\n${final?.text ?? ''}`);
  assert.equal(final.mediaSeq, 0);
  // honest target duration; fragments cut on keyframes (every second) after 2 s
  let total = 0;
  for (const s of final.segments) {
    assert.ok(Math.ceil(s.duration) <= final.target, `EXTINF ${s.duration} > target ${final.target}`);
    total += s.duration;
  }
  assert.ok(final.segments.length >= 12, `${final.segments.length} fragments`);
  assert.ok(Math.abs(total - SECONDS) < 2, `fragments total ${total} s`);
  // the smallest honest value: the longest fragment, rounded up (2 s, or 3 when a cut came a few ms late)
  assert.equal(final.target, Math.max(2, ...final.segments.map((s) => Math.ceil(s.duration))), final.text);
  assert.ok(final.target <= 3, final.text);
  for (const s of final.segments) {
    const ts = await readFile(join(dir, s.uri));
    const r = checkTs(ts);
    assert.deepEqual(r.errors, [], `${s.uri}: ${r.errors.slice(0, 5).join('; ')}`);
    assert.equal(r.startsWithKeyframe, true, s.uri);
    assert.equal(r.streams.size, 2);
  }
  assert.ok(!srv.logs.some((l) => l.level === 'error' || l.level === 'warn'), JSON.stringify(srv.logs.filter((l) => l.level === 'error' || l.level === 'warn')));
});
