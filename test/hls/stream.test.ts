import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { HlsSettings } from '../../src/config/hls.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { FrameKind, MediaFrame, frameFlags } from '../../src/live/frame.js';
import { HlsStream } from '../../src/hls/stream.js';
import { checkTs } from '../media/ts-check.js';
import { AAC_HEADER, AVC_HEADER } from '../helpers/synthetic.js';
import { parsePlaylist } from './helpers.js';

/** The HLS muxer of one stream driven with synthetic frames: slicing, naming, the window, event playlists, keys. */

function settings(dir: string, o: Partial<HlsSettings> = {}): HlsSettings {
  return {
    enabled: true, path: dir, fragment: 2000, maxFragment: 20_000, playlistLength: 6000, sync: 2, continuous: true, nested: false, baseUrl: '',
    cleanup: true, naming: 'sequential', granularity: 0, slicing: 'plain', type: 'live', keys: false, keyPath: dir, keyUrl: '', fragmentsPerKey: 0,
    maxAudioDelay: 300, audioBufferSize: 1 << 20, variants: [], ...o,
  };
}

const frame = (kind: FrameKind, ts: number, payload: Buffer): MediaFrame => new MediaFrame(kind, ts, payload, frameFlags(kind, payload));

function video(ts: number, key: boolean): MediaFrame {
  const nal = Buffer.alloc(300, 0x33);
  nal[0] = key ? 0x65 : 0x41;
  const b = Buffer.alloc(5 + 4 + nal.length);
  b[0] = key ? 0x17 : 0x27;
  b[1] = 0x01;
  b.writeUInt32BE(nal.length, 5);
  nal.copy(b, 9);
  return frame(FrameKind.Video, ts, b);
}

function audio(ts: number): MediaFrame {
  return frame(FrameKind.Audio, ts, Buffer.concat([Buffer.from([0xaf, 0x01]), Buffer.alloc(100, 0x21)]));
}

/** `seconds` of 25 fps video (a keyframe every `gop` ms, or only the first one) and AAC every 23 ms, from `start` */
function frames(start: number, ms: number, gop: number | undefined): MediaFrame[] {
  const out: MediaFrame[] = [frame(FrameKind.Video, start, AVC_HEADER), frame(FrameKind.Audio, start, AAC_HEADER)];
  let a = start;
  for (let t = start; t < start + ms; t += 40) {
    out.push(video(t, t === start || (gop !== undefined && (t - start) % gop === 0)));
    for (; a <= t; a += 23) out.push(audio(a));
  }
  return out;
}

async function run(t: TestContext, o: Partial<HlsSettings>, batches: MediaFrame[][], name = 'cam'): Promise<{ dir: string; logs: MemoryLogEntry[]; files: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'hls-stream-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logs: MemoryLogEntry[] = [];
  let now = 1_000_000;
  const s = new HlsStream({ settings: settings(dir, o), name, log: memoryLogger(logs), now: () => (now += 1000), onIdle: () => undefined });
  t.after(() => s.dispose());
  for (const b of batches) {
    const sink = s.begin(() => undefined);
    assert.ok(sink);
    await sink.writeBatch(b);
    sink.close(undefined);
    await sink.done;
  }
  return { dir, logs, files: (await readdir(dir)).sort() };
}

test('plain slicing: fragments cut at the first keyframe after hls_fragment; the window is playlist_length / fragment', async (t) => {
  const { dir, files } = await run(t, {}, [frames(0, 20_000, 1000)]);
  const p = parsePlaylist(await readFile(join(dir, 'cam.m3u8'), 'utf8'));
  assert.ok(p.ended);
  assert.equal(p.segments.length, 3);
  assert.equal(p.mediaSeq, 7);
  assert.deepEqual(p.segments.map((s) => s.duration), [2, 2, 2]);
  assert.deepEqual(p.segments.map((s) => s.uri), ['cam-7.ts', 'cam-8.ts', 'cam-9.ts']);
  // fragments that left the window a playlist length of media ago are gone; the later ones wait
  assert.deepEqual(files.filter((f) => f.endsWith('.ts')), ['cam-4.ts', 'cam-5.ts', 'cam-6.ts', 'cam-7.ts', 'cam-8.ts', 'cam-9.ts']);
  for (const s of p.segments) {
    const r = checkTs(await readFile(join(dir, s.uri)));
    assert.deepEqual(r.errors, []);
    assert.equal(r.streams.size, 2);
  }
});

test('aligned slicing: cuts where the stream time crosses a multiple of hls_fragment', async (t) => {
  const { dir } = await run(t, { slicing: 'aligned', playlistLength: 60_000 }, [frames(400, 7600, 400)]);
  const p = parsePlaylist(await readFile(join(dir, 'cam.m3u8'), 'utf8'));
  assert.deepEqual(p.segments.map((s) => s.duration), [1.6, 2, 2, 2]);
});

test('hls_max_fragment: no keyframe for too long cuts anyway, with a discontinuity', async (t) => {
  const { dir, files } = await run(t, { maxFragment: 3000, playlistLength: 60_000 }, [frames(0, 8000, undefined)]);
  const p = parsePlaylist(await readFile(join(dir, 'cam.m3u8'), 'utf8'));
  assert.ok(p.segments.length >= 2, p.text);
  assert.equal(p.segments[1]?.discont, true);
  assert.ok(files.length > 0);
});

test('naming: timestamp with granularity, system; hls_type event keeps every fragment', async (t) => {
  const ts = await run(t, { naming: 'timestamp', granularity: 1000, playlistLength: 60_000 }, [frames(10_120, 6000, 1000)]);
  const p = parsePlaylist(await readFile(join(ts.dir, 'cam.m3u8'), 'utf8'));
  assert.deepEqual(p.segments.map((s) => s.uri), ['cam-10000.ts', 'cam-12000.ts', 'cam-14000.ts']);
  const ev = await run(t, { type: 'event', playlistLength: 2000 }, [frames(0, 10_000, 1000)]);
  const e = parsePlaylist(await readFile(join(ev.dir, 'cam.m3u8'), 'utf8'));
  assert.ok(e.text.includes('#EXT-X-PLAYLIST-TYPE:EVENT\n'));
  assert.equal(e.segments.length, 5);
  assert.equal(ev.files.filter((f) => f.endsWith('.ts')).length, 5);
  const sys = await run(t, { naming: 'system', playlistLength: 60_000 }, [frames(0, 4000, 1000)]);
  const s = parsePlaylist(await readFile(join(sys.dir, 'cam.m3u8'), 'utf8'));
  for (const seg of s.segments) assert.match(seg.uri, /^cam-1\d{6}\.ts$/);
});

test('reconnects: sequence continues, discontinuity sequence counts discontinuities that slid out', async (t) => {
  const { dir } = await run(t, { playlistLength: 4000 }, [frames(0, 4000, 1000), frames(0, 4000, 1000), frames(0, 6000, 1000)]);
  const p = parsePlaylist(await readFile(join(dir, 'cam.m3u8'), 'utf8'));
  assert.equal(p.mediaSeq, 5);
  assert.ok(p.text.includes('#EXT-X-DISCONTINUITY-SEQUENCE:2\n'), p.text);
});

test('keys: a new key every hls_fragments_per_key fragments; the stream name that cannot be a file gets no HLS (one log line)', async (t) => {
  const { dir, files } = await run(t, { keys: true, fragmentsPerKey: 2, playlistLength: 60_000 }, [frames(0, 10_000, 1000)]);
  const p = parsePlaylist(await readFile(join(dir, 'cam.m3u8'), 'utf8'));
  assert.equal(p.segments.length, 5);
  assert.deepEqual(files.filter((f) => f.endsWith('.key')), ['cam-0.key', 'cam-2.key', 'cam-4.key']);
  // with a one-fragment window, keys go with their last fragment
  const short = await run(t, { keys: true, fragmentsPerKey: 2, playlistLength: 2000 }, [frames(0, 20_000, 1000)]);
  const keys = short.files.filter((f) => f.endsWith('.key'));
  assert.ok(!keys.includes('cam-0.key') && !keys.includes('cam-2.key') && keys.includes('cam-8.key'), keys.join(' '));
  const logs: MemoryLogEntry[] = [];
  const bad = new HlsStream({ settings: settings(dir), name: '../x', log: memoryLogger(logs), now: Date.now, onIdle: () => undefined });
  assert.equal(bad.begin(() => undefined), undefined);
  assert.equal(logs.length, 1);
  assert.equal(logs[0]!.fields['code'], 'ERR_OUTPUT_PATH_UNSAFE');
});

test('a bad frame (NAL length past the end) is skipped with one warning; the rest muxes', async (t) => {
  const broken = video(1000, false);
  broken.payload.writeUInt32BE(99_999, 5);
  const f = frames(0, 4000, 1000);
  f.splice(40, 0, broken, broken);
  const { dir, logs } = await run(t, { playlistLength: 60_000 }, [f]);
  const p = parsePlaylist(await readFile(join(dir, 'cam.m3u8'), 'utf8'));
  assert.equal(p.segments.length, 2);
  assert.equal(logs.filter((l) => l.msg === 'hls: frame skipped').length, 1);
});

test('fragments muxed in reused buffers: fed a second at a time (each fragment written before the next is closed), every fragment holds exactly its own frames', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hls-reuse-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = new HlsStream({ settings: settings(dir, { type: 'event', playlistLength: 60_000 }), name: 'cam', log: memoryLogger([]), now: () => 1_000_000, onIdle: () => undefined });
  t.after(() => s.dispose());
  const all = frames(0, 20_000, 1000);
  const sink = s.begin(() => undefined);
  assert.ok(sink);
  // a batch per 500 ms of media: fragments close in different batches, after earlier writes finished (buffers reused)
  for (let from = 0; from < all.length; ) {
    let to = from + 1;
    while (to < all.length && Math.floor(all[to]!.timestamp / 500) === Math.floor(all[from]!.timestamp / 500)) to++;
    await sink.writeBatch(all.slice(from, to));
    from = to;
  }
  sink.close(undefined);
  await sink.done;
  const p = parsePlaylist(await readFile(join(dir, 'cam.m3u8'), 'utf8'));
  assert.equal(p.segments.length, 10);
  let videoPes = 0;
  for (const [i, seg] of p.segments.entries()) {
    const r = checkTs(await readFile(join(dir, seg.uri)));
    assert.deepEqual(r.errors, [], seg.uri);
    const v = r.pts.get(0x100) ?? [];
    // 25 fps, a fragment per 2 s: 50 frames, the first at i * 2000 ms (+ 700 ms of PTS offset)
    assert.equal(v.length, 50, seg.uri);
    assert.equal(v[0], (i * 2000 + 700) * 90, seg.uri);
    videoPes += v.length;
  }
  assert.equal(videoPes, all.filter((f) => f.kind === FrameKind.Video && !f.isSequenceHeader).length);
});
