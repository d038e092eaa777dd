import { describeError, ErrorCode, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import { aacTrack, avcTrack, Brand, hevcTrack, initSegment, mediaSegment, runFromFrames, type Fmp4Run, type Fmp4Track, type TimedSampleSource } from '../media/fmp4.js';

/**
 * The fragmented MP4 side of a recording piece (`record_format mp4`, ours):
 * the recorder (recorder.ts) keeps the files, rolling, timestamps and errors;
 * this turns the piece's frames into bytes. A file is the init (ftyp and a
 * moov with both tracks) then one moof+mdat fragment per GOP, or per
 * FRAGMENT_MS of audio in an audio-only file (and per FRAGMENT_MS of video
 * when the GOP is longer: what a crash can lose stays about a second). Every
 * fragment is handed back whole, so the recorder appends it in one write: a
 * reader of the growing file, or of the file after a kill -9, sees the init
 * and complete fragments (at most the last one cut short).
 *
 * The tracks are fixed by the init: a codec configuration that changes (or a
 * track that appears) after the piece started sets `mustRoll`, and the
 * recorder starts the next file at the next keyframe.
 */

/** a fragment is cut at a keyframe, or once it holds this much media time (ms) */
export const FRAGMENT_MS = 1000;
/** a fragment that reaches this size is cut at its next frame (bounded memory) */
const MAX_FRAGMENT_BYTES = 64 * 1024 * 1024;
/** above this many buffers a fragment is joined into one (one writev(2), IOV_MAX 1024) */
const MAX_FRAGMENT_PARTS = 512;
/** the video timescale: the stream's own clock (ms) */
const VIDEO_TIMESCALE = 1000;
/** video frame duration assumed for a last frame when nothing follows (25 fps) */
const DEFAULT_VIDEO_FRAME_MS = 40;
/** AAC frames are 1024 samples */
const AAC_FRAME_SAMPLES = 1024;
const TrackId = { Video: 1, Audio: 2 } as const;

interface TrackState {
  readonly track: Fmp4Track;
  /** the codec (FourCC) of the configuration: frames of another codec are not samples of this track */
  readonly codec: string;
  pending: TimedSampleSource[];
  /** the last frame's duration when nothing follows (ms) */
  lastFrameMs: number;
  lastTs: number;
}

/** The codec configurations a piece starts with (the stream's latest sequence headers). */
export interface Mp4PieceConfig {
  readonly video: MediaFrame | undefined;
  readonly audio: MediaFrame | undefined;
}

function videoTrack(cfg: MediaFrame): { track: Fmp4Track; codec: string } | string {
  const c = cfg.codecData;
  if (c === undefined) return 'unreadable video header';
  switch (c.codec) {
    case 'avc1':
      return { track: avcTrack(TrackId.Video, c.data, VIDEO_TIMESCALE), codec: c.codec };
    case 'hvc1':
      return { track: hevcTrack(TrackId.Video, c.data, VIDEO_TIMESCALE), codec: c.codec };
    default:
      return `video codec ${JSON.stringify(c.codec.slice(0, 16))} is not written to MP4 (H.264 and H.265 are)`;
  }
}

function audioTrack(cfg: MediaFrame): { track: Fmp4Track; codec: string } | string {
  const c = cfg.codecData;
  if (c === undefined) return 'unreadable audio header';
  switch (c.codec) {
    case 'mp4a':
      return { track: aacTrack(TrackId.Audio, c.data), codec: c.codec };
    default:
      return `audio codec ${JSON.stringify(c.codec.slice(0, 16))} is not written to MP4 (AAC is)`;
  }
}

export class Mp4Piece {
  /** a codec configuration changed (or a track appeared): the recorder starts a new file at the next keyframe */
  mustRoll = false;
  private readonly video: TrackState | undefined;
  private readonly audio: TrackState | undefined;
  private readonly configs: Mp4PieceConfig;
  private sequence = 1;
  private fragmentStart: number | undefined = undefined;
  private pendingBytes = 0;
  /** kinds whose frames were left out (one warning each per file) */
  private readonly warned = new Set<string>();
  private readonly log: Logger;

  /**
   * Throws ERR_OUTPUT_WRITE_FAILED when no track can be written (an
   * unsupported codec, a malformed codec header): the recorder ends with one
   * log line. A track that cannot be written next to one that can is left
   * out with one warning.
   */
  constructor(configs: Mp4PieceConfig, log: Logger) {
    this.configs = configs;
    this.log = log;
    const problems: string[] = [];
    const make = (cfg: MediaFrame | undefined, f: typeof videoTrack): TrackState | undefined => {
      if (cfg === undefined) return undefined;
      try {
        const t = f(cfg);
        if (typeof t === 'string') {
          problems.push(t);
          return undefined;
        }
        return { track: t.track, codec: t.codec, pending: [], lastFrameMs: DEFAULT_VIDEO_FRAME_MS, lastTs: 0 };
      } catch (e) {
        problems.push(describeError(e).message);
        return undefined;
      }
    };
    this.video = make(configs.video, videoTrack);
    this.audio = make(configs.audio, audioTrack);
    const a = this.audio?.track;
    if (this.audio !== undefined && a?.kind === 'audio') this.audio.lastFrameMs = (AAC_FRAME_SAMPLES * 1000) / a.sampleRate;
    if (this.video === undefined && this.audio === undefined) {
      throw serverError(ErrorCode.OutputWriteFailed, `record: nothing to write as MP4: ${problems.length > 0 ? problems.join('; ') : 'no codec header (H.264, H.265 or AAC) before the first frame'}`);
    }
    if (problems.length > 0) log.warn({ problems }, 'record: a track is left out of the MP4 file');
  }

  /** ftyp and moov: the file's first bytes */
  init(): Buffer {
    const tracks: Fmp4Track[] = [];
    if (this.video !== undefined) tracks.push(this.video.track);
    if (this.audio !== undefined) tracks.push(this.audio.track);
    return initSegment(tracks, { majorBrand: Brand.Iso5, compatibleBrands: [Brand.Iso5, Brand.Iso6, Brand.Mp41] });
  }

  /** Whether the file holds a video track (it rolls on keyframes then). */
  get hasVideo(): boolean {
    return this.video !== undefined;
  }

  /**
   * One frame of the piece at `ts` (ms from the file's start). Returns the
   * bytes to append now: the fragment this frame closes (or nothing).
   */
  add(f: MediaFrame, ts: number): Buffer[] {
    if (f.kind === FrameKind.Data) return [];
    const video = f.kind === FrameKind.Video;
    const st = video ? this.video : this.audio;
    if (f.isSequenceHeader) {
      const was = video ? this.configs.video : this.configs.audio;
      if (was === undefined || !was.payload.equals(f.payload)) this.mustRoll = true;
      return [];
    }
    const c = f.codecData;
    if (c === undefined || c.isConfig || c.isEndOfSequence || c.data.length === 0) return [];
    if (st === undefined || c.codec !== st.codec) {
      const kind = video ? 'video' : 'audio';
      if (!this.warned.has(kind)) {
        this.warned.add(kind);
        this.log.warn({ codec: JSON.stringify(c.codec.slice(0, 16)) }, `record: ${kind} frames left out of the MP4 file (no ${kind} track for this codec; H.264, H.265 and AAC are written); further ones are not logged`);
      }
      return [];
    }
    let out: Buffer[] = [];
    const start = this.fragmentStart;
    if (start === undefined) this.fragmentStart = ts;
    else {
      const age = ts - start;
      const full = this.pendingBytes >= MAX_FRAGMENT_BYTES;
      const cut = this.video !== undefined ? video && ((c.isKeyframe && this.video.pending.length > 0) || age >= FRAGMENT_MS || full) : age >= FRAGMENT_MS || full;
      if (cut) {
        out = this.fragment(video ? ts : undefined);
        this.fragmentStart = ts;
      }
    }
    if (st.pending.length > 0 && ts > st.lastTs && st === this.video) st.lastFrameMs = ts - st.lastTs;
    st.pending.push({ timestamp: ts, cts: c.cts, keyframe: c.isKeyframe, data: c.data });
    st.lastTs = ts;
    this.pendingBytes += c.data.length;
    return out;
  }

  /** The last fragment (the piece is closing). */
  end(): Buffer[] {
    return this.fragment(undefined);
  }

  /** The pending frames as one fragment; the video run ends at `videoEndMs` (the cutting keyframe) when known. */
  private fragment(videoEndMs: number | undefined): Buffer[] {
    const runs: Fmp4Run[] = [];
    for (const st of [this.video, this.audio]) {
      if (st === undefined || st.pending.length === 0) continue;
      runs.push(runFromFrames(st.track, st.pending, st === this.video ? videoEndMs : undefined, st.lastFrameMs));
      st.pending = [];
    }
    this.pendingBytes = 0;
    if (runs.length === 0) return [];
    const parts = mediaSegment(this.sequence++, runs, { styp: false });
    return parts.length > MAX_FRAGMENT_PARTS ? [Buffer.concat(parts)] : parts;
  }
}
