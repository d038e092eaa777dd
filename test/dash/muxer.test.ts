import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { DashSettings } from '../../src/config/dash.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { dashLayout, DashMuxer } from '../../src/dash/muxer.js';
import { FrameKind, MediaFrame, frameFlags } from '../../src/live/frame.js';
import { isSyncFlags, readBoxes, readFragment } from '../helpers/mp4.js';

/** The DASH muxer fed synthetic frames directly: cutting, timelines, odd and hostile input. */

const AVCC = Buffer.from('0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8', 'hex');
const ASC = Buffer.from('1210', 'hex');

const SETTINGS: DashSettings = { enabled: true, path: '', fragment: 1000, playlistLength: 3000, nested: false, cleanup: true, clockCompensation: 'off', clockHelperUri: undefined };

function frame(kind: FrameKind, ts: number, payload: Buffer): MediaFrame {
  return new MediaFrame(kind, ts, payload, frameFlags(kind, payload));
}
const videoConfig = (ts = 0): MediaFrame => frame(FrameKind.Video, ts, Buffer.concat([Buffer.from([0x17, 0, 0, 0, 0]), AVCC]));
const audioConfig = (ts = 0): MediaFrame => frame(FrameKind.Audio, ts, Buffer.concat([Buffer.from([0xaf, 0]), ASC]));
function video(ts: number, key: boolean, cts = 0, size = 50): MediaFrame {
  const c = cts & 0xffffff;
  return frame(FrameKind.Video, ts, Buffer.concat([Buffer.from([key ? 0x17 : 0x27, 1, c >> 16, (c >> 8) & 0xff, c & 0xff, 0, 0, 0, size - 4]), Buffer.alloc(size - 4, key ? 0x65 : 0x41)]));
}
const audio = (ts: number): MediaFrame => frame(FrameKind.Audio, ts, Buffer.concat([Buffer.from([0xaf, 1]), Buffer.alloc(20, 0x21)]));

interface Harness {
  readonly dir: string;
  readonly muxer: DashMuxer;
  readonly logs: MemoryLogEntry[];
  closed: Promise<string | undefined>;
}

async function harness(t: TestContext, settings: Partial<DashSettings> = {}, name = 's', maxFragmentBytes?: number): Promise<Harness> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dash-mux-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const logs: MemoryLogEntry[] = [];
  let resolve!: (r: string | undefined) => void;
  const closed = new Promise<string | undefined>((r) => (resolve = r));
  const muxer = new DashMuxer({
    settings: { ...SETTINGS, ...settings, path: dir },
    layout: dashLayout(dir, name, settings.nested ?? false),
    log: memoryLogger(logs),
    now: () => 1_700_000_000_000,
    ownsName: () => true,
    onClose: (_m, reason) => resolve(reason),
    ...(maxFragmentBytes !== undefined ? { maxFragmentBytes } : {}),
  });
  return { dir, muxer, logs, closed };
}

/** A/V at 25 fps video (keyframe each `gop` frames) and 23 ms audio, from `fromMs` to `toMs`, interleaved by time. */
function av(fromMs: number, toMs: number, gop = 25, withAudio = true, withVideo = true): MediaFrame[] {
  const out: MediaFrame[] = [];
  let vi = 0;
  let ai = 0;
  for (;;) {
    const vt = fromMs + vi * 40;
    const at = fromMs + Math.round(ai * (1024000 / 44100));
    if ((!withVideo || vt >= toMs) && (!withAudio || at >= toMs)) break;
    if (withVideo && vt < toMs && (!withAudio || vt <= at)) {
      out.push(video(vt, vi % gop === 0, vi % 3 === 1 ? 80 : 0));
      vi++;
    } else {
      out.push(audio(at));
      ai++;
    }
  }
  return out;
}

function mpdTimelines(text: string): Map<string, { t: number; d: number }[]> {
  const out = new Map<string, { t: number; d: number }[]>();
  for (const m of text.matchAll(/<AdaptationSet[^>]*contentType="(\w+)"[\s\S]*?<\/AdaptationSet>/g)) {
    const segs: { t: number; d: number }[] = [];
    for (const s of m[0].matchAll(/<S t="(\d+)" d="(\d+)"(?: r="(\d+)")?\/>/g)) {
      for (let i = 0; i <= Number(s[3] ?? 0); i++) segs.push({ t: Number(s[1]) + i * Number(s[2]), d: Number(s[2]) });
    }
    out.set(m[1]!, segs);
  }
  return out;
}

async function checkTrack(dir: string, name: string, ext: string, segs: readonly { t: number; d: number }[], video: boolean): Promise<void> {
  let next: number | undefined;
  for (const s of segs) {
    const f = readFragment(await readFile(path.join(dir, `${name}-${s.t}.${ext}`)));
    const tr = f.trafs[0]!;
    assert.equal(tr.baseDecodeTime, s.t);
    assert.equal(tr.samples.reduce((n, x) => n + x.duration, 0), s.d);
    if (next !== undefined) assert.equal(s.t, next, `${ext} timeline continuous`);
    next = s.t + s.d;
    if (video) assert.ok(isSyncFlags(tr.samples[0]!.flags));
  }
}

test('A/V: fragments cut at keyframes after dash_fragment, per-track continuous timelines, the window, cleanup of old fragments, static MPD at the end', async (t) => {
  const h = await harness(t);
  const frames = [videoConfig(), audioConfig(), ...av(1000, 9000)];
  // in several batches, as a complete reader delivers them
  for (let i = 0; i < frames.length; i += 37) await h.muxer.writeBatch(frames.slice(i, i + 37));
  const live = await readFile(path.join(h.dir, 's.mpd'), 'utf8');
  assert.match(live, /type="dynamic"/);
  assert.match(live, /presentationTimeOffset="1000"/);
  const tl = mpdTimelines(live);
  assert.equal(tl.get('video')?.length, 3, 'window: playlist_length / fragment');
  assert.deepEqual(tl.get('video')!.map((s) => s.d), [1000, 1000, 1000]);
  await checkTrack(h.dir, 's', 'm4v', tl.get('video')!, true);
  await checkTrack(h.dir, 's', 'm4a', tl.get('audio')!, false);
  // 8 fragments made (the 8th pending); 3 listed + 3 kept for late readers; older ones deleted
  const files = await readdir(h.dir);
  const m4v = files.filter((f) => /^s-\d+\.m4v$/.test(f)).map((f) => Number(/\d+/.exec(f)![0])).sort((a, b) => a - b);
  assert.deepEqual(m4v, [2000, 3000, 4000, 5000, 6000, 7000]);
  h.muxer.close(undefined);
  assert.equal(await h.closed, undefined);
  const end = await readFile(path.join(h.dir, 's.mpd'), 'utf8');
  assert.match(end, /type="static"/);
  assert.match(end, /mediaPresentationDuration="PT3(\.\d+)?S"/);
  const tl2 = mpdTimelines(end);
  await checkTrack(h.dir, 's', 'm4v', tl2.get('video')!, true);
  await checkTrack(h.dir, 's', 'm4a', tl2.get('audio')!, false);
  assert.equal(tl2.get('video')!.at(-1)!.t, 8000, 'the last fragment was written at the end');
  assert.ok(readBoxes(await readFile(path.join(h.dir, 's-init.m4a'))).length === 2);
});

test('audio only: fragments cut by time; video only; nested layout', async (t) => {
  const a = await harness(t);
  await a.muxer.writeBatch([audioConfig(), ...av(0, 5000, 25, true, false)]);
  const tl = mpdTimelines(await readFile(path.join(a.dir, 's.mpd'), 'utf8'));
  assert.deepEqual([...tl.keys()], ['audio']);
  assert.ok(tl.get('audio')!.every((s) => s.d >= 1000 && s.d < 1100));
  await checkTrack(a.dir, 's', 'm4a', tl.get('audio')!, false);

  const v = await harness(t, { nested: true });
  await v.muxer.writeBatch([videoConfig(), ...av(0, 5000, 50, false, true)]);
  const text = await readFile(path.join(v.dir, 's', 'index.mpd'), 'utf8');
  const tv = mpdTimelines(text);
  assert.deepEqual([...tv.keys()], ['video']);
  assert.deepEqual(tv.get('video')!.map((s) => [s.t, s.d]), [[0, 2000], [2000, 2000]], 'cut only at keyframes (every 2 s here)');
  assert.match(text, /initialization="init.m4v" media="\$Time\$.m4v"/);
});

test('hostile input: a stream without keyframes is cut at 10 fragment lengths; bad configs and garbage frames are skipped with one warning', async (t) => {
  const h = await harness(t);
  const frames: MediaFrame[] = [videoConfig(), video(0, true)];
  for (let i = 1; i < 300; i++) frames.push(video(i * 40, false));
  await h.muxer.writeBatch(frames);
  const tl = mpdTimelines(await readFile(path.join(h.dir, 's.mpd'), 'utf8'));
  assert.deepEqual(tl.get('video')!.map((s) => s.d), [10000], 'memory stays bounded: a forced cut');

  // video stalls after one keyframe, audio goes on: audio is cut on its own
  const st = await harness(t);
  await st.muxer.writeBatch([videoConfig(), audioConfig(), video(0, true), ...av(0, 25000, 25, true, false)]);
  const ts = mpdTimelines(await readFile(path.join(st.dir, 's.mpd'), 'utf8'));
  assert.ok((ts.get('audio')?.length ?? 0) >= 2, 'audio fragments while video stalls');
  assert.ok(ts.get('audio')!.every((s) => s.d <= 10100));
  await checkTrack(st.dir, 's', 'm4a', ts.get('audio')!, false);

  // frames whose time never advances: cut by size
  const sz = await harness(t, {}, 's', 10_000);
  await sz.muxer.writeBatch([videoConfig(), video(0, true), ...Array.from({ length: 600 }, () => video(40, false))]);
  const tz = mpdTimelines(await readFile(path.join(sz.dir, 's.mpd'), 'utf8'));
  assert.ok((tz.get('video')?.length ?? 0) >= 2, 'cut by size');
  const zfiles = (await readdir(sz.dir)).filter((f) => f.endsWith('.m4v'));
  assert.ok(zfiles.length >= 2);

  const g = await harness(t);
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
  const junk: MediaFrame[] = [
    frame(FrameKind.Video, 0, Buffer.from([0x17, 0, 0, 0, 0, 1, 2])), // truncated AVC config
    frame(FrameKind.Audio, 0, Buffer.from([0xaf, 0])), // empty AAC config
    frame(FrameKind.Audio, 0, Buffer.from([0x2f, 1, 1, 2])), // MP3: not written
    frame(FrameKind.Video, 0, Buffer.alloc(0)),
  ];
  for (let i = 0; i < 400; i++) {
    const kind = i % 2 === 0 ? FrameKind.Video : FrameKind.Audio;
    junk.push(frame(kind, i * 10, Buffer.from(Array.from({ length: i % 30 }, rnd))));
  }
  await g.muxer.writeBatch(junk);
  // frames of another codec than the configured track's are not written into it
  await g.muxer.writeBatch([videoConfig(3000), frame(FrameKind.Video, 3000, Buffer.from([0x12, 1, 2, 3])), frame(FrameKind.Video, 3040, Buffer.from([0x1c, 0, 0, 0, 0, 1, 2]))]);
  await g.muxer.writeBatch([videoConfig(4000), audioConfig(4000), ...av(4000, 7000)]);
  const tg = mpdTimelines(await readFile(path.join(g.dir, 's.mpd'), 'utf8'));
  await checkTrack(g.dir, 's', 'm4v', tg.get('video')!, true);
  for (const f of (await readdir(g.dir)).filter((n) => /^s-\d+\.m4v$/.test(n))) {
    const sizes = readFragment(await readFile(path.join(g.dir, f))).trafs[0]!.samples.map((x) => x.size);
    assert.ok(sizes.every((n) => n === 50), `${f}: only the stream's own H.264 frames: ${sizes.join(',')}`);
  }
  await checkTrack(g.dir, 's', 'm4a', tg.get('audio')!, false);
  const warnings = g.logs.filter((e) => /dash:/.test(e.msg));
  assert.ok(warnings.some((e) => /audio codec is not written/.test(e.msg) && e.fields['codec'] === '".mp3"'));
  assert.ok(warnings.length <= 4, warnings.map((e) => e.msg).join('\n'));
});

test('stream names are untrusted: a name that is not one file name is refused (ERR_OUTPUT_PATH_UNSAFE); odd characters are escaped in the MPD', async (t) => {
  for (const bad of ['../x', 'a/b', 'x\u0000y', 'x'.repeat(252)]) {
    assert.throws(() => dashLayout('/tmp/d', bad, false), (e) => isServerError(e, ErrorCode.OutputPathUnsafe), bad);
  }
  // nested: the name is a directory of its own
  for (const bad of ['../x', 'a/b', '', '..', '.', 'x\u0000y']) {
    assert.throws(() => dashLayout('/tmp/d', bad, true), (e) => isServerError(e, ErrorCode.OutputPathUnsafe), bad);
  }
  const h = await harness(t, {}, 'a&b "c" #?');
  await h.muxer.writeBatch([videoConfig(), ...av(0, 3000, 25, false, true)]);
  const text = await readFile(path.join(h.dir, 'a&b "c" #?.mpd'), 'utf8');
  assert.match(text, /media="a%26b%20%22c%22%20%23%3F-\$Time\$.m4v"/);
});

test('a write failure rejects the batch and close() logs one ERR_OUTPUT_WRITE_FAILED line', async (t) => {
  const h = await harness(t);
  await h.muxer.writeBatch([videoConfig(), ...av(0, 2500, 25, false, true)]);
  await rm(h.dir, { recursive: true, force: true });
  const { writeFile } = await import('node:fs/promises');
  await writeFile(h.dir, 'x');
  await assert.rejects(h.muxer.writeBatch(av(2500, 4500, 25, false, true)), (e) => isServerError(e, ErrorCode.OutputWriteFailed));
  h.muxer.close('the output failed');
  await h.closed;
  const lines = h.logs.filter((e) => e.fields['code'] === ErrorCode.OutputWriteFailed);
  assert.equal(lines.length, 1);
  await rm(h.dir, { force: true });
});
