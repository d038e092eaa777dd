import { ErrorCode, describeError, isServerError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { HlsSettings } from '../config/hls.js';
import type { BatchSink } from '../live/complete-reader.js';
import type { MediaFrame } from '../live/frame.js';
import { TsSegmenter } from './segmenter.js';
import { FragmentWindow, type Job } from './window.js';

/**
 * The HLS output of one stream (one name in one application): the publish
 * lifecycle and the order of its writes. It outlives a publish (the media
 * sequence continues across a reconnect with `hls_continuous`); each publish
 * feeds it through its own `PublishSink`, the BatchSink of that publish's
 * complete reader. It is not the muxing (src/hls/segmenter.ts: MPEG-TS
 * fragments cut on keyframes) nor the window (src/hls/window.ts: sequence
 * numbers, keys, playlist and fragment writes, cleanup) nor the names
 * (src/hls/naming.ts).
 *
 * Frames are muxed synchronously as a batch arrives; a finished fragment and
 * the playlist are written (whole files, atomically) before the batch's
 * promise settles, so the reader holds the next batch meanwhile and the
 * stream never waits. A failed write ends this publish's HLS with one log line.
 */

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
  private readonly log: Logger;
  private readonly window: FragmentWindow;
  private readonly segmenter: TsSegmenter;
  private owner: PublishSink | undefined;
  private restored = false;
  /** reading the playlist back (hls_continuous): frames wait for it */
  private restoring: Promise<void> | undefined;
  private readonly warned = new Set<string>();
  private tail: Promise<void> = Promise.resolve();
  private cleanupTimer: NodeJS.Timeout | undefined;

  constructor(private readonly env: HlsStreamEnv) {
    this.s = env.settings;
    this.log = env.log;
    this.window = new FragmentWindow(this.s, env.name, env.now, () => this.segmenter.openId);
    this.segmenter = new TsSegmenter(this.s, this.window, (key, fields, msg) => this.warnOnce(key, fields, msg));
  }

  /** A publisher starts: its sink, or undefined when the name cannot be a file name (logged). */
  begin(onClose: () => void): PublishSink | undefined {
    try {
      this.window.preparePaths();
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
    if (previous !== undefined && previous.failure === undefined) this.segmenter.cut(jobs);
    this.window.restart();
    this.segmenter.restart();
    if (jobs.length > 0) void this.enqueue(sink, jobs).catch(() => undefined);
    if (this.s.continuous && !this.restored && this.window.empty) {
      const restoring = this.enqueue(sink, [() => this.window.restore()]).catch(() => undefined).finally(() => {
        if (this.restoring === restoring) this.restoring = undefined;
      });
      this.restoring = restoring;
    }
    this.restored = true;
    return sink;
  }

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
        if (this.segmenter.frame(f, jobs)) playlistChanged = true;
      } catch (e) {
        if (!isServerError(e)) throw e;
        this.warnOnce(e.code, { ...describeError(e), timestamp: f.timestamp }, 'hls: frame skipped');
      }
    }
    if (!playlistChanged && jobs.length === 0) return;
    return this.enqueue(sink, jobs);
  }

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
      this.segmenter.drop();
      return this.tail;
    }
    const jobs: Job[] = [];
    this.segmenter.finish(jobs);
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
    await this.window.removeAll();
    if (this.owner !== undefined) return;
    this.env.onIdle(this);
  }

  /** Server stop / reload: timers off (files stay, as nginx-rtmp leaves them). */
  dispose(): void {
    if (this.cleanupTimer !== undefined) clearTimeout(this.cleanupTimer);
    this.cleanupTimer = undefined;
  }

  private warnOnce(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(fields, msg);
  }
}
