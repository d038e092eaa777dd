import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { HevcNalType, parseHevcDecoderConfig } from '../../src/media/hevc.js';

const isConfigMalformed = (e: unknown): boolean => isServerError(e, ErrorCode.CodecConfigMalformed);

interface RecordSpec {
  profileSpace: number;
  tier: number;
  profile: number;
  compat: number;
  constraints: number[];
  level: number;
  chroma?: number;
  lengthSizeMinusOne?: number;
  arrays: { type: number; nalus: Buffer[] }[];
}

function buildHvcc(o: RecordSpec): Buffer {
  const head = Buffer.alloc(23);
  head[0] = 1;
  head[1] = (o.profileSpace << 6) | (o.tier << 5) | o.profile;
  head.writeUInt32BE(o.compat >>> 0, 2);
  Buffer.from(o.constraints).copy(head, 6);
  head[12] = o.level;
  head.writeUInt16BE(0xf000, 13); // min_spatial_segmentation_idc 0
  head[15] = 0xfc; // parallelismType 0
  head[16] = 0xfc | (o.chroma ?? 1);
  head[17] = 0xf8 | 2; // bit depth luma 10
  head[18] = 0xf8 | 2;
  head.writeUInt16BE(0, 19);
  head[21] = (1 << 3) | (1 << 2) | (o.lengthSizeMinusOne ?? 3);
  head[22] = o.arrays.length;
  const parts: Buffer[] = [head];
  for (const a of o.arrays) {
    parts.push(Buffer.from([0x80 | a.type, a.nalus.length >> 8, a.nalus.length & 0xff]));
    for (const n of a.nalus) parts.push(Buffer.from([n.length >> 8, n.length & 0xff]), n);
  }
  return Buffer.concat(parts);
}

const VPS = Buffer.from([0x40, 0x01, 0x0c, 0x01, 0xff, 0xff]);
const SPS = Buffer.from([0x42, 0x01, 0x01, 0x01, 0x60, 0x00]);
const PPS = Buffer.from([0x44, 0x01, 0xc1, 0x72]);
const arrays = [
  { type: HevcNalType.Vps, nalus: [VPS] },
  { type: HevcNalType.Sps, nalus: [SPS] },
  { type: HevcNalType.Pps, nalus: [PPS, Buffer.from([0x44, 0x01, 0xc0])] },
];
const main = buildHvcc({ profileSpace: 0, tier: 0, profile: 1, compat: 0x60000000, constraints: [0xb0, 0, 0, 0, 0, 0], level: 93, arrays });

test('HEVCDecoderConfigurationRecord: fields, arrays as views', () => {
  const c = parseHevcDecoderConfig(main);
  assert.equal(c.profileSpace, 0);
  assert.equal(c.tierFlag, 0);
  assert.equal(c.profileIdc, 1);
  assert.equal(c.levelIdc, 93);
  assert.equal(c.nalLengthSize, 4);
  assert.equal(c.chromaFormat, 1);
  assert.equal(c.bitDepthLuma, 10);
  assert.equal(c.bitDepthChroma, 10);
  assert.deepEqual(c.arrays, arrays);
  assert.equal(c.arrays[0]!.nalus[0]!.buffer, main.buffer);
  assert.deepEqual(c.constraintIndicatorFlags, Buffer.from([0xb0, 0, 0, 0, 0, 0]));
});

test('codec string (14496-15 Annex E): reversed compatibility flags, tier, trailing zero bytes omitted', () => {
  assert.equal(parseHevcDecoderConfig(main).codecString, 'hvc1.1.6.L93.B0');
  const high = buildHvcc({ profileSpace: 1, tier: 1, profile: 4, compat: 0x82000000, constraints: [0xb0, 0x23, 0, 0, 0, 0], level: 120, arrays: [] });
  assert.equal(parseHevcDecoderConfig(high).codecString, 'hvc1.A4.41.H120.B0.23');
  const main10 = buildHvcc({ profileSpace: 0, tier: 0, profile: 2, compat: 0x20000000, constraints: [0x90, 0, 0, 0, 0, 0x01], level: 150, arrays: [] });
  assert.equal(parseHevcDecoderConfig(main10).codecString, 'hvc1.2.4.L150.90.00.00.00.00.01');
  const bare = buildHvcc({ profileSpace: 0, tier: 0, profile: 1, compat: 0, constraints: [0, 0, 0, 0, 0, 0], level: 60, arrays: [] });
  assert.equal(parseHevcDecoderConfig(bare).codecString, 'hvc1.1.0.L60');
});

test('truncated at every offset, oversized lengths, bad version: CodecConfigMalformed', () => {
  for (let cut = 0; cut < main.length; cut++) assert.throws(() => parseHevcDecoderConfig(main.subarray(0, cut)), isConfigMalformed, `cut ${cut}`);
  const oversized = Buffer.from(main);
  oversized.writeUInt16BE(0xffff, 23 + 3); // first NAL unit length
  assert.throws(() => parseHevcDecoderConfig(oversized), isConfigMalformed);
  const manyNalus = Buffer.from(main);
  manyNalus.writeUInt16BE(0xffff, 23 + 1);
  assert.throws(() => parseHevcDecoderConfig(manyNalus), isConfigMalformed);
  const manyArrays = Buffer.from(main);
  manyArrays[22] = 0xff;
  assert.throws(() => parseHevcDecoderConfig(manyArrays), isConfigMalformed);
  const v0 = Buffer.from(main);
  v0[0] = 0;
  assert.throws(() => parseHevcDecoderConfig(v0), isConfigMalformed);
});

test('random bytes: only CodecConfigMalformed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      for (const input of [Buffer.from(bytes), Buffer.concat([Buffer.from([1]), Buffer.from(bytes)])]) {
        try {
          parseHevcDecoderConfig(input);
        } catch (e) {
          assert.ok(isConfigMalformed(e), String(e));
        }
      }
    }),
    { numRuns: 2000 },
  );
});
