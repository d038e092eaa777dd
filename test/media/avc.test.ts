import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { parseAvcDecoderConfig, parseAvcSps, splitNalUnits } from '../../src/media/avc.js';

const isConfigMalformed = (e: unknown): boolean => isServerError(e, ErrorCode.CodecConfigMalformed);
const isFlvMalformed = (e: unknown): boolean => isServerError(e, ErrorCode.FlvMalformed);

/** Builds RBSP bit strings: u(n), ue(v), se(v); then adds trailing bits and emulation prevention. */
class Bits {
  private s = '';
  u(v: number, n: number): this {
    this.s += v.toString(2).padStart(n, '0');
    return this;
  }
  flag(b: boolean): this {
    return this.u(b ? 1 : 0, 1);
  }
  ue(v: number): this {
    const b = (v + 1).toString(2);
    this.s += '0'.repeat(b.length - 1) + b;
    return this;
  }
  se(v: number): this {
    return this.ue(v > 0 ? 2 * v - 1 : -2 * v);
  }
  /** NAL unit: header byte + RBSP (stop bit, alignment) with emulation prevention. */
  nal(header: number): Buffer {
    let bits = this.s + '1';
    bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
    const out: number[] = [header];
    let zeros = 0;
    for (let i = 0; i < bits.length; i += 8) {
      const b = parseInt(bits.slice(i, i + 8), 2);
      if (zeros >= 2 && b <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
    return Buffer.from(out);
  }
}

const SPS_HEADER = 0x67;

interface SpsSpec {
  profile: number;
  level: number;
  chroma?: number;
  separateColourPlane?: boolean;
  scaling?: boolean;
  pocType?: number;
  widthMbs: number;
  heightMapUnits: number;
  frameMbsOnly: boolean;
  crop?: [number, number, number, number];
}

function buildSps(o: SpsSpec): Buffer {
  const b = new Bits().u(o.profile, 8).u(0, 8).u(o.level, 8).ue(0);
  if (o.chroma !== undefined) {
    b.ue(o.chroma);
    if (o.chroma === 3) b.flag(o.separateColourPlane ?? false);
    b.ue(0).ue(0).flag(false).flag(o.scaling ?? false);
    if (o.scaling) {
      const lists = o.chroma === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) {
        if (i === 0) {
          b.flag(true).se(-8); // nextScale becomes 0: the rest of the list is not coded
        } else if (i === 6) {
          b.flag(true);
          for (let j = 0; j < 64; j++) b.se(j % 2 === 0 ? 3 : -3);
        } else {
          b.flag(false);
        }
      }
    }
  }
  b.ue(0); // log2_max_frame_num_minus4
  const poc = o.pocType ?? 0;
  b.ue(poc);
  if (poc === 0) b.ue(2);
  else if (poc === 1) b.flag(false).se(-1).se(2).ue(2).se(1).se(-3);
  b.ue(4).flag(false).ue(o.widthMbs - 1).ue(o.heightMapUnits - 1).flag(o.frameMbsOnly);
  if (!o.frameMbsOnly) b.flag(true);
  b.flag(true);
  if (o.crop) {
    b.flag(true);
    for (const c of o.crop) b.ue(c);
  } else {
    b.flag(false);
  }
  b.flag(false); // vui_parameters_present_flag
  return b.nal(SPS_HEADER);
}

const PPS = Buffer.from([0x68, 0xce, 0x38, 0x80]);

function buildRecord(sps: Buffer[], pps: Buffer[], profile = 0x64, compat = 0x00, level = 0x1f, lengthSizeMinusOne = 3): Buffer {
  const parts: Buffer[] = [Buffer.from([1, profile, compat, level, 0xfc | lengthSizeMinusOne, 0xe0 | sps.length])];
  for (const s of sps) parts.push(Buffer.from([s.length >> 8, s.length & 0xff]), s);
  parts.push(Buffer.from([pps.length]));
  for (const p of pps) parts.push(Buffer.from([p.length >> 8, p.length & 0xff]), p);
  return Buffer.concat(parts);
}

test('SPS: baseline 1080p with bottom cropping', () => {
  const sps = buildSps({ profile: 66, level: 40, widthMbs: 120, heightMapUnits: 68, frameMbsOnly: true, crop: [0, 0, 0, 4] });
  assert.deepEqual(parseAvcSps(sps), { profile: 66, level: 40, width: 1920, height: 1080, chroma: 1 });
});

test('SPS: high profile, scaling lists, POC type 1, interlaced (field crop units)', () => {
  const sps = buildSps({ profile: 100, level: 31, chroma: 1, scaling: true, pocType: 1, widthMbs: 80, heightMapUnits: 23, frameMbsOnly: false, crop: [0, 0, 0, 4] });
  assert.deepEqual(parseAvcSps(sps), { profile: 100, level: 31, width: 1280, height: 720, chroma: 1 });
});

test('SPS: monochrome, 4:2:2 and 4:4:4 with separate colour planes use their crop units', () => {
  assert.deepEqual(parseAvcSps(buildSps({ profile: 100, level: 30, chroma: 0, widthMbs: 10, heightMapUnits: 9, frameMbsOnly: true, crop: [0, 2, 0, 3] })), {
    profile: 100,
    level: 30,
    width: 158,
    height: 141,
    chroma: 0,
  });
  assert.deepEqual(parseAvcSps(buildSps({ profile: 122, level: 30, chroma: 2, widthMbs: 10, heightMapUnits: 9, frameMbsOnly: true, crop: [0, 1, 0, 2] })), {
    profile: 122,
    level: 30,
    width: 158, // 4:2:2: crop unit 2 horizontally
    height: 142, // and 1 vertically
    chroma: 2,
  });
  assert.deepEqual(
    parseAvcSps(buildSps({ profile: 244, level: 30, chroma: 3, separateColourPlane: true, scaling: true, pocType: 2, widthMbs: 4, heightMapUnits: 5, frameMbsOnly: true, crop: [1, 1, 1, 0] })),
    { profile: 244, level: 30, width: 62, height: 79, chroma: 3 },
  );
  assert.deepEqual(parseAvcSps(buildSps({ profile: 244, level: 30, chroma: 3, widthMbs: 4, heightMapUnits: 5, frameMbsOnly: true, crop: [1, 1, 1, 0] })), {
    profile: 244,
    level: 30,
    width: 62, // 4:4:4: crop unit 1 both ways
    height: 79,
    chroma: 3,
  });
});

test('SPS: bad values are CodecConfigMalformed', () => {
  assert.throws(() => parseAvcSps(Buffer.alloc(0)), isConfigMalformed);
  assert.throws(() => parseAvcSps(PPS), isConfigMalformed, 'not an SPS');
  assert.throws(() => parseAvcSps(buildSps({ profile: 100, level: 30, chroma: 4, widthMbs: 4, heightMapUnits: 4, frameMbsOnly: true })), isConfigMalformed);
  assert.throws(() => parseAvcSps(buildSps({ profile: 66, level: 30, widthMbs: 1, heightMapUnits: 1, frameMbsOnly: true, crop: [8, 0, 0, 0] })), isConfigMalformed);
  const hugeCycle = new Bits().u(66, 8).u(0, 8).u(30, 8).ue(0).ue(0).ue(1).flag(false).se(0).se(0).ue(256).nal(SPS_HEADER);
  assert.throws(() => parseAvcSps(hugeCycle), isConfigMalformed);
});

test('SPS truncated at every offset: a result or CodecConfigMalformed; cut before the size fields: an error', () => {
  const sps = buildSps({ profile: 100, level: 31, chroma: 1, scaling: true, pocType: 1, widthMbs: 80, heightMapUnits: 23, frameMbsOnly: false, crop: [0, 0, 0, 4] });
  for (let cut = 0; cut < sps.length; cut++) {
    try {
      assert.deepEqual(parseAvcSps(sps.subarray(0, cut)), parseAvcSps(sps), `cut ${cut}`);
    } catch (e) {
      assert.ok(isConfigMalformed(e), String(e));
    }
  }
  assert.throws(() => parseAvcSps(sps.subarray(0, 10)), isConfigMalformed);
});

test('AVCDecoderConfigurationRecord: fields, NAL views, size from the SPS, codec string', () => {
  const sps = buildSps({ profile: 100, level: 31, chroma: 1, widthMbs: 80, heightMapUnits: 45, frameMbsOnly: true });
  const rec = buildRecord([sps], [PPS], 0x64, 0x00, 0x1f);
  const c = parseAvcDecoderConfig(rec);
  assert.equal(c.profile, 100);
  assert.equal(c.compatibility, 0);
  assert.equal(c.level, 31);
  assert.equal(c.nalLengthSize, 4);
  assert.deepEqual(c.sps, [sps]);
  assert.deepEqual(c.pps, [PPS]);
  assert.equal(c.sps[0]!.buffer, rec.buffer, 'parameter sets are views');
  assert.equal(c.width, 1280);
  assert.equal(c.height, 720);
  assert.equal(c.codecString, 'avc1.64001f');
  assert.equal(parseAvcDecoderConfig(buildRecord([sps], [PPS], 0x42, 0xe0, 0x0a, 1)).codecString, 'avc1.42e00a');
  assert.equal(parseAvcDecoderConfig(buildRecord([sps], [PPS], 0x42, 0xe0, 0x0a, 1)).nalLengthSize, 2);
});

test('AVCDecoderConfigurationRecord: an unparsable SPS leaves the size undefined; no SPS is allowed', () => {
  const c = parseAvcDecoderConfig(buildRecord([Buffer.from([0x67, 0x64])], [PPS]));
  assert.equal(c.width, undefined);
  assert.equal(c.height, undefined);
  assert.equal(c.sps.length, 1);
  const none = parseAvcDecoderConfig(buildRecord([], []));
  assert.deepEqual([none.sps.length, none.pps.length, none.width], [0, 0, undefined]);
});

test('AVCDecoderConfigurationRecord: truncated at every offset, oversized lengths, bad version', () => {
  const rec = buildRecord([buildSps({ profile: 66, level: 30, widthMbs: 20, heightMapUnits: 15, frameMbsOnly: true })], [PPS]);
  for (let cut = 0; cut < rec.length; cut++) assert.throws(() => parseAvcDecoderConfig(rec.subarray(0, cut)), isConfigMalformed, `cut ${cut}`);
  const oversized = Buffer.from(rec);
  oversized.writeUInt16BE(0xffff, 6);
  assert.throws(() => parseAvcDecoderConfig(oversized), isConfigMalformed);
  const tooMany = Buffer.from(rec);
  tooMany[5] = 0xff; // 31 SPS announced
  assert.throws(() => parseAvcDecoderConfig(tooMany), isConfigMalformed);
  const v0 = Buffer.from(rec);
  v0[0] = 0;
  assert.throws(() => parseAvcDecoderConfig(v0), isConfigMalformed);
});

test('random bytes: the record and SPS parsers throw only CodecConfigMalformed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const b = Buffer.from(bytes);
      for (const input of [b, Buffer.concat([Buffer.from([1]), b]), Buffer.concat([Buffer.from([SPS_HEADER]), b])]) {
        try {
          parseAvcDecoderConfig(input);
        } catch (e) {
          assert.ok(isConfigMalformed(e), String(e));
        }
        try {
          const s = parseAvcSps(input);
          assert.ok(s.width > 0 && s.height > 0);
        } catch (e) {
          assert.ok(isConfigMalformed(e), String(e));
        }
      }
    }),
    { numRuns: 2000 },
  );
});

function lengthPrefixed(nals: Uint8Array[], size: number): Buffer {
  return Buffer.concat(
    nals.flatMap((n) => {
      const len = Buffer.alloc(size);
      len.writeUIntBE(n.length, 0, size);
      return [len, Buffer.from(n)];
    }),
  );
}

test('splitNalUnits: views for every length size; zero-length units skipped', () => {
  const nals = [Buffer.from([0x65, 1, 2, 3]), Buffer.from([0x41]), Buffer.from([0x06, 9, 9])];
  for (const size of [1, 2, 3, 4]) {
    const data = lengthPrefixed(nals, size);
    const out = splitNalUnits(data, size);
    assert.deepEqual(out, nals);
    assert.equal(out[0]!.buffer, data.buffer);
  }
  assert.deepEqual(splitNalUnits(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 0x09]), 4), [Buffer.from([0x09])]);
  assert.deepEqual(splitNalUnits(Buffer.alloc(0), 4), []);
});

test('splitNalUnits: bad lengths are FlvMalformed', () => {
  assert.throws(() => splitNalUnits(Buffer.from([0, 0, 0, 5, 1, 2]), 4), isFlvMalformed);
  assert.throws(() => splitNalUnits(Buffer.from([0, 0, 0, 1, 1, 0, 0]), 4), isFlvMalformed, 'partial length prefix');
  assert.throws(() => splitNalUnits(Buffer.from([0xff, 0xff, 0xff, 0xff, 1]), 4), isFlvMalformed);
  assert.throws(() => splitNalUnits(Buffer.from([1, 1]), 0), isFlvMalformed);
  assert.throws(() => splitNalUnits(Buffer.from([1, 1]), 5), isFlvMalformed);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 4 }), (bytes, size) => {
      try {
        const out = splitNalUnits(Buffer.from(bytes), size);
        assert.ok(out.reduce((a, n) => a + n.length + size, 0) <= bytes.length);
      } catch (e) {
        assert.ok(isFlvMalformed(e), String(e));
      }
    }),
  );
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { maxLength: 6 }), fc.integer({ min: 1, max: 4 }), (nals, size) => {
      assert.deepEqual(splitNalUnits(lengthPrefixed(nals, size), size), nals.map((n) => Buffer.from(n)));
    }),
  );
});
