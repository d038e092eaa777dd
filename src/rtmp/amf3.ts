/**
 * AMF3 codec (Adobe "Action Message Format -- AMF 3", January 2013), plus the
 * decoding budget shared with the AMF0 codec (amf0.ts switches into AMF3 with
 * the AVM+ marker 0x11 and shares one budget for the whole decode).
 *
 * Decoding:
 *  - integers come back as numbers; doubles as numbers;
 *  - anonymous objects as plain objects, objects with a class name as
 *    AmfTypedObject (sealed and dynamic members merged into one object);
 *  - dense-only arrays as AmfValue[]; arrays with an associative part as
 *    AmfEcmaArray (dense elements keyed "0", "1", ...);
 *  - XML and XMLDocument as AmfXmlDocument, ByteArray as AmfByteArray (a view
 *    into the input buffer, no copy), Date as Date, Vectors as arrays;
 *  - externalizable objects and Dictionary throw ERR_AMF_UNSUPPORTED.
 *  - A reference to an object that is still being decoded (a cyclic graph) is
 *    refused with ERR_AMF_BAD_REFERENCE: decoded values are always trees or
 *    DAGs, so callers can walk and re-encode them without cycle checks. Every
 *    reference is charged to the limits (items, depth, expanded bytes) as if
 *    the value were written out again, so the expanded tree stays within them.
 *
 * Encoding never emits references (every string, trait and object is written
 * inline), which is valid AMF3. Numbers that are integers in -2^28..2^28-1
 * (and not -0) are written as integer, every other number as double. Plain
 * objects and typed objects are written with dynamic traits; AmfEcmaArray as an
 * array with only an associative part. An empty property name cannot be
 * written in AMF3 (it is the end marker): ERR_AMF_UNSUPPORTED.
 */
import { ByteReader, ByteWriter } from '../core/bytes.js';
import { ErrorCode, isServerError, serverError } from '../core/errors.js';
import {
  Amf3Value,
  AmfByteArray,
  AmfEcmaArray,
  AmfTypedObject,
  AmfXmlDocument,
  type AmfObject,
  type AmfValue,
} from './amf-types.js';

export const Amf3Marker = {
  Undefined: 0x00,
  Null: 0x01,
  False: 0x02,
  True: 0x03,
  Integer: 0x04,
  Double: 0x05,
  String: 0x06,
  XmlDoc: 0x07,
  Date: 0x08,
  Array: 0x09,
  Object: 0x0a,
  Xml: 0x0b,
  ByteArray: 0x0c,
  VectorInt: 0x0d,
  VectorUint: 0x0e,
  VectorDouble: 0x0f,
  VectorObject: 0x10,
  Dictionary: 0x11,
} as const;
export type Amf3Marker = (typeof Amf3Marker)[keyof typeof Amf3Marker];

/** U29: 1..4 bytes, 7 bits per byte with a continuation bit, 8 bits in the 4th byte. */
const U29 = {
  Max: 0x1fffffff,
  OneByteMax: 0x7f,
  TwoByteMax: 0x3fff,
  ThreeByteMax: 0x1fffff,
  Continue: 0x80,
  Payload: 0x7f,
  /** integer type: signed 29-bit range */
  IntMin: -0x10000000,
  IntMax: 0x0fffffff,
  SignBit: 0x10000000,
  Modulus: 0x20000000,
} as const;

/** Low bits of U29 headers (U29S/U29O/U29A/...). */
const Amf3Flag = {
  /** bit 0: 1 = inline value, 0 = reference (index in the upper bits) */
  Inline: 0x01,
  /** U29O bit 1: 1 = inline traits, 0 = traits reference */
  InlineTraits: 0x02,
  /** U29O bit 2: externalizable traits */
  Externalizable: 0x04,
  /** U29O bit 3: dynamic traits */
  Dynamic: 0x08,
  /** shift to the sealed member count / traits reference index */
  SealedCountShift: 4,
  TraitsRefShift: 2,
  RefShift: 1,
} as const;

/** "" as UTF-8-vr: inline, length 0. Ends dynamic members and associative parts. */
const AMF3_EMPTY_STRING = 0x01;
/** Largest length a U29 inline header can carry (28 bits). */
const AMF3_MAX_LENGTH = 0x0fffffff;
/** Vector element sizes in bytes. */
const VectorElementSize = { Int: 4, Uint: 4, Double: 8 } as const;
/** Nesting guard for the encoders (protects against cyclic input). */
export const AMF_ENCODE_MAX_DEPTH = 1024;

// ---------------------------------------------------------------------------
// Limits and the decoding budget (shared with amf0.ts)
// ---------------------------------------------------------------------------

export interface AmfLimits {
  /** nesting depth of objects/arrays, a reference counting as the value it points to; default 64 */
  maxDepth?: number;
  /** total properties + elements in one decode (references count their target's size); default 65536 */
  maxItems?: number;
  /**
   * bytes the decoded values would take written out in full, i.e. input bytes
   * plus what references expand to; default 64 MiB. Stops "reference bombs"
   * that are small on the wire but huge once re-encoded or walked.
   */
  maxExpandedBytes?: number;
}

export const AMF_DEFAULT_LIMITS: Readonly<Required<AmfLimits>> = Object.freeze({
  maxDepth: 64,
  maxItems: 65536,
  maxExpandedBytes: 64 * 1024 * 1024,
});

/** Counters for one decode call; one budget is shared by AMF0 and the AMF3 values inside it. */
export interface AmfBudget {
  readonly maxDepth: number;
  readonly maxItems: number;
  readonly maxExpandedBytes: number;
  depth: number;
  /** deepest level reached inside the value being decoded (references included) */
  peak: number;
  items: number;
  /** bytes added by references on top of the input bytes */
  expanded: number;
}

export function createAmfBudget(limits: AmfLimits = {}): AmfBudget {
  return {
    maxDepth: limits.maxDepth ?? AMF_DEFAULT_LIMITS.maxDepth,
    maxItems: limits.maxItems ?? AMF_DEFAULT_LIMITS.maxItems,
    maxExpandedBytes: limits.maxExpandedBytes ?? AMF_DEFAULT_LIMITS.maxExpandedBytes,
    depth: 0,
    peak: 0,
    items: 0,
    expanded: 0,
  };
}

/** One entry of an object reference table (AMF0 or AMF3). */
export interface AmfRefEntry {
  readonly value: AmfValue;
  /** false while the value is still being decoded */
  done: boolean;
  /** items, expanded bytes and nesting levels the value stands for, charged again on every reference */
  items: number;
  bytes: number;
  height: number;
  /** an object or array (counts as a nesting level), not a leaf like Date or ByteArray */
  readonly container: boolean;
  /** the counters when the value began */
  readonly startPos: number;
  readonly startItems: number;
  readonly startExpanded: number;
  readonly startDepth: number;
  readonly startPeak: number;
}

/** @internal shared with amf0.ts */
export function enterNested(b: AmfBudget): void {
  reachDepth(b, ++b.depth);
}

function reachDepth(b: AmfBudget, depth: number): void {
  if (depth > b.maxDepth) {
    throw serverError(ErrorCode.AmfTooDeep, `AMF nesting deeper than ${b.maxDepth}`);
  }
  if (depth > b.peak) b.peak = depth;
}

/** @internal shared with amf0.ts */
export function leaveNested(b: AmfBudget): void {
  b.depth--;
}

/** @internal shared with amf0.ts: count n more properties/elements. */
export function countItems(b: AmfBudget, n: number): void {
  b.items += n;
  if (b.items > b.maxItems) {
    throw serverError(ErrorCode.AmfTooLarge, `AMF value has more than ${b.maxItems} properties and elements`);
  }
}

function chargeExpanded(b: AmfBudget, bytes: number): void {
  b.expanded += bytes;
  if (b.expanded > b.maxExpandedBytes) {
    throw serverError(ErrorCode.AmfTooLarge, `AMF references expand beyond ${b.maxExpandedBytes} bytes`);
  }
}

/**
 * @internal shared with amf0.ts: register a referenceable value before decoding
 * its members. `container`: enterNested() was called for it (objects, arrays).
 */
export function beginRef(table: AmfRefEntry[], value: AmfValue, r: ByteReader, b: AmfBudget, container: boolean): AmfRefEntry {
  const e: AmfRefEntry = {
    value,
    done: false,
    items: 0,
    bytes: 0,
    height: 0,
    container,
    startPos: r.pos,
    startItems: b.items,
    startExpanded: b.expanded,
    startDepth: b.depth,
    startPeak: b.peak,
  };
  b.peak = b.depth;
  table.push(e);
  return e;
}

/** @internal shared with amf0.ts: the value is complete; remember what it costs. */
export function endRef(e: AmfRefEntry, r: ByteReader, b: AmfBudget): void {
  e.done = true;
  e.items = b.items - e.startItems;
  e.bytes = r.pos - e.startPos + (b.expanded - e.startExpanded) + 1;
  e.height = e.container ? b.peak - e.startDepth + 1 : 0;
  if (e.startPeak > b.peak) b.peak = e.startPeak;
}

/** @internal shared with amf0.ts: resolve a reference, charging the budget. */
export function resolveRef(table: readonly AmfRefEntry[], index: number, b: AmfBudget): AmfValue {
  const e = table[index];
  if (e === undefined) {
    throw serverError(ErrorCode.AmfBadReference, `AMF reference ${index} out of range (${table.length} known)`);
  }
  if (!e.done) {
    throw serverError(ErrorCode.AmfBadReference, `AMF reference ${index} points to a value still being decoded (cycle)`);
  }
  reachDepth(b, b.depth + e.height);
  countItems(b, e.items);
  chargeExpanded(b, e.bytes);
  return e.value;
}

/**
 * @internal shared with amf0.ts: set a decoded property. `__proto__` becomes an
 * ordinary own property (defineProperty), so it cannot change the prototype.
 */
export function setProperty(obj: AmfObject, key: string, v: AmfValue): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = v;
  }
}

/** @internal shared with amf0.ts: reject a length field larger than the bytes left. */
export function requireCount(r: ByteReader, count: number, bytesPerItem: number, what: string): void {
  if (count * bytesPerItem > r.remaining) {
    throw serverError(ErrorCode.AmfTruncated, `${what} count ${count} needs more than the ${r.remaining} bytes left`);
  }
}

// ---------------------------------------------------------------------------
// Value classification (shared by both encoders; exhaustive switches)
// ---------------------------------------------------------------------------

/** @internal shared with amf0.ts */
export type AmfKind =
  | { kind: 'undefined' }
  | { kind: 'null' }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'number'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'date'; value: Date }
  | { kind: 'array'; value: readonly AmfValue[] }
  | { kind: 'ecma'; value: AmfEcmaArray }
  | { kind: 'typed'; value: AmfTypedObject }
  | { kind: 'xml'; value: AmfXmlDocument }
  | { kind: 'bytes'; value: AmfByteArray }
  | { kind: 'amf3'; value: Amf3Value }
  | { kind: 'object'; value: AmfObject };

/** @internal shared with amf0.ts */
export function classifyAmf(v: AmfValue): AmfKind {
  const t: string = typeof v;
  if (v === undefined) return { kind: 'undefined' };
  if (v === null) return { kind: 'null' };
  if (typeof v === 'boolean') return { kind: 'boolean', value: v };
  if (typeof v === 'number') return { kind: 'number', value: v };
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (t !== 'object') throw serverError(ErrorCode.AmfUnsupported, `cannot encode a ${t} as AMF`);
  if (v instanceof Date) return { kind: 'date', value: v };
  if (Array.isArray(v)) return { kind: 'array', value: v };
  if (v instanceof AmfEcmaArray) return { kind: 'ecma', value: v };
  if (v instanceof AmfTypedObject) return { kind: 'typed', value: v };
  if (v instanceof AmfXmlDocument) return { kind: 'xml', value: v };
  if (v instanceof AmfByteArray) return { kind: 'bytes', value: v };
  if (v instanceof Amf3Value) return { kind: 'amf3', value: v };
  return { kind: 'object', value: v };
}

/** @internal shared with amf0.ts */
export function encodeDepthCheck(depth: number): void {
  if (depth > AMF_ENCODE_MAX_DEPTH) {
    throw serverError(ErrorCode.AmfTooDeep, `AMF value nested deeper than ${AMF_ENCODE_MAX_DEPTH} (cyclic?)`);
  }
}

/** @internal shared with amf0.ts: write a string whose UTF-8 length n was computed already. */
export function writeUtf8(w: ByteWriter, s: string, n: number): void {
  const written = w.buf.write(s, w.pos, n, 'utf8');
  if (written !== n) throw new RangeError(`UTF-8 length mismatch: wrote ${written} of ${n}`);
  w.pos += n;
}

// ---------------------------------------------------------------------------
// U29
// ---------------------------------------------------------------------------

export function u29Size(v: number): number {
  if (v < 0 || v > U29.Max || !Number.isInteger(v)) {
    throw serverError(ErrorCode.AmfTooLarge, `U29 value ${v} out of range`);
  }
  if (v <= U29.OneByteMax) return 1;
  if (v <= U29.TwoByteMax) return 2;
  if (v <= U29.ThreeByteMax) return 3;
  return 4;
}

export function writeU29(w: ByteWriter, v: number): void {
  switch (u29Size(v)) {
    case 1:
      w.u8(v);
      return;
    case 2:
      w.u8((v >>> 7) | U29.Continue).u8(v & U29.Payload);
      return;
    case 3:
      w.u8((v >>> 14) | U29.Continue)
        .u8(((v >>> 7) & U29.Payload) | U29.Continue)
        .u8(v & U29.Payload);
      return;
    default:
      w.u8((v >>> 22) | U29.Continue)
        .u8(((v >>> 15) & U29.Payload) | U29.Continue)
        .u8(((v >>> 8) & U29.Payload) | U29.Continue)
        .u8(v & 0xff);
  }
}

export function readU29(r: ByteReader): number {
  let v = 0;
  for (let i = 0; i < 3; i++) {
    const b = r.u8();
    v = (v << 7) | (b & U29.Payload);
    if ((b & U29.Continue) === 0) return v;
  }
  return ((v << 8) | r.u8()) >>> 0;
}

function isAmf3Integer(n: number): boolean {
  return Number.isInteger(n) && n >= U29.IntMin && n <= U29.IntMax && !Object.is(n, -0);
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

function inlineHeader(length: number, what: string): number {
  if (length > AMF3_MAX_LENGTH) {
    throw serverError(ErrorCode.AmfTooLarge, `AMF3 ${what} of ${length} is too long`);
  }
  return (length << Amf3Flag.RefShift) | Amf3Flag.Inline;
}

function stringVrSize(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  return u29Size(inlineHeader(n, 'string')) + n;
}

function writeStringVr(w: ByteWriter, s: string): void {
  const n = Buffer.byteLength(s, 'utf8');
  writeU29(w, inlineHeader(n, 'string'));
  writeUtf8(w, s, n);
}

function dynamicKeyCheck(key: string): void {
  if (key === '') {
    throw serverError(ErrorCode.AmfUnsupported, 'AMF3 cannot encode an empty property name');
  }
}

/** Key/value pairs then the empty-string terminator. */
function membersSize(obj: AmfObject, depth: number): number {
  let n = 1;
  for (const k of Object.keys(obj)) {
    dynamicKeyCheck(k);
    n += stringVrSize(k) + valueSize(obj[k], depth);
  }
  return n;
}

function writeMembers(w: ByteWriter, obj: AmfObject, depth: number): void {
  for (const k of Object.keys(obj)) {
    writeStringVr(w, k);
    writeValue(w, obj[k], depth);
  }
  w.u8(AMF3_EMPTY_STRING);
}

/** U29O-traits: inline object, inline traits, not externalizable, dynamic, 0 sealed members. */
const DYNAMIC_TRAITS_HEADER = Amf3Flag.Inline | Amf3Flag.InlineTraits | Amf3Flag.Dynamic;

function valueSize(v: AmfValue, depth: number): number {
  encodeDepthCheck(depth);
  const k = classifyAmf(v);
  switch (k.kind) {
    case 'undefined':
    case 'null':
    case 'boolean':
      return 1;
    case 'number':
      return isAmf3Integer(k.value) ? 1 + u29Size(k.value & U29.Max) : 9;
    case 'string':
      return 1 + stringVrSize(k.value);
    case 'date':
      return 1 + 1 + 8;
    case 'array': {
      let n = 1 + u29Size(inlineHeader(k.value.length, 'array')) + 1;
      for (const e of k.value) n += valueSize(e, depth + 1);
      return n;
    }
    case 'ecma':
      return 1 + 1 + membersSize(k.value.value, depth + 1);
    case 'typed':
      return 1 + 1 + stringVrSize(k.value.className) + membersSize(k.value.value, depth + 1);
    case 'object':
      return 1 + 1 + 1 + membersSize(k.value, depth + 1);
    case 'xml': {
      const n = Buffer.byteLength(k.value.xml, 'utf8');
      return 1 + u29Size(inlineHeader(n, 'XML')) + n;
    }
    case 'bytes':
      return 1 + u29Size(inlineHeader(k.value.bytes.length, 'ByteArray')) + k.value.bytes.length;
    case 'amf3':
      return valueSize(k.value.value, depth + 1);
    default: {
      const never: never = k;
      throw new TypeError(`unhandled AMF kind ${String(never)}`);
    }
  }
}

function writeValue(w: ByteWriter, v: AmfValue, depth: number): void {
  const k = classifyAmf(v);
  switch (k.kind) {
    case 'undefined':
      w.u8(Amf3Marker.Undefined);
      return;
    case 'null':
      w.u8(Amf3Marker.Null);
      return;
    case 'boolean':
      w.u8(k.value ? Amf3Marker.True : Amf3Marker.False);
      return;
    case 'number':
      if (isAmf3Integer(k.value)) {
        w.u8(Amf3Marker.Integer);
        writeU29(w, k.value & U29.Max);
      } else {
        w.u8(Amf3Marker.Double).f64(k.value);
      }
      return;
    case 'string':
      w.u8(Amf3Marker.String);
      writeStringVr(w, k.value);
      return;
    case 'date':
      w.u8(Amf3Marker.Date).u8(Amf3Flag.Inline).f64(k.value.getTime());
      return;
    case 'array':
      w.u8(Amf3Marker.Array);
      writeU29(w, inlineHeader(k.value.length, 'array'));
      w.u8(AMF3_EMPTY_STRING);
      for (const e of k.value) writeValue(w, e, depth + 1);
      return;
    case 'ecma':
      w.u8(Amf3Marker.Array).u8(Amf3Flag.Inline); // dense count 0
      writeMembers(w, k.value.value, depth + 1);
      return;
    case 'typed':
      w.u8(Amf3Marker.Object).u8(DYNAMIC_TRAITS_HEADER);
      writeStringVr(w, k.value.className);
      writeMembers(w, k.value.value, depth + 1);
      return;
    case 'object':
      w.u8(Amf3Marker.Object).u8(DYNAMIC_TRAITS_HEADER).u8(AMF3_EMPTY_STRING);
      writeMembers(w, k.value, depth + 1);
      return;
    case 'xml': {
      const n = Buffer.byteLength(k.value.xml, 'utf8');
      w.u8(Amf3Marker.Xml);
      writeU29(w, inlineHeader(n, 'XML'));
      writeUtf8(w, k.value.xml, n);
      return;
    }
    case 'bytes':
      w.u8(Amf3Marker.ByteArray);
      writeU29(w, inlineHeader(k.value.bytes.length, 'ByteArray'));
      w.bytes(k.value.bytes);
      return;
    case 'amf3':
      writeValue(w, k.value.value, depth + 1);
      return;
    default: {
      const never: never = k;
      throw new TypeError(`unhandled AMF kind ${String(never)}`);
    }
  }
}

/** Encoded size of one AMF3 value (marker included). */
export function amf3Size(v: AmfValue): number {
  return valueSize(v, 0);
}

/** Write one AMF3 value into a writer sized with amf3Size(). */
export function writeAmf3(w: ByteWriter, v: AmfValue): void {
  writeValue(w, v, 0);
}

export function encodeAmf3(value: AmfValue): Buffer {
  const w = new ByteWriter(amf3Size(value));
  writeAmf3(w, value);
  return w.done();
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

interface Amf3Traits {
  readonly className: string;
  readonly dynamic: boolean;
  readonly sealed: readonly string[];
  /** UTF-16 length of the sealed names: charged to the budget on every traits reference */
  readonly nameBytes: number;
}

/** Reference tables of one AMF3 "context" plus the shared budget. */
export interface Amf3DecodeContext {
  readonly budget: AmfBudget;
  readonly strings: string[];
  readonly objects: AmfRefEntry[];
  readonly traits: Amf3Traits[];
}

/** A fresh AMF3 context; pass `budget` to share one with an enclosing AMF0 decode. */
export function createAmf3DecodeContext(limits?: AmfLimits, budget: AmfBudget = createAmfBudget(limits)): Amf3DecodeContext {
  return { budget, strings: [], objects: [], traits: [] };
}

function readStringVr(r: ByteReader, ctx: Amf3DecodeContext): string {
  const h = readU29(r);
  if ((h & Amf3Flag.Inline) === 0) {
    const idx = h >>> Amf3Flag.RefShift;
    const s = ctx.strings[idx];
    if (s === undefined) {
      throw serverError(ErrorCode.AmfBadReference, `AMF3 string reference ${idx} out of range (${ctx.strings.length} known)`);
    }
    chargeExpanded(ctx.budget, s.length);
    return s;
  }
  const len = h >>> Amf3Flag.RefShift;
  if (len === 0) return '';
  const s = r.bytes(len).toString('utf8');
  ctx.strings.push(s);
  return s;
}

/**
 * Reads a U29 header of a reference-able type. Returns the inline length/count,
 * or the referenced value (wrapped) when the header is a reference.
 */
function readRefHeader(r: ByteReader, ctx: Amf3DecodeContext): { ref: AmfValue } | { inline: number } {
  const h = readU29(r);
  if ((h & Amf3Flag.Inline) === 0) return { ref: resolveRef(ctx.objects, h >>> Amf3Flag.RefShift, ctx.budget) };
  return { inline: h >>> Amf3Flag.RefShift };
}

function readXml(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  const h = readRefHeader(r, ctx);
  if ('ref' in h) return h.ref;
  const v = new AmfXmlDocument(r.bytes(h.inline).toString('utf8'));
  endRef(beginRef(ctx.objects, v, r, ctx.budget, false), r, ctx.budget);
  return v;
}

function readDate(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  const h = readRefHeader(r, ctx);
  if ('ref' in h) return h.ref;
  const v = new Date(r.f64());
  endRef(beginRef(ctx.objects, v, r, ctx.budget, false), r, ctx.budget);
  return v;
}

function readByteArray(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  const h = readRefHeader(r, ctx);
  if ('ref' in h) return h.ref;
  const v = new AmfByteArray(r.bytes(h.inline));
  endRef(beginRef(ctx.objects, v, r, ctx.budget, false), r, ctx.budget);
  return v;
}

function readArray(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  const h = readRefHeader(r, ctx);
  if ('ref' in h) return h.ref;
  const dense = h.inline;
  const b = ctx.budget;
  enterNested(b);
  let key = readStringVr(r, ctx);
  let result: AmfValue;
  if (key === '') {
    requireCount(r, dense, 1, 'AMF3 array');
    countItems(b, dense);
    const arr: AmfValue[] = [];
    const entry = beginRef(ctx.objects, arr, r, b, true);
    for (let i = 0; i < dense; i++) arr.push(readValue(r, ctx));
    endRef(entry, r, b);
    result = arr;
  } else {
    const obj: AmfObject = {};
    result = new AmfEcmaArray(obj);
    const entry = beginRef(ctx.objects, result, r, b, true);
    while (key !== '') {
      countItems(b, 1);
      setProperty(obj, key, readValue(r, ctx));
      key = readStringVr(r, ctx);
    }
    requireCount(r, dense, 1, 'AMF3 array');
    countItems(b, dense);
    for (let i = 0; i < dense; i++) setProperty(obj, String(i), readValue(r, ctx));
    endRef(entry, r, b);
  }
  leaveNested(b);
  return result;
}

function readTraits(r: ByteReader, ctx: Amf3DecodeContext, h: number): Amf3Traits {
  if ((h & Amf3Flag.InlineTraits) === 0) {
    const idx = h >>> Amf3Flag.TraitsRefShift;
    const t = ctx.traits[idx];
    if (t === undefined) {
      throw serverError(ErrorCode.AmfBadReference, `AMF3 traits reference ${idx} out of range (${ctx.traits.length} known)`);
    }
    chargeExpanded(ctx.budget, t.nameBytes);
    return t;
  }
  if ((h & Amf3Flag.Externalizable) !== 0) {
    const className = readStringVr(r, ctx);
    throw serverError(ErrorCode.AmfUnsupported, `AMF3 externalizable object ${JSON.stringify(className)} cannot be decoded`);
  }
  const dynamic = (h & Amf3Flag.Dynamic) !== 0;
  const count = h >>> Amf3Flag.SealedCountShift;
  const className = readStringVr(r, ctx);
  requireCount(r, count, 1, 'AMF3 sealed member');
  const sealed: string[] = [];
  let nameBytes = 0;
  for (let i = 0; i < count; i++) {
    const name = readStringVr(r, ctx);
    nameBytes += name.length;
    sealed.push(name);
  }
  const t: Amf3Traits = { className, dynamic, sealed, nameBytes };
  ctx.traits.push(t);
  return t;
}

function readObject(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  const h = readU29(r);
  const b = ctx.budget;
  if ((h & Amf3Flag.Inline) === 0) return resolveRef(ctx.objects, h >>> Amf3Flag.RefShift, b);
  const traits = readTraits(r, ctx, h);
  enterNested(b);
  const obj: AmfObject = {};
  const result: AmfValue = traits.className === '' ? obj : new AmfTypedObject(traits.className, obj);
  const entry = beginRef(ctx.objects, result, r, b, true);
  countItems(b, traits.sealed.length);
  for (const name of traits.sealed) setProperty(obj, name, readValue(r, ctx));
  if (traits.dynamic) {
    for (let key = readStringVr(r, ctx); key !== ''; key = readStringVr(r, ctx)) {
      countItems(b, 1);
      setProperty(obj, key, readValue(r, ctx));
    }
  }
  endRef(entry, r, b);
  leaveNested(b);
  return result;
}

function readNumberVector(r: ByteReader, ctx: Amf3DecodeContext, marker: number): AmfValue {
  const h = readRefHeader(r, ctx);
  if ('ref' in h) return h.ref;
  const count = h.inline;
  r.u8(); // fixed-length flag: irrelevant once decoded
  const size = marker === Amf3Marker.VectorDouble ? VectorElementSize.Double : VectorElementSize.Int;
  requireCount(r, count, size, 'AMF3 vector');
  countItems(ctx.budget, count);
  const out: number[] = [];
  const entry = beginRef(ctx.objects, out, r, ctx.budget, false);
  for (let i = 0; i < count; i++) {
    if (marker === Amf3Marker.VectorInt) out.push(r.u32() | 0);
    else if (marker === Amf3Marker.VectorUint) out.push(r.u32());
    else out.push(r.f64());
  }
  endRef(entry, r, ctx.budget);
  return out;
}

function readObjectVector(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  const h = readRefHeader(r, ctx);
  if ('ref' in h) return h.ref;
  const count = h.inline;
  const b = ctx.budget;
  r.u8(); // fixed-length flag
  readStringVr(r, ctx); // element type name ("*" or a class name): not kept
  requireCount(r, count, 1, 'AMF3 vector');
  countItems(b, count);
  enterNested(b);
  const out: AmfValue[] = [];
  const entry = beginRef(ctx.objects, out, r, b, true);
  for (let i = 0; i < count; i++) out.push(readValue(r, ctx));
  endRef(entry, r, b);
  leaveNested(b);
  return out;
}

function readValue(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  const marker = r.u8();
  switch (marker) {
    case Amf3Marker.Undefined:
      return undefined;
    case Amf3Marker.Null:
      return null;
    case Amf3Marker.False:
      return false;
    case Amf3Marker.True:
      return true;
    case Amf3Marker.Integer: {
      const u = readU29(r);
      return u & U29.SignBit ? u - U29.Modulus : u;
    }
    case Amf3Marker.Double:
      return r.f64();
    case Amf3Marker.String:
      return readStringVr(r, ctx);
    case Amf3Marker.XmlDoc:
    case Amf3Marker.Xml:
      return readXml(r, ctx);
    case Amf3Marker.Date:
      return readDate(r, ctx);
    case Amf3Marker.Array:
      return readArray(r, ctx);
    case Amf3Marker.Object:
      return readObject(r, ctx);
    case Amf3Marker.ByteArray:
      return readByteArray(r, ctx);
    case Amf3Marker.VectorInt:
    case Amf3Marker.VectorUint:
    case Amf3Marker.VectorDouble:
      return readNumberVector(r, ctx, marker);
    case Amf3Marker.VectorObject:
      return readObjectVector(r, ctx);
    case Amf3Marker.Dictionary:
      throw serverError(ErrorCode.AmfUnsupported, 'AMF3 Dictionary is not supported');
    default:
      throw serverError(ErrorCode.AmfUnknownMarker, `unknown AMF3 marker 0x${marker.toString(16)} at offset ${r.pos - 1}`);
  }
}

/** @internal shared with amf0.ts: re-code the reader's generic truncation error as ERR_AMF_TRUNCATED. */
export function asAmfError(e: unknown): unknown {
  if (isServerError(e, ErrorCode.BufferTruncated)) return serverError(ErrorCode.AmfTruncated, e.message, e);
  return e;
}

/**
 * Decode one AMF3 value at the reader's position (streaming use). Truncation
 * is reported as ERR_AMF_TRUNCATED whatever code the reader was built with.
 */
export function decodeAmf3Value(r: ByteReader, ctx: Amf3DecodeContext): AmfValue {
  try {
    return readValue(r, ctx);
  } catch (e) {
    throw asAmfError(e);
  }
}

/**
 * Decode AMF3 values until the buffer ends. Each top-level value starts with
 * fresh reference tables (as ByteArray.readObject does); the limits apply to
 * the whole buffer.
 */
export function decodeAmf3(buf: Buffer, limits?: AmfLimits): AmfValue[] {
  const r = new ByteReader(buf, 0, buf.length, ErrorCode.AmfTruncated);
  const budget = createAmfBudget(limits);
  const out: AmfValue[] = [];
  while (r.remaining > 0) out.push(readValue(r, createAmf3DecodeContext(undefined, budget)));
  return out;
}
