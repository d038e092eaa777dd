/**
 * One piece (file) of a recording and the bytes that go in it: the FLV file
 * start (header, reserved onMetaData, codec headers), one FLV tag per frame,
 * and at close the onMetaData rewritten in place (duration, size, keyframe
 * index); or, for `record_format mp4`, the init and whole fragments of the
 * piece's Mp4Piece (mp4.ts). Also what the stream told about itself
 * (StreamInfo: the publisher's onMetaData and the codec headers) that the
 * FLV metadata is made from.
 *
 * It is not the recorder's life cycle, rolling, naming or notifications
 * (recorder.ts), nor the opening and writing of files (disk.ts).
 */
import type { FileHandle } from 'node:fs/promises';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import {
  FLV_FILE_HEADER_SIZE,
  FLV_TAG_OVERHEAD,
  emptyMetadata,
  encodeFlvFileStart,
  encodeMetadataTag,
  writeFlvTagHeader,
  type FlvFileMetadata,
} from '../media/flv-file.js';
import { FLV_TAG_HEADER_SIZE } from '../media/flv.js';
import { decodeAmf0 } from '../rtmp/amf0.js';
import { amfObjectOf } from '../rtmp/amf-types.js';
import { writeEndingAt, type OpenedFile } from './disk.js';
import type { Mp4Piece } from './mp4.js';

/** The metadata numbers taken from the publisher's onMetaData when present. */
const COPIED_NUMBERS = ['width', 'height', 'framerate', 'videodatarate', 'audiodatarate', 'audiosamplerate', 'audiosamplesize', 'videocodecid', 'audiocodecid'] as const;

/** The FLV legacy header bits: video codec id (low nibble), audio format (high nibble), the Enhanced RTMP flag. */
const VIDEO_CODEC_MASK = 0x0f;
const VIDEO_EX_HEADER = 0x80;
const AUDIO_FORMAT_SHIFT = 4;
const AUDIO_STEREO = 0x01;

/** What the recorded stream said about itself so far: its onMetaData, its codec headers, whether it had video. */
export class StreamInfo {
  videoConfig: MediaFrame | undefined = undefined;
  audioConfig: MediaFrame | undefined = undefined;
  sawVideo = false;
  private readonly info: FlvFileMetadata = emptyMetadata();

  /** Notes an audio or video frame (the last codec header of each kind is kept). */
  see(f: MediaFrame): void {
    if (f.kind === FrameKind.Video) this.sawVideo = true;
    if (f.isSequenceHeader) {
      if (f.kind === FrameKind.Video) this.videoConfig = f;
      else this.audioConfig = f;
    }
  }

  /** Takes the numbers of the publisher's onMetaData (a data frame). */
  takeMetadata(f: MediaFrame): void {
    try {
      const values = decodeAmf0(f.payload);
      const obj = values[1] === undefined ? undefined : amfObjectOf(values[1]);
      if (obj === undefined) return;
      for (const k of COPIED_NUMBERS) {
        const v = obj[k];
        if (typeof v === 'number' && Number.isFinite(v)) this.info[k] = v;
      }
      if (typeof obj['stereo'] === 'boolean') this.info.stereo = obj['stereo'];
    } catch {
      // a publisher's metadata we cannot read: the file's own metadata goes without it
    }
  }

  /** The metadata of a file that records video and/or audio. */
  fileMetadata(video: boolean, audio: boolean): FlvFileMetadata {
    const m: FlvFileMetadata = { ...this.info, hasVideo: video, hasAudio: audio };
    const v = this.videoConfig?.payload[0];
    if (m.videocodecid === 0 && v !== undefined && (v & VIDEO_EX_HEADER) === 0) m.videocodecid = v & VIDEO_CODEC_MASK;
    const a = this.audioConfig?.payload[0];
    if (m.audiocodecid === 0 && a !== undefined) m.audiocodecid = a >> AUDIO_FORMAT_SHIFT;
    if (a !== undefined && !m.stereo) m.stereo = (a & AUDIO_STEREO) !== 0;
    if (!video) {
      m.width = m.height = m.framerate = m.videodatarate = m.videocodecid = 0;
    }
    if (!audio) {
      m.audiodatarate = m.audiosamplerate = m.audiosamplesize = m.audiocodecid = 0;
      m.stereo = false;
    }
    return m;
  }
}

/** One open piece of a recording. */
export class Piece {
  readonly fh: FileHandle;
  /** the file as opened (its writer: batched or fh.writev) */
  private readonly file: OpenedFile;
  /** bytes in the file (the next write's position) */
  pos: number;
  /** added to every timestamp (record_append: the file's last timestamp) */
  readonly shift: number;
  /** false when appending to a file this recording did not start (its metadata is not rewritten) */
  readonly ownsMetadata: boolean;
  lastTs: number;
  lastKeyTs: number;
  /** frames that count for record_max_frames: video frames, or audio frames in an audio-only file */
  frames = 0;
  readonly times: number[] = [];
  readonly positions: number[] = [];

  /**
   * @param epoch the stream timestamp that is 0 in this file
   * @param video the piece holds video (set at open, or by its first video frame: then it rolls on keyframes)
   * @param mp4 record_format mp4: the piece's fragmenter (src/record/mp4.ts); undefined for FLV
   */
  constructor(
    file: OpenedFile,
    readonly path: string,
    readonly epoch: number,
    public video: boolean,
    readonly meta: FlvFileMetadata,
    readonly mp4: Mp4Piece | undefined,
  ) {
    this.file = file;
    this.fh = file.fh;
    this.pos = file.pos;
    this.shift = file.shift;
    this.ownsMetadata = file.ownsMetadata;
    this.lastTs = file.shift;
    this.lastKeyTs = file.shift;
  }

  /**
   * The piece's first bytes, counted in `pos`: the MP4 init, or the FLV file
   * start (unless appending) and the codec headers as tags at the piece's 0.
   * `tags` is the number of codec header tags.
   */
  start(videoConfig: MediaFrame | undefined, audioConfig: MediaFrame | undefined, capacity: number): { iov: Buffer[]; tags: number } {
    const iov: Buffer[] = [];
    let tags = 0;
    if (this.mp4 !== undefined) {
      const init = this.mp4.init();
      iov.push(init);
      this.pos += init.length;
    } else if (this.ownsMetadata) {
      const start = encodeFlvFileStart(this.meta, capacity);
      iov.push(start);
      this.pos += start.length;
    }
    const heads = Buffer.allocUnsafe(2 * FLV_TAG_OVERHEAD);
    let used = 0;
    for (const cfg of [videoConfig, audioConfig]) {
      if (cfg === undefined || this.mp4 !== undefined) continue;
      // the header's timestamp is the piece's 0 (it may be older than the piece)
      const h = heads.subarray(used, used + FLV_TAG_OVERHEAD);
      used += FLV_TAG_OVERHEAD;
      writeFlvTagHeader(h, 0, cfg.kind, cfg.payload.length, this.shift);
      h.writeUInt32BE(FLV_TAG_HEADER_SIZE + cfg.payload.length, FLV_TAG_HEADER_SIZE);
      iov.push(h.subarray(0, FLV_TAG_HEADER_SIZE), cfg.payload, h.subarray(FLV_TAG_HEADER_SIZE));
      this.pos += FLV_TAG_OVERHEAD + cfg.payload.length;
      tags++;
    }
    return { iov, tags };
  }

  /**
   * Writes one tag's header at `at` in `heads` and its trailer after it, adds
   * the header (with what `heads` holds before it from `from` on: the previous
   * tag's trailer) and the payload as it is to `iov`, and counts the tag.
   * Returns the end of the tag's bytes in `heads`; its trailer is not in `iov` yet.
   */
  add(f: MediaFrame, heads: Buffer, at: number, from: number, iov: Buffer[]): number {
    const ts = Math.max(0, f.timestamp - this.epoch) + this.shift;
    // the tag's file position (FLV's keyframe index)
    const pos = this.pos;
    let end = at;
    if (this.mp4 !== undefined) {
      // MP4: the frame joins the pending fragment; a fragment it completes is appended (nothing goes in `heads`)
      for (const b of this.mp4.add(f, ts)) {
        iov.push(b);
        this.pos += b.length;
      }
    } else {
      const size = f.payload.length;
      writeFlvTagHeader(heads, at, f.kind, size, ts);
      heads.writeUInt32BE(FLV_TAG_HEADER_SIZE + size, at + FLV_TAG_HEADER_SIZE);
      iov.push(heads.subarray(from, at + FLV_TAG_HEADER_SIZE), f.payload);
      this.pos += FLV_TAG_OVERHEAD + size;
      end = at + FLV_TAG_OVERHEAD;
    }
    if (f.kind === FrameKind.Video && f.isKeyframe && !f.isSequenceHeader) {
      this.times.push(ts / 1000);
      this.positions.push(pos);
      this.lastKeyTs = ts;
    }
    if (f.kind === FrameKind.Video && !this.video && this.mp4 === undefined) this.video = true;
    if (!f.isSequenceHeader && (f.kind === FrameKind.Video || !this.video)) this.frames++;
    if (ts > this.lastTs) this.lastTs = ts;
    return end;
  }

  /** Writes `iov`, the bytes counted last in `pos`, to the file. */
  flush(iov: readonly Buffer[]): Promise<void> {
    return writeEndingAt(this.file, this.path, iov, this.pos);
  }

  /**
   * The piece's last bytes before it closes: the MP4's last fragment
   * (nothing is rewritten: the file was whole after every fragment), or the
   * FLV metadata rewritten in place (duration, size, keyframe index) when
   * this recording started the file. Throws when the write fails.
   */
  async finish(capacity: number): Promise<void> {
    if (this.mp4 !== undefined) {
      const out = this.mp4.end();
      for (const b of out) this.pos += b.length;
      await this.flush(out);
    } else if (this.ownsMetadata) {
      const meta: FlvFileMetadata = {
        ...this.meta,
        duration: this.lastTs / 1000,
        filesize: this.pos,
        lasttimestamp: this.lastTs / 1000,
        lastkeyframetimestamp: this.lastKeyTs / 1000,
        hasKeyframes: this.times.length > 0,
      };
      const tag = encodeMetadataTag(meta, { times: this.times, filepositions: this.positions }, capacity);
      await this.fh.write(tag, 0, tag.length, FLV_FILE_HEADER_SIZE);
    }
  }
}
