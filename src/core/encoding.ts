/**
 * One encoding per message per output format, shared by every output of that
 * format. A shared message (the live core's MediaFrame) carries a few cache
 * slots; an output format has a numeric key and an encoder. The first output
 * of a format to take a message encodes it, every later one gets the same
 * Buffer. Lives in core because rtmp (below live) encodes into it too.
 *
 * The slots are plain fields (no Map, no array): the first slot is checked with
 * two loads and a compare, which is the whole cost on the RTMP hot path. A
 * message keeps the first ENCODING_SLOTS encodings made of it; an encoding for
 * a further key is made but not kept (so formats never evict each other, and a
 * key that is not cacheable costs one encode per output, as before).
 */

/** A message with encoding slots; `keyN` is NO_ENCODING_KEY while `encN` is empty. */
export interface EncodingSlots {
  enc0: Buffer | undefined;
  key0: number;
  enc1: Buffer | undefined;
  key1: number;
  enc2: Buffer | undefined;
  key2: number;
}

export const ENCODING_SLOTS = 3;

/** An empty slot's key, and the key of a format whose encodings must not be shared. */
export const NO_ENCODING_KEY = -1;

/**
 * Keys of the formats that take no parameters. Parameterised formats build
 * their keys above FIXED_ENCODING_KEY_LIMIT (RTMP: chunk size * 2^17 + ...,
 * src/rtmp/player.ts), so the two ranges never meet.
 */
export const EncodingKey = {
  /** an FLV tag: 11-byte header, tag body, 4-byte PreviousTagSize (HTTP-FLV, recording) */
  FlvTag: 1,
  /** an FLV tag in one unmasked WebSocket binary frame (WebSocket-FLV players) */
  WsFlvTag: 2,
} as const;
export const FIXED_ENCODING_KEY_LIMIT = 0x10000;

/**
 * An output format: `key` names the exact bytes `encode` makes (two formats
 * with the same key must make the same bytes for the same message); a
 * negative key means "do not share".
 */
export interface OutputFormat<M extends EncodingSlots> {
  readonly key: number;
  encode(message: M): Buffer;
}

/** The message's encoding in `format`: the shared one when there is one, else made (and kept when a slot is free). */
export function encodeShared<M extends EncodingSlots>(message: M, format: OutputFormat<M>): Buffer {
  const key = format.key;
  const e = message.enc0;
  if (message.key0 === key && e !== undefined) return e;
  return encodeSlow(message, format, key);
}

function encodeSlow<M extends EncodingSlots>(message: M, format: OutputFormat<M>, key: number): Buffer {
  const cached = sharedEncoding(message, key);
  if (cached !== undefined) return cached;
  const wire = format.encode(message);
  keepEncoding(message, key, wire);
  return wire;
}

/** The message's encoding for `key` when one was kept (for encoders that are not an OutputFormat object). */
export function sharedEncoding(message: EncodingSlots, key: number): Buffer | undefined {
  if (key < 0) return undefined;
  if (message.key0 === key && message.enc0 !== undefined) return message.enc0;
  if (message.key1 === key && message.enc1 !== undefined) return message.enc1;
  if (message.key2 === key && message.enc2 !== undefined) return message.enc2;
  return undefined;
}

/** Keeps `wire` as the message's encoding for `key` when a slot is free (and the key may be shared). */
export function keepEncoding(message: EncodingSlots, key: number, wire: Buffer): void {
  if (key < 0) return;
  if (message.enc0 === undefined) {
    message.enc0 = wire;
    message.key0 = key;
  } else if (message.enc1 === undefined) {
    message.enc1 = wire;
    message.key1 = key;
  } else if (message.enc2 === undefined) {
    message.enc2 = wire;
    message.key2 = key;
  }
}

/** Lets the message's encodings go (every output that shares them has had them; a later one encodes again). */
export function releaseEncodings(message: EncodingSlots): void {
  message.enc0 = message.enc1 = message.enc2 = undefined;
  message.key0 = message.key1 = message.key2 = NO_ENCODING_KEY;
}
