import assert from 'node:assert/strict';
import { outputErrors } from '../../src/core/metrics.js';
import { createDecipheriv } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ffprobe, probePackets, publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { until } from '../helpers/server.js';
import { playCounting } from '../helpers/synthetic.js';
import { checkTs } from '../media/ts-check.js';
import { filesOf, readPlaylist, startHlsServer, type HlsServer, type ParsedPlaylist } from './helpers.js';

/** HLS features with real ffmpeg publishers: reconnects, AES-128, audio-only, video-only, nested + variant, a broken disk. */

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hls-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** ffmpeg publishes a small test pattern (tracks as asked) for `seconds` and exits. */
async function publish(t: TestContext, srv: HlsServer, name: string, seconds: number, tracks: { video?: boolean; audio?: boolean } = {}): Promise<void> {
  let args = publishArgs(`${srv.url}/live/${name}`, seconds, { size: '160x120', rate: 20, gop: 10 });
  if (tracks.video === false) args = ['-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', String(seconds), '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', `${srv.url}/live/${name}`];
  if (tracks.audio === false) {
    args = ['-re', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=20', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '10', '-pix_fmt', 'yuv420p', '-an', '-f', 'flv', `${srv.url}/live/${name}`];
  }
  const run = await runFfmpeg(args, 60_000);
  t.after(() => run.kill());
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.ok(await until(() => srv.server.hub.get('live', name) === undefined, 10_000), 'the stream ended');
}

async function ended(file: string): Promise<ParsedPlaylist> {
  let p = await readPlaylist(file);
  for (let i = 0; i < 100 && p?.ended !== true; i++) {
    await new Promise((r) => setTimeout(r, 50));
    p = await readPlaylist(file);
  }
  assert.ok(p?.ended === true, `the playlist ends: ${p?.text ?? '(none)'}`);
  return p;
}

test('a publisher reconnects: the media sequence continues (hls_continuous), EXT-X-DISCONTINUITY at the restart, every fragment checks', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const srv = await startHlsServer(t, `hls on; hls_path ${dir}; hls_fragment 1s; hls_playlist_length 60s; hls_continuous on;`);
  await publish(t, srv, 'cam', 4);
  const first = await ended(join(dir, 'cam.m3u8'));
  await publish(t, srv, 'cam', 4);
  await new Promise((r) => setTimeout(r, 200));
  const second = await ended(join(dir, 'cam.m3u8'));
  assert.equal(second.mediaSeq, 0);
  assert.ok(second.segments.length > first.segments.length + 2, second.text);
  second.segments.forEach((s, i) => assert.equal(s.uri, `cam-${i}.ts`));
  const restart = first.segments.length;
  assert.deepEqual(
    second.segments.map((s, i) => (s.discont ? i : -1)).filter((i) => i >= 0),
    [restart],
    second.text,
  );
  for (const s of second.segments) assert.deepEqual(checkTs(await readFile(join(dir, s.uri))).errors, [], s.uri);
});

test('hls_continuous across a server restart: the sequence continues from the playlist on disk', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const conf = `hls on; hls_path ${dir}; hls_fragment 1s; hls_playlist_length 60s;`;
  const a = await startHlsServer(t, conf);
  await publish(t, a, 'cam', 3);
  const first = await ended(join(dir, 'cam.m3u8'));
  await a.server.stop();
  const b = await startHlsServer(t, conf);
  await publish(t, b, 'cam', 3);
  await new Promise((r) => setTimeout(r, 200));
  const second = await ended(join(dir, 'cam.m3u8'));
  assert.equal(second.mediaSeq, 0);
  second.segments.forEach((s, i) => assert.equal(s.uri, `cam-${i}.ts`));
  assert.ok(second.segments.length > first.segments.length, second.text);
  assert.equal(second.segments[first.segments.length]?.discont, true, second.text);
});

test('hls_continuous off: a reconnect starts the sequence again at 0', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const srv = await startHlsServer(t, `hls on; hls_path ${dir}; hls_fragment 1s; hls_continuous off;`);
  await publish(t, srv, 'cam', 3);
  await ended(join(dir, 'cam.m3u8'));
  await publish(t, srv, 'cam', 3);
  await new Promise((r) => setTimeout(r, 200));
  const p = await ended(join(dir, 'cam.m3u8'));
  assert.equal(p.mediaSeq, 0);
  assert.ok(!p.segments.some((s) => s.discont), p.text);
});

test('AES-128: fragments encrypted, a key per two fragments, ffmpeg decrypts and reads both tracks', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const srv = await startHlsServer(t, `hls on; hls_path ${dir}; hls_fragment 1s; hls_keys on; hls_fragments_per_key 2;`, `location /hls { alias ${dir}; }`);
  await publish(t, srv, 'sec', 5);
  const p = await ended(join(dir, 'sec.m3u8'));
  const keyLines = p.text.split('\n').filter((l) => l.startsWith('#EXT-X-KEY:METHOD=AES-128,URI="sec-'));
  assert.equal(keyLines.length, Math.ceil(p.segments.length / 2), p.text);
  assert.equal((await filesOf(dir, '.key')).length, keyLines.length);
  // by hand: the first fragment is not TS as stored, and is after AES-128-CBC with the key and IV
  const m = /URI="([^"]+)",IV=0x([0-9a-f]{32})/.exec(keyLines[0]!);
  assert.ok(m);
  const key = await readFile(join(dir, m[1]!));
  assert.equal(key.length, 16);
  const enc = await readFile(join(dir, p.segments[0]!.uri));
  assert.notEqual(checkTs(enc).errors.length, 0);
  const d = createDecipheriv('aes-128-cbc', key, Buffer.from(m[2]!, 'hex'));
  const plain = Buffer.concat([d.update(enc), d.final()]);
  assert.deepEqual(checkTs(plain).errors, []);
  // ffmpeg, over HTTP: fetches the keys the playlist names and decrypts
  const packets = await probePackets(`${srv.httpBase}/hls/sec.m3u8`);
  assert.equal(packets.videoCodec, 'h264');
  assert.equal(packets.audioCodec, 'aac');
  assert.ok(packets.video >= 4 * 20, `${packets.video} video frames`);
});

test('audio-only and video-only streams: one track, PCR on it, ffprobe reads them', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const srv = await startHlsServer(t, `hls on; hls_path ${dir}; hls_fragment 1s;`);
  await Promise.all([publish(t, srv, 'radio', 4, { video: false }), publish(t, srv, 'mute', 4, { audio: false })]);
  const radio = await ended(join(dir, 'radio.m3u8'));
  const mute = await ended(join(dir, 'mute.m3u8'));
  assert.ok(radio.segments.length >= 3, radio.text);
  assert.ok(mute.segments.length >= 3, mute.text);
  for (const s of radio.segments) {
    const r = checkTs(await readFile(join(dir, s.uri)));
    assert.deepEqual(r.errors, [], s.uri);
    assert.deepEqual([...r.streams.values()], [0x0f]);
    assert.equal(r.pcrPid, 0x101);
  }
  for (const s of mute.segments) {
    const r = checkTs(await readFile(join(dir, s.uri)));
    assert.deepEqual(r.errors, [], s.uri);
    assert.deepEqual([...r.streams.values()], [0x1b]);
    assert.equal(r.startsWithKeyframe, true);
  }
  assert.deepEqual((await ffprobe(join(dir, 'radio.m3u8'))).streams.map((s) => s.codec_name), ['aac']);
  assert.deepEqual((await ffprobe(join(dir, 'mute.m3u8'))).streams.map((s) => s.codec_name), ['h264']);
});

test('hls_nested, hls_base_url, hls_variant: NAME/index.m3u8, NAME/N.ts and the master playlist', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const srv = await startHlsServer(t, `hls on; hls_path ${dir}; hls_fragment 1s; hls_nested on; hls_base_url http://cdn.example/hls/; hls_variant _hi BANDWIDTH=640000; hls_variant _lo BANDWIDTH=160000;`);
  await publish(t, srv, 'show_hi', 3);
  const p = await ended(join(dir, 'show_hi', 'index.m3u8'));
  p.segments.forEach((s, i) => assert.equal(s.uri, `http://cdn.example/hls/show_hi/${i}.ts`));
  assert.ok((await filesOf(join(dir, 'show_hi'), '.ts')).length >= 2);
  const master = await readFile(join(dir, 'show.m3u8'), 'utf8');
  assert.equal(
    master,
    '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH=640000\nhttp://cdn.example/hls/show_hi/index.m3u8\n#EXT-X-STREAM-INF:PROGRAM-ID=1,BANDWIDTH=160000\nhttp://cdn.example/hls/show_lo/index.m3u8\n',
  );
});

test('a disk that cannot be written ends that HLS muxer with one log line; the live stream and its players go on', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const notADir = join(dir, 'file');
  writeFileSync(notADir, 'x');
  const srv = await startHlsServer(t, `hls on; hls_path ${join(notADir, 'hls')}; hls_fragment 1s;`);
  const run = await runFfmpeg(publishArgs(`${srv.url}/live/cam`, 5, { size: '160x120', rate: 20, gop: 10 }), 60_000);
  t.after(() => run.kill());
  assert.ok(await until(() => srv.server.hub.get('live', 'cam')?.active === true, 10_000));
  const player = await playCounting(srv.url + '/live', 'cam');
  t.after(() => player.client.close());
  assert.ok(await until(() => srv.logs.some((l) => l.msg.startsWith('hls: muxer stopped')), 10_000), 'the muxer stopped');
  const before = player.video;
  assert.ok(await until(() => player.video > before + 20, 10_000), 'the player still gets video');
  const r = await run.done;
  assert.equal(r.code, 0);
  const lines = srv.logs.filter((l) => l.msg.startsWith('hls:') || l.msg.includes('complete reader'));
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.equal(lines[0]!.fields['code'], 'ERR_OUTPUT_WRITE_FAILED');
  assert.equal(outputErrors.get({ output: 'hls', app: 'live' }), 1, 'rtmp_output_errors_total{output="hls"}');
});
