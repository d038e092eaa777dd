/**
 * The values AMF0 and AMF3 decode to and encode from.
 *
 * Plain JS values for the common cases: number, boolean, string, null, undefined,
 * Date, arrays (AMF0 strict array / AMF3 dense array) and plain objects (AMF0
 * anonymous object). The markers that plain JS cannot tell apart are classes:
 * an ECMA array, a typed (class-named) object, an XML document, an AMF3 byte
 * array, and AMF3 integers/values that need to be encoded as AMF3.
 */
export type AmfValue =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | AmfValue[]
  | AmfObject
  | AmfEcmaArray
  | AmfTypedObject
  | AmfXmlDocument
  | AmfByteArray
  | Amf3Value;

export interface AmfObject {
  [key: string]: AmfValue;
}

/** AMF0 ECMA array (associative array, e.g. onMetaData from ffmpeg). */
export class AmfEcmaArray {
  constructor(readonly value: AmfObject) {}
}

/** AMF0 typed object / AMF3 object with a class name. */
export class AmfTypedObject {
  constructor(
    readonly className: string,
    readonly value: AmfObject,
  ) {}
}

/** AMF0 XML document / AMF3 XML. */
export class AmfXmlDocument {
  constructor(readonly xml: string) {}
}

/** AMF3 ByteArray. */
export class AmfByteArray {
  constructor(readonly bytes: Buffer) {}
}

/** A value that must travel as AMF3 inside AMF0 (the AVM+ switch marker 0x11). */
export class Amf3Value {
  constructor(readonly value: AmfValue) {}
}

/** The object behind a plain object, an ECMA array or a typed object; undefined otherwise. */
export function amfObjectOf(v: AmfValue): AmfObject | undefined {
  if (v instanceof AmfEcmaArray || v instanceof AmfTypedObject) return v.value;
  if (v instanceof Amf3Value) return amfObjectOf(v.value);
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof AmfXmlDocument) && !(v instanceof AmfByteArray)) {
    return v;
  }
  return undefined;
}

export function amfString(v: AmfValue): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function amfNumber(v: AmfValue): number | undefined {
  return typeof v === 'number' ? v : undefined;
}
