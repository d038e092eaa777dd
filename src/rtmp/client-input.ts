/**
 * What the connection checks in a client's input before it acts on it: the
 * length of client strings (refused past MAX_CLIENT_STRING), how client text
 * appears in a log line, and two cheap looks at a message (a publish command,
 * stream data) made before it is decoded.
 */
import { ErrorCode, serverError } from '../core/errors.js';
import { amfString, type AmfValue } from './amf-types.js';
import { Amf0Marker } from './amf0.js';
import { MessageType, type RtmpMessage } from './messages.js';
import { MAX_CLIENT_STRING } from './session-types.js';

/** Client text in a log line is cut to this many characters. */
const LOG_TEXT_MAX = 96;

/** Client text for a log line: at most LOG_TEXT_MAX characters, and how long it was when cut. */
export function logText(text: string): string {
  return text.length <= LOG_TEXT_MAX ? text : `${text.slice(0, LOG_TEXT_MAX)}...(${text.length} chars)`;
}

/** A client string, refused when longer than MAX_CLIENT_STRING (what: for the error message, never the string itself). */
export function boundedString(what: string, v: AmfValue | undefined): string {
  const s = amfString(v ?? null) ?? '';
  if (s.length > MAX_CLIENT_STRING) {
    throw serverError(ErrorCode.StringTooLong, `${what} of ${s.length} characters (limit ${MAX_CLIENT_STRING})`);
  }
  return s;
}

const SLASH = 0x2f;

/** The string without its leading and trailing slashes (linear time). */
export function trimSlashes(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) === SLASH) a++;
  while (b > a && s.charCodeAt(b - 1) === SLASH) b--;
  return s.slice(a, b);
}

/** AMF0 short string header: marker byte and 16-bit length. */
const AMF0_STRING_HEADER = 3;
const PUBLISH = Buffer.from('publish', 'latin1');

/** True for a `publish` command message (looks at its first AMF0 value only, without decoding it). */
export function isPublishCommand(m: RtmpMessage): boolean {
  const p = m.payload;
  // an AMF3 command (type 17) starts with a 0 byte, then AMF0 values
  const o = m.type === MessageType.CommandAmf3 && p[0] === 0 ? 1 : 0;
  const end = o + AMF0_STRING_HEADER + PUBLISH.length;
  return p.length >= end && p[o] === Amf0Marker.String && p.readUInt16BE(o + 1) === PUBLISH.length && PUBLISH.equals(p.subarray(o + AMF0_STRING_HEADER, end));
}

export function isStreamData(type: number): boolean {
  return type === MessageType.Audio || type === MessageType.Video || type === MessageType.DataAmf0 || type === MessageType.DataAmf3;
}
