import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { ErrorCode, describeError, isServerError, serverError } from '../core/errors.js';
import { outputPath, writeFileAtomic } from '../core/files.js';
import type { Logger } from '../core/log.js';
import type { HlsSettings } from '../config/hls.js';
import type { BatchSink } from '../live/complete-reader.js';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import { parseAudioSpecificConfig, type AacConfig } from '../media/aac.js';
import { parseAvcDecoderConfig, type AvcConfig } from '../media/avc.js';
import { parseHevcDecoderConfig, type HevcConfig } from '../media/hevc.js';
import { aacAdts, avcAnnexB, hevcAnnexB, TS_CLOCK_PER_MS, TsMuxer, TsPid, TsStreamType, type TsTracks } from '../media/ts.js';
import { parseMediaPlaylist, renderMasterPlaylist, renderMediaPlaylist, type PlaylistFragment } from './playlist.js';

/**
 * The HLS output of one stream (one name in one application): MPEG-TS
 * fragments cut on keyframes, the media playlist, keys, cleanup. It outlives
 * a publish (the media sequence continues across a reconnect with
 * `hls_continuous`); each publish feeds it through its own `PublishSink`, the
 * BatchSink of that publish's complete reader.
 *
 * Frames are muxed synchronously as a batch arrives; a finished fragment and
 * the playlist are written (whole files, atomically) before the batch's
 * promise settles, so the reader holds the next batch meanwhile and the
 * stream never waits. A failed write ends this publish's HLS with one log line.
 */

/** nginx-rtmp's HLS delay: PTS/DTS = stream time + 700 ms, the PCR = stream time (the decoder's buffer). */
const PTS_OFFSET = 63_000;
/** a timestamp going back by more than this starts a new fragment with a discontinuity */
const BACKWARD_JUMP_MS = 1000;
const AAC_SAMPLES_PER_FRAME = 1024;
const HZ_90K = 90_000;
/** without a better estimate, the last frame of a stream lasts this long (ms) */
const DEFAULT_FRAME_MS = 40;
const AES_KEY_BYTES = 16;
/** a stream's files are removed this many playlist lengths after its publisher left (nginx-rtmp: .ts after 2) */
const END_CLEANUP_FACTOR = 2;

export interface HlsStreamEnv {
  readonly settings: HlsSettings;
  readonly name: string;
  readonly log: Logger;
  /** wall clock (ms) */
  readonly now: () => number;
  /** the stream's files are gone after its end: the owner may forget it */
  readonly onIdle: (s: HlsStream) => void;
}

interface KeyState {
  readonly id: number;
  readonly key: Buffer;
  readonly iv: Buffer;
  readonly file: string;
  readonly uri: string;
}

interface OpenFragment {
  readonly id: number;
  readonly seq: number;
  readonly startTs: number;
  readonly discont: boolean;
  readonly key: KeyState | undefined;
  readonly buffers: Buffer[];
  readonly muxer: TsMuxer;
}

interface DoneFragment extends PlaylistFragment {
  readonly file: string;
  /** the key file it is encrypted with (hls_keys) */
  readonly keyFile?: string;
}

interface PendingAudio {
  readonly chunks: Buffer[];
  bytes: number;
  /** 90 kHz (offset applied) */
  readonly pts: number;
  readonly firstTs: number;
}

type Job = () => Promise<void>;

interface Paths {
  readonly dir: string;
  readonly playlist: string;
  readonly keyDir: string | undefined;
  readonly master: { readonly file: string; readonly text: string } | undefined;
}

/** One publish's feed into its stream's HLS output: the BatchSink of its complete reader. */
export class PublishSink implements BatchSink {
  /** the first error of one of this publish's writes */
  failure: unknown = undefined;
  ended = false;
  /** resolves once the sink was closed and its last files written */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    private readonly owner: HlsStream,
    private readonly onClose: () => void,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  writeBatch(frames: readonly MediaFrame[]): Promise<void> | void {
    return this.owner.batch(this, frames);
  }

  close(reason: string | undefined): void {
    this.onClose();
    void this.owner.end(this, reason).finally(this.resolveDone);
  }
}

export class HlsStream {
  private readonly s: HlsSettings;
  private readonly name: string;
  private readonly log: Logger;
  private readonly winfrags: number;
  private window: DoneFragment[] = [];
  /** files of fragments that left the window (and when, in `mediaMs`), removed a playlist length of media later */
  private retired: { readonly file: string; readonly at: number }[] = [];
  /**
   * ms of media in every fragment closed so far, over every publish: the clock
   * of the cleanup (a fragment is deleted once this much more media followed
   * it out of the window as the playlist holds), which a new publish's stream
   * clock restarting at 0 does not disturb.
   */
  private mediaMs = 0;
  private nextSeq = 0;
  private discontSeq = 0;
  private open: OpenFragment | undefined;
  private owner: PublishSink | undefined;
  /** the next fragment follows a restart or a timestamp jump */
  private pendingDiscont = false;
  private restored = false;
  /** reading the playlist back (hls_continuous): frames wait for it */
  private restoring: Promise<void> | undefined;

  private avc: AvcConfig | undefined;
  private hevc: HevcConfig | undefined;
  private aac: AacConfig | undefined;
  private mp3 = false;
  private muxer: TsMuxer | undefined;
  private audio: PendingAudio | undefined;
  private audioNext: number | undefined;
  private lastPcr = -1;
  private lastTs = 0;
  private lastVideoDelta = DEFAULT_FRAME_MS;
  private lastVideoTs: number | undefined;

  private key: KeyState | undefined;
  private keyFrags = 0;
  private paths: Paths | undefined;
  private dirsMade = false;
  private masterWritten = false;
  private readonly warned = new Set<string>();
  private tail: Promise<void> = Promise.resolve();
  private cleanupTimer: NodeJS.Timeout | undefined;

  constructor(private readonly env: HlsStreamEnv) {
    this.s = env.settings;
    this.name = env.name;
    this.log = env.log;
    this.winfrags = Math.max(1, Math.floor(this.s.playlistLength / this.s.fragment));
  }

  /** A publisher starts: its sink, or undefined when the name cannot be a file name (logged). */
  begin(onClose: () => void): PublishSink | undefined {
    try {
      this.paths ??= this.makePaths();
    } catch (e) {
      this.log.error({ ...describeError(e) }, 'hls: the stream name cannot name a file; no HLS for it');
      return undefined;
    }
    if (this.cleanupTimer !== undefined) clearTimeout(this.cleanupTimer);
    this.cleanupTimer = undefined;
    const previous = this.owner;
    const sink = new PublishSink(this, onClose);
    this.owner = sink;
    const jobs: Job[] = [];
    // a previous publish still finishing: its fragment ends here
    if (previous !== undefined && previous.failure === undefined) this.closeFragment(this.lastTs, jobs);
    this.key = undefined;
    if (!this.s.continuous) {
      // the sequence starts again: the old fragments (and keys) go like any that left the window
      const old = this.window;
      this.window = [];
      for (const f of old) this.retire(f);
      this.nextSeq = 0;
      this.discontSeq = 0;
    }
    this.pendingDiscont = this.window.length > 0;
    this.keyFrags = 0;
    this.muxer = undefined;
    this.audio = undefined;
    this.audioNext = undefined;
    this.lastVideoTs = undefined;
    // a new publish may start a new stream clock (the hub forgot the idle stream)
    this.lastPcr = -1;
    this.lastTs = 0;
    this.masterWritten = false;
    if (jobs.length > 0) void this.enqueue(sink, jobs).catch(() => undefined);
    if (this.s.continuous && !this.restored && this.window.length === 0) {
      const restoring = this.enqueue(sink, [() => this.restore()]).catch(() => undefined).finally(() => {
        if (this.restoring === restoring) this.restoring = undefined;
      });
      this.restoring = restoring;
    }
    this.restored = true;
    return sink;
  }

  private makePaths(): Paths {
    const root = this.s.path ?? '';
    const dir = this.s.nested ? outputPath(root, this.name) : outputPath(root);
    const playlist = this.s.nested ? outputPath(root, this.name, 'index.m3u8') : outputPath(root, `${this.name}.m3u8`);
    const keyRoot = this.s.keyPath ?? root;
    const keyDir = this.s.keys ? (this.s.nested ? outputPath(keyRoot, this.name) : outputPath(keyRoot)) : undefined;
    let master: Paths['master'];
    for (const v of this.s.variants) {
      if (this.name.length <= v.suffix.length || !this.name.endsWith(v.suffix)) continue;
      const base = this.name.slice(0, this.name.length - v.suffix.length);
      const text = renderMasterPlaylist(this.s.variants.map((x) => ({ uri: `${this.s.baseUrl}${base}${x.suffix}${this.s.nested ? '/index' : ''}.m3u8`, params: x.params })));
      master = { file: outputPath(root, `${base}.m3u8`), text };
      break;
    }
    return { dir, playlist, keyDir, master };
  }

  // ------------------------------------------------------------ frames

  /** A batch of one publish's frames. */
  batch(sink: PublishSink, frames: readonly MediaFrame[]): Promise<void> | void {
    if (sink !== this.owner || sink.failure !== undefined) return; // a superseded publish's last frames
    if (this.restoring !== undefined) {
      const copy = frames.slice();
      return this.restoring.then(() => this.batch(sink, copy));
    }
    const jobs: Job[] = [];
    let playlistChanged = false;
    for (const f of frames) {
      try {
        if (this.frame(f, jobs)) playlistChanged = true;
      } catch (e) {
        if (!isServerError(e)) throw e;
        this.warnOnce(e.code, { ...describeError(e), timestamp: f.timestamp }, 'hls: frame skipped');
      }
    }
    if (!playlistChanged && jobs.length === 0) return;
    return this.enqueue(sink, jobs);
  }

  /** Mux one frame; true when a fragment was closed. */
  private frame(f: MediaFrame, jobs: Job[]): boolean {
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
        const d = ts - this.open.startTs;
        const force = d > this.s.maxFragment || d < -BACKWARD_JUMP_MS;
        // video that began after an audio-only start: a new fragment (and PMT) at its first keyframe
        const newTrack = this.open.muxer.tracks.video === undefined;
        if (force || (cd.isKeyframe && (newTrack || this.boundary(ts)))) {
          if (force) this.pendingDiscont = true;
          this.flushAudio();
          this.closeFragment(ts, jobs);
          this.openFragment(ts);
          closed = true;
        }
      }
      const open = this.open;
      if (open === undefined || open.muxer.tracks.video === undefined) return closed;
      const chunks = codec === 'avc1' ? avcAnnexB(cd.data, this.avc, cd.isKeyframe) : hevcAnnexB(cd.data, this.hevc, cd.isKeyframe);
      const dts = ts * TS_CLOCK_PER_MS + PTS_OFFSET;
      const pcr = ts * TS_CLOCK_PER_MS;
      const withPcr = pcr > this.lastPcr;
      if (withPcr) this.lastPcr = pcr;
      open.buffers.push(open.muxer.pes({ pid: TsPid.Video, pts: dts + cd.cts * TS_CLOCK_PER_MS, dts, ...(withPcr ? { pcr } : {}), randomAccess: cd.isKeyframe, chunks }));
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
    let chunks: Buffer[];
    if (cd.codec === 'mp4a' && this.aac !== undefined) chunks = aacAdts(cd.data, this.aac);
    else if (cd.codec === '.mp3') {
      this.mp3 = true;
      chunks = [cd.data];
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
      const d = ts - this.open.startTs;
      const force = d > this.s.maxFragment || d < -BACKWARD_JUMP_MS;
      if (force || this.boundary(ts)) {
        if (force) this.pendingDiscont = true;
        this.flushAudio();
        this.closeFragment(ts, jobs);
        this.openFragment(ts);
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
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    if (this.audio !== undefined && this.audio.bytes + bytes > this.s.audioBufferSize) this.flushAudio();
    if (this.audio === undefined) this.audio = { chunks: [], bytes: 0, pts, firstTs: ts };
    this.audio.chunks.push(...chunks);
    this.audio.bytes += bytes;
    this.lastTs = Math.max(this.lastTs, ts);
    if (ts - this.audio.firstTs >= this.s.maxAudioDelay) this.flushAudio();
    return closed;
  }

  /** hls_fragment_slicing: does a fragment end before `ts`? */
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
    open.buffers.push(open.muxer.pes({ pid: TsPid.Audio, pts: a.pts, ...(withPcr ? { pcr } : {}), randomAccess: audioOnly, chunks: a.chunks }));
  }

  private tracks(): TsTracks {
    const video = this.avc !== undefined ? TsStreamType.H264 : this.hevc !== undefined ? TsStreamType.H265 : undefined;
    const audio = this.aac !== undefined ? TsStreamType.Aac : this.mp3 ? TsStreamType.Mpeg1Audio : undefined;
    return { ...(video !== undefined ? { video } : {}), ...(audio !== undefined ? { audio } : {}) };
  }

  private fragmentId(seq: number, ts: number): number {
    let id: number;
    switch (this.s.naming) {
      case 'sequential':
        return seq;
      case 'timestamp':
        id = ts;
        break;
      case 'system':
        id = this.env.now();
        break;
      default: {
        const never: never = this.s.naming;
        throw new Error(`assert: naming ${String(never)}`);
      }
    }
    const g = this.s.granularity;
    return g > 0 ? Math.floor(id / g) * g : id;
  }

  private openFragment(ts: number): void {
    const t = this.tracks();
    const same = this.muxer !== undefined && this.muxer.tracks.video === t.video && this.muxer.tracks.audio === t.audio;
    if (!same) {
      if (this.muxer !== undefined) this.pendingDiscont = true;
      this.muxer = new TsMuxer(t);
    }
    const muxer = this.muxer!;
    const seq = this.nextSeq++;
    const id = this.fragmentId(seq, ts);
    let key: KeyState | undefined;
    if (this.s.keys) {
      if (this.key === undefined || this.keyFrags === 0) {
        this.keyFrags = this.s.fragmentsPerKey - 1;
        key = this.newKey(id);
      } else {
        if (this.s.fragmentsPerKey > 0) this.keyFrags--;
        key = this.key;
      }
    }
    this.open = { id, seq, startTs: ts, discont: this.pendingDiscont, key, buffers: [muxer.tables()], muxer };
    this.pendingDiscont = false;
  }

  private newKey(id: number): KeyState {
    const paths = this.paths!;
    const iv = Buffer.alloc(AES_KEY_BYTES);
    iv.writeBigUInt64BE(BigInt(id), AES_KEY_BYTES - 8);
    const keyName = this.s.nested ? `${id}.key` : `${this.name}-${id}.key`;
    const uri = this.s.nested ? `${this.s.keyUrl}${this.s.keyUrl !== '' ? `${this.name}/` : ''}${id}.key` : `${this.s.keyUrl}${this.name}-${id}.key`;
    this.key = { id, key: randomBytes(AES_KEY_BYTES), iv, file: outputPath(paths.keyDir!, keyName), uri };
    return this.key;
  }

  /** Ends the open fragment at `endTs`: its file, the window, the playlist (as jobs). */
  private closeFragment(endTs: number, jobs: Job[], ended = false): void {
    const open = this.open;
    this.open = undefined;
    const paths = this.paths!;
    if (open !== undefined) {
      const durationMs = Math.max(1, endTs - open.startTs);
      const name = this.s.nested ? `${open.id}.ts` : `${this.name}-${open.id}.ts`;
      const uri = this.s.nested ? (this.s.baseUrl !== '' ? `${this.s.baseUrl}${this.name}/${name}` : name) : `${this.s.baseUrl}${name}`;
      const file = outputPath(paths.dir, name);
      const done: DoneFragment = {
        seq: open.seq,
        uri,
        durationMs,
        discont: open.discont,
        file,
        ...(open.key !== undefined ? { key: { uri: open.key.uri, iv: open.key.iv.toString('hex') }, keyFile: open.key.file } : {}),
      };
      const key = open.key;
      const buffers = open.buffers;
      const newKey = key !== undefined && key.id === open.id;
      jobs.push(async () => {
        await this.ensureDirs();
        if (newKey) await writeFileAtomic(key.file, key.key);
        await writeFileAtomic(file, key !== undefined ? encrypt(buffers, key) : buffers);
      });
      this.mediaMs += durationMs;
      this.window.push(done);
      if (this.s.type === 'live') {
        while (this.window.length > this.winfrags) {
          const old = this.window.shift()!;
          if (old.discont) this.discontSeq++;
          this.retire(old);
        }
      }
    } else if (!ended) {
      return;
    }
    const text = renderMediaPlaylist({ fragments: this.window, nextSeq: this.nextSeq, discontinuitySeq: this.discontSeq, fragmentMs: this.s.fragment, event: this.s.type === 'event', ended });
    const master = this.masterWritten ? undefined : paths.master;
    this.masterWritten = true;
    // what left the window a playlist length of media before now (written by earlier jobs)
    const before = this.mediaMs - this.s.playlistLength;
    jobs.push(async () => {
      await this.ensureDirs();
      await writeFileAtomic(paths.playlist, text);
      if (master !== undefined) await writeFileAtomic(master.file, master.text);
      if (this.s.cleanup) await this.removeRetired(before);
    });
  }

  /** A fragment left the window: its file (and its key, when no fragment of the window nor the current key uses it) goes a playlist length later. */
  private retire(f: DoneFragment): void {
    const at = this.mediaMs;
    this.retired.push({ file: f.file, at });
    if (f.keyFile !== undefined && f.keyFile !== this.key?.file && !this.window.some((w) => w !== f && w.keyFile === f.keyFile)) this.retired.push({ file: f.keyFile, at });
  }

  private async ensureDirs(): Promise<void> {
    if (this.dirsMade) return;
    const p = this.paths!;
    try {
      await mkdir(p.dir, { recursive: true });
      if (p.keyDir !== undefined) await mkdir(p.keyDir, { recursive: true });
    } catch (e) {
      throw serverError(ErrorCode.OutputWriteFailed, `cannot create ${p.dir}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    this.dirsMade = true;
  }

  /** Deletes retired fragments (retired before `before`) that no fragment of the window reuses the name of. */
  private async removeRetired(before: number): Promise<void> {
    const keep = new Set(this.window.flatMap((f) => (f.keyFile !== undefined ? [f.file, f.keyFile] : [f.file])));
    if (this.key !== undefined) keep.add(this.key.file);
    if (this.open !== undefined) keep.add(outputPath(this.paths!.dir, this.s.nested ? `${this.open.id}.ts` : `${this.name}-${this.open.id}.ts`));
    while (this.retired.length > 0 && this.retired[0]!.at <= before) {
      const r = this.retired.shift()!;
      if (!keep.has(r.file)) await unlink(r.file).catch(() => undefined);
    }
  }

  // ------------------------------------------------------------ writes and the end

  /** Runs jobs after every earlier one; a failure is the publish's (reported through its reader). */
  private enqueue(sink: PublishSink, jobs: readonly Job[]): Promise<void> {
    const run = this.tail.then(async () => {
      if (sink.failure !== undefined) return;
      try {
        for (const j of jobs) await j();
      } catch (e) {
        sink.failure ??= e;
        throw e;
      }
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** A publish's reader closed (its publisher left, or the reader was cut off). */
  async end(sink: PublishSink, reason: string | undefined): Promise<void> {
    if (reason !== undefined) {
      const failed = sink.failure !== undefined ? describeError(sink.failure) : undefined;
      this.log.error({ code: failed?.code ?? ErrorCode.OutputWriteFailed, reason }, 'hls: muxer stopped; the stream goes on without HLS');
    }
    if (sink !== this.owner) return this.tail;
    if (sink.failure !== undefined) {
      this.owner = undefined;
      this.open = undefined;
      return this.tail;
    }
    const jobs: Job[] = [];
    this.flushAudio();
    const endTs = this.open !== undefined ? Math.max(this.lastTs + this.lastVideoDelta, this.open.startTs + 1) : this.lastTs;
    this.closeFragment(endTs, jobs, true);
    this.owner = undefined;
    sink.ended = true;
    await this.enqueue(sink, jobs).catch((e: unknown) => {
      this.log.error({ ...describeError(e) }, 'hls: the last fragment or playlist could not be written');
    });
    if (this.owner !== undefined) return;
    if (this.s.cleanup && this.s.type === 'live') {
      this.cleanupTimer = setTimeout(() => void this.removeAll(), END_CLEANUP_FACTOR * this.s.playlistLength);
      this.cleanupTimer.unref();
    } else {
      // nothing to clean: forgotten now (hls_continuous reads the playlist back if the name is published again)
      this.env.onIdle(this);
    }
  }

  /** The publisher did not come back: the stream's files go (hls_cleanup), the owner forgets it. */
  private async removeAll(): Promise<void> {
    this.cleanupTimer = undefined;
    if (this.owner !== undefined) return;
    const keys = new Set(this.window.flatMap((f) => (f.keyFile !== undefined ? [f.keyFile] : [])));
    const files = [...this.window.map((f) => f.file), ...keys, ...this.retired.map((r) => r.file), this.paths!.playlist];
    this.window = [];
    this.retired = [];
    for (const f of files) await unlink(f).catch(() => undefined);
    if (this.owner !== undefined) return;
    this.env.onIdle(this);
  }

  /** Server stop / reload: timers off (files stay, as nginx-rtmp leaves them). */
  dispose(): void {
    if (this.cleanupTimer !== undefined) clearTimeout(this.cleanupTimer);
    this.cleanupTimer = undefined;
  }

  /** hls_continuous after a server restart: the media sequence and window from our playlist on disk. */
  private async restore(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.paths!.playlist, 'utf8');
    } catch {
      return;
    }
    const p = parseMediaPlaylist(text);
    if (p === undefined || this.window.length > 0 || this.open !== undefined) return;
    const dir = this.paths!.dir;
    const restored: DoneFragment[] = [];
    for (const f of p.fragments) {
      const base = f.uri.slice(f.uri.lastIndexOf('/') + 1);
      try {
        restored.push({ seq: f.seq, uri: f.uri, durationMs: f.durationMs, discont: f.discont, file: outputPath(dir, base) });
      } catch {
        return; // not ours
      }
    }
    const keep = this.s.type === 'event' ? restored.length : this.winfrags;
    for (const f of restored.slice(0, Math.max(0, restored.length - keep))) this.retire(f);
    this.window = restored.slice(-keep);
    this.nextSeq = Math.max(this.nextSeq, p.mediaSeq + p.fragments.length);
    this.pendingDiscont = this.window.length > 0;
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(fields, msg);
  }
}

/** AES-128-CBC with PKCS#7 padding over the whole fragment (RFC 8216 4.3.2.4). */
function encrypt(buffers: readonly Buffer[], key: KeyState): Buffer[] {
  const c = createCipheriv('aes-128-cbc', key.key, key.iv);
  const out = buffers.map((b) => c.update(b));
  out.push(c.final());
  return out;
}
