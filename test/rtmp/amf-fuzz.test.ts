/**
 * Corpus fuzzing of the AMF decoders. Every file in test/fuzz/amf/*.bin, and
 * 2000 random mutations of them, is fed to decodeAmf0, decodeAmf3 and
 * decodeAmf3Command: each must return values or throw a ServerError with an
 * ERR_AMF_* code, nothing else. Whatever decodes must re-encode (or refuse with
 * an ERR_AMF_* code) and decode again to the same values.
 *
 * The mutations are random on each run; on failure fast-check prints the seed
 * to replay with AMF_FUZZ_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ServerError } from '../../src/core/errors.js';
import { decodeAmf0, decodeAmf3Command, encodeAmf0 } from '../../src/rtmp/amf0.js';
import { decodeAmf3, encodeAmf3 } from '../../src/rtmp/amf3.js';

const corpusDir = fileURLToPath(new URL('../fuzz/amf/', import.meta.url));
const corpus: readonly { name: string; bytes: Buffer }[] = readdirSync(corpusDir)
  .filter((f) => f.endsWith('.bin'))
  .sort()
  .map((name) => ({ name, bytes: readFileSync(corpusDir + name) }));

/** The result, or undefined for an ERR_AMF_* error; anything else fails the test. */
function orAmfError<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ServerError && e.code.startsWith('ERR_AMF_')) return undefined;
    throw e;
  }
}

/**
 * Decode with every decoder. What AMF0 decodes must re-encode (or be refused
 * with an ERR_AMF_* code), and that encoding must decode within the default
 * limits and encode to the same bytes again (references are expanded, but the
 * limits charge them as expanded). Likewise for AMF3 values.
 */
function checkAll(bytes: Buffer): void {
  const amf0 = orAmfError(() => decodeAmf0(bytes));
  if (amf0 !== undefined) {
    const enc = orAmfError(() => encodeAmf0(amf0));
    if (enc !== undefined) assert.deepEqual(encodeAmf0(decodeAmf0(enc)), enc);
  }
  const amf3 = orAmfError(() => decodeAmf3(bytes));
  if (amf3 !== undefined) {
    for (const v of amf3) {
      const enc = orAmfError(() => encodeAmf3(v));
      if (enc !== undefined) assert.deepEqual(encodeAmf3(decodeAmf3(enc)[0]), enc);
    }
  }
  orAmfError(() => decodeAmf3Command(bytes));
}

/** One edit of a byte sequence. */
type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'truncate'; at: number }
  | { op: 'duplicate'; at: number; len: number }
  | { op: 'u16'; at: number; value: number }
  | { op: 'u32'; at: number; value: number };

const interesting = fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x05, 0x07, 0x08, 0x09, 0x0a, 0x0c, 0x10, 0x11, 0x7f, 0x80, 0xff);
const pos = fc.nat({ max: 1 << 16 });
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: pos, bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: pos, byte: fc.oneof(interesting, fc.nat({ max: 255 })) }),
  fc.record({ op: fc.constant('insert' as const), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: pos, len: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: pos }),
  fc.record({ op: fc.constant('duplicate' as const), at: pos, len: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ op: fc.constant('u16' as const), at: pos, value: fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff) }),
  fc.record({ op: fc.constant('u32' as const), at: pos, value: fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff) }),
);

function mutate(input: Buffer, m: Mutation): Buffer {
  const n = input.length;
  const at = n === 0 ? 0 : m.at % (n + 1);
  switch (m.op) {
    case 'flip': {
      if (at >= n) return input;
      const b = Buffer.from(input);
      b[at] = (b[at] ?? 0) ^ (1 << m.bit);
      return b;
    }
    case 'set': {
      if (at >= n) return input;
      const b = Buffer.from(input);
      b[at] = m.byte;
      return b;
    }
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)]);
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.len)]);
    case 'truncate':
      return input.subarray(0, at);
    case 'duplicate':
      return Buffer.concat([input.subarray(0, at + m.len), input.subarray(at)]);
    case 'u16': {
      if (at + 2 > n) return input;
      const b = Buffer.from(input);
      b.writeUInt16BE(m.value, at);
      return b;
    }
    case 'u32': {
      if (at + 4 > n) return input;
      const b = Buffer.from(input);
      b.writeUInt32BE(m.value, at);
      return b;
    }
    default: {
      const never: never = m;
      throw new TypeError(`unknown mutation ${String(never)}`);
    }
  }
}

void test('the AMF corpus is there', () => {
  assert.ok(corpus.length >= 10, `only ${corpus.length} corpus files in ${corpusDir}`);
});

void test('every corpus file decodes or fails with an ERR_AMF_ code', () => {
  for (const { name, bytes } of corpus) {
    assert.doesNotThrow(() => checkAll(bytes), name);
  }
});

void test('2000 random mutations of the corpus decode or fail with an ERR_AMF_ code', () => {
  const seed = process.env['AMF_FUZZ_SEED'];
  fc.assert(
    fc.property(fc.constantFrom(...corpus), fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (file, mutations) => {
      let bytes = file.bytes;
      for (const m of mutations) bytes = mutate(bytes, m);
      checkAll(bytes);
    }),
    { numRuns: 2000, ...(seed === undefined ? {} : { seed: Number(seed) }) },
  );
});
