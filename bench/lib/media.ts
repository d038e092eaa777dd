/**
 * The publisher's media: a real FLV file read into memory and laid out as an
 * endless loop with monotonic timestamps. Loop k sends tag i at timestamp
 * k * loopMs + tags[i].offset; codec headers and metadata go once, at 0.
 */
import { readFileSync } from 'node:fs';
import { readFlvFile } from '../../src/media/flv.js';
import { isVideoKeyframe, isVideoSequenceHeader } from '../../src/media/video.js';

export const TagType = { Audio: 8, Video: 9, Script: 18 } as const;

export interface LoopTag {
  readonly type: number;
  /** ms since the first media tag of the file */
  readonly offset: number;
  readonly data: Buffer;
  readonly keyframe: boolean;
}

/** AAC sequence header: SoundFormat 10 and AACPacketType 0. */
function isAacSequenceHeader(d: Buffer): boolean {
  return d.length >= 2 && d[0]! >> 4 === 10 && d[1] === 0;
}

export class LoopMedia {
  /** the script tag's data (e.g. "onMetaData", {...}) as in the file, if any */
  readonly metadata: Buffer | undefined;
  /** codec configuration tags, sent once at the start */
  readonly headers: readonly LoopTag[];
  /** the looped media tags, by offset */
  readonly tags: readonly LoopTag[];
  /** length of one loop (ms): last offset plus one video frame */
  readonly loopMs: number;
  /** tag data bytes of one loop */
  readonly bytesPerLoop: number;
  /** median interval between video frames (ms) */
  readonly videoFrameMs: number;
  /** largest interval between keyframes (ms); NaN without video */
  readonly gopMs: number;
  /** largest interval between consecutive video frames (ms) */
  readonly maxVideoGapMs: number;
  /** prefix[i] = data bytes of tags[0..i-1] */
  private readonly prefix: Float64Array;

  constructor(readonly file: string) {
    const { tags } = readFlvFile(readFileSync(file));
    let metadata: Buffer | undefined;
    const headers: LoopTag[] = [];
    const media: { type: number; ts: number; data: Buffer }[] = [];
    for (const t of tags) {
      if (t.type === TagType.Script) {
        metadata ??= t.data;
      } else if (t.type === TagType.Video && isVideoSequenceHeader(t.data)) {
        if (!headers.some((h) => h.type === TagType.Video)) headers.push({ type: t.type, offset: 0, data: t.data, keyframe: false });
      } else if (t.type === TagType.Audio && isAacSequenceHeader(t.data)) {
        if (!headers.some((h) => h.type === TagType.Audio)) headers.push({ type: t.type, offset: 0, data: t.data, keyframe: false });
      } else if (t.type === TagType.Audio || t.type === TagType.Video) {
        media.push({ type: t.type, ts: t.timestamp, data: t.data });
      }
    }
    if (media.length === 0) throw new Error(`${file}: no audio or video tags`);
    const first = media.reduce((m, t) => Math.min(m, t.ts), Infinity);
    const looped = media
      .map((t) => ({ type: t.type, offset: t.ts - first, data: t.data, keyframe: t.type === TagType.Video && isVideoKeyframe(t.data) }))
      .sort((a, b) => a.offset - b.offset);
    const video = looped.filter((t) => t.type === TagType.Video);
    const intervals: number[] = [];
    for (let i = 1; i < video.length; i++) intervals.push(video[i]!.offset - video[i - 1]!.offset);
    intervals.sort((a, b) => a - b);
    this.videoFrameMs = intervals.length > 0 ? intervals[intervals.length >> 1]! : 23;
    this.maxVideoGapMs = intervals.length > 0 ? intervals[intervals.length - 1]! : NaN;
    const keys = video.filter((t) => t.keyframe).map((t) => t.offset);
    let gop = NaN;
    for (let i = 1; i < keys.length; i++) gop = Math.max(Number.isNaN(gop) ? 0 : gop, keys[i]! - keys[i - 1]!);
    this.gopMs = gop;
    this.metadata = metadata;
    this.headers = headers;
    this.tags = looped;
    this.loopMs = looped[looped.length - 1]!.offset + Math.max(1, Math.round(this.videoFrameMs));
    this.prefix = new Float64Array(looped.length + 1);
    for (let i = 0; i < looped.length; i++) this.prefix[i + 1] = this.prefix[i]! + looped[i]!.data.length;
    this.bytesPerLoop = this.prefix[looped.length]!;
  }

  /** Media bit rate: tag data bits per second of media. */
  get bitrate(): number {
    return (this.bytesPerLoop * 8 * 1000) / this.loopMs;
  }

  /** Tag data bytes whose looped timestamp t satisfies 0 <= t < ms. */
  cumulativeBytes(ms: number): number {
    if (!(ms > 0)) return 0;
    const loops = Math.floor(ms / this.loopMs);
    const within = ms - loops * this.loopMs;
    // first tag index with offset >= within
    let lo = 0;
    let hi = this.tags.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.tags[mid]!.offset < within) lo = mid + 1;
      else hi = mid;
    }
    return loops * this.bytesPerLoop + this.prefix[lo]!;
  }

  /** Tag data bytes with looped timestamps in [from, to) (ms since the publisher's origin). */
  bytesBetween(from: number, to: number): number {
    return this.cumulativeBytes(to) - this.cumulativeBytes(from);
  }
}
