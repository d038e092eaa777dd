import { ByteReader, ByteWriter } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { FLV_HEADER_SIZE, FLV_MAX_TAG_DATA_SIZE, FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE, FlvTagType, encodeFlvHeader } from './flv.js';

/**
 * FLV files as a recorder writes them (pure: bytes in, bytes out).
 *
 * Layout: the 13-byte file header (signature, flags, PreviousTagSize0), then
 * one `onMetaData` script tag of a FIXED size reserved at open, then the
 * media tags. The metadata tag is written first with duration 0 and an empty
 * keyframe index, and rewritten in place when the file closes (duration,
 * filesize, the keyframe index: `keyframes: {times: [], filepositions: []}`).
 * Every AMF0 number is 9 bytes, so the tag's size depends only on the number
 * of index entries: the reserve holds `capacity` entries, and the real
 * content is followed by zero bytes up to the reserved size (after the ECMA
 * array's end marker, where demuxers stop reading: ffmpeg skips to the tag's
 * end; flvtool/yamdi-style readers too). An index longer than the capacity
 * is thinned evenly (the first keyframe always kept), so seeking stays
 * possible over the whole file, with coarser steps.
 *
 * A file cut short (a crash) is valid up to its last complete tag: the
 * header and the reserved metadata go first, tags are appended whole.
 */

/** header + PreviousTagSize0: where the first tag (the metadata) starts */
export const FLV_FILE_HEADER_SIZE = FLV_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE;
/** per media tag: the 11-byte header + the 4-byte PreviousTagSize after its data */
export const FLV_TAG_OVERHEAD = FLV_TAG_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE;
/** keyframe index entries reserved by default (a 10 s GOP: 2.8 hours before thinning) */
export const DEFAULT_KEYFRAME_CAPACITY = 1024;
/** the most entries a reserve may hold (keeps the tag far below the 24-bit size limit) */
export const MAX_KEYFRAME_CAPACITY = 100_000;

const Amf0 = { Number: 0x00, Boolean: 0x01, String: 0x02, Object: 0x03, EcmaArray: 0x08, ObjectEnd: 0x09, StrictArray: 0x0a } as const;
/** an AMF0 number: marker + IEEE double */
const AMF0_NUMBER_SIZE = 9;
const AMF0_BOOLEAN_SIZE = 2;
/** empty key (u16 0) + end marker */
const AMF0_OBJECT_END_SIZE = 3;

/** The numeric fields of the metadata, in the order written. */
export const METADATA_NUMBER_KEYS = [
  'duration',
  'filesize',
  'width',
  'height',
  'framerate',
  'videodatarate',
  'videocodecid',
  'audiodatarate',
  'audiosamplerate',
  'audiosamplesize',
  'audiocodecid',
  'lasttimestamp',
  'lastkeyframetimestamp',
] as const;
export type MetadataNumberKey = (typeof METADATA_NUMBER_KEYS)[number];

export const METADATA_BOOLEAN_KEYS = ['stereo', 'hasVideo', 'hasAudio', 'hasKeyframes', 'hasMetadata'] as const;
export type MetadataBooleanKey = (typeof METADATA_BOOLEAN_KEYS)[number];

/** What the file's onMetaData says; every key is always written (0 / false when unknown) so the size is fixed. */
export type FlvFileMetadata = Record<MetadataNumberKey, number> & Record<MetadataBooleanKey, boolean>;

export function emptyMetadata(): FlvFileMetadata {
  return {
    duration: 0,
    filesize: 0,
    width: 0,
    height: 0,
    framerate: 0,
    videodatarate: 0,
    videocodecid: 0,
    audiodatarate: 0,
    audiosamplerate: 0,
    audiosamplesize: 0,
    audiocodecid: 0,
    lasttimestamp: 0,
    lastkeyframetimestamp: 0,
    stereo: false,
    hasVideo: false,
    hasAudio: false,
    hasKeyframes: false,
    hasMetadata: true,
  };
}

/** Keyframes: time in seconds from the file's start, and the file offset of the keyframe's tag. */
export interface KeyframeIndex {
  readonly times: readonly number[];
  readonly filepositions: readonly number[];
}

const ON_METADATA = 'onMetaData';
const KEYFRAMES = 'keyframes';
const TIMES = 'times';
const FILEPOSITIONS = 'filepositions';

function keySize(key: string): number {
  return 2 + Buffer.byteLength(key, 'latin1');
}

/** The script data size of the metadata with `entries` keyframes. */
function metadataDataSize(entries: number): number {
  let n = 1 + 2 + ON_METADATA.length; // string marker + u16 length + name
  n += 1 + 4; // ECMA array marker + count
  for (const k of METADATA_NUMBER_KEYS) n += keySize(k) + AMF0_NUMBER_SIZE;
  for (const k of METADATA_BOOLEAN_KEYS) n += keySize(k) + AMF0_BOOLEAN_SIZE;
  n += keySize(KEYFRAMES) + 1; // the keyframes object
  n += keySize(TIMES) + 1 + 4 + entries * AMF0_NUMBER_SIZE;
  n += keySize(FILEPOSITIONS) + 1 + 4 + entries * AMF0_NUMBER_SIZE;
  n += AMF0_OBJECT_END_SIZE; // end of keyframes
  n += AMF0_OBJECT_END_SIZE; // end of the ECMA array
  return n;
}

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_KEYFRAME_CAPACITY) {
    throw new RangeError(`keyframe index capacity ${capacity} outside 0..${MAX_KEYFRAME_CAPACITY}`);
  }
}

/** Bytes of the reserved metadata tag (tag header, data, PreviousTagSize) for `capacity` index entries. */
export function metadataTagLength(capacity: number): number {
  checkCapacity(capacity);
  return FLV_TAG_OVERHEAD + metadataDataSize(capacity);
}

/** The file offset of the first media tag, after the header and the reserved metadata. */
export function firstMediaTagOffset(capacity: number): number {
  return FLV_FILE_HEADER_SIZE + metadataTagLength(capacity);
}

/** At most `capacity` entries of the index, evenly spread, the first kept. */
export function thinIndex(index: KeyframeIndex, capacity: number): KeyframeIndex {
  const n = Math.min(index.times.length, index.filepositions.length);
  if (n <= capacity) return { times: index.times.slice(0, n), filepositions: index.filepositions.slice(0, n) };
  const times: number[] = [];
  const filepositions: number[] = [];
  for (let i = 0; i < capacity; i++) {
    const k = Math.floor((i * n) / capacity);
    times.push(index.times[k]!);
    filepositions.push(index.filepositions[k]!);
  }
  return { times, filepositions };
}

function key(w: ByteWriter, k: string): void {
  w.u16(k.length);
  w.bytes(Buffer.from(k, 'latin1'));
}

function finite(v: number): number {
  return Number.isFinite(v) ? v : 0;
}

/**
 * The metadata script tag, exactly `metadataTagLength(capacity)` bytes, with
 * timestamp 0: the content, then zero padding up to the reserved size, then
 * the PreviousTagSize.
 */
export function encodeMetadataTag(meta: FlvFileMetadata, index: KeyframeIndex, capacity: number): Buffer {
  const total = metadataTagLength(capacity);
  const dataSize = total - FLV_TAG_OVERHEAD;
  const idx = thinIndex(index, capacity);
  const w = new ByteWriter(total);
  w.u8(FlvTagType.Script).u24(dataSize).u24(0).u8(0).u24(0);
  w.u8(Amf0.String);
  key(w, ON_METADATA);
  w.u8(Amf0.EcmaArray).u32(METADATA_NUMBER_KEYS.length + METADATA_BOOLEAN_KEYS.length + 1);
  for (const k of METADATA_NUMBER_KEYS) {
    key(w, k);
    w.u8(Amf0.Number).f64(finite(meta[k]));
  }
  for (const k of METADATA_BOOLEAN_KEYS) {
    key(w, k);
    w.u8(Amf0.Boolean).u8(meta[k] ? 1 : 0);
  }
  key(w, KEYFRAMES);
  w.u8(Amf0.Object);
  key(w, TIMES);
  w.u8(Amf0.StrictArray).u32(idx.times.length);
  for (const t of idx.times) w.u8(Amf0.Number).f64(finite(t));
  key(w, FILEPOSITIONS);
  w.u8(Amf0.StrictArray).u32(idx.filepositions.length);
  for (const p of idx.filepositions) w.u8(Amf0.Number).f64(finite(p));
  w.u16(0).u8(Amf0.ObjectEnd);
  w.u16(0).u8(Amf0.ObjectEnd);
  const used = FLV_TAG_HEADER_SIZE + metadataDataSize(idx.times.length);
  // zero padding up to the reserve (ByteWriter buffers start zeroed)
  w.bytes(Buffer.alloc(FLV_TAG_HEADER_SIZE + dataSize - used));
  w.u32(FLV_TAG_HEADER_SIZE + dataSize);
  return w.done();
}

/** The start of a new file: the file header and the reserved metadata (no duration, empty index). */
export function encodeFlvFileStart(meta: FlvFileMetadata, capacity: number): Buffer {
  const header = encodeFlvHeader({ audio: meta.hasAudio, video: meta.hasVideo });
  return Buffer.concat([header, encodeMetadataTag(meta, { times: [], filepositions: [] }, capacity)]);
}

/**
 * Writes one tag header (11 bytes) at `offset` of `target`: type, data size,
 * timestamp (lower 24 bits + extended byte, modulo 2^32), stream id 0.
 */
export function writeFlvTagHeader(target: Buffer, offset: number, type: number, dataSize: number, timestamp: number): void {
  if (dataSize > FLV_MAX_TAG_DATA_SIZE || dataSize < 0) throw serverError(ErrorCode.FlvMalformed, `FLV tag data of ${dataSize} bytes does not fit the 24-bit DataSize field`);
  const ts = timestamp >>> 0;
  target[offset] = type & 0x1f;
  target.writeUIntBE(dataSize, offset + 1, 3);
  target.writeUIntBE(ts & 0xffffff, offset + 4, 3);
  target[offset + 7] = ts >>> 24;
  target.writeUIntBE(0, offset + 8, 3);
}

/** What the end of an FLV file says about its last tag (for record_append). */
export interface FlvTail {
  /** file offset of the last tag */
  readonly offset: number;
  readonly type: number;
  readonly dataSize: number;
  readonly timestamp: number;
}

/**
 * Reads the last tag of a file from its last bytes: `tail` holds the file's
 * last `tail.length` bytes, `fileSize` is the file's size. Returns undefined
 * for a file with no tag (just the header); throws FlvMalformed when the
 * PreviousTagSize does not point at a consistent tag inside `tail`.
 */
export function readFlvTail(tail: Buffer, fileSize: number): FlvTail | undefined {
  if (fileSize < FLV_FILE_HEADER_SIZE || tail.length < FLV_PREVIOUS_TAG_SIZE || tail.length > fileSize) {
    throw serverError(ErrorCode.FlvMalformed, `not a complete FLV file (${fileSize} bytes)`);
  }
  const r = new ByteReader(tail, tail.length - FLV_PREVIOUS_TAG_SIZE, tail.length, ErrorCode.FlvMalformed);
  const prev = r.u32();
  if (prev === 0) {
    if (fileSize === FLV_FILE_HEADER_SIZE) return undefined;
    throw serverError(ErrorCode.FlvMalformed, 'the last PreviousTagSize is 0 after a tag');
  }
  const tagStartInTail = tail.length - FLV_PREVIOUS_TAG_SIZE - prev;
  const offset = fileSize - FLV_PREVIOUS_TAG_SIZE - prev;
  if (prev < FLV_TAG_HEADER_SIZE || tagStartInTail < 0 || offset < FLV_FILE_HEADER_SIZE) {
    throw serverError(ErrorCode.FlvMalformed, `the last PreviousTagSize ${prev} points outside the file`);
  }
  const h = new ByteReader(tail, tagStartInTail, tagStartInTail + FLV_TAG_HEADER_SIZE, ErrorCode.FlvMalformed);
  const type = h.u8() & 0x1f;
  const dataSize = h.u24();
  const low = h.u24();
  const ext = h.u8();
  if (dataSize + FLV_TAG_HEADER_SIZE !== prev) {
    throw serverError(ErrorCode.FlvMalformed, `the last tag's size ${dataSize} does not match its PreviousTagSize ${prev}`);
  }
  return { offset, type, dataSize, timestamp: ((ext << 24) | low) >>> 0 };
}
