import { ByteReader, ByteWriter } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';

/**
 * The FLV container (Adobe FLV spec v10.1, Annex E): file header, tags and the
 * PreviousTagSize back-pointers. Also the small pieces of the Enhanced RTMP
 * tag headers shared by audio and video (ModEx, multitrack).
 */

/** FLV TagType (the low 5 bits of the tag's first byte). */
export const FlvTagType = { Audio: 8, Video: 9, Script: 18 } as const;
export type FlvTagType = (typeof FlvTagType)[keyof typeof FlvTagType];

/** One FLV tag. `data` is a view into the input, not a copy. */
export interface FlvTag {
  type: number;
  /** milliseconds, 32-bit: the 24-bit field plus the extended (upper) byte */
  timestamp: number;
  /** always 0 in conforming files */
  streamId: number;
  data: Buffer;
}

export interface FlvHeaderInfo {
  audio: boolean;
  video: boolean;
}

export interface FlvReaderOptions {
  /** Largest tag data accepted (bytes); a larger DataSize is FlvMalformed. Default 16 MiB. */
  maxTagDataSize?: number;
}

/** 'F', 'L', 'V' */
const FLV_SIGNATURE = [0x46, 0x4c, 0x56] as const;
const FLV_VERSION = 1;
/** Header length of an FLV version 1 file; also the DataOffset it carries. */
export const FLV_HEADER_SIZE = 9;
/** The 11-byte tag header: type, DataSize, Timestamp, TimestampExtended, StreamID. */
export const FLV_TAG_HEADER_SIZE = 11;
/** The UI32 PreviousTagSize that follows the header and every tag. */
export const FLV_PREVIOUS_TAG_SIZE = 4;
/** DataSize is a UI24. */
export const FLV_MAX_TAG_DATA_SIZE = 0xffffff;
/**
 * The `data` of an audio/video tag header parsed before its body is known (replaced by a view of the
 * payload once parsed; a tag without a body keeps it): one shared empty buffer, no view made per tag.
 */
export const NO_TAG_DATA = Buffer.alloc(0);
const DEFAULT_MAX_TAG_DATA_SIZE = 16 * 1024 * 1024;

const FlvTypeFlags = { Audio: 0x04, Video: 0x01 } as const;
/** TagType is the low 5 bits; above it are the Filter bit (encrypted) and 2 reserved bits. */
const TAG_TYPE_MASK = 0x1f;
/** The largest header padding (DataOffset - 9) accepted. */
const MAX_HEADER_PADDING = 64 * 1024;

/** The 9-byte FLV header plus PreviousTagSize0 (13 bytes). */
export function encodeFlvHeader(opts: { audio: boolean; video: boolean }): Buffer {
  const flags = (opts.audio ? FlvTypeFlags.Audio : 0) | (opts.video ? FlvTypeFlags.Video : 0);
  const w = new ByteWriter(FLV_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE);
  for (const b of FLV_SIGNATURE) w.u8(b);
  return w.u8(FLV_VERSION).u8(flags).u32(FLV_HEADER_SIZE).u32(0).done();
}

/** Bytes `encodeFlvTag` produces for `dataLength` bytes of data: 11-byte header + data + 4-byte PreviousTagSize. */
export function flvTagSize(dataLength: number): number {
  return FLV_TAG_HEADER_SIZE + dataLength + FLV_PREVIOUS_TAG_SIZE;
}

/**
 * One FLV tag with its trailing PreviousTagSize, in one allocation. The
 * timestamp is taken modulo 2^32 (lower 24 bits + extended byte).
 */
export function encodeFlvTag(tag: { type: number; timestamp: number; data: Buffer }): Buffer {
  const n = tag.data.length;
  if (n > FLV_MAX_TAG_DATA_SIZE) {
    throw serverError(ErrorCode.FlvMalformed, `FLV tag data of ${n} bytes exceeds the 24-bit DataSize field`);
  }
  const ts = tag.timestamp >>> 0;
  return new ByteWriter(flvTagSize(n))
    .u8(tag.type & TAG_TYPE_MASK)
    .u24(n)
    .u24(ts & 0xffffff)
    .u8(ts >>> 24)
    .u24(0)
    .bytes(tag.data)
    .u32(FLV_TAG_HEADER_SIZE + n)
    .done();
}

/** Parses the 9-byte header at the start of `buf` (which must hold at least 9 bytes). */
function parseHeader(buf: Buffer): { header: FlvHeaderInfo; dataOffset: number } {
  const r = new ByteReader(buf, 0, buf.length, ErrorCode.FlvMalformed);
  const sig = r.bytes(FLV_SIGNATURE.length);
  if (sig[0] !== FLV_SIGNATURE[0] || sig[1] !== FLV_SIGNATURE[1] || sig[2] !== FLV_SIGNATURE[2]) {
    throw serverError(ErrorCode.FlvMalformed, 'not an FLV stream: bad signature');
  }
  const version = r.u8();
  if (version !== FLV_VERSION) throw serverError(ErrorCode.FlvMalformed, `unsupported FLV version ${version}`);
  const flags = r.u8();
  const dataOffset = r.u32();
  if (dataOffset < FLV_HEADER_SIZE || dataOffset - FLV_HEADER_SIZE > MAX_HEADER_PADDING) {
    throw serverError(ErrorCode.FlvMalformed, `bad FLV header DataOffset ${dataOffset}`);
  }
  return {
    header: { audio: (flags & FlvTypeFlags.Audio) !== 0, video: (flags & FlvTypeFlags.Video) !== 0 },
    dataOffset,
  };
}

interface TagHeader {
  type: number;
  dataSize: number;
  timestamp: number;
  streamId: number;
}

/** Parses an 11-byte tag header at `pos` (caller guarantees the bytes are there). */
function parseTagHeader(buf: Buffer, pos: number): TagHeader {
  const r = new ByteReader(buf, pos, pos + FLV_TAG_HEADER_SIZE, ErrorCode.FlvMalformed);
  const type = r.u8() & TAG_TYPE_MASK;
  const dataSize = r.u24();
  const low = r.u24();
  const ext = r.u8();
  const streamId = r.u24();
  return { type, dataSize, timestamp: ((ext << 24) | low) >>> 0, streamId };
}

function checkPreviousTagSize(actual: number, expected: number, where: number): void {
  if (actual !== expected) {
    throw serverError(ErrorCode.FlvMalformed, `PreviousTagSize ${actual} at offset ${where}, expected ${expected}`);
  }
}

/** What the streaming reader waits for next. */
type ReaderState =
  | { kind: 'header' }
  | { kind: 'headerPadding'; size: number }
  | { kind: 'previousTagSize0' }
  | { kind: 'tagHeader' }
  /** tag data plus its trailing PreviousTagSize */
  | { kind: 'tagBody'; tag: TagHeader };

/**
 * A streaming FLV demuxer: push bytes split anywhere, get whole tags back.
 * A tag is returned once its data and its PreviousTagSize have arrived and the
 * PreviousTagSize matched (PreviousTagSize0 after the header must be 0). Tag
 * data are views into the pushed chunks when a tag lies within one chunk (so
 * do not reuse pushed buffers), else into one copy. Errors are FlvMalformed;
 * after one, discard the reader.
 */
export class FlvReader {
  private readonly maxTagDataSize: number;
  private state: ReaderState = { kind: 'header' };
  private readonly chunks: Buffer[] = [];
  /** read position inside chunks[0] */
  private head = 0;
  private buffered = 0;
  /** stream offset of the first buffered byte (for error messages) */
  private offset = 0;
  private headerInfo: FlvHeaderInfo | undefined;

  constructor(opts: FlvReaderOptions = {}) {
    const max = opts.maxTagDataSize ?? DEFAULT_MAX_TAG_DATA_SIZE;
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`FlvReader: bad maxTagDataSize ${max}`);
    this.maxTagDataSize = max;
  }

  /** The parsed FLV header, once it has arrived. */
  get header(): FlvHeaderInfo | undefined {
    return this.headerInfo;
  }

  push(chunk: Buffer): FlvTag[] {
    const out: FlvTag[] = [];
    if (chunk.length === 0) return out;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      const need = this.needed();
      if (this.buffered < need) break;
      const at = this.offset;
      const tag = this.consume(this.take(need), at);
      if (tag !== undefined) out.push(tag);
    }
    return out;
  }

  /** Call at end of input: throws FlvMalformed if a partial header or tag remains. */
  end(): void {
    const s = this.state;
    const clean = this.buffered === 0 && (s.kind === 'tagHeader' || (s.kind === 'header' && this.offset === 0));
    if (!clean) {
      throw serverError(
        ErrorCode.FlvMalformed,
        `FLV stream ended inside ${this.describeState()} (${this.buffered} bytes left over at offset ${this.offset})`,
      );
    }
  }

  private describeState(): string {
    const s = this.state;
    switch (s.kind) {
      case 'header':
      case 'headerPadding':
        return 'the file header';
      case 'previousTagSize0':
        return 'PreviousTagSize0';
      case 'tagHeader':
        return 'a tag header';
      case 'tagBody':
        return `a tag of ${s.tag.dataSize} data bytes`;
      default: {
        const never: never = s;
        return String(never);
      }
    }
  }

  private needed(): number {
    const s = this.state;
    switch (s.kind) {
      case 'header':
        return FLV_HEADER_SIZE;
      case 'headerPadding':
        return s.size;
      case 'previousTagSize0':
        return FLV_PREVIOUS_TAG_SIZE;
      case 'tagHeader':
        return FLV_TAG_HEADER_SIZE;
      case 'tagBody':
        return s.tag.dataSize + FLV_PREVIOUS_TAG_SIZE;
      default: {
        const never: never = s;
        return never;
      }
    }
  }

  private consume(unit: Buffer, at: number): FlvTag | undefined {
    const s = this.state;
    switch (s.kind) {
      case 'header': {
        const { header, dataOffset } = parseHeader(unit);
        this.headerInfo = header;
        const padding = dataOffset - FLV_HEADER_SIZE;
        this.state = padding > 0 ? { kind: 'headerPadding', size: padding } : { kind: 'previousTagSize0' };
        return undefined;
      }
      case 'headerPadding':
        this.state = { kind: 'previousTagSize0' };
        return undefined;
      case 'previousTagSize0':
        checkPreviousTagSize(unit.readUInt32BE(0), 0, at);
        this.state = { kind: 'tagHeader' };
        return undefined;
      case 'tagHeader': {
        const tag = parseTagHeader(unit, 0);
        if (tag.dataSize > this.maxTagDataSize) {
          throw serverError(ErrorCode.FlvMalformed, `FLV tag at offset ${at} has ${tag.dataSize} bytes of data, limit ${this.maxTagDataSize}`);
        }
        this.state = { kind: 'tagBody', tag };
        return undefined;
      }
      case 'tagBody': {
        const h = s.tag;
        checkPreviousTagSize(unit.readUInt32BE(h.dataSize), FLV_TAG_HEADER_SIZE + h.dataSize, at + h.dataSize);
        this.state = { kind: 'tagHeader' };
        return { type: h.type, timestamp: h.timestamp, streamId: h.streamId, data: unit.subarray(0, h.dataSize) };
      }
      default: {
        const never: never = s;
        return never;
      }
    }
  }

  /** Removes the next n buffered bytes: a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    this.offset += n;
    const first = this.chunks[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length - this.head >= n) {
      const v = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      return v;
    }
    const out = Buffer.allocUnsafe(n);
    let w = 0;
    let used = 0; // chunks fully consumed (removed once at the end: no quadratic shifting)
    while (w < n) {
      const c = this.chunks[used]!;
      const k = Math.min(c.length - this.head, n - w);
      c.copy(out, w, this.head, this.head + k);
      w += k;
      this.head += k;
      if (this.head === c.length) {
        used++;
        this.head = 0;
      }
    }
    this.chunks.splice(0, used);
    return out;
  }
}

/**
 * Reads a whole FLV file held in memory, e.g. a recording left behind by a
 * crash. Returns every complete tag (header, data and matching
 * PreviousTagSize); if the file does not end cleanly after one, `truncatedAt`
 * is the byte offset where the first incomplete or inconsistent tag starts
 * (truncating the file there yields a valid FLV). Throws FlvMalformed only when
 * the file header itself is missing or bad.
 */
export function readFlvFile(buf: Buffer): { header: FlvHeaderInfo; tags: FlvTag[]; truncatedAt?: number } {
  if (buf.length < FLV_HEADER_SIZE) {
    throw serverError(ErrorCode.FlvMalformed, `FLV file of ${buf.length} bytes is shorter than its header`);
  }
  const { header, dataOffset } = parseHeader(buf);
  const tags: FlvTag[] = [];
  if (buf.length < dataOffset + FLV_PREVIOUS_TAG_SIZE || buf.readUInt32BE(dataOffset) !== 0) {
    return { header, tags, truncatedAt: Math.min(dataOffset, buf.length) };
  }
  let pos = dataOffset + FLV_PREVIOUS_TAG_SIZE;
  while (pos < buf.length) {
    if (buf.length - pos < FLV_TAG_HEADER_SIZE) return { header, tags, truncatedAt: pos };
    const h = parseTagHeader(buf, pos);
    const dataStart = pos + FLV_TAG_HEADER_SIZE;
    const sizeAt = dataStart + h.dataSize;
    if (sizeAt + FLV_PREVIOUS_TAG_SIZE > buf.length) return { header, tags, truncatedAt: pos };
    if (buf.readUInt32BE(sizeAt) !== FLV_TAG_HEADER_SIZE + h.dataSize) return { header, tags, truncatedAt: pos };
    tags.push({ type: h.type, timestamp: h.timestamp, streamId: h.streamId, data: buf.subarray(dataStart, sizeAt) });
    pos = sizeAt + FLV_PREVIOUS_TAG_SIZE;
  }
  return { header, tags };
}

// ---------------------------------------------------------------------------
// Enhanced RTMP pieces shared by the audio and video tag headers
// (veovera enhanced-rtmp v2).

/** AvMultitrackType: the high nibble of the byte after a Multitrack packet type. */
export const AvMultitrackType = { OneTrack: 0, ManyTracks: 1, ManyTracksManyCodecs: 2 } as const;
export type AvMultitrackType = (typeof AvMultitrackType)[keyof typeof AvMultitrackType];

/** The packet type value (audio and video alike) that announces a ModEx prefix. */
export const EX_PACKET_TYPE_MOD_EX = 7;

/** Audio/VideoPacketModExType: the high nibble of the byte that ends a ModEx prefix. */
export const PacketModExType = { TimestampOffsetNano: 0 } as const;

/** Size escape: a UI8 size field of 255 (+1 = 256) means a UI16 size follows. */
const MOD_EX_SIZE_ESCAPE = 256;
/** TimestampOffsetNano carries a UI24 of nanoseconds. */
const TIMESTAMP_OFFSET_NANO_SIZE = 3;

/**
 * Reads the ModEx prefixes (if `packetType` is ModEx) and returns the real
 * packet type that follows them, plus the summed TimestampOffsetNano if any.
 * Errors are FlvMalformed (via the reader's truncation code).
 */
export function readModExChain(r: ByteReader, packetType: number): { packetType: number; timestampOffsetNano: number | undefined } {
  let pt = packetType;
  let nano: number | undefined;
  while (pt === EX_PACKET_TYPE_MOD_EX) {
    let size = r.u8() + 1;
    if (size === MOD_EX_SIZE_ESCAPE) size = r.u16() + 1;
    const data = r.bytes(size);
    const b = r.u8();
    const modExType = b >> 4;
    pt = b & 0x0f;
    if (modExType === PacketModExType.TimestampOffsetNano) {
      if (data.length < TIMESTAMP_OFFSET_NANO_SIZE) {
        throw serverError(ErrorCode.FlvMalformed, `TimestampOffsetNano ModEx of ${data.length} bytes, need ${TIMESTAMP_OFFSET_NANO_SIZE}`);
      }
      nano = (nano ?? 0) + data.readUIntBE(0, TIMESTAMP_OFFSET_NANO_SIZE);
    }
  }
  return { packetType: pt, timestampOffsetNano: nano };
}

/**
 * Non-throwing, allocation-free: the packet type of an Enhanced RTMP audio or
 * video payload after skipping ModEx prefixes and looking through a Multitrack
 * wrapper (`multitrackType` is the caller's Multitrack packet type value).
 * Returns -1 when the payload is too short to tell.
 */
export function peekExPacketType(payload: Buffer, multitrackPacketType: number): number {
  const b0 = payload[0];
  if (b0 === undefined) return -1;
  let pt = b0 & 0x0f;
  let pos = 1;
  while (pt === EX_PACKET_TYPE_MOD_EX) {
    const s = payload[pos];
    if (s === undefined) return -1;
    let size = s + 1;
    pos += 1;
    if (size === MOD_EX_SIZE_ESCAPE) {
      const hi = payload[pos];
      const lo = payload[pos + 1];
      if (hi === undefined || lo === undefined) return -1;
      size = ((hi << 8) | lo) + 1;
      pos += 2;
    }
    pos += size;
    const b = payload[pos];
    if (b === undefined) return -1;
    pt = b & 0x0f;
    pos += 1;
  }
  if (pt === multitrackPacketType) {
    const b = payload[pos];
    if (b === undefined) return -1;
    pt = b & 0x0f;
  }
  return pt;
}

/** Four bytes as a FourCC string ('hvc1'). */
export function readFourCC(r: ByteReader): string {
  return r.bytes(4).toString('latin1');
}

export interface MultitrackHeader {
  /** the packet type of the tracks */
  readonly packetType: number;
  /** the FourCC shared by the tracks, or the first track's own (ManyTracksManyCodecs) */
  readonly codec: string;
  readonly multitrack: { readonly type: number; readonly trackId: number };
  /** the first track's body: a sub-reader when tracks carry their sizes, else `r` itself */
  readonly body: ByteReader;
}

/**
 * Reads an Enhanced RTMP multitrack header (audio and video share its layout),
 * after the packet type said Multitrack; describes the first track only.
 */
export function readMultitrackHeader(r: ByteReader, kind: 'Audio' | 'Video', multitrack: number, modEx: number): MultitrackHeader {
  const b = r.u8();
  const multitrackType = b >> 4;
  const packetType = b & 0x0f;
  if (packetType === multitrack || packetType === modEx) {
    throw serverError(ErrorCode.FlvMalformed, `${kind}PacketType ${packetType} inside a Multitrack message`);
  }
  let codec: string;
  switch (multitrackType) {
    case AvMultitrackType.OneTrack:
    case AvMultitrackType.ManyTracks:
    case AvMultitrackType.ManyTracksManyCodecs:
      // one shared FourCC, or (ManyTracksManyCodecs) the first track's own: same position
      codec = readFourCC(r);
      break;
    default:
      throw serverError(ErrorCode.FlvMalformed, `unknown AvMultitrackType ${multitrackType}`);
  }
  const trackId = r.u8();
  let body = r;
  if (multitrackType !== AvMultitrackType.OneTrack) {
    const size = r.u24();
    body = new ByteReader(r.buf, r.pos, r.pos + size, ErrorCode.FlvMalformed);
    r.skip(size);
  }
  return { packetType, codec, multitrack: { type: multitrackType, trackId }, body };
}

/**
 * The FourCC part of an enhanced audio/video header: a plain FourCC, or a
 * multitrack header (described into `info`). Returns the tracks' packet type
 * and the reader of the first track's body.
 */
export function readTrackHeader(
  r: ByteReader,
  info: { packetType?: number; codec: string; multitrack?: { type: number; trackId: number } },
  packetType: number,
  kind: 'Audio' | 'Video',
  multitrack: number,
  modEx: number,
): { packetType: number; body: ByteReader } {
  if (packetType !== multitrack) {
    info.codec = readFourCC(r);
    return { packetType, body: r };
  }
  const mt = readMultitrackHeader(r, kind, multitrack, modEx);
  info.packetType = mt.packetType;
  info.codec = mt.codec;
  info.multitrack = mt.multitrack;
  return { packetType: mt.packetType, body: mt.body };
}
