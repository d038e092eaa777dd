import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { BitReader, removeEmulationPrevention } from '../../src/media/bits.js';

/** Packs a string of '0'/'1' (spaces ignored) MSB-first into bytes, zero-padded. */
function bitsOf(s: string): Buffer {
  const bits = s.replace(/\s+/g, '');
  const out = Buffer.alloc(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i] === '1') out[i >> 3]! |= 0x80 >> (i & 7);
  return out;
}

/** The exp-Golomb code of v (H.264 9.1), as a bit string. */
function ueBits(v: number): string {
  const b = (v + 1).toString(2);
  return '0'.repeat(b.length - 1) + b;
}

test('ue(v) and se(v) decode the H.264 table 9-2/9-3 codes', () => {
  const r = new BitReader(bitsOf('1 010 011 00100 00101 00110 00111 0001000'));
  assert.deepEqual([r.ue(), r.ue(), r.ue(), r.ue(), r.ue(), r.ue(), r.ue(), r.ue()], [0, 1, 2, 3, 4, 5, 6, 7]);
  const s = new BitReader(bitsOf('1 010 011 00100 00101'));
  assert.deepEqual([s.se(), s.se(), s.se(), s.se(), s.se()], [0, 1, -1, 2, -2]);
});

test('ue(v) round-trips any 32-bit value, including the largest', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 32 - 2 }), { minLength: 1, maxLength: 8 }), (values) => {
      const r = new BitReader(bitsOf(values.map(ueBits).join('')));
      for (const v of values) assert.equal(r.ue(), v);
    }),
  );
});

test('bits(n) reads MSB-first across byte boundaries, up to 32 bits unsigned', () => {
  const r = new BitReader(Buffer.from([0xa5, 0xff, 0xff, 0xff, 0xff, 0x0f]));
  assert.equal(r.bits(3), 0b101);
  assert.equal(r.bit(), 0);
  assert.equal(r.flag(), false);
  assert.equal(r.bits(3), 0b101);
  assert.equal(r.bits(32), 0xffffffff);
  assert.equal(r.bitsLeft, 8);
  r.skipBits(4);
  assert.equal(r.bits(4), 0xf);
  assert.equal(r.bitsLeft, 0);
});

test('reading past the end is a coded error, never a RangeError', () => {
  const r = new BitReader(Buffer.from([0x00]));
  assert.throws(() => r.ue(), (e) => isServerError(e, ErrorCode.CodecConfigMalformed));
  const r2 = new BitReader(Buffer.from([0xff]), ErrorCode.FlvMalformed);
  assert.throws(() => r2.bits(9), (e) => isServerError(e, ErrorCode.FlvMalformed));
  assert.throws(() => new BitReader(Buffer.alloc(0)).bit(), (e) => isServerError(e, ErrorCode.CodecConfigMalformed));
  assert.throws(() => new BitReader(Buffer.alloc(1)).skipBits(9), (e) => isServerError(e, ErrorCode.CodecConfigMalformed));
});

test('an exp-Golomb prefix of 32+ zeros is rejected even when bits remain', () => {
  const r = new BitReader(Buffer.alloc(16));
  assert.throws(() => r.ue(), (e) => isServerError(e, ErrorCode.CodecConfigMalformed));
});

test('random bytes: ue/se/bits throw only ServerErrors', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), fc.array(fc.integer({ min: 0, max: 2 })), (bytes, ops) => {
      const r = new BitReader(Buffer.from(bytes));
      try {
        for (const op of ops) {
          if (op === 0) r.ue();
          else if (op === 1) r.se();
          else r.bits(13);
        }
      } catch (e) {
        assert.ok(isServerError(e, ErrorCode.CodecConfigMalformed), String(e));
      }
    }),
  );
});

test('removeEmulationPrevention drops the 03 after two zeros, only there', () => {
  assert.deepEqual(removeEmulationPrevention(Buffer.from([0x00, 0x00, 0x03, 0x01])), Buffer.from([0x00, 0x00, 0x01]));
  assert.deepEqual(removeEmulationPrevention(Buffer.from([0x00, 0x00, 0x03, 0x00, 0x00, 0x03])), Buffer.from([0x00, 0x00, 0x00, 0x00]));
  // a 00 00 03 00 00 03 chain: the zero count restarts after each removed byte
  assert.deepEqual(removeEmulationPrevention(Buffer.from([0x00, 0x00, 0x03, 0x03])), Buffer.from([0x00, 0x00, 0x03]));
  assert.deepEqual(removeEmulationPrevention(Buffer.from([0x00, 0x03, 0x00, 0x00, 0x03, 0x02, 0x00])), Buffer.from([0x00, 0x03, 0x00, 0x00, 0x02, 0x00]));
  const clean = Buffer.from([0x67, 0x42, 0x00, 0x1f, 0x03]);
  assert.equal(removeEmulationPrevention(clean), clean, 'no copy when there is nothing to remove');
});

test('removeEmulationPrevention inverts emulation-prevention insertion', () => {
  function escape(rbsp: Uint8Array): Buffer {
    const out: number[] = [];
    let zeros = 0;
    for (const b of rbsp) {
      if (zeros >= 2 && b <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
    return Buffer.from(out);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }).map((a) => a.map((b) => (b < 128 ? b & 3 : b))), (rbsp) => {
      assert.deepEqual(removeEmulationPrevention(escape(rbsp)), Buffer.from(rbsp));
    }),
  );
});
