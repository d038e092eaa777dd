/**
 * The media parsers against real streams written by ffmpeg (the
 * @ffmpeg-installer binary, or FFMPEG_PATH): FLV with H.264 + AAC, odd sizes,
 * interlacing, HEVC (from an MP4's hvcC: this ffmpeg's FLV muxer refuses
 * HEVC) and ADTS.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { adtsHeader, parseAudioSpecificConfig } from '../../src/media/aac.js';
import { parseAudioTag } from '../../src/media/audio.js';
import { AvcNalType, parseAvcDecoderConfig, splitNalUnits } from '../../src/media/avc.js';
import { FlvReader, FlvTagType, readFlvFile, type FlvTag } from '../../src/media/flv.js';
import { HevcNalType, parseHevcDecoderConfig } from '../../src/media/hevc.js';
import { isVideoKeyframe, isVideoSequenceHeader, parseVideoTag, VideoFrameType, VideoPacketType } from '../../src/media/video.js';

const run = promisify(execFile);

async function ffmpegPath(): Promise<string> {
  return process.env.FFMPEG_PATH ?? (await import('@ffmpeg-installer/ffmpeg')).default.path;
}

async function ffmpeg(args: string[]): Promise<void> {
  await run(await ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-y', ...args], { timeout: 60_000 });
}

async function withTmp(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'media-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const TESTSRC = ['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25'];

test('a 2-second H.264/AAC FLV from ffmpeg', async (t) => {
  const dir = await withTmp(t);
  const file = join(dir, 'out.flv');
  await ffmpeg([...TESTSRC, '-f', 'lavfi', '-i', 'sine', '-t', '2', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-g', '25', '-sc_threshold', '0', '-c:a', 'aac', '-f', 'flv', file]);
  const buf = await readFile(file);

  const whole = readFlvFile(buf);
  assert.deepEqual(whole.header, { audio: true, video: true });
  assert.equal(whole.truncatedAt, undefined);
  assert.equal(whole.tags[0]!.type, FlvTagType.Script, 'onMetaData comes first');

  // the streaming reader, fed in odd-sized chunks and byte by byte, sees the same tags
  for (const step of [1, 7, 1000, 65536]) {
    const r = new FlvReader();
    const tags: FlvTag[] = [];
    for (let i = 0; i < buf.length; i += step) tags.push(...r.push(buf.subarray(i, i + step)));
    r.end();
    assert.deepEqual(
      tags.map((x) => [x.type, x.timestamp, x.data.length]),
      whole.tags.map((x) => [x.type, x.timestamp, x.data.length]),
      `step ${step}`,
    );
  }

  const video = whole.tags.filter((x) => x.type === FlvTagType.Video);
  const first = parseVideoTag(video[0]!.data);
  assert.equal(first.isSequenceHeader, true, 'the first video tag is the AVC sequence header');
  assert.equal(isVideoSequenceHeader(video[0]!.data), true);
  const avc = parseAvcDecoderConfig(first.data);
  assert.equal(avc.width, 320);
  assert.equal(avc.height, 240);
  assert.match(avc.codecString, /^avc1\.[0-9a-f]{6}$/);
  assert.equal(avc.nalLengthSize, 4);
  assert.equal(avc.sps.length, 1);
  assert.equal(avc.pps.length, 1);

  const frames = video.slice(1).map((x) => ({ tag: x, info: parseVideoTag(x.data) })).filter((f) => !f.info.isEndOfSequence);
  assert.equal(frames.length, 50, '2 s at 25 fps');
  const keyIndexes = frames.flatMap((f, i) => (f.info.isKeyframe ? [i] : []));
  assert.deepEqual(keyIndexes, [0, 25], 'a keyframe every 25 frames');
  assert.ok(frames.some((f) => f.info.compositionTime > 0), 'B-frames give composition offsets');
  for (const f of frames) {
    assert.equal(isVideoKeyframe(f.tag.data), f.info.isKeyframe);
    assert.equal(f.info.frameType, f.info.isKeyframe ? VideoFrameType.Key : VideoFrameType.Inter);
    assert.ok(f.info.compositionTime >= 0);
    const nals = splitNalUnits(f.info.data, avc.nalLengthSize);
    assert.ok(nals.length > 0);
    const types = nals.map((n) => n[0]! & 0x1f);
    assert.equal(types.includes(AvcNalType.SliceIdr), f.info.isKeyframe, 'keyframes carry an IDR slice');
  }
  for (let i = 1; i < frames.length; i++) assert.ok(frames[i]!.tag.timestamp >= frames[i - 1]!.tag.timestamp, 'decode timestamps do not go back');

  const audio = whole.tags.filter((x) => x.type === FlvTagType.Audio).map((x) => parseAudioTag(x.data));
  assert.equal(audio[0]!.isSequenceHeader, true);
  assert.equal(audio[0]!.codec, 'mp4a');
  const aac = parseAudioSpecificConfig(audio[0]!.data);
  assert.equal(aac.sampleRate, 44100);
  assert.equal(aac.codecString, 'mp4a.40.2');
  assert.equal(aac.channelConfig, 1);
  const rawFrames = audio.slice(1);
  assert.ok(rawFrames.every((a) => !a.isSequenceHeader && a.data.length > 0));
  assert.ok(Math.abs(rawFrames.length - (2 * 44100) / 1024) <= 3, `about 86 AAC frames, got ${rawFrames.length}`);

  // cut the file in the middle of the 40th tag: everything before it survives
  const starts: number[] = [];
  let pos = 13;
  for (const x of whole.tags) {
    starts.push(pos);
    pos += 11 + x.data.length + 4;
  }
  const cutTag = 40;
  const cut = buf.subarray(0, starts[cutTag]! + 20);
  const recovered = readFlvFile(cut);
  assert.equal(recovered.tags.length, cutTag);
  assert.equal(recovered.truncatedAt, starts[cutTag]);
  assert.deepEqual(recovered.tags.map((x) => x.timestamp), whole.tags.slice(0, cutTag).map((x) => x.timestamp));
  const r = new FlvReader();
  assert.equal(r.push(cut).length, cutTag);
  assert.throws(() => r.end(), (e) => isServerError(e, ErrorCode.FlvMalformed));
});

test('odd picture sizes (cropping) and interlaced H.264', async (t) => {
  const dir = await withTmp(t);
  const cases: { args: string[]; width: number; height: number }[] = [
    { args: ['-f', 'lavfi', '-i', 'testsrc=size=318x238:rate=25', '-pix_fmt', 'yuv420p'], width: 318, height: 238 },
    { args: [...TESTSRC, '-pix_fmt', 'yuv420p', '-x264-params', 'interlaced=1'], width: 320, height: 240 },
    { args: [...TESTSRC, '-pix_fmt', 'yuv444p'], width: 320, height: 240 },
    { args: ['-f', 'lavfi', '-i', 'testsrc=size=200x90:rate=25', '-pix_fmt', 'yuv422p'], width: 200, height: 90 },
  ];
  for (const [i, c] of cases.entries()) {
    const file = join(dir, `v${i}.flv`);
    await ffmpeg([...c.args, '-frames:v', '1', '-c:v', 'libx264', '-f', 'flv', file]);
    const tag = readFlvFile(await readFile(file)).tags.find((x) => x.type === FlvTagType.Video)!;
    const cfg = parseAvcDecoderConfig(parseVideoTag(tag.data).data);
    assert.deepEqual([cfg.width, cfg.height], [c.width, c.height], c.args.join(' '));
  }
});

test('HEVC: the hvcC that ffmpeg/x265 writes, carried as an Enhanced RTMP hvc1 SequenceStart', async (t) => {
  const dir = await withTmp(t);
  const file = join(dir, 'h.mp4');
  await ffmpeg([...TESTSRC, '-frames:v', '5', '-pix_fmt', 'yuv420p', '-c:v', 'libx265', '-x265-params', 'log-level=none', '-tag:v', 'hvc1', '-f', 'mp4', file]);
  const mp4 = await readFile(file);
  const at = mp4.indexOf('hvcC');
  assert.ok(at > 4, 'the MP4 has an hvcC box');
  const record = mp4.subarray(at + 4, at - 4 + mp4.readUInt32BE(at - 4));

  const payload = Buffer.concat([Buffer.from([0x80 | (VideoFrameType.Key << 4) | VideoPacketType.SequenceStart]), Buffer.from('hvc1'), record]);
  const info = parseVideoTag(payload);
  assert.equal(info.isSequenceHeader, true);
  assert.equal(info.codec, 'hvc1');
  const cfg = parseHevcDecoderConfig(info.data);
  assert.equal(cfg.profileIdc, 1, 'Main');
  assert.equal(cfg.chromaFormat, 1);
  assert.equal(cfg.bitDepthLuma, 8);
  assert.equal(cfg.nalLengthSize, 4);
  assert.match(cfg.codecString, /^hvc1\.1\.6\.L\d+(\.[0-9A-F]{2})*$/);
  const types = cfg.arrays.map((a) => a.type);
  for (const want of [HevcNalType.Vps, HevcNalType.Sps, HevcNalType.Pps]) assert.ok(types.includes(want), `array of NAL type ${want}`);
  for (const a of cfg.arrays) for (const n of a.nalus) assert.equal((n[0]! >> 1) & 0x3f, a.type, 'each NAL header matches its array');
});

test('adtsHeader matches the ADTS headers ffmpeg writes', async (t) => {
  const dir = await withTmp(t);
  const flv = join(dir, 'a.flv');
  const adts = join(dir, 'a.aac');
  await ffmpeg(['-f', 'lavfi', '-i', 'sine', '-t', '1', '-c:a', 'aac', '-f', 'flv', flv]);
  await ffmpeg(['-f', 'lavfi', '-i', 'sine', '-t', '1', '-c:a', 'aac', '-f', 'adts', adts]);
  const seq = readFlvFile(await readFile(flv)).tags.map((x) => parseAudioTag(x.data)).find((a) => a.isSequenceHeader)!;
  const cfg = parseAudioSpecificConfig(seq.data);
  const stream = await readFile(adts);
  let pos = 0;
  let n = 0;
  while (pos + 7 <= stream.length) {
    const total = ((stream[pos + 3]! & 0x03) << 11) | (stream[pos + 4]! << 3) | (stream[pos + 5]! >> 5);
    assert.deepEqual(adtsHeader(cfg, total - 7), stream.subarray(pos, pos + 7), `frame ${n}`);
    pos += total;
    n++;
  }
  assert.ok(n > 40);
  assert.equal(pos, stream.length);
});
