import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { AacPacketType, AudioFourCC, AudioPacketType, isAudioSequenceHeader, parseAudioTag, SoundFormat } from '../../src/media/audio.js';
import { AvMultitrackType, PacketModExType } from '../../src/media/flv.js';

const isFlvMalformed = (e: unknown): boolean => isServerError(e, ErrorCode.FlvMalformed);
const EX_HEAD = SoundFormat.ExHeader << 4;
const body = Buffer.from([0x11, 0x22, 0x33]);

function parseChecked(payload: Buffer): ReturnType<typeof parseAudioTag> {
  const info = parseAudioTag(payload);
  assert.equal(isAudioSequenceHeader(payload), info.isSequenceHeader, 'isAudioSequenceHeader agrees with parseAudioTag');
  return info;
}

function ex(packetType: number, fourCC: string, ...rest: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([EX_HEAD | packetType]), Buffer.from(fourCC, 'latin1'), ...rest]);
}

test('legacy AAC: 0xAF header, sequence header and raw', () => {
  const seq = parseChecked(Buffer.from([0xaf, AacPacketType.SequenceHeader, 0x12, 0x10]));
  assert.deepEqual(
    { ...seq, data: [...seq.data] },
    { enhanced: false, codec: 'mp4a', soundRate: 44100, soundSize: 16, stereo: true, isSequenceHeader: true, data: [0x12, 0x10], packetType: 0 },
  );
  const raw = parseChecked(Buffer.concat([Buffer.from([0xaf, AacPacketType.Raw]), body]));
  assert.equal(raw.isSequenceHeader, false);
  assert.deepEqual(raw.data, body);
  assert.throws(() => parseAudioTag(Buffer.from([0xaf, 2, 0])), isFlvMalformed);
  assert.throws(() => parseAudioTag(Buffer.from([0xaf])), isFlvMalformed);
});

test('legacy non-AAC formats: rate/size/type bits and codec names', () => {
  // MP3, 22 kHz (2), 16-bit, mono
  const mp3 = parseChecked(Buffer.concat([Buffer.from([(SoundFormat.Mp3 << 4) | (2 << 2) | 0x02]), body]));
  assert.equal(mp3.codec, AudioFourCC.Mp3);
  assert.equal(mp3.soundRate, 22050);
  assert.equal(mp3.soundSize, 16);
  assert.equal(mp3.stereo, false);
  assert.equal(mp3.packetType, undefined);
  assert.deepEqual(mp3.data, body);
  const pcmu = parseChecked(Buffer.from([(SoundFormat.G711U << 4) | 0x01, 0x7f]));
  assert.equal(pcmu.codec, 'legacy:8');
  assert.equal(pcmu.soundRate, 5500);
  assert.equal(pcmu.soundSize, 8);
  assert.equal(pcmu.stereo, true);
  assert.equal(parseChecked(Buffer.from([SoundFormat.Mp38k << 4])).codec, '.mp3');
  assert.equal(parseChecked(Buffer.from([SoundFormat.Speex << 4])).data.length, 0);
});

test('enhanced audio: every packet type, FourCCs', () => {
  const start = parseChecked(ex(AudioPacketType.SequenceStart, 'Opus', body));
  assert.equal(start.enhanced, true);
  assert.equal(start.codec, AudioFourCC.Opus);
  assert.equal(start.isSequenceHeader, true);
  assert.deepEqual(start.data, body);
  assert.equal(start.soundRate, 0);
  const coded = parseChecked(ex(AudioPacketType.CodedFrames, 'mp4a', body));
  assert.equal(coded.codec, 'mp4a');
  assert.equal(coded.isSequenceHeader, false);
  assert.deepEqual(coded.data, body);
  assert.equal(parseChecked(ex(AudioPacketType.SequenceEnd, 'fLaC')).data.length, 0);
  const mc = parseChecked(ex(AudioPacketType.MultichannelConfig, 'ac-3', Buffer.from([1, 6, 0, 0, 0, 0x3f])));
  assert.equal(mc.packetType, AudioPacketType.MultichannelConfig);
  assert.equal(mc.isSequenceHeader, false);
  assert.equal(parseChecked(ex(AudioPacketType.CodedFrames, 'ec-3', body)).codec, 'ec-3');
  for (const pt of [3, 6, 8, 15]) assert.throws(() => parseAudioTag(ex(pt, 'Opus', body)), isFlvMalformed);
});

test('enhanced audio ModEx and Multitrack', () => {
  const p = Buffer.concat([
    Buffer.from([EX_HEAD | AudioPacketType.ModEx, 2, 0x00, 0x01, 0x00, (PacketModExType.TimestampOffsetNano << 4) | AudioPacketType.SequenceStart]),
    Buffer.from('Opus'),
    body,
  ]);
  const info = parseChecked(p);
  assert.equal(info.timestampOffsetNano, 256);
  assert.equal(info.isSequenceHeader, true);
  assert.deepEqual(info.data, body);

  const mt = parseChecked(
    Buffer.concat([
      Buffer.from([EX_HEAD | AudioPacketType.Multitrack, (AvMultitrackType.ManyTracks << 4) | AudioPacketType.CodedFrames]),
      Buffer.from('Opus'),
      Buffer.from([2, 0, 0, 3]),
      body,
      Buffer.from([3, 0, 0, 1, 0xff]),
    ]),
  );
  assert.deepEqual(mt.multitrack, { type: AvMultitrackType.ManyTracks, trackId: 2 });
  assert.deepEqual(mt.data, body);
  const mtSeq = parseChecked(
    Buffer.concat([Buffer.from([EX_HEAD | AudioPacketType.Multitrack, (AvMultitrackType.OneTrack << 4) | AudioPacketType.SequenceStart]), Buffer.from('mp4a'), Buffer.from([0]), body]),
  );
  assert.equal(mtSeq.isSequenceHeader, true);
  assert.deepEqual(mtSeq.data, body);
  assert.throws(
    () => parseAudioTag(Buffer.concat([Buffer.from([EX_HEAD | AudioPacketType.Multitrack, (7 << 4) | 1]), Buffer.from('Opus'), Buffer.from([0]), body])),
    isFlvMalformed,
  );
});

test('truncated at every offset: FlvMalformed; helper never throws', () => {
  const samples = [
    Buffer.from([0xaf, 0x00]),
    ex(AudioPacketType.CodedFrames, 'Opus'),
    Buffer.concat([Buffer.from([EX_HEAD | AudioPacketType.ModEx, 0xff, 0x01, 0x00]), Buffer.alloc(257), Buffer.from([AudioPacketType.CodedFrames]), Buffer.from('Opus')]),
    Buffer.concat([Buffer.from([EX_HEAD | AudioPacketType.Multitrack, 0x10 | AudioPacketType.CodedFrames]), Buffer.from('Opus'), Buffer.from([0, 0, 0, 2, 1, 2])]),
  ];
  for (const full of samples) {
    parseAudioTag(full);
    for (let cut = 0; cut < full.length; cut++) {
      assert.throws(() => parseAudioTag(full.subarray(0, cut)), isFlvMalformed, `cut ${cut}`);
      isAudioSequenceHeader(full.subarray(0, cut));
    }
  }
});

test('random bytes: only FlvMalformed; helper agrees with the parser', () => {
  fc.assert(
    fc.property(fc.constantFrom(0xaf, 0xa0, 0x2e, EX_HEAD, EX_HEAD | 5, EX_HEAD | 7, EX_HEAD | 1), fc.uint8Array({ maxLength: 30 }), (b0, rest) => {
      const p = Buffer.concat([Buffer.from([b0]), Buffer.from(rest)]);
      const s = isAudioSequenceHeader(p);
      try {
        assert.equal(s, parseAudioTag(p).isSequenceHeader);
      } catch (e) {
        assert.ok(isFlvMalformed(e), String(e));
      }
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 30 }), (bytes) => {
      const p = Buffer.from(bytes);
      const s = isAudioSequenceHeader(p);
      try {
        assert.equal(s, parseAudioTag(p).isSequenceHeader);
      } catch (e) {
        assert.ok(isFlvMalformed(e), String(e));
      }
    }),
  );
});
