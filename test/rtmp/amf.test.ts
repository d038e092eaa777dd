import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteReader } from '../../src/core/bytes.js';
import { ErrorCode, ServerError } from '../../src/core/errors.js';
import {
  Amf3Value,
  AmfByteArray,
  AmfEcmaArray,
  AmfTypedObject,
  AmfXmlDocument,
  type AmfObject,
  type AmfValue,
} from '../../src/rtmp/amf-types.js';
import {
  Amf0Marker,
  amf0Size,
  createAmf0DecodeContext,
  decodeAmf0,
  decodeAmf0Value,
  decodeAmf3Command,
  encodeAmf0,
} from '../../src/rtmp/amf0.js';
import { Amf3Marker, decodeAmf3, decodeAmf3Value, createAmf3DecodeContext, encodeAmf3 } from '../../src/rtmp/amf3.js';

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/** Bytes from a hex string with optional spaces. */
function h(hex: string): Buffer {
  return Buffer.from(hex.replace(/\s+/g, ''), 'hex');
}
/** ASCII bytes. */
function a(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}
function cat(...parts: Buffer[]): Buffer {
  return Buffer.concat(parts);
}
/** AMF0 short string value: 02 + u16 length + bytes. */
function s0(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return cat(h('02'), len, b);
}
/** AMF0 property key: u16 length + bytes. */
function k0(s: string): Buffer {
  return s0(s).subarray(1);
}
function n0(n: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = Amf0Marker.Number;
  b.writeDoubleBE(n, 1);
  return b;
}
const END = h('00 00 09');

function amfCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ServerError, `expected a ServerError, got ${String(e)}`);
    assert.match(e.code, /^ERR_AMF_/);
    return e.code;
  }
  assert.fail('expected an error');
}

/** Decoding must succeed or fail with an ERR_AMF_* ServerError; anything else is rethrown. */
function safely(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof ServerError && e.code.startsWith('ERR_AMF_')) return;
    throw e;
  }
}

/** n nested one-element arrays around the number 1. */
function nest(n: number): AmfValue {
  return n === 0 ? 1 : [nest(n - 1)];
}

function obj(entries: [string, AmfValue][]): AmfObject {
  return Object.fromEntries(entries) as AmfObject;
}

// ---------------------------------------------------------------------------
// arbitraries
// ---------------------------------------------------------------------------

const keyArb = (allowEmpty: boolean): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ minLength: allowEmpty ? 0 : 1, maxLength: 8 }),
    fc.constantFrom('__proto__', 'constructor', 'toString', '0', '1', 'app', 'tcUrl'),
  );

const leafArb: fc.Arbitrary<AmfValue> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.integer({ min: -(2 ** 28) - 2, max: 2 ** 28 + 2 }),
  fc.constantFrom(NaN, -0, 0, Infinity, -Infinity, 2 ** 28, -(2 ** 28), 2 ** 28 - 1, 2 ** 31, -(2 ** 53)),
  fc.boolean(),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.date({ noInvalidDate: true }),
  fc.string({ maxLength: 20 }).map((s) => new AmfXmlDocument(s)),
  fc.uint8Array({ maxLength: 16 }).map((u) => new AmfByteArray(Buffer.from(u))),
);

/** Arbitrary AmfValue trees; `amf3Safe` avoids empty keys (not encodable in AMF3). */
function valueArb(amf3Safe: boolean, extra: fc.Arbitrary<AmfValue>): fc.Arbitrary<AmfValue> {
  const { value } = fc.letrec<{ value: AmfValue; array: AmfValue[]; object: AmfObject }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leafArb,
      tie('array'),
      tie('object'),
      tie('object').map((o) => new AmfEcmaArray(o)),
      fc.tuple(fc.string({ maxLength: 8 }), tie('object')).map(([c, o]) => new AmfTypedObject(c, o)),
      extra,
    ),
    array: fc.array(tie('value'), { maxLength: 5 }),
    object: fc.array(fc.tuple(keyArb(!amf3Safe), tie('value')), { maxLength: 5 }).map(obj),
  }));
  return value;
}

/** AMF3 values (with nested Amf3Value wrappers, which AMF3 encoding unwraps). */
const amf3Arb: fc.Arbitrary<AmfValue> = fc.letrec<{ v: AmfValue }>((tie) => ({
  v: valueArb(true, tie('v').map((x) => new Amf3Value(x))),
})).v;
/** AMF0 values, with AMF3 values (AVM+ switch) anywhere in the tree. */
const amf0Arb = valueArb(false, amf3Arb.map((v) => new Amf3Value(v)));

/** What an AMF3 round trip gives back: no wrappers, empty ECMA arrays become [], anonymous typed objects become plain. */
function norm3(v: AmfValue): AmfValue {
  if (v instanceof Amf3Value) return norm3(v.value);
  if (Array.isArray(v)) return v.map(norm3);
  if (v instanceof AmfEcmaArray) return Object.keys(v.value).length === 0 ? [] : new AmfEcmaArray(mapObj(v.value, norm3));
  if (v instanceof AmfTypedObject) return v.className === '' ? mapObj(v.value, norm3) : new AmfTypedObject(v.className, mapObj(v.value, norm3));
  if (isPlainObject(v)) return mapObj(v, norm3);
  return v;
}
/** What an AMF0 round trip gives back: AMF3-travelled values are unwrapped. */
function norm0(v: AmfValue): AmfValue {
  if (v instanceof Amf3Value) return norm3(v.value);
  if (Array.isArray(v)) return v.map(norm0);
  if (v instanceof AmfEcmaArray) return new AmfEcmaArray(mapObj(v.value, norm0));
  if (v instanceof AmfTypedObject) return new AmfTypedObject(v.className, mapObj(v.value, norm0));
  if (isPlainObject(v)) return mapObj(v, norm0);
  return v;
}
function isPlainObject(v: AmfValue): v is AmfObject {
  return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
}
function mapObj(o: AmfObject, f: (v: AmfValue) => AmfValue): AmfObject {
  return obj(Object.keys(o).map((k) => [k, f(o[k])]));
}
function hasEcma(v: AmfValue): boolean {
  if (v instanceof AmfEcmaArray) return true;
  if (v instanceof Amf3Value) return false; // AMF3 arrays are length-prefixed / terminated
  if (Array.isArray(v)) return v.some(hasEcma);
  if (v instanceof AmfTypedObject) return Object.values(v.value).some(hasEcma);
  if (isPlainObject(v)) return Object.values(v).some(hasEcma);
  return false;
}

// ---------------------------------------------------------------------------
// AMF0
// ---------------------------------------------------------------------------

void describe('AMF0 known byte vectors', () => {
  void test('ffmpeg connect command', () => {
    const flashVer = 'FMLE/3.0 (compatible; Lavf60.16.100)';
    const tcUrl = 'rtmp://localhost:1935/live';
    const bytes = cat(
      h('02 00 07 63 6f 6e 6e 65 63 74'), // "connect"
      h('00 3f f0 00 00 00 00 00 00'), // 1
      h('03'),
      h('00 03'), a('app'), h('02 00 04'), a('live'),
      h('00 04'), a('type'), h('02 00 0a'), a('nonprivate'),
      h('00 08'), a('flashVer'), h('02 00 24'), a(flashVer),
      h('00 05'), a('tcUrl'), h('02 00 1a'), a(tcUrl),
      h('00 00 09'),
    );
    const values: AmfValue[] = ['connect', 1, { app: 'live', type: 'nonprivate', flashVer, tcUrl }];
    assert.deepEqual(decodeAmf0(bytes), values);
    assert.deepEqual(encodeAmf0(values), bytes);
  });

  void test('scalars', () => {
    assert.deepEqual(encodeAmf0([true, false, null, undefined]), h('01 01 01 00 05 06'));
    assert.deepEqual(decodeAmf0(h('01 07')), [true]); // any non-zero byte is true
    assert.deepEqual(encodeAmf0([0]), h('00 00 00 00 00 00 00 00 00'));
    assert.deepEqual(encodeAmf0(['']), h('02 00 00'));
    assert.deepEqual(decodeAmf0(h('0d')), [undefined]);
  });

  void test('date with time zone 0; time zone ignored on decode', () => {
    const d = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    const b = encodeAmf0([d]);
    assert.equal(b.length, 11);
    assert.equal(b[0], Amf0Marker.Date);
    assert.equal(b.readDoubleBE(1), d.getTime());
    assert.equal(b.readInt16BE(9), 0);
    b.writeInt16BE(-60, 9);
    assert.deepEqual(decodeAmf0(b), [d]);
    const invalid = decodeAmf0(encodeAmf0([new Date(NaN)]))[0];
    assert.ok(invalid instanceof Date && Number.isNaN(invalid.getTime()));
  });

  void test('onMetaData ECMA array with a wrong count', () => {
    for (const count of ['00 00 00 00', '00 00 00 63', 'ff ff ff ff']) {
      const bytes = cat(
        s0('@setDataFrame'),
        s0('onMetaData'),
        h('08'), h(count),
        k0('duration'), n0(0),
        k0('width'), n0(1280),
        k0('height'), n0(720),
        k0('videocodecid'), n0(7),
        k0('stereo'), h('01 01'),
        k0('encoder'), s0('Lavf60.16.100'),
        END,
      );
      assert.deepEqual(decodeAmf0(bytes), [
        '@setDataFrame',
        'onMetaData',
        new AmfEcmaArray({ duration: 0, width: 1280, height: 720, videocodecid: 7, stereo: true, encoder: 'Lavf60.16.100' }),
      ]);
    }
  });

  void test('ECMA array end marker missing at the end of the buffer is accepted', () => {
    const body = cat(h('08 00 00 00 01'), k0('width'), n0(640));
    assert.deepEqual(decodeAmf0(body), [new AmfEcmaArray({ width: 640 })]);
    assert.deepEqual(decodeAmf0(cat(body, h('00 00'))), [new AmfEcmaArray({ width: 640 })]);
    // but not for an anonymous object, and not in the middle of a key/value
    assert.equal(amfCode(() => decodeAmf0(cat(h('03'), k0('width'), n0(640)))), ErrorCode.AmfTruncated);
    assert.equal(amfCode(() => decodeAmf0(cat(body, k0('x')))), ErrorCode.AmfTruncated);
    // nor when something follows inside an enclosing object
    assert.equal(amfCode(() => decodeAmf0(cat(h('03'), k0('m'), body))), ErrorCode.AmfTruncated);
  });

  void test('strings longer than 65535 UTF-8 bytes become long strings', () => {
    const long = 'x'.repeat(70000);
    const b = encodeAmf0([long]);
    assert.equal(b[0], Amf0Marker.LongString);
    assert.equal(b.readUInt32BE(1), 70000);
    assert.equal(b.length, 5 + 70000);
    assert.equal(amf0Size(long), b.length);
    assert.deepEqual(decodeAmf0(b), [long]);
    const edge = 'y'.repeat(65535);
    assert.equal(encodeAmf0([edge])[0], Amf0Marker.String);
    // 3-byte characters: 21846 * 3 = 65538 bytes
    const wide = '€'.repeat(21846);
    assert.equal(encodeAmf0([wide])[0], Amf0Marker.LongString);
    assert.deepEqual(decodeAmf0(encodeAmf0([wide])), [wide]);
    assert.equal(amfCode(() => encodeAmf0([{ [long]: 1 }])), ErrorCode.AmfTooLarge);
  });

  void test('typed object, XML document, strict array', () => {
    const bytes = cat(
      h('10'), k0('Point'), k0('x'), n0(1), k0('y'), n0(2), END,
      h('0f 00 00 00 04'), a('<a/>'),
      h('0a 00 00 00 02'), n0(1), s0('b'),
    );
    const values: AmfValue[] = [new AmfTypedObject('Point', { x: 1, y: 2 }), new AmfXmlDocument('<a/>'), [1, 'b']];
    assert.deepEqual(decodeAmf0(bytes), values);
    assert.deepEqual(encodeAmf0(values), bytes);
  });

  void test('AVM+ switch decodes to the plain AMF3 value; Amf3Value encodes with 0x11', () => {
    const bytes = cat(s0('x'), h('11 0a 0b 01 03 61 04 01 01'));
    assert.deepEqual(decodeAmf0(bytes), ['x', { a: 1 }]);
    assert.deepEqual(encodeAmf0(['x', new Amf3Value({ a: 1 })]), bytes);
    assert.deepEqual(encodeAmf0([new AmfByteArray(h('01 02'))]), h('11 0c 05 01 02'));
    // fresh AMF3 tables per switch: a string reference into the previous switch is bad
    assert.equal(amfCode(() => decodeAmf0(h('11 06 03 61 11 06 00'))), ErrorCode.AmfBadReference);
  });

  void test('decodeAmf3Command skips the leading 0x00', () => {
    const amf0 = cat(s0('connect'), n0(1), h('05'), h('11 06 07 61 62 63'));
    const expected: AmfValue[] = ['connect', 1, null, 'abc'];
    assert.deepEqual(decodeAmf3Command(cat(h('00'), amf0)), expected);
    assert.deepEqual(decodeAmf3Command(amf0), expected);
    assert.deepEqual(decodeAmf3Command(Buffer.alloc(0)), []);
  });

  void test('references resolve to the same instance', () => {
    const bytes = cat(h('03'), k0('a'), n0(1), END, h('0a 00 00 00 02 07 00 00 07 00 00'), h('07 00 01'));
    const out = decodeAmf0(bytes);
    assert.equal(out.length, 3);
    const arr = out[1] as AmfValue[];
    assert.equal(arr[0], out[0]);
    assert.equal(out[2], arr);
    assert.deepEqual(out[0], { a: 1 });
    // the order is by appearance: the object inside the array is index 1
    const nested = decodeAmf0(cat(h('0a 00 00 00 01 03'), k0('k'), h('05'), END, h('07 00 01')));
    assert.equal(nested[1], (nested[0] as AmfValue[])[0]);
  });

  void test('bad references', () => {
    assert.equal(amfCode(() => decodeAmf0(h('07 00 00'))), ErrorCode.AmfBadReference);
    assert.equal(amfCode(() => decodeAmf0(cat(h('03'), END, h('07 00 01')))), ErrorCode.AmfBadReference);
    // a reference to itself (cycle)
    assert.equal(amfCode(() => decodeAmf0(cat(h('03'), k0('self'), h('07 00 00'), END))), ErrorCode.AmfBadReference);
  });

  void test('reference bombs are charged as if expanded', () => {
    // v0 = [1,2,3,4]; v(n+1) = [ref n, ref n]: 2^n leaves from linear input
    const parts = [h('0a 00 00 00 04'), n0(1), n0(2), n0(3), n0(4)];
    for (let i = 0; i < 30; i++) {
      const idx = Buffer.alloc(2);
      idx.writeUInt16BE(i);
      parts.push(h('0a 00 00 00 02 07'), idx, h('07'), idx);
    }
    assert.equal(amfCode(() => decodeAmf0(cat(...parts))), ErrorCode.AmfTooLarge);
    // one big string referenced many times
    const big = cat(h('03'), k0('s'), s0('z'.repeat(60000)), END);
    const many = Buffer.alloc(5 + 2000 * 3);
    many.writeUInt8(0x0a, 0);
    many.writeUInt32BE(2000, 1);
    for (let i = 0; i < 2000; i++) many.writeUInt8(0x07, 5 + i * 3); // ref 0
    assert.equal(amfCode(() => decodeAmf0(cat(big, many))), ErrorCode.AmfTooLarge);
    assert.equal(decodeAmf0(cat(big, many), { maxExpandedBytes: 1e9 }).length, 2);
  });

  void test('__proto__ is an ordinary key', () => {
    const bytes = cat(h('03'), k0('__proto__'), h('03'), k0('polluted'), h('01 01'), END, END);
    const [v] = decodeAmf0(bytes);
    assert.ok(isPlainObject(v));
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(v, '__proto__')?.value, { polluted: true });
    assert.equal((v as Record<string, unknown>)['polluted'], undefined);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.deepEqual(encodeAmf0([v]), bytes);
    // same through AMF3 (dynamic member) and an ECMA array
    const [w] = decodeAmf3(h('0a 0b 01 13 5f 5f 70 72 6f 74 6f 5f 5f 04 05 01'));
    assert.equal(Object.getPrototypeOf(w), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(w, '__proto__')?.value, 5);
    const [e] = decodeAmf0(cat(h('08 00 00 00 01'), k0('__proto__'), n0(3), END));
    assert.ok(e instanceof AmfEcmaArray);
    assert.equal(Object.getPrototypeOf(e.value), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(e.value, '__proto__')?.value, 3);
  });

  void test('markers: unknown, reserved, misplaced object end', () => {
    assert.equal(amfCode(() => decodeAmf0(h('12'))), ErrorCode.AmfUnknownMarker);
    assert.equal(amfCode(() => decodeAmf0(h('ff'))), ErrorCode.AmfUnknownMarker);
    assert.equal(amfCode(() => decodeAmf0(h('09'))), ErrorCode.AmfUnknownMarker);
    assert.equal(amfCode(() => decodeAmf0(h('04'))), ErrorCode.AmfUnsupported);
    assert.equal(amfCode(() => decodeAmf0(h('0e'))), ErrorCode.AmfUnsupported);
  });

  void test('depth bomb → AmfTooDeep', () => {
    const objBomb = Buffer.concat(Array.from({ length: 10000 }, () => cat(h('03'), k0('a'))));
    assert.equal(amfCode(() => decodeAmf0(objBomb)), ErrorCode.AmfTooDeep);
    const arrBomb = Buffer.concat(Array.from({ length: 10000 }, () => h('0a 00 00 00 01')));
    assert.equal(amfCode(() => decodeAmf0(arrBomb)), ErrorCode.AmfTooDeep);
    const ecmaBomb = Buffer.concat(Array.from({ length: 10000 }, () => cat(h('08 00 00 00 01'), k0('a'))));
    assert.equal(amfCode(() => decodeAmf0(ecmaBomb)), ErrorCode.AmfTooDeep);
    const amf3Bomb = cat(h('03'), k0('a'), h('11'), Buffer.concat(Array.from({ length: 10000 }, () => h('09 03 01'))));
    assert.equal(amfCode(() => decodeAmf0(amf3Bomb)), ErrorCode.AmfTooDeep);
    // limits are configurable, and exactly maxDepth levels are fine
    assert.deepEqual(decodeAmf0(encodeAmf0([nest(64)])), [nest(64)]);
    assert.equal(amfCode(() => decodeAmf0(encodeAmf0([nest(65)]))), ErrorCode.AmfTooDeep);
    assert.equal(amfCode(() => decodeAmf0(encodeAmf0([nest(3)]), { maxDepth: 2 })), ErrorCode.AmfTooDeep);
  });

  test('references count their depth: no deep chains through references', () => {
    const deep = encodeAmf0([nest(60)]); // 60 strict arrays, refs 0..59
    const wrapRef = (levels: number): Buffer =>
      cat(Buffer.concat(Array.from({ length: levels }, () => h('0a 00 00 00 01'))), h('07 00 00'));
    const ok = decodeAmf0(cat(deep, wrapRef(4))); // 4 + 60 = 64 levels
    let inner: AmfValue = ok[1];
    for (let i = 0; i < 4; i++) inner = (inner as AmfValue[])[0];
    assert.equal(inner, ok[0]);
    assert.equal(amfCode(() => decodeAmf0(cat(deep, wrapRef(5)))), ErrorCode.AmfTooDeep);
    // a top-level reference adds no depth of its own
    assert.equal(decodeAmf0(cat(deep, h('07 00 00'))).length, 2);
  });

  void test('huge strict array count fails without a big allocation', () => {
    const bytes = cat(h('0a ff ff ff ff'), Buffer.alloc(10));
    const before = process.memoryUsage().arrayBuffers;
    // refused up front from the count, before decoding any element
    assert.throws(() => decodeAmf0(bytes), { code: ErrorCode.AmfTruncated, message: /count 4294967295/ });
    assert.ok(process.memoryUsage().arrayBuffers - before < 1e6);
    // fits the bytes but not maxItems
    assert.equal(amfCode(() => decodeAmf0(cat(h('0a 00 00 00 64'), Buffer.alloc(100, 5)), { maxItems: 10 })), ErrorCode.AmfTooLarge);
    assert.equal(decodeAmf0(cat(h('0a 00 00 00 64'), Buffer.alloc(100, 5)))[0] instanceof Array, true);
    // a long string length beyond the buffer
    assert.equal(amfCode(() => decodeAmf0(h('0c ff ff ff ff 61'))), ErrorCode.AmfTruncated);
  });

  void test('maxItems counts properties across the whole decode', () => {
    const o = obj(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
    assert.equal(decodeAmf0(encodeAmf0([o]), { maxItems: 20 }).length, 1);
    assert.equal(amfCode(() => decodeAmf0(encodeAmf0([o]), { maxItems: 19 })), ErrorCode.AmfTooLarge);
    assert.equal(amfCode(() => decodeAmf0(encodeAmf0([o, [1]]), { maxItems: 20 })), ErrorCode.AmfTooLarge);
  });

  void test('streaming decodeAmf0Value reports truncation as ERR_AMF_TRUNCATED', () => {
    const b = encodeAmf0(['connect', 1, { app: 'live' }]);
    const r = new ByteReader(b); // default truncation code ERR_BUFFER_TRUNCATED
    const ctx = createAmf0DecodeContext();
    assert.equal(decodeAmf0Value(r, ctx), 'connect');
    assert.equal(decodeAmf0Value(r, ctx), 1);
    assert.deepEqual(decodeAmf0Value(r, ctx), { app: 'live' });
    assert.equal(r.remaining, 0);
    const short = new ByteReader(b.subarray(0, 5));
    assert.equal(amfCode(() => decodeAmf0Value(short, createAmf0DecodeContext())), ErrorCode.AmfTruncated);
  });

  void test('encoder refuses what it cannot write', () => {
    assert.equal(amfCode(() => encodeAmf0([(() => 1) as unknown as AmfValue])), ErrorCode.AmfUnsupported);
    assert.equal(amfCode(() => encodeAmf0([10n as unknown as AmfValue])), ErrorCode.AmfUnsupported);
    const cyclic: AmfObject = {};
    cyclic['self'] = cyclic;
    assert.equal(amfCode(() => encodeAmf0([cyclic])), ErrorCode.AmfTooDeep);
    // lone surrogates are written as U+FFFD
    assert.deepEqual(decodeAmf0(encodeAmf0(['a\ud800b'])), ['a\ufffdb']);
  });

  void test('round trip of special numbers and unicode', () => {
    const values: AmfValue[] = [NaN, -0, 0, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, 'héllo wörld', '日本語', '🎥📡', ''];
    const out = decodeAmf0(encodeAmf0(values));
    assert.deepEqual(out, values);
    assert.ok(Object.is(out[1], -0));
  });

  void test('round trip of arbitrary values (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(amf0Arb, { maxLength: 4 }), (values) => {
        const b = encodeAmf0(values);
        assert.equal(b.length, values.reduce((n: number, v) => n + amf0Size(v), 0));
        assert.deepEqual(decodeAmf0(b), values.map(norm0));
      }),
      { numRuns: 500 },
    );
  });

  void test('every truncation of a valid encoding throws an ERR_AMF_ error', () => {
    const samples: AmfValue[] = [
      'connect',
      { app: 'live', tcUrl: 'rtmp://h/live', fpad: false, capabilities: 15, n: null, u: undefined },
      [1, 'two', [3, { four: 4 }], new Date(0)],
      new AmfTypedObject('Cls', { x: 'y', z: [true] }),
      new AmfXmlDocument('<xml/>'),
      'x'.repeat(70000),
      new Amf3Value({ a: [1, 2, 3], b: 'str', c: new AmfByteArray(h('0102')), d: 1.5, e: new Date(1) }),
    ];
    for (const v of samples) {
      const b = encodeAmf0([v]);
      for (let n = 1; n < b.length; n++) {
        amfCode(() => decodeAmf0(b.subarray(0, n)));
      }
    }
    fc.assert(
      fc.property(amf0Arb, (v) => {
        const b = encodeAmf0([v]);
        for (let n = 1; n < b.length; n++) {
          if (hasEcma(v)) safely(() => decodeAmf0(b.subarray(0, n)));
          else amfCode(() => decodeAmf0(b.subarray(0, n)));
        }
      }),
      { numRuns: 200 },
    );
  });

  void test('random bytes never throw anything but ERR_AMF_ errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
        const b = Buffer.from(u);
        safely(() => decodeAmf0(b));
        safely(() => decodeAmf3(b));
        safely(() => decodeAmf3Command(b));
      }),
      { numRuns: 3000 },
    );
    // biased towards valid markers
    const marker = fc.constantFrom(...Object.values(Amf0Marker), ...Object.values(Amf3Marker), 0x00, 0x01, 0xff, 0x7f, 0x80);
    fc.assert(
      fc.property(fc.array(marker, { maxLength: 64 }), (bytes) => {
        const b = Buffer.from(bytes);
        safely(() => decodeAmf0(b));
        safely(() => decodeAmf3(b));
      }),
      { numRuns: 3000 },
    );
  });
});

// ---------------------------------------------------------------------------
// AMF3
// ---------------------------------------------------------------------------

void describe('AMF3', () => {
  void test('U29 integers: byte vectors at every length boundary', () => {
    const cases: [number, string][] = [
      [0, '04 00'],
      [1, '04 01'],
      [127, '04 7f'],
      [128, '04 81 00'],
      [0x3fff, '04 ff 7f'],
      [0x4000, '04 81 80 00'],
      [0x1fffff, '04 ff ff 7f'],
      [0x200000, '04 80 c0 80 00'],
      [0x0fffffff, '04 bf ff ff ff'],
      [-1, '04 ff ff ff ff'],
      [-(2 ** 28), '04 c0 80 80 00'],
      [2 ** 28, '05 41 b0 00 00 00 00 00 00'],
      [-(2 ** 28) - 1, '05 c1 b0 00 00 01 00 00 00'],
      [1.5, '05 3f f8 00 00 00 00 00 00'],
      [-0, '05 80 00 00 00 00 00 00 00'],
    ];
    for (const [n, hex] of cases) {
      assert.deepEqual(encodeAmf3(n), h(hex), `encode ${n}`);
      const [back] = decodeAmf3(h(hex));
      assert.ok(Object.is(back, n), `decode ${hex}: ${String(back)}`);
    }
    // a non-canonical (over-long) U29 is still read
    assert.deepEqual(decodeAmf3(h('04 80 01')), [1]);
  });

  void test('scalars, strings, dates', () => {
    assert.deepEqual(encodeAmf3(undefined), h('00'));
    assert.deepEqual(encodeAmf3(null), h('01'));
    assert.deepEqual(encodeAmf3(false), h('02'));
    assert.deepEqual(encodeAmf3(true), h('03'));
    assert.deepEqual(encodeAmf3('hello'), h('06 0b 68 65 6c 6c 6f'));
    assert.deepEqual(encodeAmf3(''), h('06 01'));
    assert.deepEqual(encodeAmf3(new Date(0)), h('08 01 00 00 00 00 00 00 00 00'));
    assert.deepEqual(decodeAmf3(h('01 02 03 00 06 01')), [null, false, true, undefined, '']);
  });

  void test('string, object and traits references', () => {
    // ['abc', 'abc'] with a string reference
    assert.deepEqual(decodeAmf3(h('09 05 01 06 07 61 62 63 06 00')), [['abc', 'abc']]);
    // [{a:1}, {a:2}]: sealed traits, then a traits reference
    assert.deepEqual(decodeAmf3(h('09 05 01 0a 13 01 03 61 04 01 0a 01 04 02')), [[{ a: 1 }, { a: 2 }]]);
    // [{}, ref 1] (the array itself is object 0)
    const [arr] = decodeAmf3(h('09 05 01 0a 0b 01 01 0a 02'));
    assert.ok(Array.isArray(arr));
    assert.equal(arr[0], arr[1]);
    // reference to the array being decoded (cycle), and out of range
    assert.equal(amfCode(() => decodeAmf3(h('09 03 01 0a 00'))), ErrorCode.AmfBadReference);
    assert.equal(amfCode(() => decodeAmf3(h('0a 02'))), ErrorCode.AmfBadReference);
    assert.equal(amfCode(() => decodeAmf3(h('06 00'))), ErrorCode.AmfBadReference);
    assert.equal(amfCode(() => decodeAmf3(h('0a 05'))), ErrorCode.AmfBadReference); // traits ref 1
    // dates, XML and byte arrays are in the object table too
    const [d] = decodeAmf3(h('09 05 01 08 01 00 00 00 00 00 00 00 00 08 02'));
    assert.ok(Array.isArray(d) && d[0] === d[1] && d[0] instanceof Date);
    // sealed and dynamic members merge
    assert.deepEqual(decodeAmf3(h('0a 1b 01 03 61 04 01 03 62 04 02 01')), [{ a: 1, b: 2 }]);
    // member names can come from the string table
    assert.deepEqual(decodeAmf3(h('09 05 01 06 03 6b 0a 0b 01 00 04 07 01')), [['k', { k: 7 }]]);
  });

  void test('typed objects and externalizable', () => {
    assert.deepEqual(decodeAmf3(h('0a 0b 07 46 6f 6f 03 61 03 01')), [new AmfTypedObject('Foo', { a: true })]);
    assert.deepEqual(encodeAmf3(new AmfTypedObject('Foo', { a: true })), h('0a 0b 07 46 6f 6f 03 61 03 01'));
    assert.equal(amfCode(() => decodeAmf3(h('0a 07 07 46 6f 6f 00 00'))), ErrorCode.AmfUnsupported);
  });

  void test('arrays: dense, associative, mixed', () => {
    assert.deepEqual(decodeAmf3(h('09 05 01 04 01 04 02')), [[1, 2]]);
    assert.deepEqual(encodeAmf3([1, 2]), h('09 05 01 04 01 04 02'));
    assert.deepEqual(decodeAmf3(h('09 03 03 61 04 01 01 04 02')), [new AmfEcmaArray({ a: 1, '0': 2 })]);
    assert.deepEqual(encodeAmf3(new AmfEcmaArray({ a: 1 })), h('09 01 03 61 04 01 01'));
    assert.equal(amfCode(() => encodeAmf3({ '': 1 })), ErrorCode.AmfUnsupported);
  });

  void test('ByteArray, XML, vectors, dictionary', () => {
    const [ba] = decodeAmf3(h('0c 07 01 02 03'));
    assert.ok(ba instanceof AmfByteArray);
    assert.deepEqual([...ba.bytes], [1, 2, 3]);
    assert.deepEqual(decodeAmf3(h('0b 09 3c 61 2f 3e')), [new AmfXmlDocument('<a/>')]);
    assert.deepEqual(decodeAmf3(h('07 09 3c 61 2f 3e')), [new AmfXmlDocument('<a/>')]);
    assert.deepEqual(encodeAmf3(new AmfXmlDocument('<a/>')), h('0b 09 3c 61 2f 3e'));
    assert.deepEqual(decodeAmf3(h('0d 05 00 ff ff ff ff 00 00 00 01')), [[-1, 1]]);
    assert.deepEqual(decodeAmf3(h('0e 05 01 ff ff ff ff 00 00 00 01')), [[0xffffffff, 1]]);
    assert.deepEqual(decodeAmf3(h('0f 03 00 3f f8 00 00 00 00 00 00')), [[1.5]]);
    assert.deepEqual(decodeAmf3(h('10 05 00 03 2a 04 01 06 03 61')), [[1, 'a']]);
    assert.equal(amfCode(() => decodeAmf3(h('11 03 00 04 01 04 02'))), ErrorCode.AmfUnsupported);
    assert.equal(amfCode(() => decodeAmf3(h('12'))), ErrorCode.AmfUnknownMarker);
    // vector count larger than the bytes left
    assert.equal(amfCode(() => decodeAmf3(h('0f bf ff ff ff 00 00'))), ErrorCode.AmfTruncated);
  });

  void test('huge counts and depth', () => {
    assert.equal(amfCode(() => decodeAmf3(h('09 bf ff ff ff 01 01'))), ErrorCode.AmfTruncated);
    assert.equal(amfCode(() => decodeAmf3(h('0a bf ff ff f3 01 01'))), ErrorCode.AmfTruncated); // 16M sealed names
    const arrBomb = Buffer.concat(Array.from({ length: 10000 }, () => h('09 03 01')));
    assert.equal(amfCode(() => decodeAmf3(arrBomb)), ErrorCode.AmfTooDeep);
    const objBomb = Buffer.concat(Array.from({ length: 10000 }, () => h('0a 0b 01 03 61')));
    assert.equal(amfCode(() => decodeAmf3(objBomb)), ErrorCode.AmfTooDeep);
    // traits-reference bomb: many objects sharing one traits with many sealed names
    const names = Buffer.concat(Array.from({ length: 100 }, (_, i) => h(`03 ${(0x20 + i).toString(16)}`)));
    const header = Buffer.from([0x0a, 0x80 | (((100 << 4) | 0x03) >>> 7), ((100 << 4) | 0x03) & 0x7f, 0x01]);
    const first = cat(header, names, Buffer.alloc(100, 0x01));
    const rest = Buffer.concat(Array.from({ length: 1000 }, () => cat(h('0a 01'), Buffer.alloc(100, 0x01))));
    const dense = 1001;
    const arr = Buffer.from([0x09, 0x80 | (((dense << 1) | 1) >>> 7), ((dense << 1) | 1) & 0x7f, 0x01]);
    assert.equal(amfCode(() => decodeAmf3(cat(arr, first, rest))), ErrorCode.AmfTooLarge);
    assert.equal(decodeAmf3(cat(arr, first, rest), { maxItems: 1e6 }).length, 1);
  });

  void test('streaming decodeAmf3Value', () => {
    const b = cat(encodeAmf3('a'), encodeAmf3({ b: 2 }));
    const r = new ByteReader(b);
    const ctx = createAmf3DecodeContext();
    assert.equal(decodeAmf3Value(r, ctx), 'a');
    assert.deepEqual(decodeAmf3Value(r, ctx), { b: 2 });
    assert.equal(amfCode(() => decodeAmf3Value(new ByteReader(h('06 07 61')), createAmf3DecodeContext())), ErrorCode.AmfTruncated);
  });

  void test('round trip of arbitrary values (fast-check)', () => {
    fc.assert(
      fc.property(amf3Arb, (v) => {
        assert.deepEqual(decodeAmf3(encodeAmf3(v)), [norm3(v)]);
      }),
      { numRuns: 500 },
    );
  });

  void test('every truncation of a valid encoding throws an ERR_AMF_ error', () => {
    fc.assert(
      fc.property(amf3Arb, (v) => {
        const b = encodeAmf3(v);
        for (let n = 1; n < b.length; n++) amfCode(() => decodeAmf3(b.subarray(0, n)));
      }),
      { numRuns: 300 },
    );
  });
});
