import type { FileHandle } from 'node:fs/promises';
import { ErrorCode, serverError } from '../core/errors.js';
import { FrameKind, MediaFrame, frameFlags } from '../live/frame.js';
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
import { AmfEcmaArray, type AmfObject, type AmfValue } from '../rtmp/amf-types.js';
import { encodeAmf0 } from '../rtmp/amf0.js';
import { readAt, type SharedFile, type SharedFiles } from './shared-file.js';
import type { VodFrame, VodMedia } from './vod-media.js';

/**
 * An MP4 file played: its index (the moov box's sample tables, the codec
 * headers and an onMetaData built from them) and `Mp4Media`, one play's
 * cursor over the samples, reading neighbouring samples in one read through
 * the file's shared frame cache. Not the opening of the file nor the cache of
 * indexes (src/vod/media-file.ts), nor the parsing of boxes (src/media/mp4-demux.ts).
 */

/** MP4 samples close together in the file are read with one read of at most this many bytes. */
const MP4_SPAN = 4 * 1024 * 1024;

export interface Mp4Index {
  readonly kind: 'mp4';
  readonly movie: Mp4Movie;
  readonly metadata: Buffer;
  readonly headers: readonly VodFrame[];
}

export async function indexMp4(fh: FileHandle, size: number): Promise<Mp4Index> {
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

export class Mp4Media implements VodMedia {
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
