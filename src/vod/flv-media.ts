import type { FileHandle } from 'node:fs/promises';
import { ByteReader } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { FrameKind, MediaFrame, frameFlags } from '../live/frame.js';
import { FLV_FILE_HEADER_READ, FlvKeyframeIndex, FlvTagRole, flvTagRole, parseFlvFileHeader, scanFlvTags } from '../media/flv-demux.js';
import { FlvTagType } from '../media/flv.js';
import { amfObjectOf, AmfEcmaArray, type AmfObject } from '../rtmp/amf-types.js';
import { createAmf0DecodeContext, decodeAmf0, decodeAmf0Value } from '../rtmp/amf0.js';
import { readAt, type SharedFile, type SharedFiles } from './shared-file.js';
import { asReadFailed, type VodFrame, type VodMedia } from './vod-media.js';

/**
 * An FLV file played: its index (one scan in windows, or a recorder's
 * keyframe index in onMetaData: keyframes, codec headers, metadata, duration)
 * and `FlvMedia`, one play's position in it, reading tags in windows through
 * the file's shared frame cache. Not the opening of the file nor the cache of
 * indexes (src/vod/media-file.ts), nor the parsing of tags (src/media/flv-demux.ts).
 */

/** Reads of an FLV file: a window this large (a larger tag gets a window of its own size). */
const FLV_WINDOW = 64 * 1024;
/** An FLV tag larger than this is corrupt (16 MiB: far above any real frame). */
const FLV_MAX_TAG = 16 * 1024 * 1024;
/** Metadata larger than this is not sent (a recorder's keyframe index of a very long file stays far below). */
const MAX_METADATA = 1024 * 1024;

export interface FlvIndex {
  readonly kind: 'flv';
  readonly audio: boolean;
  readonly video: boolean;
  readonly firstTag: number;
  /** where the last complete tag ends: a truncated file plays up to there */
  readonly end: number;
  readonly durationMs: number;
  readonly metadata: Buffer | undefined;
  readonly headers: readonly VodFrame[];
  readonly keyframes: FlvKeyframeIndex;
}

/** Scans an FLV file once (in windows): keyframes, codec headers, metadata, duration. */
export async function indexFlv(fh: FileHandle, size: number): Promise<FlvIndex> {
  const header = parseFlvFileHeader(await readAt(fh, 0, FLV_FILE_HEADER_READ));
  let pos = header.firstTag;
  let metadata: Buffer | undefined;
  let videoHeader: VodFrame | undefined;
  let audioHeader: VodFrame | undefined;
  let lastTs = 0;
  let firstTs = -1;
  let video = false;
  let audio = false;
  const keyframes = new FlvKeyframeIndex();
  let window = FLV_WINDOW;
  /** until the first keyframe: a keyframe index in the metadata may spare the rest of the scan */
  let tryIndex = true;
  while (pos < size) {
    const buf = await readAt(fh, pos, Math.min(window, size - pos));
    let stopped = false;
    const next = scanFlvTags(buf, 0, buf.length, pos, FLV_MAX_TAG, (t) => {
      if (t.type !== FlvTagType.Audio && t.type !== FlvTagType.Video && t.type !== FlvTagType.Script) return true;
      const data = buf.subarray(t.dataStart, t.dataStart + t.dataSize);
      if (t.type !== FlvTagType.Script) {
        if (firstTs < 0) firstTs = t.timestamp;
        lastTs = Math.max(lastTs, t.timestamp);
        if (t.type === FlvTagType.Video) video = true;
        else audio = true;
      }
      const role = flvTagRole(t.type, data);
      switch (role) {
        case FlvTagRole.Keyframe:
          keyframes.add(t.timestamp, t.fileOffset);
          if (tryIndex && metadata !== undefined && videoHeader !== undefined && (audioHeader !== undefined || !header.audio)) {
            stopped = true;
            return false;
          }
          break;
        case FlvTagRole.VideoHeader:
          videoHeader ??= { kind: FrameKind.Video, timestamp: 0, payload: Buffer.from(data) };
          break;
        case FlvTagRole.AudioHeader:
          audioHeader ??= { kind: FrameKind.Audio, timestamp: 0, payload: Buffer.from(data) };
          break;
        case FlvTagRole.Metadata:
          if (metadata === undefined && data.length <= MAX_METADATA && isOnMetaData(data)) metadata = Buffer.from(amfValuesOnly(data));
          break;
        case FlvTagRole.Other:
          break;
        default: {
          const never: never = role;
          throw new TypeError(`unknown role ${String(never)}`);
        }
      }
      return true;
    });
    if (next === 0) {
      // not one complete tag in the window: a tag larger than the window, or the file's truncated end
      if (buf.length < window) break; // the end of the file: the rest is an incomplete tag
      window = Math.min(FLV_MAX_TAG + 64, window * 4);
      continue;
    }
    window = FLV_WINDOW;
    pos += next;
    if (stopped) {
      tryIndex = false;
      // a recorder's keyframe index in onMetaData (checked at its ends) spares the scan of the whole file
      const indexed = metadataKeyframes(metadata, size);
      const duration = metadataDuration(metadata);
      if (indexed !== undefined && duration !== undefined && (await videoTagAt(fh, indexed.first)) && (await videoTagAt(fh, indexed.last))) {
        const headers = [videoHeader, audioHeader].filter((h): h is VodFrame => h !== undefined);
        return { kind: 'flv', audio: audio || header.audio, video: true, firstTag: header.firstTag, end: size, durationMs: duration, metadata, headers, keyframes: indexed };
      }
    }
    if (!stopped) tryIndex = false;
  }
  const durationMs = Math.max(0, lastTs - Math.max(0, firstTs));
  const headers = [videoHeader, audioHeader].filter((h): h is VodFrame => h !== undefined);
  return { kind: 'flv', audio: audio || header.audio, video: video || header.video, firstTag: header.firstTag, end: pos, durationMs: metadataDuration(metadata) ?? durationMs, metadata, headers, keyframes };
}

/**
 * The script data up to the end of its two AMF0 values ("onMetaData", the
 * object): a recorder's reserved metadata tag (src/media/flv-file.ts) ends in
 * zero padding, which FLV file readers skip but ffmpeg's RTMP client walks as
 * more properties and refuses (Invalid data). Undecodable data is kept as is.
 */
function amfValuesOnly(data: Buffer): Buffer {
  try {
    const r = new ByteReader(data);
    const ctx = createAmf0DecodeContext();
    decodeAmf0Value(r, ctx);
    decodeAmf0Value(r, ctx);
    return data.subarray(0, r.pos);
  } catch {
    return data;
  }
}

function isOnMetaData(data: Buffer): boolean {
  // AMF0 string "onMetaData": marker 2, length 10
  return data.length > 13 && data[0] === 2 && data.readUInt16BE(1) === 10 && data.toString('latin1', 3, 13) === 'onMetaData';
}

function metadataObject(metadata: Buffer | undefined): AmfObject | undefined {
  if (metadata === undefined) return undefined;
  try {
    const v = decodeAmf0(metadata)[1];
    return v instanceof AmfEcmaArray ? v.value : v !== undefined ? amfObjectOf(v) : undefined;
  } catch {
    return undefined;
  }
}

function metadataDuration(metadata: Buffer | undefined): number | undefined {
  const d = metadataObject(metadata)?.['duration'];
  return typeof d === 'number' && Number.isFinite(d) && d > 0 ? Math.round(d * 1000) : undefined;
}

/** onMetaData's `keyframes: { times, filepositions }` (a recorder's index), when it fits the file. */
function metadataKeyframes(metadata: Buffer | undefined, fileSize: number): FlvKeyframeIndex | undefined {
  const k = metadataObject(metadata)?.['keyframes'];
  const o = k instanceof AmfEcmaArray ? k.value : k !== undefined ? amfObjectOf(k) : undefined;
  const times = o?.['times'];
  const positions = o?.['filepositions'];
  if (!Array.isArray(times) || !Array.isArray(positions)) return undefined;
  return FlvKeyframeIndex.fromMetadata(times, positions, fileSize);
}

/** Whether a video tag header starts at `offset` (a metadata keyframe index is checked before it is believed). */
async function videoTagAt(fh: FileHandle, offset: number): Promise<boolean> {
  const b = await readAt(fh, offset, 1);
  return b.length === 1 && (b[0]! & 0x1f) === FlvTagType.Video;
}

/** An FLV tag's header bytes: type, data size (24 bits) (src/media/flv-demux.ts reads the rest). */
const FLV_TAG_HEADER = 11;
const FLV_PREVIOUS_TAG_SIZE = 4;

export class FlvMedia implements VodMedia {
  readonly format = 'flv';
  private pos: number;
  private closed = false;

  constructor(
    private readonly files: SharedFiles,
    private readonly file: SharedFile,
    private readonly index: FlvIndex,
  ) {
    this.pos = index.firstTag;
  }

  get durationMs(): number {
    return this.index.durationMs;
  }
  get hasVideo(): boolean {
    return this.index.video;
  }
  get hasAudio(): boolean {
    return this.index.audio;
  }
  get metadata(): Buffer | undefined {
    return this.index.metadata;
  }
  get headers(): readonly VodFrame[] {
    return this.index.headers;
  }

  seek(ms: number): number {
    const k = ms > 0 ? this.index.keyframes.before(ms) : undefined;
    if (k === undefined) {
      this.pos = this.index.firstTag;
      return 0;
    }
    this.pos = k.offset;
    return k.time;
  }

  async read(untilMs: number, maxBytes: number): Promise<MediaFrame[]> {
    const out: MediaFrame[] = [];
    let bytes = 0;
    const end = this.index.end;
    while (this.pos < end) {
      // a frame another play (or this one) read lately: no read
      const c = this.file.get(this.pos);
      if (c !== undefined) {
        if (out.length > 0 && (c.frame.timestamp > untilMs || bytes >= maxBytes)) return out;
        out.push(c.frame);
        bytes += c.frame.payload.length;
        this.pos = c.next;
        continue;
      }
      // else a window from here: every audio/video tag in it is kept for the plays that come by
      const pos = this.pos;
      let buf = await this.file.read(pos, Math.min(FLV_WINDOW, end - pos));
      if (buf.length >= FLV_TAG_HEADER) {
        const whole = FLV_TAG_HEADER + buf.readUIntBE(1, 3) + FLV_PREVIOUS_TAG_SIZE;
        // a tag larger than the window gets a window of its own size
        if (whole > buf.length && whole <= FLV_MAX_TAG + FLV_TAG_HEADER + FLV_PREVIOUS_TAG_SIZE && pos + buf.length < end) buf = await this.file.read(pos, Math.min(whole, end - pos));
      }
      if (this.closed) return out;
      const file = this.file;
      let stopped = false;
      let next: number;
      try {
        next = scanFlvTags(buf, 0, buf.length, pos, FLV_MAX_TAG, (t) => {
          const after = t.fileOffset + FLV_TAG_HEADER + t.dataSize + FLV_PREVIOUS_TAG_SIZE;
          let frame: MediaFrame | undefined;
          if (t.type === FlvTagType.Audio || t.type === FlvTagType.Video) {
            // every frame of the window is kept for the plays that come by (a view of the window: it lives while cached or queued)
            frame = file.get(t.fileOffset)?.frame;
            if (frame === undefined) {
              const kind = t.type === FlvTagType.Audio ? FrameKind.Audio : FrameKind.Video;
              const payload = buf.subarray(t.dataStart, t.dataStart + t.dataSize);
              frame = file.put(t.fileOffset, new MediaFrame(kind, t.timestamp, payload, frameFlags(kind, payload)), after).frame;
            }
          }
          if (stopped) return true;
          if (frame !== undefined) {
            if (out.length > 0 && (frame.timestamp > untilMs || bytes >= maxBytes)) {
              stopped = true;
              this.pos = t.fileOffset;
              return true;
            }
            out.push(frame);
            bytes += frame.payload.length;
          }
          this.pos = after;
          return true;
        });
      } catch (e) {
        // a broken tag past what this play takes now: it fails when it gets there (the frames before it play)
        if (stopped) return out;
        throw asReadFailed(e, 'FLV');
      }
      if (next === 0) throw serverError(ErrorCode.VodReadFailed, `FLV: the file changed under the play (short read at ${pos})`);
      if (stopped) return out;
    }
    return out;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.files.release(this.file);
  }
}
