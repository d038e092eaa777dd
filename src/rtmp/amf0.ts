/**
 * AMF0 codec (Adobe "Action Message Format -- AMF 0"), with the AVM+ switch
 * into AMF3 (marker 0x11) and the AMF3 command payload (RTMP type 15/17).
 *
 * Decoding:
 *  - number, boolean, string, long string, null, undefined, Date (the time
 *    zone field is ignored), XML document (AmfXmlDocument);
 *  - anonymous object → plain object; typed object → AmfTypedObject;
 *    ECMA array → AmfEcmaArray; strict array → AmfValue[];
 *  - Unsupported (0x0d) → undefined; MovieClip and RecordSet (reserved) →
 *    ERR_AMF_UNSUPPORTED; an object-end marker where a value is expected and
 *    markers above 0x11 → ERR_AMF_UNKNOWN_MARKER;
 *  - AVM+ (0x11) → the AMF3 value itself (not wrapped in Amf3Value), decoded
 *    with fresh AMF3 reference tables per switch and the same budget;
 *  - Reference (0x07) → the same instance as the earlier object / typed object
 *    / ECMA array / strict array it indexes (counted in order of appearance).
 *    A bad index, or a reference to a value still being decoded (a cycle), is
 *    ERR_AMF_BAD_REFERENCE. References are charged to the limits as if the
 *    value were repeated, so small "reference bombs" hit ERR_AMF_TOO_LARGE.
 *  - Object keys: `__proto__` is stored as an ordinary own property and never
 *    changes a prototype; decoded objects have the normal Object prototype.
 *  - ECMA arrays: the count field is ignored (encoders get it wrong); pairs
 *    are read until the end marker 00 00 09. Leniency: when the input ends
 *    where the next key or the end marker's 0x09 would start, the ECMA array
 *    is taken as complete (some encoders leave the end marker out of the last
 *    value of a message). This applies only at the end of the reader's range.
 *  - An empty key not followed by 0x09 is read as a property named "".
 *  - Errors are ServerErrors with ERR_AMF_* codes only. After an error the
 *    decode context must be dropped.
 *
 * Encoding: strings of more than 65535 UTF-8 bytes become long strings;
 * arrays → strict arrays; plain objects → anonymous objects; Date → date with
 * time zone 0; Amf3Value (and AmfByteArray, which has no AMF0 form) → 0x11 +
 * AMF3. No references are emitted.
 */
import { ByteReader, ByteWriter } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { AmfEcmaArray, AmfTypedObject, AmfXmlDocument, type AmfObject, type AmfValue } from './amf-types.js';
import {
  amf3Size,
  asAmfError,
  beginRef,
  classifyAmf,
  countItems,
  createAmf3DecodeContext,
  createAmfBudget,
  decodeAmf3Value,
  encodeDepthCheck,
  endRef,
  enterNested,
  leaveNested,
  requireCount,
  resolveRef,
  setProperty,
  writeAmf3,
  writeUtf8,
  type AmfBudget,
  type AmfLimits,
  type AmfRefEntry,
} from './amf3.js';

export type { AmfLimits } from './amf3.js';
export { AMF_DEFAULT_LIMITS } from './amf3.js';

export const Amf0Marker = {
  Number: 0x00,
  Boolean: 0x01,
  String: 0x02,
  Object: 0x03,
  MovieClip: 0x04,
  Null: 0x05,
  Undefined: 0x06,
  Reference: 0x07,
  EcmaArray: 0x08,
  ObjectEnd: 0x09,
  StrictArray: 0x0a,
  Date: 0x0b,
  LongString: 0x0c,
  Unsupported: 0x0d,
  RecordSet: 0x0e,
  XmlDocument: 0x0f,
  TypedObject: 0x10,
  AvmPlusObject: 0x11,
} as const;
export type Amf0Marker = (typeof Amf0Marker)[keyof typeof Amf0Marker];

/** Field sizes and limits of the AMF0 wire format. */
const Amf0Size = {
  Marker: 1,
  U16: 2,
  U32: 4,
  Double: 8,
  TimeZone: 2,
  /** empty key (u16 0) + object-end marker */
  ObjectEnd: 3,
  MaxShortString: 0xffff,
  MaxLongString: 0xffffffff,
} as const;

/** The byte an RTMP AMF3 command/data payload (type 17/15) starts with. */
const AMF3_COMMAND_FORMAT_BYTE = 0x00;

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

function keySize(key: string): number {
  const n = Buffer.byteLength(key, 'utf8');
  if (n > Amf0Size.MaxShortString) {
    throw serverError(ErrorCode.AmfTooLarge, `AMF0 property name of ${n} bytes is longer than ${Amf0Size.MaxShortString}`);
  }
  return Amf0Size.U16 + n;
}

function writeKey(w: ByteWriter, key: string): void {
  const n = Buffer.byteLength(key, 'utf8');
  w.u16(n);
  writeUtf8(w, key, n);
}

function propsSize(obj: AmfObject, depth: number): number {
  let n = Amf0Size.ObjectEnd;
  for (const k of Object.keys(obj)) n += keySize(k) + valueSize(obj[k], depth);
  return n;
}

function writeProps(w: ByteWriter, obj: AmfObject, depth: number): void {
  for (const k of Object.keys(obj)) {
    writeKey(w, k);
    writeValue(w, obj[k], depth);
  }
  w.u16(0).u8(Amf0Marker.ObjectEnd);
}

function longTextSize(s: string, what: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > Amf0Size.MaxLongString) throw serverError(ErrorCode.AmfTooLarge, `AMF0 ${what} of ${n} bytes is too long`);
  return n;
}

function valueSize(v: AmfValue, depth: number): number {
  encodeDepthCheck(depth);
  const k = classifyAmf(v);
  switch (k.kind) {
    case 'undefined':
    case 'null':
      return Amf0Size.Marker;
    case 'boolean':
      return Amf0Size.Marker + 1;
    case 'number':
      return Amf0Size.Marker + Amf0Size.Double;
    case 'string': {
      const n = longTextSize(k.value, 'string');
      return Amf0Size.Marker + (n > Amf0Size.MaxShortString ? Amf0Size.U32 : Amf0Size.U16) + n;
    }
    case 'date':
      return Amf0Size.Marker + Amf0Size.Double + Amf0Size.TimeZone;
    case 'array': {
      let n = Amf0Size.Marker + Amf0Size.U32;
      for (const e of k.value) n += valueSize(e, depth + 1);
      return n;
    }
    case 'object':
      return Amf0Size.Marker + propsSize(k.value, depth + 1);
    case 'ecma':
      return Amf0Size.Marker + Amf0Size.U32 + propsSize(k.value.value, depth + 1);
    case 'typed':
      return Amf0Size.Marker + keySize(k.value.className) + propsSize(k.value.value, depth + 1);
    case 'xml':
      return Amf0Size.Marker + Amf0Size.U32 + longTextSize(k.value.xml, 'XML document');
    case 'bytes':
    case 'amf3':
      return Amf0Size.Marker + amf3Size(k.value);
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
      w.u8(Amf0Marker.Undefined);
      return;
    case 'null':
      w.u8(Amf0Marker.Null);
      return;
    case 'boolean':
      w.u8(Amf0Marker.Boolean).u8(k.value ? 1 : 0);
      return;
    case 'number':
      w.u8(Amf0Marker.Number).f64(k.value);
      return;
    case 'string': {
      const n = Buffer.byteLength(k.value, 'utf8');
      if (n > Amf0Size.MaxShortString) w.u8(Amf0Marker.LongString).u32(n);
      else w.u8(Amf0Marker.String).u16(n);
      writeUtf8(w, k.value, n);
      return;
    }
    case 'date':
      w.u8(Amf0Marker.Date).f64(k.value.getTime()).i16(0);
      return;
    case 'array':
      w.u8(Amf0Marker.StrictArray).u32(k.value.length);
      for (const e of k.value) writeValue(w, e, depth + 1);
      return;
    case 'object':
      w.u8(Amf0Marker.Object);
      writeProps(w, k.value, depth + 1);
      return;
    case 'ecma':
      w.u8(Amf0Marker.EcmaArray).u32(Object.keys(k.value.value).length);
      writeProps(w, k.value.value, depth + 1);
      return;
    case 'typed':
      w.u8(Amf0Marker.TypedObject);
      writeKey(w, k.value.className);
      writeProps(w, k.value.value, depth + 1);
      return;
    case 'xml': {
      const n = Buffer.byteLength(k.value.xml, 'utf8');
      w.u8(Amf0Marker.XmlDocument).u32(n);
      writeUtf8(w, k.value.xml, n);
      return;
    }
    case 'bytes':
    case 'amf3':
      w.u8(Amf0Marker.AvmPlusObject);
      writeAmf3(w, k.value);
      return;
    default: {
      const never: never = k;
      throw new TypeError(`unhandled AMF kind ${String(never)}`);
    }
  }
}

/** Encoded size of one AMF0 value (marker included). */
export function amf0Size(v: AmfValue): number {
  return valueSize(v, 0);
}

/** Write one AMF0 value into a writer sized with amf0Size(). */
export function writeAmf0(w: ByteWriter, v: AmfValue): void {
  writeValue(w, v, 0);
}

/** Encode a sequence of AMF0 values into one buffer (allocated once). */
export function encodeAmf0(values: readonly AmfValue[]): Buffer {
  let size = 0;
  for (const v of values) size += amf0Size(v);
  const w = new ByteWriter(size);
  for (const v of values) writeAmf0(w, v);
  return w.done();
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

export interface Amf0DecodeContext {
  readonly budget: AmfBudget;
  /** complex values in order of appearance, for the Reference marker */
  readonly refs: AmfRefEntry[];
}

export function createAmf0DecodeContext(limits?: AmfLimits): Amf0DecodeContext {
  return { budget: createAmfBudget(limits), refs: [] };
}

function readUtf8(r: ByteReader, n: number): string {
  return n === 0 ? '' : r.bytes(n).toString('utf8');
}

/** Key/value pairs up to the end marker. `lenientEnd`: the end of input may stand in for it (ECMA arrays). */
function readProps(r: ByteReader, ctx: Amf0DecodeContext, obj: AmfObject, lenientEnd: boolean): void {
  for (;;) {
    if (lenientEnd && r.remaining === 0) return;
    const keyLen = r.u16();
    if (keyLen === 0) {
      if (lenientEnd && r.remaining === 0) return;
      if (r.peekU8() === Amf0Marker.ObjectEnd) {
        r.skip(1);
        return;
      }
    }
    const key = readUtf8(r, keyLen);
    countItems(ctx.budget, 1);
    setProperty(obj, key, readValue(r, ctx));
  }
}

function readObjectLike(r: ByteReader, ctx: Amf0DecodeContext, marker: number): AmfValue {
  const b = ctx.budget;
  enterNested(b);
  let result: AmfValue;
  let lenient = false;
  const obj: AmfObject = {};
  if (marker === Amf0Marker.TypedObject) {
    result = new AmfTypedObject(readUtf8(r, r.u16()), obj);
  } else if (marker === Amf0Marker.EcmaArray) {
    r.u32(); // associative count: advisory only, often wrong
    result = new AmfEcmaArray(obj);
    lenient = true;
  } else {
    result = obj;
  }
  const entry = beginRef(ctx.refs, result, r, b, true);
  readProps(r, ctx, obj, lenient);
  endRef(entry, r, b);
  leaveNested(b);
  return result;
}

function readStrictArray(r: ByteReader, ctx: Amf0DecodeContext): AmfValue {
  const b = ctx.budget;
  const count = r.u32();
  requireCount(r, count, Amf0Size.Marker, 'AMF0 strict array');
  countItems(b, count);
  enterNested(b);
  const arr: AmfValue[] = [];
  const entry = beginRef(ctx.refs, arr, r, b, true);
  for (let i = 0; i < count; i++) arr.push(readValue(r, ctx));
  endRef(entry, r, b);
  leaveNested(b);
  return arr;
}

function readValue(r: ByteReader, ctx: Amf0DecodeContext): AmfValue {
  const marker = r.u8();
  switch (marker) {
    case Amf0Marker.Number:
      return r.f64();
    case Amf0Marker.Boolean:
      return r.u8() !== 0;
    case Amf0Marker.String:
      return readUtf8(r, r.u16());
    case Amf0Marker.LongString:
      return readUtf8(r, r.u32());
    case Amf0Marker.Object:
    case Amf0Marker.EcmaArray:
    case Amf0Marker.TypedObject:
      return readObjectLike(r, ctx, marker);
    case Amf0Marker.StrictArray:
      return readStrictArray(r, ctx);
    case Amf0Marker.Null:
      return null;
    case Amf0Marker.Undefined:
    case Amf0Marker.Unsupported:
      return undefined;
    case Amf0Marker.Reference:
      return resolveRef(ctx.refs, r.u16(), ctx.budget);
    case Amf0Marker.Date: {
      const ms = r.f64();
      r.skip(Amf0Size.TimeZone); // time zone: "should be 0", ignored
      return new Date(ms);
    }
    case Amf0Marker.XmlDocument:
      return new AmfXmlDocument(readUtf8(r, r.u32()));
    case Amf0Marker.AvmPlusObject:
      return decodeAmf3Value(r, createAmf3DecodeContext(undefined, ctx.budget));
    case Amf0Marker.MovieClip:
    case Amf0Marker.RecordSet:
      throw serverError(ErrorCode.AmfUnsupported, `reserved AMF0 marker 0x${marker.toString(16)} at offset ${r.pos - 1}`);
    case Amf0Marker.ObjectEnd:
      throw serverError(ErrorCode.AmfUnknownMarker, `AMF0 object-end marker where a value was expected at offset ${r.pos - 1}`);
    default:
      throw serverError(ErrorCode.AmfUnknownMarker, `unknown AMF0 marker 0x${marker.toString(16)} at offset ${r.pos - 1}`);
  }
}

/**
 * Decode one AMF0 value at the reader's position (streaming use). Truncation
 * is reported as ERR_AMF_TRUNCATED whatever code the reader was built with.
 */
export function decodeAmf0Value(r: ByteReader, ctx: Amf0DecodeContext): AmfValue {
  try {
    return readValue(r, ctx);
  } catch (e) {
    throw asAmfError(e);
  }
}

/** Decode AMF0 values until the buffer ends (one reference table and budget for all of them). */
export function decodeAmf0(buf: Buffer, limits?: AmfLimits): AmfValue[] {
  const r = new ByteReader(buf, 0, buf.length, ErrorCode.AmfTruncated);
  const ctx = createAmf0DecodeContext(limits);
  const out: AmfValue[] = [];
  while (r.remaining > 0) out.push(readValue(r, ctx));
  return out;
}

/**
 * Decode the payload of an RTMP AMF3 command (type 17) or data message
 * (type 15): a 0x00 format byte, then AMF0 values (which may switch to AMF3
 * with 0x11). A payload that does not start with 0x00 is decoded as AMF0.
 */
export function decodeAmf3Command(payload: Buffer, limits?: AmfLimits): AmfValue[] {
  const body = payload[0] === AMF3_COMMAND_FORMAT_BYTE ? payload.subarray(1) : payload;
  return decodeAmf0(body, limits);
}
