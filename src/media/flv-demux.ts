import { ByteReader } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { FLV_HEADER_SIZE, FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE, FlvTagType } from './flv.js';
import { isVideoKeyframe, isVideoSequenceHeader } from './video.js';
import { isAudioSequenceHeader } from './audio.js';

/**
 * Reading an FLV *file* in pieces (VOD): the file header, then tags scanned
 * out of whatever window of the file the caller read. Nothing here reads a
 * file or keeps one whole: the caller reads a window at a file offset, hands
 * it to `scanFlvTags`, and continues at the offset it returns. Errors are
 * FlvMalformed.
 */

/** The file header's TypeFlags bits. */
const FlvFileFlag = { Audio: 0x04, Video: 0x01 } as const;
/** A DataOffset beyond this is not a real FLV header (the spec's is 9). */
const MAX_FILE_HEADER_SIZE = 1024;
/** The low 5 bits of a tag's first byte are its type (bit 5 is the filter/encryption flag). */
const TAG_TYPE_MASK = 0x1f;

export interface FlvFileHeader {
  readonly audio: boolean;
  readonly video: boolean;
  /** file offset of the first tag (after the header and PreviousTagSize0) */
  readonly firstTag: number;
}

/** Bytes the caller should read to parse the file header. */
export const FLV_FILE_HEADER_READ = FLV_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE;

/** Parses the 9-byte FLV file header (and checks the 4-byte PreviousTagSize0 after it when present). */
export function parseFlvFileHeader(buf: Buffer): FlvFileHeader {
  const r = new ByteReader(buf, 0, buf.length, ErrorCode.FlvMalformed);
  if (r.u8() !== 0x46 || r.u8() !== 0x4c || r.u8() !== 0x56) throw serverError(ErrorCode.FlvMalformed, 'not an FLV file: bad signature');
  const version = r.u8();
  if (version !== 1) throw serverError(ErrorCode.FlvMalformed, `unsupported FLV version ${version}`);
  const flags = r.u8();
  const dataOffset = r.u32();
  if (dataOffset < FLV_HEADER_SIZE || dataOffset > MAX_FILE_HEADER_SIZE) throw serverError(ErrorCode.FlvMalformed, `bad FLV DataOffset ${dataOffset}`);
  return { audio: (flags & FlvFileFlag.Audio) !== 0, video: (flags & FlvFileFlag.Video) !== 0, firstTag: dataOffset + FLV_PREVIOUS_TAG_SIZE };
}

/** One complete tag found by scanFlvTags: where its data is in the scanned buffer. */
export interface FlvTagVisit {
  /** 8 audio, 9 video, 18 script data (other types are passed too: the caller skips them) */
  type: number;
  timestamp: number;
  /** offset of the tag data in the scanned buffer */
  dataStart: number;
  dataSize: number;
  /** file offset of the tag (its 11-byte header) */
  fileOffset: number;
}

/**
 * Visits every complete tag (header, data and PreviousTagSize) in
 * `buf[start..end)`, whose first byte is at file offset `fileOffset`. Returns
 * the buffer offset after the last complete tag: the caller reads on from
 * there (a tag cut by the window's end is visited in the next window). A tag
 * larger than `maxDataSize`, or whose PreviousTagSize disagrees with its
 * header, is FlvMalformed. `visit` returning false stops the scan after that tag.
 */
export function scanFlvTags(buf: Buffer, start: number, end: number, fileOffset: number, maxDataSize: number, visit: (tag: FlvTagVisit) => boolean): number {
  if (start < 0 || end > buf.length || start > end) throw new RangeError(`bad scan window ${start}..${end} of ${buf.length}`);
  let pos = start;
  const v: FlvTagVisit = { type: 0, timestamp: 0, dataStart: 0, dataSize: 0, fileOffset: 0 };
  while (end - pos >= FLV_TAG_HEADER_SIZE) {
    const type = buf[pos]! & TAG_TYPE_MASK;
    const dataSize = buf.readUIntBE(pos + 1, 3);
    if (dataSize > maxDataSize) throw serverError(ErrorCode.FlvMalformed, `FLV tag at file offset ${fileOffset + pos - start} has ${dataSize} bytes of data, limit ${maxDataSize}`);
    const total = FLV_TAG_HEADER_SIZE + dataSize + FLV_PREVIOUS_TAG_SIZE;
    if (end - pos < total) break;
    const prev = buf.readUInt32BE(pos + FLV_TAG_HEADER_SIZE + dataSize);
    if (prev !== FLV_TAG_HEADER_SIZE + dataSize) {
      throw serverError(ErrorCode.FlvMalformed, `PreviousTagSize ${prev} at file offset ${fileOffset + pos - start}, expected ${FLV_TAG_HEADER_SIZE + dataSize}`);
    }
    v.type = type;
    v.timestamp = (buf.readUIntBE(pos + 4, 3) | (buf[pos + 7]! << 24)) >>> 0;
    v.dataStart = pos + FLV_TAG_HEADER_SIZE;
    v.dataSize = dataSize;
    v.fileOffset = fileOffset + pos - start;
    pos += total;
    if (!visit(v)) break;
  }
  return pos;
}

/** What a tag is for the VOD index: a video keyframe (a seek point), a codec header, or anything else. */
export const FlvTagRole = { Other: 0, Keyframe: 1, VideoHeader: 2, AudioHeader: 3, Metadata: 4 } as const;
export type FlvTagRole = (typeof FlvTagRole)[keyof typeof FlvTagRole];

/** Classifies a tag by its type and data (a few byte reads). */
export function flvTagRole(type: number, data: Buffer): FlvTagRole {
  switch (type) {
    case FlvTagType.Video:
      if (isVideoSequenceHeader(data)) return FlvTagRole.VideoHeader;
      return isVideoKeyframe(data) ? FlvTagRole.Keyframe : FlvTagRole.Other;
    case FlvTagType.Audio:
      return isAudioSequenceHeader(data) ? FlvTagRole.AudioHeader : FlvTagRole.Other;
    case FlvTagType.Script:
      return FlvTagRole.Metadata;
    default:
      return FlvTagRole.Other;
  }
}

/**
 * A keyframe index: times (ms) and file offsets of the tags a play may start
 * on, in typed arrays (a 2-hour file has a few thousand entries). Built by a
 * scan of the file or from onMetaData's `keyframes` object.
 */
export class FlvKeyframeIndex {
  private times = new Float64Array(64);
  private offsets = new Float64Array(64);
  count = 0;

  add(timeMs: number, fileOffset: number): void {
    if (this.count > 0 && timeMs < this.times[this.count - 1]!) return; // keep it sorted: a backwards keyframe is no seek point
    if (this.count === this.times.length) {
      const t = new Float64Array(this.count * 2);
      t.set(this.times);
      this.times = t;
      const o = new Float64Array(this.count * 2);
      o.set(this.offsets);
      this.offsets = o;
    }
    this.times[this.count] = timeMs;
    this.offsets[this.count] = fileOffset;
    this.count++;
  }

  /** file offsets of the first and the last keyframe (0 for an empty index) */
  get first(): number {
    return this.count > 0 ? this.offsets[0]! : 0;
  }
  get last(): number {
    return this.count > 0 ? this.offsets[this.count - 1]! : 0;
  }

  /** The last keyframe at or before `timeMs` (the first one when none is), or undefined for an empty index. */
  before(timeMs: number): { time: number; offset: number } | undefined {
    if (this.count === 0) return undefined;
    let lo = 0;
    let hi = this.count - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.times[mid]! <= timeMs) lo = mid;
      else hi = mid - 1;
    }
    return { time: this.times[lo]!, offset: this.offsets[lo]! };
  }

  /** From onMetaData's `keyframes: { times: [s...], filepositions: [bytes...] }`; undefined when absent or unusable. */
  static fromMetadata(times: readonly unknown[], positions: readonly unknown[], fileSize: number): FlvKeyframeIndex | undefined {
    if (times.length === 0 || times.length !== positions.length) return undefined;
    const index = new FlvKeyframeIndex();
    for (let i = 0; i < times.length; i++) {
      const t = times[i];
      const p = positions[i];
      if (typeof t !== 'number' || typeof p !== 'number' || !Number.isFinite(t) || !Number.isInteger(p) || p < FLV_HEADER_SIZE || p >= fileSize || t < 0) return undefined;
      index.add(Math.round(t * 1000), p);
    }
    return index;
  }
}
