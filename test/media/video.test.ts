import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { AvMultitrackType, PacketModExType } from '../../src/media/flv.js';
import {
  AvcPacketType,
  isVideoKeyframe,
  isVideoSequenceHeader,
  parseVideoTag,
  VideoCodecId,
  VideoCommand,
  VideoFourCC,
  VideoFrameType,
  VideoPacketType,
} from '../../src/media/video.js';

const isFlvMalformed = (e: unknown): boolean => isServerError(e, ErrorCode.FlvMalformed);
const EX = 0x80;

function legacy(frameType: number, codecId: number, ...rest: number[]): Buffer {
  return Buffer.from([(frameType << 4) | codecId, ...rest]);
}

function ex(frameType: number, packetType: number, fourCC: string, ...rest: (number | Buffer)[]): Buffer {
  return Buffer.concat([Buffer.from([EX | (frameType << 4) | packetType]), Buffer.from(fourCC, 'latin1'), ...rest.map((x) => (typeof x === 'number' ? Buffer.from([x]) : x))]);
}

const body = Buffer.from([0xde, 0xad, 0xbe, 0xef]);

/** Every parse must agree with the cheap helpers. */
function parseChecked(payload: Buffer): ReturnType<typeof parseVideoTag> {
  const info = parseVideoTag(payload);
  assert.equal(isVideoKeyframe(payload), info.isKeyframe, 'isVideoKeyframe agrees with parseVideoTag');
  assert.equal(isVideoSequenceHeader(payload), info.isSequenceHeader, 'isVideoSequenceHeader agrees with parseVideoTag');
  return info;
}

test('legacy AVC: sequence header, keyframe NALU with signed composition time, inter frame, end of sequence', () => {
  const seq = parseChecked(legacy(VideoFrameType.Key, VideoCodecId.Avc, AvcPacketType.SequenceHeader, 0, 0, 0, ...body));
  assert.equal(seq.enhanced, false);
  assert.equal(seq.codec, VideoFourCC.Avc);
  assert.equal(seq.isSequenceHeader, true);
  assert.equal(seq.isKeyframe, false);
  assert.deepEqual(seq.data, body);
  assert.equal(seq.packetType, AvcPacketType.SequenceHeader);

  const key = parseChecked(legacy(VideoFrameType.Key, VideoCodecId.Avc, AvcPacketType.Nalu, 0x00, 0x00, 0x50, ...body));
  assert.equal(key.isKeyframe, true);
  assert.equal(key.compositionTime, 80);
  assert.equal(key.frameType, VideoFrameType.Key);
  assert.deepEqual(key.data, body);

  const neg = parseChecked(legacy(VideoFrameType.Inter, VideoCodecId.Avc, AvcPacketType.Nalu, 0xff, 0xff, 0xd8, ...body));
  assert.equal(neg.isKeyframe, false);
  assert.equal(neg.compositionTime, -40);

  const eos = parseChecked(legacy(VideoFrameType.Key, VideoCodecId.Avc, AvcPacketType.EndOfSequence, 0, 0, 0));
  assert.equal(eos.isEndOfSequence, true);
  assert.equal(eos.isKeyframe, false);
  assert.equal(eos.data.length, 0);

  assert.throws(() => parseVideoTag(legacy(VideoFrameType.Key, VideoCodecId.Avc, 3, 0, 0, 0)), isFlvMalformed);
});

test('legacy HEVC (codec id 12) has the AVC layout and reports hvc1', () => {
  const seq = parseChecked(legacy(VideoFrameType.Key, VideoCodecId.Hevc, AvcPacketType.SequenceHeader, 0, 0, 0, ...body));
  assert.equal(seq.codec, VideoFourCC.Hevc);
  assert.equal(seq.isSequenceHeader, true);
  const key = parseChecked(legacy(VideoFrameType.Key, VideoCodecId.Hevc, AvcPacketType.Nalu, 0, 0, 0x28, ...body));
  assert.equal(key.isKeyframe, true);
  assert.equal(key.compositionTime, 40);
});

test('other legacy codecs: no packet type, keyframe from the frame type', () => {
  const vp6 = parseChecked(legacy(VideoFrameType.Key, VideoCodecId.Vp6, ...body));
  assert.equal(vp6.codec, 'legacy:4');
  assert.equal(vp6.isKeyframe, true);
  assert.equal(vp6.packetType, undefined);
  assert.deepEqual(vp6.data, body);
  const h263 = parseChecked(legacy(VideoFrameType.DisposableInter, VideoCodecId.H263, 1));
  assert.equal(h263.codec, 'legacy:2');
  assert.equal(h263.isKeyframe, false);
});

test('legacy command frame: UI8 command, never a keyframe or sequence header', () => {
  const cmd = parseChecked(legacy(VideoFrameType.Command, VideoCodecId.Avc, VideoCommand.StartSeek));
  assert.equal(cmd.command, VideoCommand.StartSeek);
  assert.equal(cmd.isKeyframe, false);
  assert.equal(cmd.isSequenceHeader, false);
  assert.throws(() => parseVideoTag(legacy(VideoFrameType.Command, VideoCodecId.Avc)), isFlvMalformed);
});

test('enhanced hvc1: every packet type', () => {
  const start = parseChecked(ex(VideoFrameType.Key, VideoPacketType.SequenceStart, 'hvc1', body));
  assert.equal(start.enhanced, true);
  assert.equal(start.codec, 'hvc1');
  assert.equal(start.isSequenceHeader, true);
  assert.equal(start.isKeyframe, false);
  assert.deepEqual(start.data, body);
  assert.equal(start.packetType, VideoPacketType.SequenceStart);

  const coded = parseChecked(ex(VideoFrameType.Key, VideoPacketType.CodedFrames, 'hvc1', 0xff, 0xff, 0xfe, body));
  assert.equal(coded.isKeyframe, true);
  assert.equal(coded.compositionTime, -2);
  assert.deepEqual(coded.data, body);

  const codedX = parseChecked(ex(VideoFrameType.Key, VideoPacketType.CodedFramesX, 'hvc1', body));
  assert.equal(codedX.isKeyframe, true);
  assert.equal(codedX.compositionTime, 0);
  assert.deepEqual(codedX.data, body);

  const inter = parseChecked(ex(VideoFrameType.Inter, VideoPacketType.CodedFramesX, 'hvc1', body));
  assert.equal(inter.isKeyframe, false);
  assert.equal(inter.frameType, VideoFrameType.Inter);

  const end = parseChecked(ex(VideoFrameType.Key, VideoPacketType.SequenceEnd, 'hvc1'));
  assert.equal(end.isEndOfSequence, true);
  assert.equal(end.isKeyframe, false);

  const meta = parseChecked(ex(VideoFrameType.Key, VideoPacketType.Metadata, 'hvc1', body));
  assert.equal(meta.packetType, VideoPacketType.Metadata);
  assert.equal(meta.isKeyframe, false, 'frame type is ignored for Metadata');
  assert.equal(meta.isSequenceHeader, false);
  assert.deepEqual(meta.data, body);

  const ts = parseChecked(ex(VideoFrameType.Key, VideoPacketType.Mpeg2TsSequenceStart, 'hvc1', body));
  assert.equal(ts.isSequenceHeader, true);
});

test('enhanced av01 / vp09: CodedFrames carries no composition time', () => {
  const start = parseChecked(ex(VideoFrameType.Key, VideoPacketType.SequenceStart, 'av01', body));
  assert.equal(start.codec, VideoFourCC.Av1);
  assert.equal(start.isSequenceHeader, true);
  const coded = parseChecked(ex(VideoFrameType.Key, VideoPacketType.CodedFrames, 'av01', body));
  assert.equal(coded.compositionTime, 0);
  assert.deepEqual(coded.data, body);
  assert.equal(coded.isKeyframe, true);
  const x = parseChecked(ex(VideoFrameType.Inter, VideoPacketType.CodedFramesX, 'vp09', body));
  assert.equal(x.codec, VideoFourCC.Vp9);
  assert.equal(x.isKeyframe, false);
  const ts = parseChecked(ex(VideoFrameType.Key, VideoPacketType.Mpeg2TsSequenceStart, 'av01', body));
  assert.equal(ts.isSequenceHeader, true);
  const end = parseChecked(ex(VideoFrameType.Key, VideoPacketType.SequenceEnd, 'av01'));
  assert.equal(end.isEndOfSequence, true);
  const avc = parseChecked(ex(VideoFrameType.Key, VideoPacketType.CodedFrames, 'avc1', 0, 0, 0x10, body));
  assert.equal(avc.compositionTime, 16);
});

test('enhanced command frame: UI8 command and no FourCC', () => {
  const cmd = parseChecked(Buffer.from([EX | (VideoFrameType.Command << 4) | VideoPacketType.CodedFrames, VideoCommand.EndSeek]));
  assert.equal(cmd.command, VideoCommand.EndSeek);
  assert.equal(cmd.codec, '');
  assert.equal(cmd.isKeyframe, false);
  const cmdSeq = parseChecked(Buffer.from([EX | (VideoFrameType.Command << 4) | VideoPacketType.SequenceStart, VideoCommand.StartSeek]));
  assert.equal(cmdSeq.isSequenceHeader, false);
  // Metadata ignores the frame type: not a command, a FourCC follows
  const meta = parseChecked(ex(VideoFrameType.Command, VideoPacketType.Metadata, 'hvc1', body));
  assert.equal(meta.command, undefined);
  assert.equal(meta.codec, 'hvc1');
});

function modEx(data: Buffer, modExType: number, next: number): Buffer {
  const size = data.length - 1;
  const sizeField = size >= 255 ? Buffer.from([0xff, (size >> 8) & 0xff, size & 0xff]) : Buffer.from([size]);
  return Buffer.concat([sizeField, data, Buffer.from([(modExType << 4) | next])]);
}

test('enhanced ModEx: TimestampOffsetNano, chained prefixes, the 16-bit size escape', () => {
  const nano = Buffer.from([0x0f, 0x42, 0x3f]); // 999999
  const p = Buffer.concat([
    Buffer.from([EX | (VideoFrameType.Key << 4) | VideoPacketType.ModEx]),
    modEx(nano, PacketModExType.TimestampOffsetNano, VideoPacketType.CodedFrames),
    Buffer.from('hvc1'),
    Buffer.from([0, 0, 0x28]),
    body,
  ]);
  const info = parseChecked(p);
  assert.equal(info.timestampOffsetNano, 999999);
  assert.equal(info.packetType, VideoPacketType.CodedFrames);
  assert.equal(info.compositionTime, 40);
  assert.equal(info.isKeyframe, true);
  assert.deepEqual(info.data, body);

  const big = Buffer.alloc(300, 7);
  const chained = Buffer.concat([
    Buffer.from([EX | (VideoFrameType.Key << 4) | VideoPacketType.ModEx]),
    modEx(big, 5 /* an unknown ModEx type: skipped */, VideoPacketType.ModEx),
    modEx(Buffer.from([0, 0, 1]), PacketModExType.TimestampOffsetNano, VideoPacketType.SequenceStart),
    Buffer.from('av01'),
    body,
  ]);
  const c = parseChecked(chained);
  assert.equal(c.isSequenceHeader, true);
  assert.equal(c.timestampOffsetNano, 1);
  assert.deepEqual(c.data, body);

  const short = Buffer.concat([Buffer.from([EX | (VideoFrameType.Key << 4) | VideoPacketType.ModEx]), modEx(Buffer.from([1, 2]), PacketModExType.TimestampOffsetNano, 1), Buffer.from('hvc1')]);
  assert.throws(() => parseVideoTag(short), isFlvMalformed);
});

test('enhanced Multitrack: first track reported, flagged', () => {
  const hdr = (mt: number, pt: number) => Buffer.from([EX | (VideoFrameType.Key << 4) | VideoPacketType.Multitrack, (mt << 4) | pt]);
  const one = parseChecked(Buffer.concat([hdr(AvMultitrackType.OneTrack, VideoPacketType.CodedFrames), Buffer.from('hvc1'), Buffer.from([3, 0, 0, 0x28]), body]));
  assert.deepEqual(one.multitrack, { type: AvMultitrackType.OneTrack, trackId: 3 });
  assert.equal(one.codec, 'hvc1');
  assert.equal(one.compositionTime, 40);
  assert.equal(one.isKeyframe, true);
  assert.deepEqual(one.data, body);

  const other = Buffer.from([9, 9, 9]);
  const many = parseChecked(
    Buffer.concat([hdr(AvMultitrackType.ManyTracks, VideoPacketType.SequenceStart), Buffer.from('av01'), Buffer.from([0, 0, 0, 4]), body, Buffer.from([1, 0, 0, 3]), other]),
  );
  assert.deepEqual(many.multitrack, { type: AvMultitrackType.ManyTracks, trackId: 0 });
  assert.equal(many.isSequenceHeader, true);
  assert.deepEqual(many.data, body, 'only the first track, bounded by its size');

  const manyCodecs = parseChecked(
    Buffer.concat([hdr(AvMultitrackType.ManyTracksManyCodecs, VideoPacketType.CodedFramesX), Buffer.from('vp09'), Buffer.from([0, 0, 0, 4]), body, Buffer.from('av01'), Buffer.from([1, 0, 0, 3]), other]),
  );
  assert.equal(manyCodecs.codec, 'vp09');
  assert.equal(manyCodecs.isKeyframe, true);
  assert.deepEqual(manyCodecs.data, body);

  // a track size past the end, an unknown multitrack type, nested Multitrack
  assert.throws(() => parseVideoTag(Buffer.concat([hdr(AvMultitrackType.ManyTracks, 1), Buffer.from('av01'), Buffer.from([0, 0, 0, 9]), body])), isFlvMalformed);
  assert.throws(() => parseVideoTag(Buffer.concat([hdr(3, 1), Buffer.from('av01'), Buffer.from([0]), body])), isFlvMalformed);
  assert.throws(() => parseVideoTag(Buffer.concat([hdr(0, VideoPacketType.Multitrack), Buffer.from('av01'), Buffer.from([0]), body])), isFlvMalformed);
});

test('enhanced: reserved packet types are rejected', () => {
  for (const pt of [8, 9, 15]) assert.throws(() => parseVideoTag(ex(VideoFrameType.Key, pt, 'hvc1', body)), isFlvMalformed);
  assert.equal(isVideoKeyframe(ex(VideoFrameType.Key, 8, 'hvc1', body)), false);
});

test('truncated at every offset: FlvMalformed, helpers never throw', () => {
  const samples = [
    legacy(VideoFrameType.Key, VideoCodecId.Avc, AvcPacketType.Nalu, 0, 0, 0),
    ex(VideoFrameType.Key, VideoPacketType.CodedFrames, 'hvc1', 0, 0, 0),
    Buffer.concat([Buffer.from([EX | (VideoFrameType.Key << 4) | VideoPacketType.ModEx]), modEx(Buffer.alloc(300), 0, VideoPacketType.CodedFramesX), Buffer.from('av01')]),
    Buffer.concat([Buffer.from([EX | (VideoFrameType.Key << 4) | VideoPacketType.Multitrack, 0x10 | VideoPacketType.CodedFrames]), Buffer.from('hvc1'), Buffer.from([0, 0, 0, 3, 0, 0, 0])]),
  ];
  for (const full of samples) {
    parseVideoTag(full);
    for (let cut = 0; cut < full.length; cut++) {
      const part = full.subarray(0, cut);
      assert.throws(() => parseVideoTag(part), isFlvMalformed, `cut ${cut} of ${full.toString('hex')}`);
      isVideoKeyframe(part);
      isVideoSequenceHeader(part);
    }
  }
});

test('random bytes: only FlvMalformed; helpers agree with the parser whenever it succeeds', () => {
  const exHeads = fc.integer({ min: 0, max: 255 }).map((b) => b | EX);
  fc.assert(
    fc.property(fc.oneof(fc.integer({ min: 0, max: 255 }), exHeads), fc.uint8Array({ maxLength: 40 }), (b0, rest) => {
      const p = Buffer.concat([Buffer.from([b0]), Buffer.from(rest)]);
      const k = isVideoKeyframe(p);
      const s = isVideoSequenceHeader(p);
      try {
        const info = parseVideoTag(p);
        assert.equal(k, info.isKeyframe);
        assert.equal(s, info.isSequenceHeader);
      } catch (e) {
        assert.ok(isFlvMalformed(e), String(e));
      }
    }),
    { numRuns: 2000 },
  );
  assert.equal(isVideoKeyframe(Buffer.alloc(0)), false);
  assert.equal(isVideoSequenceHeader(Buffer.alloc(0)), false);
  assert.throws(() => parseVideoTag(Buffer.alloc(0)), isFlvMalformed);
});
