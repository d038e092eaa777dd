import type { HlsSettings } from '../config/hls.js';
import { emptyArray } from '../core/queue.js';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import { adtsHeader, parseAudioSpecificConfig, type AacConfig } from '../media/aac.js';
import { parseAvcDecoderConfig, type AvcConfig } from '../media/avc.js';
import { parseHevcDecoderConfig, type HevcConfig } from '../media/hevc.js';
import { avcAnnexB, hevcAnnexB, TS_CLOCK_PER_MS, TsBuffer, TsMuxer, TsPid, TsStreamType, type TsTracks } from '../media/ts.js';
import type { FragmentStart, Job } from './window.js';

/**
 * The MPEG-TS segmenter of one stream's HLS output: codec headers, frames to
 * PES packets (nginx-rtmp's timestamps and PCR), audio batching
 * (hls_audio_buffer_size, hls_max_audio_delay, hls_sync) and where fragments
 * are cut (keyframes, hls_fragment_slicing, hls_max_fragment, timestamp jumps).
 * It holds the open fragment's bytes in memory. It is not the fragment
 * sequence, the playlist, file names or writes: a fragment's number, id, key
 * and discontinuity come from its host, which also takes the closed fragment
 * (the window, src/hls/window.ts).
 */

/** nginx-rtmp's HLS delay: PTS/DTS = stream time + 700 ms, the PCR = stream time (the decoder's buffer). */
const PTS_OFFSET = 63_000;
/** a timestamp going back by more than this starts a new fragment with a discontinuity */
const BACKWARD_JUMP_MS = 1000;
const AAC_SAMPLES_PER_FRAME = 1024;
const HZ_90K = 90_000;
/** without a better estimate, the last frame of a stream lasts this long (ms) */
const DEFAULT_FRAME_MS = 40;

/** A fragment's memory is kept for the next ones while it is no larger than this (bytes). */
const REUSE_MAX_BYTES = 32 * 1024 * 1024;
/** a stream's first fragment buffer (it doubles as needed; later ones start at the last fragment's size + 1/4) */
const FIRST_BUFFER_BYTES = 256 * 1024;
/** fragments' memory kept for reuse: the one being written while the next fills */
const SPARE_BUFFERS = 2;

export interface OpenFragment extends FragmentStart {
  readonly startTs: number;
  /** the fragment's transport stream (PAT/PMT first) */
  readonly out: TsBuffer;
  readonly muxer: TsMuxer;
  /** Its host is done with `out` (written or dropped): the memory goes to the next fragments. Once. */
  release(): void;
}

/** The open fragment: a class, so that the per-frame reads of its fields see one object shape. */
class Fragment implements OpenFragment {
  private released = false;
  constructor(
    start: FragmentStart,
    readonly startTs: number,
    readonly out: TsBuffer,
    readonly muxer: TsMuxer,
    private readonly recycle: (out: TsBuffer) => void,
  ) {
    this.id = start.id;
    this.seq = start.seq;
    this.discont = start.discont;
    this.key = start.key;
  }
  readonly id: number;
  readonly seq: number;
  readonly discont: boolean;
  readonly key: FragmentStart['key'];

  release(): void {
    if (this.released) return;
    this.released = true;
    this.recycle(this.out);
  }
}

/** Where fragments come from and go to. */
export interface FragmentHost {
  /** the fragment starting at `ts`: its number, id, key, and whether a discontinuity precedes it */
  start(ts: number): FragmentStart;
  /** the next fragment follows a discontinuity */
  discontinuity(): void;
  /** the open fragment (if any) ends at `endTs`; `ended`: the publish ended too */
  close(open: OpenFragment | undefined, endTs: number, jobs: Job[], ended: boolean): void;
}

interface PendingAudio {
  readonly chunks: Buffer[];
  bytes: number;
  /** 90 kHz (offset applied) */
  readonly pts: number;
  readonly firstTs: number;
}

export class TsSegmenter {
  private open: Fragment | undefined;
  private avc: AvcConfig | undefined;
  private hevc: HevcConfig | undefined;
  private aac: AacConfig | undefined;
  private mp3 = false;
  private muxer: TsMuxer | undefined;
  private audio: PendingAudio | undefined;
  private audioNext: number | undefined;
  private lastPcr = -1;
  /** the Annex-B chunks of the video frame being written (one array for every frame) */
  private readonly videoChunks: Buffer[] = [];
  private lastTs = 0;
  private lastVideoDelta = DEFAULT_FRAME_MS;
  private lastVideoTs: number | undefined;
  /** closed fragments' memory, written and given back (see OpenFragment.release) */
  private readonly spare: TsBuffer[] = [];
  /** the size of the last closed fragment: a new buffer's capacity */
  private lastSize = 0;
  private readonly recycle = (out: TsBuffer): void => {
    if (this.spare.length < SPARE_BUFFERS && out.capacity <= REUSE_MAX_BYTES) this.spare.push(out);
  };

  constructor(
    private readonly s: HlsSettings,
    private readonly host: FragmentHost,
    private readonly warnOnce: (key: string, fields: Record<string, unknown>, msg: string) => void,
  ) {}

  /** the id of the open fragment */
  get openId(): number | undefined {
    return this.open?.id;
  }

  /** A new publish: a new stream clock, a new muxer (codec headers are kept). */
  restart(): void {
    this.muxer = undefined;
    this.audio = undefined;
    this.audioNext = undefined;
    this.lastVideoTs = undefined;
    // a new publish may start a new stream clock (the hub forgot the idle stream)
    this.lastPcr = -1;
    this.lastTs = 0;
  }

  /** A previous publish still finishing: its fragment ends at its last timestamp. */
  cut(jobs: Job[]): void {
    this.closeFragment(this.lastTs, jobs);
  }

  /** The publish ended: the open fragment ends after its last frame, the playlist is closed. */
  finish(jobs: Job[]): void {
    this.flushAudio();
    const endTs = this.open !== undefined ? Math.max(this.lastTs + this.lastVideoDelta, this.open.startTs + 1) : this.lastTs;
    this.closeFragment(endTs, jobs, true);
  }

  /** The publish failed: its open fragment is dropped. */
  drop(): void {
    this.open?.release();
    this.open = undefined;
  }

  /** Mux one frame; true when a fragment was closed. */
  frame(f: MediaFrame, jobs: Job[]): boolean {
    if (f.kind === FrameKind.Data) return false;
    const cd = f.codecData;
    if (cd === undefined) return false;
    const ts = f.timestamp;
    if (f.kind === FrameKind.Video) {
      if (cd.isConfig) {
        if (cd.codec === 'avc1') this.avc = parseAvcDecoderConfig(cd.data);
        else if (cd.codec === 'hvc1') this.hevc = parseHevcDecoderConfig(cd.data);
        return false;
      }
      if (cd.isEndOfSequence || cd.data.length === 0) return false;
      const codec = cd.codec === 'avc1' && this.avc !== undefined ? 'avc1' : cd.codec === 'hvc1' && this.hevc !== undefined ? 'hvc1' : undefined;
      if (codec === undefined) {
        this.warnOnce(`video:${cd.codec}`, { codec: cd.codec }, 'hls: video codec not carried in MPEG-TS (or no codec header yet); video skipped');
        return false;
      }
      let closed = false;
      if (this.lastVideoTs !== undefined && ts > this.lastVideoTs) this.lastVideoDelta = ts - this.lastVideoTs;
      this.lastVideoTs = ts;
      if (this.open === undefined) {
        if (!cd.isKeyframe) return false;
        this.openFragment(ts);
      } else {
        const force = this.mustCut(this.open.startTs, ts);
        // video that began after an audio-only start: a new fragment (and PMT) at its first keyframe
        const newTrack = this.open.muxer.tracks.video === undefined;
        if (force || (cd.isKeyframe && (newTrack || this.boundary(ts)))) {
          this.cutAt(ts, force, jobs);
          closed = true;
        }
      }
      const open = this.open;
      if (open === undefined || open.muxer.tracks.video === undefined) return closed;
      const chunks = codec === 'avc1' ? avcAnnexB(cd.data, this.avc, cd.isKeyframe, this.videoChunks) : hevcAnnexB(cd.data, this.hevc, cd.isKeyframe, this.videoChunks);
      const dts = ts * TS_CLOCK_PER_MS + PTS_OFFSET;
      const pcr = ts * TS_CLOCK_PER_MS;
      const withPcr = pcr > this.lastPcr;
      if (withPcr) this.lastPcr = pcr;
      open.muxer.writePes(open.out, TsPid.Video, dts + cd.cts * TS_CLOCK_PER_MS, dts, withPcr ? pcr : -1, cd.isKeyframe, chunks);
      emptyArray(chunks); // the views go (the frame's payload is not kept past its write)
      this.lastTs = Math.max(this.lastTs, ts);
      // audio waits no longer than hls_max_audio_delay behind the video
      if (this.audio !== undefined && ts - this.audio.firstTs >= this.s.maxAudioDelay) this.flushAudio();
      return closed;
    }
    // audio
    if (cd.isConfig) {
      if (cd.codec === 'mp4a') this.aac = parseAudioSpecificConfig(cd.data);
      return false;
    }
    if (cd.data.length === 0) return false;
    // the frame's bytes in the PES: AAC gets its ADTS header in front, MP3 goes as it is
    let header: Buffer | undefined;
    if (cd.codec === 'mp4a' && this.aac !== undefined) header = adtsHeader(this.aac, cd.data.length);
    else if (cd.codec === '.mp3') {
      this.mp3 = true;
    } else {
      this.warnOnce(`audio:${cd.codec}`, { codec: cd.codec }, 'hls: audio codec not carried in MPEG-TS (or no codec header yet); audio skipped');
      return false;
    }
    let closed = false;
    const videoTrack = this.avc !== undefined || this.hevc !== undefined;
    if (this.open === undefined) {
      if (videoTrack) return false; // the fragment starts at a keyframe
      this.openFragment(ts);
    } else if (this.open.muxer.tracks.video === undefined) {
      // audio-only: cut on audio
      const force = this.mustCut(this.open.startTs, ts);
      if (force || this.boundary(ts)) {
        this.cutAt(ts, force, jobs);
        closed = true;
      }
    }
    const open = this.open;
    if (open === undefined || open.muxer.tracks.audio === undefined) return closed;
    let pts = ts * TS_CLOCK_PER_MS + PTS_OFFSET;
    if (this.aac !== undefined && cd.codec === 'mp4a') {
      // hls_sync: a timestamp within the threshold of the sample count's is the sample count's
      if (this.audioNext !== undefined && Math.abs(pts - this.audioNext) < this.s.sync * TS_CLOCK_PER_MS) pts = Math.round(this.audioNext);
      this.audioNext = pts + (AAC_SAMPLES_PER_FRAME * HZ_90K) / this.aac.sampleRate;
    }
    const bytes = (header?.length ?? 0) + cd.data.length;
    if (this.audio !== undefined && this.audio.bytes + bytes > this.s.audioBufferSize) this.flushAudio();
    if (this.audio === undefined) this.audio = { chunks: [], bytes: 0, pts, firstTs: ts };
    if (header !== undefined) this.audio.chunks.push(header);
    this.audio.chunks.push(cd.data);
    this.audio.bytes += bytes;
    this.lastTs = Math.max(this.lastTs, ts);
    if (ts - this.audio.firstTs >= this.s.maxAudioDelay) this.flushAudio();
    return closed;
  }

  /** hls_fragment_slicing: does a fragment end before `ts`? */
  /** Past hls_max_fragment, or the clock jumped back: the fragment is cut wherever the stream is. */
  private mustCut(startTs: number, ts: number): boolean {
    const d = ts - startTs;
    return d > this.s.maxFragment || d < -BACKWARD_JUMP_MS;
  }

  /** Closes the open fragment at ts and opens the next; a forced cut is a discontinuity. */
  private cutAt(ts: number, force: boolean, jobs: Job[]): void {
    if (force) this.host.discontinuity();
    this.flushAudio();
    this.closeFragment(ts, jobs);
    this.openFragment(ts);
  }

  private boundary(ts: number): boolean {
    const open = this.open;
    if (open === undefined) return true;
    switch (this.s.slicing) {
      case 'plain':
        return ts - open.startTs >= this.s.fragment;
      case 'aligned':
        return Math.floor(ts / this.s.fragment) !== Math.floor(open.startTs / this.s.fragment);
      default: {
        const never: never = this.s.slicing;
        throw new Error(`assert: slicing ${String(never)}`);
      }
    }
  }

  private flushAudio(): void {
    const a = this.audio;
    const open = this.open;
    this.audio = undefined;
    if (a === undefined || open === undefined || open.muxer.tracks.audio === undefined) return;
    const audioOnly = open.muxer.tracks.video === undefined;
    const pcr = a.firstTs * TS_CLOCK_PER_MS;
    const withPcr = audioOnly && pcr > this.lastPcr;
    if (withPcr) this.lastPcr = pcr;
    open.muxer.writePes(open.out, TsPid.Audio, a.pts, a.pts, withPcr ? pcr : -1, audioOnly, a.chunks);
  }

  private tracks(): TsTracks {
    const video = this.avc !== undefined ? TsStreamType.H264 : this.hevc !== undefined ? TsStreamType.H265 : undefined;
    const audio = this.aac !== undefined ? TsStreamType.Aac : this.mp3 ? TsStreamType.Mpeg1Audio : undefined;
    // both keys always: one object shape for the muxers' per-frame reads
    return { video, audio };
  }

  private openFragment(ts: number): void {
    const t = this.tracks();
    const same = this.muxer !== undefined && this.muxer.tracks.video === t.video && this.muxer.tracks.audio === t.audio;
    if (!same) {
      if (this.muxer !== undefined) this.host.discontinuity();
      this.muxer = new TsMuxer(t);
    }
    const muxer = this.muxer!;
    const out = this.spare.pop() ?? new TsBuffer(Math.max(FIRST_BUFFER_BYTES, this.lastSize + (this.lastSize >> 2)));
    out.reset();
    muxer.writeTables(out);
    this.open = new Fragment(this.host.start(ts), ts, out, muxer, this.recycle);
  }

  private closeFragment(endTs: number, jobs: Job[], ended = false): void {
    const open = this.open;
    this.open = undefined;
    if (open !== undefined) this.lastSize = open.out.length;
    this.host.close(open, endTs, jobs, ended);
  }
}
