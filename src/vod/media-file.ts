import { open, type FileHandle } from 'node:fs/promises';
import { ByteReader } from '../core/bytes.js';
import { ErrorCode, ServerError, serverError } from '../core/errors.js';
import { FrameKind, MediaFrame, frameFlags } from '../live/frame.js';
import { FLV_FILE_HEADER_READ, FlvKeyframeIndex, FlvTagRole, flvTagRole, parseFlvFileHeader, scanFlvTags } from '../media/flv-demux.js';
import { FlvTagType } from '../media/flv.js';
import {
  MP4_BOX_HEADER_MAX,
  MP4_LIMITS,
  Mp4BoxType,
  Mp4Cursor,
  flvHeaderSize,
  flvSequenceHeader,
  parseBoxHeader,
  parseMoov,
  writeFlvSampleHeader,
  type Mp4Movie,
  type Mp4Track,
} from '../media/mp4-demux.js';
import { VideoCodecId } from '../media/video.js';
import { SoundFormat } from '../media/audio.js';
import { amfObjectOf, AmfEcmaArray, type AmfObject, type AmfValue } from '../rtmp/amf-types.js';
import { createAmf0DecodeContext, decodeAmf0, decodeAmf0Value, encodeAmf0 } from '../rtmp/amf0.js';
import { SharedFiles, readAt, type SharedFile } from './shared-file.js';

/**
 * A VOD file opened for one play: FLV or MP4, read in pieces (a window of
 * the file at a time, never the whole file). What a file costs to index
 * (an FLV's keyframe scan, an MP4's sample tables) is kept in a `VodIndexCache`
 * shared by every play of that file (same path, size and mtime); so are, while
 * the file has plays, its file descriptor and the frames read lately
 * (src/vod/shared-file.ts): plays near each other in the file share one
 * read and one copy of each frame, and its RTMP encoding.
 */

/** One frame as the play sends it: an FLV tag body and its time in ms. */
export interface VodFrame {
  readonly kind: FrameKind;
  readonly timestamp: number;
  readonly payload: Buffer;
}

export interface VodMedia {
  readonly format: 'flv' | 'mp4';
  readonly durationMs: number;
  readonly hasVideo: boolean;
  readonly hasAudio: boolean;
  /** the onMetaData script data (AMF0 "onMetaData", object) */
  readonly metadata: Buffer | undefined;
  /** codec headers (AVC/HEVC configuration, AudioSpecificConfig), sent at the start and after every seek */
  readonly headers: readonly VodFrame[];
  /** Positions the play on the keyframe at or before `ms`; returns the time it starts at. */
  seek(ms: number): number;
  /**
   * The next frames up to `untilMs` (at most about `maxBytes`; at least one
   * frame while any is left); [] at the end of the file. Throws VodReadFailed
   * for a truncated or corrupt file.
   */
  read(untilMs: number, maxBytes: number): Promise<MediaFrame[]>;
  close(): Promise<void>;
}

/** Reads of an FLV file: a window this large (a larger tag gets a window of its own size). */
const FLV_WINDOW = 64 * 1024;
/** An FLV tag larger than this is corrupt (16 MiB: far above any real frame). */
const FLV_MAX_TAG = 16 * 1024 * 1024;
/** Metadata larger than this is not sent (a recorder's keyframe index of a very long file stays far below). */
const MAX_METADATA = 1024 * 1024;
/** MP4 samples close together in the file are read with one read of at most this many bytes. */
const MP4_SPAN = 4 * 1024 * 1024;

/** What a file's index is cached under: the same path with another size or mtime is another file. */
export interface FileIdentity {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

interface FlvIndex {
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

interface Mp4Index {
  readonly kind: 'mp4';
  readonly movie: Mp4Movie;
  readonly metadata: Buffer;
  readonly headers: readonly VodFrame[];
}

type FileIndex = FlvIndex | Mp4Index;

/** The indexes of recently played files (a few: each play of a popular file shares one). */
export class VodIndexCache {
  private readonly entries = new Map<string, Promise<FileIndex>>();
  /** the open files (a descriptor and the frames read lately, shared by the plays of each) */
  readonly files: SharedFiles;

  constructor(
    private readonly max = 32,
    files = new SharedFiles(),
  ) {
    this.files = files;
  }

  get(id: FileIdentity, build: () => Promise<FileIndex>): Promise<FileIndex> {
    const key = identityKey(id);
    let p = this.entries.get(key);
    if (p !== undefined) {
      // most recently used last
      this.entries.delete(key);
      this.entries.set(key, p);
      return p;
    }
    p = build();
    this.entries.set(key, p);
    p.catch(() => this.entries.delete(key));
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return p;
  }
}

function identityKey(id: FileIdentity): string {
  return `${id.path}\0${id.size}\0${id.mtimeMs}`;
}

/** The file's format by its name: `.mp4`, `.m4v`, `.mov`, `.f4v`, `.m4a` are MP4, everything else FLV (nginx-rtmp's default format). */
export function formatOf(file: string): 'flv' | 'mp4' {
  return /\.(mp4|m4v|m4a|mov|f4v|3gp)$/i.test(file) ? 'mp4' : 'flv';
}

/** Opens a VOD file (FLV or MP4 by its name). Throws VodReadFailed (or FlvMalformed/Mp4Malformed inside it) for a file it cannot play. */
export async function openVodFile(file: string, cache: VodIndexCache): Promise<VodMedia> {
  let fh: FileHandle | undefined = await open(file, 'r');
  let shared: SharedFile | undefined;
  try {
    const st = await fh.stat();
    const id: FileIdentity = { path: file, size: st.size, mtimeMs: st.mtimeMs };
    const format = formatOf(file);
    const index = await cache.get(id, () => (format === 'mp4' ? indexMp4(fh!, st.size) : indexFlv(fh!, st.size)));
    // the same file (path, size, mtime) open for another play: its descriptor and frames serve this one too
    const key = identityKey(id);
    shared = cache.files.acquire(key);
    if (shared === undefined) shared = cache.files.add(key, fh);
    else await fh.close();
    fh = undefined;
    return index.kind === 'mp4' ? new Mp4Media(cache.files, shared, index, st.size) : new FlvMedia(cache.files, shared, index);
  } catch (e) {
    if (shared !== undefined) await cache.files.release(shared).catch(() => undefined);
    else await fh?.close().catch(() => undefined);
    throw asReadFailed(e, file);
  }
}

function asReadFailed(e: unknown, file: string): ServerError {
  if (e instanceof ServerError && e.code === ErrorCode.VodReadFailed) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return serverError(ErrorCode.VodReadFailed, `${file}: ${msg}`, e);
}

// ---- FLV ----

/** Scans an FLV file once (in windows): keyframes, codec headers, metadata, duration. */
async function indexFlv(fh: FileHandle, size: number): Promise<FlvIndex> {
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

class FlvMedia implements VodMedia {
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

// ---- MP4 ----

async function indexMp4(fh: FileHandle, size: number): Promise<Mp4Index> {
  let pos = 0;
  let moov: { offset: number; size: number; header: number } | undefined;
  while (pos < size) {
    const hb = await readAt(fh, pos, Math.min(MP4_BOX_HEADER_MAX, size - pos));
    const h = parseBoxHeader(hb, 0, pos, size);
    if (h === undefined) break; // trailing bytes shorter than a box header
    if (h.type === Mp4BoxType.Moov) {
      moov = { offset: pos, size: h.size, header: h.headerSize };
      break;
    }
    pos += h.size;
  }
  if (moov === undefined) throw serverError(ErrorCode.Mp4Malformed, 'no moov box (an MP4 still being written, or not an MP4)');
  if (moov.size > MP4_LIMITS.maxMoovBytes) throw serverError(ErrorCode.Mp4Malformed, `moov of ${moov.size} bytes, limit ${MP4_LIMITS.maxMoovBytes}`);
  const body = await readAt(fh, moov.offset + moov.header, moov.size - moov.header);
  if (body.length < moov.size - moov.header) throw serverError(ErrorCode.Mp4Malformed, 'moov box truncated');
  const movie = parseMoov(body);
  if (movie.video === undefined && movie.audio === undefined) throw serverError(ErrorCode.Mp4Malformed, 'no H.264/HEVC video or AAC audio track');
  const headers: VodFrame[] = [];
  if (movie.video !== undefined) headers.push({ kind: FrameKind.Video, timestamp: 0, payload: flvSequenceHeader(movie.video) });
  if (movie.audio !== undefined) headers.push({ kind: FrameKind.Audio, timestamp: 0, payload: flvSequenceHeader(movie.audio) });
  return { kind: 'mp4', movie, metadata: mp4Metadata(movie, size), headers };
}

function mp4Metadata(movie: Mp4Movie, fileSize: number): Buffer {
  const o: AmfObject = { duration: movie.durationMs / 1000, filesize: fileSize };
  const v = movie.video;
  if (v !== undefined) {
    o['width'] = v.width;
    o['height'] = v.height;
    o['videocodecid'] = v.codec === 'avc1' ? VideoCodecId.Avc : VideoCodecId.Hevc;
    if (v.samples.count > 1 && v.durationMs > 0) o['framerate'] = Math.round((v.samples.count * 1000 * 100) / v.durationMs) / 100;
  }
  const a = movie.audio;
  if (a !== undefined) {
    o['audiocodecid'] = SoundFormat.Aac;
    o['audiosamplerate'] = a.sampleRate;
    o['audiochannels'] = a.channels;
    o['stereo'] = a.channels > 1;
  }
  const values: AmfValue[] = ['onMetaData', new AmfEcmaArray(o)];
  return encodeAmf0(values);
}

/** An MP4 sample's place in the shared frame cache: its track (0 video, 1 audio) and number. */
function sampleKey(track: Mp4Track, index: number): number {
  return index * 2 + (track.kind === 'video' ? 0 : 1);
}

class Mp4Media implements VodMedia {
  readonly format = 'mp4';
  private readonly cursor: Mp4Cursor;
  private closed = false;

  constructor(
    private readonly files: SharedFiles,
    private readonly file: SharedFile,
    private readonly index: Mp4Index,
    private readonly fileSize: number,
  ) {
    this.cursor = new Mp4Cursor(index.movie);
  }

  get durationMs(): number {
    return this.index.movie.durationMs;
  }
  get hasVideo(): boolean {
    return this.index.movie.video !== undefined;
  }
  get hasAudio(): boolean {
    return this.index.movie.audio !== undefined;
  }
  get metadata(): Buffer {
    return this.index.metadata;
  }
  get headers(): readonly VodFrame[] {
    return this.index.headers;
  }

  seek(ms: number): number {
    return this.cursor.seek(ms);
  }

  async read(untilMs: number, maxBytes: number): Promise<MediaFrame[]> {
    const picked: { track: Mp4Track; index: number }[] = [];
    let bytes = 0;
    let lo = Infinity;
    let hi = 0;
    let missing = 0;
    while (this.cursor.peekTime() !== Infinity && (picked.length === 0 || (this.cursor.peekTime() <= untilMs && bytes < maxBytes))) {
      const s = this.cursor.next()!;
      const t = s.track.samples;
      const off = t.offsets[s.index]!;
      const size = t.sizes[s.index]!;
      if (off + size > this.fileSize) throw serverError(ErrorCode.VodReadFailed, `MP4: sample ${s.index} at ${off} (+${size}) is past the end of the file (${this.fileSize} bytes): truncated`);
      picked.push(s);
      bytes += size;
      // only the samples no play read lately are read
      if (this.file.get(sampleKey(s.track, s.index)) !== undefined) continue;
      missing += size;
      lo = Math.min(lo, off);
      hi = Math.max(hi, off + size);
    }
    if (picked.length === 0) return [];
    // one read when the samples lie close together (they are interleaved in chunks), else one read each
    const span = missing > 0 && hi - lo <= MP4_SPAN && hi - lo <= 2 * missing + 65536 ? await this.file.read(lo, hi - lo) : undefined;
    if (span !== undefined && span.length < hi - lo) throw serverError(ErrorCode.VodReadFailed, `MP4: short read at ${lo}: the file is truncated`);
    const out: MediaFrame[] = [];
    for (const s of picked) {
      const key = sampleKey(s.track, s.index);
      const cached = this.file.get(key);
      if (cached !== undefined) {
        out.push(cached.frame);
        continue;
      }
      const t = s.track.samples;
      const off = t.offsets[s.index]!;
      const size = t.sizes[s.index]!;
      const h = flvHeaderSize(s.track);
      const payload = Buffer.allocUnsafe(h + size);
      writeFlvSampleHeader(s.track, s.index, payload);
      if (span !== undefined && off >= lo && off + size <= hi) span.copy(payload, h, off - lo, off - lo + size);
      else {
        const { bytesRead } = await this.file.fh.read(payload, h, size, off);
        if (bytesRead < size) throw serverError(ErrorCode.VodReadFailed, `MP4: short read at ${off}: the file is truncated`);
      }
      const kind = s.track.kind === 'video' ? FrameKind.Video : FrameKind.Audio;
      out.push(this.file.put(key, new MediaFrame(kind, Math.round(t.times[s.index]!), payload, frameFlags(kind, payload))).frame);
    }
    return out;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.files.release(this.file);
  }
}
