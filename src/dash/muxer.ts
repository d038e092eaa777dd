import { mkdir, unlink } from 'node:fs/promises';
import type { DashSettings } from '../config/dash.js';
import { DashClockCompensation } from '../config/dash.js';
import { describeError, ErrorCode, isServerError } from '../core/errors.js';
import { outputPath, writeFileAtomic } from '../core/files.js';
import type { Logger } from '../core/log.js';
import type { BatchSink } from '../live/complete-reader.js';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import { parseAudioSpecificConfig } from '../media/aac.js';
import { parseAvcDecoderConfig } from '../media/avc.js';
import { aacTrack, avcTrack, hevcTrack, initSegment, mediaSegment, runFromFrames, TrackKind, type Fmp4Track, type TimedSampleSource } from '../media/fmp4.js';
import { parseHevcDecoderConfig } from '../media/hevc.js';
import { buildMpd, type MpdSegment, type MpdTrack } from './mpd.js';

/**
 * One stream's DASH output: a complete reader's sink that cuts the stream
 * into fragments on keyframes, writes each track's fragments as fragmented
 * MP4 (`.m4v` video, `.m4a` audio, named by their start time in ms, as
 * nginx-rtmp names them) and rewrites the MPD after each fragment. Every
 * file is written whole (write, then rename). A failed write rejects the
 * batch: the complete reader is cut off and `close` logs one line; the live
 * stream never notices.
 *
 * Audio fragments end where the next audio frame starts, so each track's
 * timeline is continuous (tfdt of a fragment = end of the one before): the
 * audio fragment is written when the first audio frame of the next one
 * arrives (or at the end, with one frame's duration).
 */

/** segment times are milliseconds, the stream's own clock */
export const DASH_TIMESCALE = 1000;
/** a fragment that reaches this many fragment lengths without a keyframe is cut anyway (bounded memory) */
const MAX_FRAGMENT_FACTOR = 10;
/** a track's fragment that reaches this size is cut anyway (frames whose time does not advance; bounded memory) */
export const DEFAULT_MAX_FRAGMENT_BYTES = 64 * 1024 * 1024;
/** AAC frames are 1024 samples: the last frame's duration when nothing follows */
const AAC_FRAME_SAMPLES = 1024;
/** video frame duration assumed for a last frame when nothing follows (25 fps) */
const DEFAULT_VIDEO_FRAME_MS = 40;
const SUPPORTED_CODECS: readonly string[] = ['avc1', 'hvc1', 'mp4a'];

export interface DashLayout {
  readonly mpd: string;
  readonly init: (ext: string) => string;
  readonly fragment: (time: number, ext: string) => string;
  /** the URLs in the MPD, relative to it */
  readonly initUrl: (ext: string) => string;
  readonly mediaUrl: (ext: string) => string;
  /** nested: the stream's own directory (created); else the dash_path */
  readonly dir: string;
}

export const Ext = { Video: 'm4v', Audio: 'm4a' } as const;

/** nginx-rtmp's file layout: NAME.mpd, NAME-init.m4v, NAME-<time>.m4v; nested: NAME/index.mpd, NAME/init.m4v, NAME/<time>.m4v */
export function dashLayout(root: string, name: string, nested: boolean): DashLayout {
  if (nested) {
    const dir = outputPath(root, name);
    return {
      dir,
      mpd: outputPath(root, name, 'index.mpd'),
      init: (ext) => outputPath(root, name, `init.${ext}`),
      fragment: (time, ext) => outputPath(root, name, `${time}.${ext}`),
      initUrl: (ext) => `init.${ext}`,
      mediaUrl: (ext) => `$Time$.${ext}`,
    };
  }
  const url = encodeURIComponent(name);
  return {
    dir: outputPath(root),
    mpd: outputPath(root, `${name}.mpd`),
    init: (ext) => outputPath(root, `${name}-init.${ext}`),
    fragment: (time, ext) => outputPath(root, `${name}-${time}.${ext}`),
    initUrl: (ext) => `${url}-init.${ext}`,
    mediaUrl: (ext) => `${url}-$Time$.${ext}`,
  };
}

interface TrackState {
  readonly ext: string;
  track: Fmp4Track | undefined;
  codecs: string;
  /** the init segment must be (re)written before the next fragment */
  initDirty: boolean;
  pending: TimedSampleSource[];
  pendingBytes: number;
  /** fragments listed in the MPD (the window), oldest first */
  window: MpdSegment[];
  /** fragments on disk that left the window, oldest first (deleted after another window) */
  old: number[];
  /** every fragment start written (for the end cleanup) */
  written: number[];
  bytes: number;
  durationMs: number;
  /** the default duration of a last frame (ms) */
  lastFrameMs: number;
}

function newTrack(ext: string, lastFrameMs: number): TrackState {
  return { ext, track: undefined, codecs: '', initDirty: false, pending: [], pendingBytes: 0, window: [], old: [], written: [], bytes: 0, durationMs: 0, lastFrameMs };
}

export interface DashMuxerOptions {
  readonly settings: DashSettings;
  readonly layout: DashLayout;
  readonly log: Logger;
  /** the wall clock (tests) */
  readonly now?: () => number;
  /** called once, after close: the owner unsubscribes the reader and schedules the end cleanup */
  readonly onClose: (muxer: DashMuxer, reason: string | undefined) => void;
  /** whether this muxer still owns the stream's MPD (a newer publish of the name takes it over) */
  readonly ownsName: (muxer: DashMuxer) => boolean;
  /** default DEFAULT_MAX_FRAGMENT_BYTES */
  readonly maxFragmentBytes?: number;
}

export class DashMuxer implements BatchSink {
  private readonly video = newTrack(Ext.Video, DEFAULT_VIDEO_FRAME_MS);
  private readonly audio = newTrack(Ext.Audio, 0);
  private readonly settings: DashSettings;
  private readonly layout: DashLayout;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly maxFragmentBytes: number;
  /** the media time (ms) at the Period's start, and the wall clock it was live at */
  private origin: number | undefined = undefined;
  private availabilityStart = 0;
  /** start (ms) of the fragment being gathered */
  private fragmentStart: number | undefined = undefined;
  /** the audio fragment ends at the first audio frame at or after this time (set when video cuts) */
  private audioCutAt: number | undefined = undefined;
  private sequence = 1;
  private dirReady = false;
  private error: unknown = undefined;
  private closed = false;
  private readonly warnedCodec = new Set<'video' | 'audio'>();
  private readonly warnedConfig = new Set<'video' | 'audio'>();
  private readonly warnedChange = new Set<'video' | 'audio'>();
  /** fragments written (both tracks) */
  fragments = 0;

  constructor(private readonly opts: DashMuxerOptions) {
    this.settings = opts.settings;
    this.layout = opts.layout;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.maxFragmentBytes = opts.maxFragmentBytes ?? DEFAULT_MAX_FRAGMENT_BYTES;
  }

  async writeBatch(frames: readonly MediaFrame[]): Promise<void> {
    try {
      if (!this.dirReady) {
        await mkdir(this.layout.dir, { recursive: true });
        this.dirReady = true;
      }
      const last = frames[frames.length - 1];
      for (const f of frames) await this.frame(f, last?.timestamp ?? f.timestamp);
    } catch (e) {
      this.error = e;
      throw e;
    }
  }

  private async frame(f: MediaFrame, latest: number): Promise<void> {
    if (f.kind === FrameKind.Data) return;
    const c = f.codecData;
    if (c === undefined) return;
    const video = f.kind === FrameKind.Video;
    const st = video ? this.video : this.audio;
    if (c.isConfig) {
      this.configure(st, video, c.codec, c.data);
      return;
    }
    if (st.track === undefined) {
      if (!SUPPORTED_CODECS.includes(c.codec)) this.unsupported(video, c.codec);
      return;
    }
    if (c.isEndOfSequence || c.data.length === 0) return;
    if (c.codec !== st.track.codec) {
      // a frame of another codec than the track's configuration (a switch without a new header, a command frame)
      this.unsupported(video, c.codec);
      return;
    }
    if (this.origin === undefined) {
      // the first frame may be a cached GOP's: it was live (latest - its time) ago
      this.origin = f.timestamp;
      this.availabilityStart = this.now() - Math.max(0, latest - f.timestamp);
    }
    const sample: TimedSampleSource = { timestamp: f.timestamp, cts: c.cts, keyframe: c.isKeyframe, data: c.data };
    const hasVideo = this.video.track !== undefined;
    const fragment = this.settings.fragment;
    const full = st.pendingBytes >= this.maxFragmentBytes;
    if (video) {
      const start = this.fragmentStart;
      const age = start === undefined ? 0 : f.timestamp - start;
      if (start === undefined) this.fragmentStart = f.timestamp;
      else if ((c.isKeyframe && age >= fragment) || age >= fragment * MAX_FRAGMENT_FACTOR || full) {
        await this.cutVideo(f.timestamp);
      }
    } else if (this.audioCutAt !== undefined && f.timestamp >= this.audioCutAt) {
      await this.flushTrack(this.audio, f.timestamp);
      this.audioCutAt = undefined;
      await this.writeMpd('dynamic');
    } else if (!hasVideo) {
      const start = this.fragmentStart;
      if (start === undefined) this.fragmentStart = f.timestamp;
      else if (f.timestamp - start >= fragment || full) {
        await this.flushTrack(this.audio, f.timestamp);
        this.fragmentStart = f.timestamp;
        await this.writeMpd('dynamic');
      }
    } else if (this.audioCutAt === undefined) {
      // the video stalled (no frame, no keyframe): audio is cut on its own after as long as video would be
      const first = this.audio.pending[0];
      if (first !== undefined && (f.timestamp - first.timestamp >= fragment * MAX_FRAGMENT_FACTOR || full)) {
        await this.flushTrack(this.audio, f.timestamp);
        await this.writeMpd('dynamic');
      }
    }
    st.pending.push(sample);
    st.pendingBytes += sample.data.length;
  }

  /** one warning per track kind (a hostile publisher could send a new FourCC in every frame) */
  private unsupported(video: boolean, codec: string): void {
    const kind = video ? 'video' : 'audio';
    if (this.warnedCodec.has(kind)) return;
    this.warnedCodec.add(kind);
    this.log.warn({ codec: JSON.stringify(codec.slice(0, 16)) }, `dash: this ${kind} codec is not written (H.264, H.265 and AAC are); further ones are not logged`);
  }

  private configure(st: TrackState, video: boolean, codec: string, data: Buffer): void {
    const id = video ? 1 : 2;
    let track: Fmp4Track;
    let codecs: string;
    try {
      switch (codec) {
        case 'avc1':
          track = avcTrack(id, data, DASH_TIMESCALE);
          codecs = parseAvcDecoderConfig(data).codecString;
          break;
        case 'hvc1':
          track = hevcTrack(id, data, DASH_TIMESCALE);
          codecs = parseHevcDecoderConfig(data).codecString;
          break;
        case 'mp4a': {
          const a = aacTrack(id, data, DASH_TIMESCALE);
          track = a;
          codecs = parseAudioSpecificConfig(data).codecString;
          st.lastFrameMs = Math.max(1, Math.round((AAC_FRAME_SAMPLES * 1000) / a.sampleRate));
          break;
        }
        default:
          this.unsupported(video, codec);
          return;
      }
    } catch (e) {
      const kind = video ? 'video' : 'audio';
      if (!this.warnedConfig.has(kind)) {
        this.warnedConfig.add(kind);
        this.log.warn({ ...describeError(e) }, `dash: bad ${kind} codec configuration; track not written; further ones are not logged`);
      }
      return;
    }
    const same = st.track !== undefined && st.track.config.equals(track.config);
    if (!same) {
      const kind = video ? 'video' : 'audio';
      if (st.written.length > 0 && !this.warnedChange.has(kind)) {
        this.warnedChange.add(kind);
        this.log.info({ codecs }, `dash: the ${kind} codec configuration changed mid-publish; init segment rewritten (players that loaded the old one may need a reload); further changes are not logged`);
      }
      st.track = track;
      st.codecs = codecs;
      st.initDirty = true;
    }
  }

  /** A video keyframe at `at` starts a new fragment: write the video one, let audio follow at its next frame. */
  private async cutVideo(at: number): Promise<void> {
    await this.flushTrack(this.video, at);
    this.fragmentStart = at;
    if (this.audio.pending.length > 0) {
      if (this.audioCutAt !== undefined) {
        // the previous audio cut is still waiting (no audio frame since): close it here
        await this.flushTrack(this.audio, undefined);
      }
      this.audioCutAt = at;
    }
    await this.writeMpd('dynamic');
  }

  /** Writes the track's pending frames as one fragment ending at `endMs` (or one frame's duration after its last). */
  private async flushTrack(st: TrackState, endMs: number | undefined): Promise<void> {
    const track = st.track;
    if (track === undefined || st.pending.length === 0) return;
    if (st.initDirty) {
      await writeFileAtomic(this.layout.init(st.ext), initSegment([track]));
      st.initDirty = false;
    }
    const run = runFromFrames(track, st.pending, endMs, st.lastFrameMs);
    let d = 0;
    for (const s of run.samples) d += s.duration;
    const t = run.baseDecodeTime;
    await writeFileAtomic(this.layout.fragment(t, st.ext), mediaSegment(this.sequence++, [run]));
    this.fragments++;
    st.bytes += st.pendingBytes;
    st.durationMs += d;
    st.pending = [];
    st.pendingBytes = 0;
    st.written.push(t);
    st.window.push({ t, d });
    const keep = this.windowFragments();
    while (st.window.length > keep) st.old.push(st.window.shift()!.t);
    if (this.settings.cleanup) {
      // a player that read the previous MPD may still ask for what left the window: keep one more window
      while (st.old.length > keep) {
        const gone = st.old.shift()!;
        await unlink(this.layout.fragment(gone, st.ext)).catch(() => undefined);
      }
    }
  }

  /** nginx-rtmp: playlist length / fragment length fragments (at least one) */
  private windowFragments(): number {
    return Math.max(1, Math.floor(this.settings.playlistLength / Math.max(1, this.settings.fragment)));
  }

  private mpdTrack(st: TrackState, kind: 'video' | 'audio'): MpdTrack | undefined {
    const t = st.track;
    if (t === undefined) return undefined;
    const bandwidth = st.durationMs > 0 ? (st.bytes * 8 * 1000) / st.durationMs : 0;
    const base = { kind, codecs: st.codecs, bandwidth, initialization: this.layout.initUrl(st.ext), media: this.layout.mediaUrl(st.ext), segments: st.window };
    switch (t.kind) {
      case TrackKind.Video:
        return { ...base, width: t.width, height: t.height };
      case TrackKind.Audio:
        return { ...base, sampleRate: t.sampleRate, channels: t.channels };
    }
  }

  private async writeMpd(type: 'dynamic' | 'static'): Promise<void> {
    if (!this.opts.ownsName(this)) return;
    const tracks = [this.mpdTrack(this.video, 'video'), this.mpdTrack(this.audio, 'audio')].filter((t): t is MpdTrack => t !== undefined && t.segments.length > 0);
    if (tracks.length === 0) return;
    const s = this.settings;
    let pto = this.origin ?? 0;
    if (type === 'static') {
      // a static presentation starts at its first listed segment
      pto = Math.min(...tracks.map((t) => t.segments[0]!.t));
    }
    const compensation = s.clockCompensation;
    const clock = compensation !== DashClockCompensation.Off && s.clockHelperUri !== undefined ? { compensation, uri: s.clockHelperUri } : undefined;
    const text = buildMpd({
      type,
      timescale: DASH_TIMESCALE,
      presentationTimeOffset: pto,
      availabilityStartTime: this.availabilityStart,
      publishTime: this.now(),
      minimumUpdatePeriod: s.fragment,
      minBufferTime: s.fragment,
      timeShiftBufferDepth: s.playlistLength,
      tracks,
      ...(clock !== undefined ? { clock } : {}),
    });
    await writeFileAtomic(this.layout.mpd, text);
  }

  /** The stream ended: the last fragments, then a static MPD (not after a failed write). */
  private async finish(): Promise<void> {
    await this.flushTrack(this.video, undefined);
    await this.flushTrack(this.audio, undefined);
    await this.writeMpd('static');
  }

  close(reason: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const failed = this.error !== undefined;
    const done = (): void => this.opts.onClose(this, reason);
    if (failed) {
      const d = describeError(this.error);
      const code = isServerError(this.error) ? d.code : ErrorCode.OutputWriteFailed;
      this.log.error({ code, err: d.message, mpd: this.layout.mpd }, 'dash: muxer stopped, the stream goes on without it');
      done();
      return;
    }
    if (reason !== undefined) this.log.warn({ reason, mpd: this.layout.mpd }, 'dash: muxer cut off, the stream goes on without it');
    this.finish().then(done, (e: unknown) => {
      this.log.error({ ...describeError(e), mpd: this.layout.mpd }, 'dash: the last fragment or the final MPD could not be written');
      done();
    });
  }

  /** the files this muxer wrote that are still on disk (the end cleanup) */
  files(includeShared: boolean): string[] {
    const out: string[] = [];
    for (const st of [this.video, this.audio]) {
      for (const t of st.written) out.push(this.layout.fragment(t, st.ext));
      if (includeShared && st.track !== undefined) out.push(this.layout.init(st.ext));
    }
    if (includeShared) out.push(this.layout.mpd);
    return out;
  }
}
