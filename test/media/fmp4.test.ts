import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { FrameKind, MediaFrame, frameFlags } from '../../src/live/frame.js';
import { readFlvFile } from '../../src/media/flv.js';
import { aacTrack, avcTrack, hevcTrack, initSegment, mediaSegment, runFromFrames, SampleFlags, type Fmp4Run, type Fmp4Track, type TimedSampleSource } from '../../src/media/fmp4.js';
import { probePackets, runFfmpeg } from '../helpers/ffmpeg.js';
import { ffprobe, find, findAll, isSyncFlags, readBoxes, readFragment } from '../helpers/mp4.js';

// a real AVCDecoderConfigurationRecord (320x240, Baseline, from ffmpeg's libx264) and AAC-LC 44.1 kHz stereo AudioSpecificConfig
const AVCC = Buffer.from('0142c00dffe100166742c00dda0507ec0440000003004000000c83c50aa801000468ce0fc8', 'hex');
const ASC = Buffer.from('1210', 'hex');

function sample(size: number, fill: number): Buffer {
  return Buffer.alloc(size, fill);
}

test('init segment: ftyp, moov with avc1/avcC and mp4a/esds, mvex/trex, sizes consistent', () => {
  const v = avcTrack(1, AVCC, 1000);
  assert.equal(v.width, 320);
  assert.equal(v.height, 240);
  const a = aacTrack(2, ASC, 1000);
  assert.equal(a.sampleRate, 44100);
  assert.equal(a.channels, 2);
  const init = initSegment([v, a]);
  const boxes = readBoxes(init);
  assert.deepEqual(boxes.map((b) => b.type), ['ftyp', 'moov']);
  assert.equal(boxes[0]!.body.toString('latin1', 0, 4), 'iso5');
  const traks = findAll(boxes, 'trak');
  assert.equal(traks.length, 2);
  const stsd = findAll(boxes, 'stsd');
  assert.equal(stsd.length, 2);
  // stsd: fullbox(4) count(4) then the entry
  const avc1 = readBoxes(stsd[0]!.body, 8);
  assert.equal(avc1[0]!.type, 'avc1');
  // VisualSampleEntry fields: 78 bytes, then avcC
  const avcC = readBoxes(avc1[0]!.body, 78);
  assert.equal(avcC[0]!.type, 'avcC');
  assert.deepEqual(avcC[0]!.body, AVCC);
  assert.equal(avc1[0]!.body.readUInt16BE(24), 320);
  assert.equal(avc1[0]!.body.readUInt16BE(26), 240);
  const mp4a = readBoxes(stsd[1]!.body, 8);
  assert.equal(mp4a[0]!.type, 'mp4a');
  const esds = readBoxes(mp4a[0]!.body, 28);
  assert.equal(esds[0]!.type, 'esds');
  assert.ok(esds[0]!.body.includes(ASC), 'the AudioSpecificConfig is in the esds');
  const trex = findAll(boxes, 'trex');
  assert.deepEqual(trex.map((t) => t.body.readUInt32BE(4)), [1, 2]);
  const hdlrs = findAll(boxes, 'hdlr').map((h) => h.body.toString('latin1', 8, 12));
  assert.deepEqual(hdlrs, ['vide', 'soun']);
  const mvhd = find(boxes, 'moov/mvhd');
  assert.equal(mvhd!.body.readUInt32BE(mvhd!.body.length - 4), 3, 'next_track_ID');
});

test('init segment: hvc1 with the hvcC record as given, the picture size when known', () => {
  const hvcc = Buffer.from('0101600000009000000000005af000fcfdf8f800000f', 'hex');
  const init = initSegment([hevcTrack(1, hvcc, 90000, 1280, 720)]);
  const stsd = findAll(readBoxes(init), 'stsd')[0]!;
  const hvc1 = readBoxes(stsd.body, 8)[0]!;
  assert.equal(hvc1.type, 'hvc1');
  assert.equal(hvc1.body.readUInt16BE(24), 1280);
  assert.equal(hvc1.body.readUInt16BE(26), 720);
  const rec = readBoxes(hvc1.body, 78)[0]!;
  assert.equal(rec.type, 'hvcC');
  assert.deepEqual(rec.body, hvcc);
  const tkhd = findAll(readBoxes(init), 'tkhd')[0]!;
  assert.equal(tkhd.body.readUInt32BE(tkhd.body.length - 8), 1280 * 65536);
});

test('media segment: styp, moof with tfdt v1 and trun v1 (signed cts), data offsets point at each sample, data not copied', () => {
  const v = avcTrack(1, AVCC, 90000);
  const a = aacTrack(2, ASC);
  const vs = [sample(100, 1), sample(50, 2), sample(60, 3)];
  const as = [sample(20, 4), sample(21, 5)];
  const runs: Fmp4Run[] = [
    { track: v, baseDecodeTime: 2 ** 33 + 5, samples: [{ data: vs[0]!, duration: 3600, cts: 7200, sync: true }, { data: vs[1]!, duration: 3600, cts: -3600, sync: false }, { data: vs[2]!, duration: 3600, cts: 0, sync: false }] },
    { track: a, baseDecodeTime: 44100, samples: as.map((d) => ({ data: d, duration: 1024, cts: 0, sync: true })) },
  ];
  const parts = mediaSegment(7, runs);
  assert.equal(parts.length, 1 + 5);
  assert.equal(parts[1], vs[0], 'the sample data is the caller\'s buffer');
  const seg = Buffer.concat(parts);
  const boxes = readBoxes(seg);
  assert.deepEqual(boxes.map((b) => b.type), ['styp', 'moof', 'mdat']);
  const f = readFragment(seg);
  assert.equal(f.sequence, 7);
  assert.equal(f.trafs.length, 2);
  const [tv, ta] = f.trafs;
  assert.equal(tv!.trackId, 1);
  assert.equal(tv!.baseDecodeTime, 2 ** 33 + 5);
  assert.deepEqual(tv!.samples.map((s) => s.cts), [7200, -3600, 0]);
  assert.deepEqual(tv!.samples.map((s) => isSyncFlags(s.flags)), [true, false, false]);
  assert.equal(tv!.samples[0]!.flags, SampleFlags.Sync);
  assert.equal(ta!.trackId, 2);
  assert.equal(ta!.baseDecodeTime, 44100);
  assert.deepEqual(ta!.samples.map((s) => s.size), [20, 21]);
  // data_offset is from the moof's start
  let off = f.moof.offset + tv!.dataOffset;
  for (const [i, s] of tv!.samples.entries()) {
    assert.deepEqual(seg.subarray(off, off + s.size), vs[i]);
    off += s.size;
  }
  assert.equal(f.moof.offset + ta!.dataOffset, off);
  assert.deepEqual(seg.subarray(off, off + 20), as[0]);
  assert.equal(f.mdat.size, 8 + 100 + 50 + 60 + 20 + 21);
  // without styp
  assert.deepEqual(readBoxes(Buffer.concat(mediaSegment(1, runs, { styp: false }))).map((b) => b.type), ['moof', 'mdat']);
});

test('runFromFrames: durations to the next frame, the last to endMs, timescale conversion, sync from keyframes', () => {
  const v = avcTrack(1, AVCC, 90000);
  const frames: TimedSampleSource[] = [
    { timestamp: 1000, cts: 80, keyframe: true, data: sample(1, 0) },
    { timestamp: 1040, cts: -40, keyframe: false, data: sample(1, 0) },
    { timestamp: 1040, cts: 0, keyframe: false, data: sample(1, 0) },
    { timestamp: 1120, cts: 0, keyframe: false, data: sample(1, 0) },
  ];
  const r = runFromFrames(v, frames, 1160, 40);
  assert.equal(r.baseDecodeTime, 90000);
  assert.deepEqual(r.samples.map((s) => s.duration), [3600, 0, 7200, 3600]);
  assert.deepEqual(r.samples.map((s) => s.cts), [7200, -3600, 0, 0]);
  assert.deepEqual(r.samples.map((s) => s.sync), [true, false, false, false]);
  const total = r.samples.reduce((n, s) => n + s.duration, 0);
  assert.equal(r.baseDecodeTime + total, 1160 * 90, 'the next run starts where this one ends');
  // no end known: the last duration is given
  const r2 = runFromFrames(aacTrack(2, ASC, 1000), frames.slice(0, 2), undefined, 23);
  assert.deepEqual(r2.samples.map((s) => [s.duration, s.sync, s.cts]), [[40, true, 0], [23, true, 0]]);
  assert.throws(() => runFromFrames(v, [], undefined, 40), RangeError);
});

test('bad input: truncated, random and oversized codec configs throw a coded error; an empty segment is a bug', () => {
  for (const bad of [AVCC.subarray(0, 5), Buffer.alloc(0), Buffer.from('ff'.repeat(40), 'hex')]) {
    assert.throws(() => avcTrack(1, bad, 1000), (e) => isServerError(e, ErrorCode.CodecConfigMalformed) || isServerError(e, ErrorCode.BufferTruncated));
  }
  for (const bad of [Buffer.alloc(0), Buffer.from('00', 'hex'), Buffer.from('f8', 'hex')]) {
    assert.throws(() => aacTrack(1, bad), (e) => isServerError(e, ErrorCode.CodecConfigMalformed));
  }
  // random configs: either a coded error or a valid init segment our reader walks
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(Array.from({ length: 1 + (i % 40) }, rnd));
    for (const mk of [(): Fmp4Track => avcTrack(1, b, 1000), (): Fmp4Track => aacTrack(1, b)]) {
      let t: Fmp4Track;
      try {
        t = mk();
      } catch (e) {
        assert.ok(isServerError(e), String(e));
        continue;
      }
      readBoxes(initSegment([t]));
    }
  }
  // a huge avcC still gets correct 32-bit sizes
  const big = initSegment([{ ...avcTrack(1, AVCC, 1000), config: Buffer.concat([AVCC, Buffer.alloc(70000)]) }]);
  assert.equal(readBoxes(big).length, 2);
  assert.throws(() => initSegment([]), RangeError);
  assert.throws(() => mediaSegment(1, []), RangeError);
});

/** The frames of an FLV file made by ffmpeg, split into fragments at keyframes, written as one fMP4 file. */
test('ffmpeg makes an H.264 (B-frames) + AAC FLV; our fMP4 of its frames is read by ffprobe and ffmpeg with every packet', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fmp4-'));
  t.after(() => (process.env["KEEP"] ? undefined : rm(dir, { recursive: true, force: true })));
  const flv = path.join(dir, 'in.flv');
  const run = await runFfmpeg([
    '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '4', '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', flv,
  ]);
  t.after(() => run.kill());
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  const { tags } = readFlvFile(await readFile(flv));
  const frames = tags.filter((g) => g.type === FrameKind.Video || g.type === FrameKind.Audio).map((g) => new MediaFrame(g.type as FrameKind, g.timestamp, g.data, frameFlags(g.type as FrameKind, g.data)));
  let vt: Fmp4Track | undefined;
  let at: Fmp4Track | undefined;
  const video: (TimedSampleSource & { ts: number })[] = [];
  const audio: TimedSampleSource[] = [];
  let sawCts = false;
  for (const f of frames) {
    const c = f.codecData;
    assert.ok(c);
    if (c.isConfig) {
      if (f.kind === FrameKind.Video) vt = avcTrack(1, c.data, 90000);
      else at = aacTrack(2, c.data);
      continue;
    }
    if (c.isEndOfSequence || c.data.length === 0) continue;
    const src = { timestamp: f.timestamp, cts: c.cts, keyframe: c.isKeyframe, data: c.data, ts: f.timestamp };
    if (f.kind === FrameKind.Video) video.push(src);
    else audio.push(src);
    if (c.cts > 0) sawCts = true; // B-frames: pts != dts (cts > 0 on reference frames)
  }
  assert.ok(vt && at && sawCts);
  // cut at keyframes
  const cuts = video.map((f, i) => (f.keyframe ? i : -1)).filter((i) => i >= 0);
  const parts: Buffer[] = [initSegment([vt, at])];
  let ai = 0;
  let seq = 1;
  for (let k = 0; k < cuts.length; k++) {
    const vFrames = video.slice(cuts[k], cuts[k + 1] ?? video.length);
    const endMs = video[cuts[k + 1] ?? -1]?.timestamp;
    const aFrames: TimedSampleSource[] = [];
    while (ai < audio.length && (endMs === undefined || audio[ai]!.timestamp < endMs)) aFrames.push(audio[ai++]!);
    const runs = [runFromFrames(vt, vFrames, endMs, 40)];
    if (aFrames.length > 0) runs.push(runFromFrames(at, aFrames, audio[ai]?.timestamp, 23));
    parts.push(...mediaSegment(seq++, runs));
  }
  const out = path.join(dir, 'out.mp4');
  await writeFile(out, Buffer.concat(parts));

  const probe = await ffprobe(out);
  assert.equal(probe.code, 0, probe.stderr);
  const v = probe.streams.find((s) => s.codec_type === 'video');
  const a = probe.streams.find((s) => s.codec_type === 'audio');
  assert.equal(v?.codec_name, 'h264');
  assert.equal(v?.width, 320);
  assert.equal(a?.codec_name, 'aac');
  assert.equal(a?.sample_rate, '44100');
  assert.equal(a?.channels, 1);
  assert.equal(probe.stderr.trim(), '', 'ffprobe has nothing to complain about');
  const pk = await probePackets(out);
  assert.equal(pk.video, video.length);
  assert.equal(pk.audio, audio.length);

  // our own reader: fragments in order, tfdt continuous per track, each fragment starts with a sync sample
  const file = await readFile(out);
  const moofs = readBoxes(file).filter((b) => b.type === 'moof');
  assert.equal(moofs.length, cuts.length);
  const next = new Map<number, number>();
  for (const m of moofs) {
    const frag = readFragment(file.subarray(m.offset));
    for (const tr of frag.trafs) {
      const expect = next.get(tr.trackId);
      if (expect !== undefined) assert.equal(tr.baseDecodeTime, expect, `tfdt continuity of track ${tr.trackId}`);
      next.set(tr.trackId, tr.baseDecodeTime + tr.samples.reduce((n, s) => n + s.duration, 0));
      if (tr.trackId === 1) assert.ok(isSyncFlags(tr.samples[0]!.flags));
    }
  }
});
