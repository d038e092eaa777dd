import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { SessionInfo } from '../../src/app/chain.js';
import { parseConfigText } from '../../src/config/load.js';
import { RecordFormat, type RecorderConfig } from '../../src/config/record.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { memoryLogger, silentLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { FrameFlag, FrameKind, MediaFrame } from '../../src/live/frame.js';
import { parseMoov, type Mp4Track } from '../../src/media/mp4-demux.js';
import { Mp4Piece } from '../../src/record/mp4.js';
import { FlvRecorder } from '../../src/record/recorder.js';
import { ffmpegPath, publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { hookServer } from '../helpers/hooks.js';
import { sleep, startServer, until } from '../helpers/server.js';
import { ffprobePath, probe, recordThenKill, tempDir } from './helpers.js';

/** Top-level MP4 boxes of a file: [type, size]; a last box cut short is reported with its declared size. */
function topBoxes(bytes: Buffer): [string, number][] {
  const out: [string, number][] = [];
  let pos = 0;
  while (pos + 8 <= bytes.length) {
    const size = bytes.readUInt32BE(pos);
    out.push([bytes.toString('latin1', pos + 4, pos + 8), size]);
    if (size < 8) break;
    pos += size;
  }
  return out;
}

/** ffprobe's packets of one stream kind: [pts_time, flags]. */
async function packets(file: string, select: 'v' | 'a'): Promise<{ pts: number; key: boolean }[]> {
  const bin = await ffprobePath();
  const child = spawn(bin, ['-v', 'error', '-select_streams', select, '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.resume();
  await new Promise<void>((r) => child.on('close', () => r()));
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [pts, flags] = l.split(',');
      return { pts: Number(pts), key: (flags ?? '').startsWith('K') };
    });
}

test('record_format mp4: 10 s of H.264+AAC: both streams, duration within 0.5 s, readable while written; rolling pieces start with init + keyframe; audio-only recorder', { timeout: 100_000 }, async (t) => {
  const dir = tempDir(t, 'recmp4-');
  for (const d of ['roll', 'sound']) mkdirSync(path.join(dir, d));
  const hooks = await hookServer(t);
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0;
      application live { live on; record all; record_format mp4; record_path ${dir};
        on_record_done ${hooks.url}/done;
        recorder roll { record all; record_interval 3s; record_path ${dir}/roll; }
        recorder sound { record audio; record_path ${dir}/sound; }
      } } }`,
    'recmp4.conf',
  );
  const { url } = await startServer(t, cfg);
  const run = await runFfmpeg(publishArgs(`${url}/live/show`, 10, { rate: 25, gop: 25 }), 60_000);
  t.after(() => run.kill());
  const file = path.join(dir, 'show.mp4');

  // while it is being written: ffprobe reads the growing file
  await sleep(5000);
  const growing = await probe(file);
  assert.deepEqual(growing.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort(), ['audio:aac', 'video:h264']);
  const midVideo = Number(growing.streams.find((s) => s.codec_type === 'video')?.nb_read_packets);
  assert.ok(midVideo >= 50, `${midVideo} video packets after 5 s`);

  const r = await run.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.ok(await until(() => hooks.calls.filter((c) => c.path === '/done').length >= 3 + 2, 15_000), `on_record_done: ${hooks.calls.map((c) => `${c.path} ${c.params.get('path') ?? ''}`).join(", ")}`);
  assert.ok(hooks.calls.some((c) => c.path === '/done' && c.params.get('path') === file));

  const p = await probe(file);
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort(), ['audio:aac', 'video:h264']);
  const duration = Number(p.format.duration);
  assert.ok(Math.abs(duration - 10) <= 0.5, `duration ${duration}`);
  assert.ok(Number(p.streams.find((s) => s.codec_type === 'video')?.nb_read_packets) >= 245);
  const boxes = topBoxes(readFileSync(file));
  assert.deepEqual(boxes.slice(0, 3).map((b) => b[0]), ['ftyp', 'moov', 'moof']);
  // one fragment per GOP (1 s here)
  const moofs = boxes.filter((b) => b[0] === 'moof').length;
  assert.ok(moofs >= 9 && moofs <= 12, `${moofs} fragments`);
  const v = await packets(file, 'v');
  assert.ok(v[0]?.key === true, 'starts on a keyframe');

  // rolling: pieces of about 3 s, each an init and a first keyframe
  const pieces = readdirSync(path.join(dir, 'roll')).sort();
  assert.ok(pieces.length >= 3 && pieces.length <= 5, `pieces ${pieces.join(' ')}`);
  let total = 0;
  for (const name of pieces) {
    const f = path.join(dir, 'roll', name);
    assert.ok(name.endsWith('.mp4'), name);
    assert.deepEqual(topBoxes(readFileSync(f)).slice(0, 2).map((b) => b[0]), ['ftyp', 'moov'], name);
    const pv = await packets(f, 'v');
    assert.ok(pv.length > 0 && pv[0]?.key === true, `${name} starts on a keyframe`);
    assert.ok(Math.abs(pv[0]!.pts) < 0.1, `${name} starts at ${pv[0]?.pts}`);
    const pp = await probe(f);
    assert.equal(pp.streams.length, 2, name);
    total += pv.length;
  }
  assert.ok(total >= 245, `${total} video packets over the pieces`);

  // the audio-only recorder of the same stream: one AAC track, fragments of about a second
  const sound = path.join(dir, 'sound', 'show.mp4');
  const ps = await probe(sound);
  assert.deepEqual(ps.streams.map((s) => `${s.codec_type}:${s.codec_name}`), ['audio:aac']);
  assert.ok(Math.abs(Number(ps.format.duration) - 10) <= 0.5, `audio duration ${ps.format.duration}`);
  const sb = topBoxes(readFileSync(sound)).filter((b) => b[0] === 'moof').length;
  assert.ok(sb >= 9 && sb <= 12, `${sb} audio fragments`);
});

test('record_format mp4: kill -9 mid-recording: ffprobe reads the file up to its last second', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t, 'recmp4-');
  const { file, recorded } = await recordThenKill(t, dir, 'mp4');
  const bytes = readFileSync(file);
  const boxes = topBoxes(bytes);
  assert.deepEqual(boxes.slice(0, 2).map((b) => b[0]), ['ftyp', 'moov']);
  // every fragment was appended whole: the file ends at a box boundary
  assert.equal(boxes.reduce((n, b) => n + b[1], 0), bytes.length);
  const p = await probe(file);
  assert.equal(p.streams.find((x) => x.codec_type === 'video')?.codec_name, 'h264');
  assert.equal(p.streams.find((x) => x.codec_type === 'audio')?.codec_name, 'aac');
  const v = await packets(file, 'v');
  // everything but the last second (the fragment being gathered) and the write window
  assert.ok(v.length >= Math.floor((recorded - 1.5) * 25), `${v.length} video packets for ${recorded.toFixed(1)} s recorded`);
  const last = Math.max(...v.map((x) => x.pts));
  assert.ok(last >= recorded - 1.5, `last video pts ${last} for ${recorded.toFixed(1)} s`);
});

/** AAC-LC AudioSpecificConfigs: 44.1 kHz stereo, 48 kHz stereo */
const ASC_44100 = Buffer.from([0x12, 0x10]);
const ASC_48000 = Buffer.from([0x11, 0x90]);
/** FLV audio tag header: AAC, 44 kHz, 16-bit, stereo; then the AAC packet type */
const AAC_HEADER = 0xaf;
const AacPacket = { Config: 0, Raw: 1 } as const;

function aac(ts: number, packetType: number, body: Buffer): MediaFrame {
  return new MediaFrame(FrameKind.Audio, ts, Buffer.concat([Buffer.from([AAC_HEADER, packetType]), body]), packetType === AacPacket.Config ? FrameFlag.SequenceHeader : FrameFlag.None);
}

function recorderConfig(dir: string, over: Partial<RecorderConfig> = {}): RecorderConfig {
  return {
    name: '', audio: true, video: true, keyframes: false, manual: false, path: dir, suffix: '.mp4', unique: false, append: false, lock: false,
    maxSize: 0, maxFrames: 0, interval: 0, notify: false, format: RecordFormat.Mp4, ...over,
  };
}

const SESSION: SessionInfo = { id: 't', protocol: 'test', remoteAddress: '127.0.0.1', app: 'live', query: '', tcUrl: '', flashVer: '', swfUrl: '', pageUrl: '', log: silentLogger() };

test('record_format mp4: an audio-only stream whose AAC configuration changes starts a new file with the new one', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t, 'recmp4-');
  const closed: string[] = [];
  const rec = new FlvRecorder({ config: recorderConfig(dir), session: SESSION, app: 'live', name: 'a', query: '', log: silentLogger(), events: undefined, writeWindow: 0, onClosed: () => closed.push('x') });
  const frames: MediaFrame[] = [aac(0, AacPacket.Config, ASC_44100)];
  const body = Buffer.alloc(200, 0x21);
  // 3 s at 44.1 kHz, then 2 s at 48 kHz (frames of 1024 samples)
  for (let i = 0; i < 130; i++) frames.push(aac(Math.round((i * 1024 * 1000) / 44100), AacPacket.Raw, body));
  const switchAt = Math.round((130 * 1024 * 1000) / 44100);
  frames.push(aac(switchAt, AacPacket.Config, ASC_48000));
  for (let i = 0; i < 94; i++) frames.push(aac(switchAt + Math.round((i * 1024 * 1000) / 48000), AacPacket.Raw, body));
  for (let i = 0; i < frames.length; i += 20) await rec.writeBatch(frames.slice(i, i + 20));
  rec.close(undefined);
  await rec.whenClosed();
  assert.equal(closed.length, 1);
  assert.equal(rec.files.length, 2, rec.files.join(' '));
  const [first, second] = rec.files as [string, string];
  const a = await probe(first);
  const b = await probe(second);
  assert.deepEqual(a.streams.map((s) => s.codec_name), ['aac']);
  assert.deepEqual(b.streams.map((s) => s.codec_name), ['aac']);
  const rate = (x: typeof a): string => String((x.streams[0] as unknown as { sample_rate?: string }).sample_rate);
  assert.equal(rate(a), '44100');
  assert.equal(rate(b), '48000');
  assert.equal(Number(a.streams[0]?.nb_read_packets), 130);
  assert.equal(Number(b.streams[0]?.nb_read_packets), 94);
  assert.ok(Math.abs(Number(a.format.duration) - 3.02) < 0.1, `first duration ${a.format.duration}`);
  // fragments of about a second each
  const moofs = topBoxes(readFileSync(first)).filter((x) => x[0] === 'moof').length;
  assert.ok(moofs >= 3 && moofs <= 4, `${moofs} fragments`);
});

test('record_format mp4: no codec the MP4 writer takes (MP3 audio): the recorder ends with one log line, no file', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t, 'recmp4-');
  const rec = new FlvRecorder({ config: recorderConfig(dir, { video: false }), session: SESSION, app: 'live', name: 'mp3', query: '', log: silentLogger(), events: undefined, writeWindow: 0, onClosed: () => undefined });
  // FLV audio format 2 (MP3): no sequence header; the first frame opens the piece
  await assert.rejects(rec.writeBatch([new MediaFrame(FrameKind.Audio, 0, Buffer.from([0x2f, 0xff, 0xfb, 0x90, 0x00]), FrameFlag.None)]), /ERR_OUTPUT_WRITE_FAILED|nothing to write as MP4/);
  assert.deepEqual(readdirSync(dir), []);
});

test('record_format: default flv, mp4 defaults the suffix to .mp4, record_append is not done for mp4, a bad value is refused', () => {
  const app = (lines: string) => {
    const c = parseConfigText(`rtmp { server { listen 1935; application live { ${lines} } } }`, 't.conf');
    return c.rtmp[0]!.applications[0]!.record!.recorders;
  };
  const flv = app('record all; record_path /r;');
  assert.equal(flv[0]?.format, 'flv');
  assert.equal(flv[0]?.suffix, '.flv');
  const mp4 = app('record all; record_path /r; record_format mp4; record_append on; recorder k { record keyframes; record_format flv; } recorder s { record all; record_suffix -x.mp4; }');
  assert.equal(mp4[0]?.format, 'mp4');
  assert.equal(mp4[0]?.suffix, '.mp4');
  assert.equal(mp4[0]?.append, false);
  assert.equal(mp4[1]?.format, 'flv');
  assert.equal(mp4[1]?.suffix, '.flv');
  assert.equal(mp4[1]?.append, true);
  assert.equal(mp4[2]?.format, 'mp4');
  assert.equal(mp4[2]?.suffix, '-x.mp4');
  assert.throws(() => app('record all; record_path /r; record_format mkv;'), /record_format/);
});

test('record_format mp4: a full disk (ENOSPC) ends the recording with a coded error; the file is readable up to its last whole fragment', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t, 'recmp4-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    t.skip(`cannot mount a small tmpfs here: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return;
  }
  try {
    await fullDisk(dir);
  } finally {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
});

async function fullDisk(dir: string): Promise<void> {
  const rec = new FlvRecorder({ config: recorderConfig(dir, { video: false }), session: SESSION, app: 'live', name: 'full', query: '', log: silentLogger(), events: undefined, writeWindow: 0, onClosed: () => undefined });
  const body = Buffer.alloc(1500, 0x21);
  let err: unknown;
  // 10 s of 1.5 KB AAC frames (~650 KB) into 64 KB
  const frames = [aac(0, AacPacket.Config, ASC_44100)];
  for (let i = 0; i < 430; i++) frames.push(aac(Math.round((i * 1024 * 1000) / 44100), AacPacket.Raw, body));
  for (let i = 0; i < frames.length && err === undefined; i += 10) {
    try {
      await rec.writeBatch(frames.slice(i, i + 10));
    } catch (e) {
      err = e;
    }
  }
  assert.ok(isServerError(err) && err.code === ErrorCode.OutputWriteFailed, String(err));
  rec.close((err as Error).message);
  await rec.whenClosed();
  const file = path.join(dir, 'full.mp4');
  const p = await probe(file);
  assert.deepEqual(p.streams.map((s) => s.codec_name), ['aac']);
  const n = Number(p.streams[0]?.nb_read_packets);
  // about 64 KB of 1.5 KB frames: every frame of the whole fragments, nothing invented
  assert.ok(n >= 30 && n < 64, `${n} packets`);
  const boxes = topBoxes(readFileSync(file));
  assert.deepEqual(boxes.slice(0, 2).map((b) => b[0]), ['ftyp', 'moov']);
}

/** FLV video tag bytes: legacy AVC (codec id 7) and Enhanced RTMP (ExVideoTagHeader) */
const VideoTag = { AvcKey: 0x17, AvcInter: 0x27, AvcConfig: 0, AvcNalu: 1, ExHeader: 0x80, ExSequenceStart: 0, ExCodedFramesX: 3, KeyFrame: 1, InterFrame: 2 } as const;

/** A real encode by ffmpeg (no B-frames) as an MP4, and its first video track. */
async function encode(dir: string, name: string, args: readonly string[]): Promise<{ bytes: Buffer; track: Mp4Track }> {
  const file = path.join(dir, name);
  execFileSync(await ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-frames:v', '50', '-pix_fmt', 'yuv420p', '-g', '25', ...args, '-f', 'mp4', file]);
  const bytes = readFileSync(file);
  let pos = 0;
  for (const [type, size] of topBoxes(bytes)) {
    if (type === 'moov') {
      const track = parseMoov(bytes.subarray(pos + 8, pos + size)).video;
      assert.ok(track !== undefined);
      return { bytes, track };
    }
    pos += size;
  }
  throw new Error(`no moov in ${file}`);
}

function videoFrames(enc: { bytes: Buffer; track: Mp4Track }, t0: number, hevc: boolean): MediaFrame[] {
  const { bytes, track } = enc;
  const fourcc = Buffer.from('hvc1', 'latin1');
  const cfg = hevc
    ? Buffer.concat([Buffer.from([VideoTag.ExHeader | (VideoTag.KeyFrame << 4) | VideoTag.ExSequenceStart]), fourcc, track.config])
    : Buffer.concat([Buffer.from([VideoTag.AvcKey, VideoTag.AvcConfig, 0, 0, 0]), track.config]);
  const out = [new MediaFrame(FrameKind.Video, t0, cfg, FrameFlag.SequenceHeader | FrameFlag.Keyframe)];
  const s = track.samples;
  for (let i = 0; i < s.count; i++) {
    const key = s.sync[i] === 1;
    const data = bytes.subarray(s.offsets[i], s.offsets[i]! + s.sizes[i]!);
    const head = hevc
      ? Buffer.concat([Buffer.from([VideoTag.ExHeader | ((key ? VideoTag.KeyFrame : VideoTag.InterFrame) << 4) | VideoTag.ExCodedFramesX]), fourcc])
      : Buffer.from([key ? VideoTag.AvcKey : VideoTag.AvcInter, VideoTag.AvcNalu, 0, 0, 0]);
    out.push(new MediaFrame(FrameKind.Video, t0 + Math.round(s.times[i]!), Buffer.concat([head, data]), key ? FrameFlag.Keyframe : FrameFlag.None));
  }
  return out;
}

test('record_format mp4: an H.265 (Enhanced RTMP) stream, then a switch to H.264 at another size: two files, each with its codec', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t, 'recmp4-');
  const hevc = await encode(dir, 'src-h265.mp4', ['-c:v', 'libx265', '-x265-params', 'log-level=none:bframes=0', '-tag:v', 'hvc1']);
  const avc = await encode(dir, 'src-h264.mp4', ['-c:v', 'libx264', '-bf', '0', '-vf', 'scale=160:120']);
  const out = path.join(dir, 'out');
  mkdirSync(out);
  const rec = new FlvRecorder({ config: recorderConfig(out, { audio: false }), session: SESSION, app: 'live', name: 'v', query: '', log: silentLogger(), events: undefined, writeWindow: 0, onClosed: () => undefined });
  const frames = [...videoFrames(hevc, 0, true), ...videoFrames(avc, 2000, false)];
  for (let i = 0; i < frames.length; i += 7) await rec.writeBatch(frames.slice(i, i + 7));
  rec.close(undefined);
  await rec.whenClosed();
  assert.equal(rec.files.length, 2, rec.files.join(' '));
  const [first, second] = rec.files as [string, string];
  const a = await probe(first);
  const b = await probe(second);
  const dims = (x: typeof a): string => {
    const v = x.streams[0] as unknown as { codec_name: string; width?: number; height?: number };
    return `${v.codec_name} ${v.width}x${v.height}`;
  };
  assert.equal(dims(a), 'hevc 320x240');
  assert.equal(dims(b), 'h264 160x120');
  assert.equal(Number(a.streams[0]?.nb_read_packets), 50);
  assert.equal(Number(b.streams[0]?.nb_read_packets), 50);
  assert.ok(Math.abs(Number(a.format.duration) - 2) < 0.1, `first duration ${a.format.duration}`);
  // the H.265 frames decode: ffmpeg decodes every one without an error
  const decoded = execFileSync(await ffmpegPath(), ['-hide_banner', '-v', 'error', '-i', first, '-f', 'framecrc', '-'], { encoding: 'utf8' });
  assert.equal(decoded.split('\n').filter((l) => /^\s*0,/.test(l)).length, 50);
});

test('Mp4Piece: malformed codec headers and random frames: a bad track is left out with one warning, none at all throws a coded error, random bytes never throw', () => {
  const logs: MemoryLogEntry[] = [];
  const log = memoryLogger(logs);
  const badAvc = new MediaFrame(FrameKind.Video, 0, Buffer.from([VideoTag.AvcKey, VideoTag.AvcConfig, 0, 0, 0, 1, 0x64]), FrameFlag.SequenceHeader | FrameFlag.Keyframe);
  const badAac = aac(0, AacPacket.Config, Buffer.from([0x12]));
  const goodAac = aac(0, AacPacket.Config, ASC_44100);
  assert.throws(() => new Mp4Piece({ video: badAvc, audio: badAac }, log), (e: unknown) => isServerError(e) && e.code === ErrorCode.OutputWriteFailed);
  assert.throws(() => new Mp4Piece({ video: undefined, audio: undefined }, log), /nothing to write as MP4/);
  const piece = new Mp4Piece({ video: badAvc, audio: goodAac }, log);
  assert.equal(piece.hasVideo, false);
  assert.equal(logs.filter((l) => l.level === 'warn').length, 1);
  assert.equal(topBoxes(piece.init()).map((b) => b[0]).join(' '), 'ftyp moov');
  // random tags of both kinds, truncated ones included: frames of a kind without a track are dropped (one more warning)
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 0x80000000) / 0x80000000;
  let bytes = 0;
  for (let i = 0; i < 2000; i++) {
    const len = Math.floor(rnd() * 40);
    const payload = Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
    if (rnd() < 0.5 && len > 1) {
      payload[0] = AAC_HEADER;
      payload[1] = AacPacket.Raw;
    }
    const f = new MediaFrame(rnd() < 0.5 ? FrameKind.Audio : FrameKind.Video, i * 10, payload, rnd() < 0.2 ? FrameFlag.Keyframe : FrameFlag.None);
    for (const b of piece.add(f, i * 10)) bytes += b.length;
  }
  for (const b of piece.end()) bytes += b.length;
  assert.ok(bytes > 0);
  assert.ok(logs.filter((l) => l.level === 'warn').length <= 3, JSON.stringify(logs.map((l) => l.msg)));
});
