import type { PlaybackControl, PlaybackEvents } from '../app/chain.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { FrameKind, MediaFrame, frameFlags } from '../live/frame.js';
import { LiveReader, type StreamReader } from '../live/reader.js';
import type { VodFrame, VodMedia } from './vod-media.js';

/** How far ahead of real time a play sends (nginx-rtmp sends about the client's buffer ahead). */
export const VOD_LEAD_MS = 1000;
/** How often a play wakes up to send what became due. */
const TICK_MS = 100;
/** At most this much is read and sent in one go (a burst at start or after a seek is split). */
const MAX_BATCH_BYTES = 512 * 1024;
/** A player whose socket queue is above this share of its bound gets nothing more until it drains (its clock waits). */
const QUEUE_SHARE = 0.5;

/**
 * One VOD play: a publisher-less source that sends one file's frames to one
 * player's reader, paced at real time with a lead of VOD_LEAD_MS (never the
 * whole file into the socket): on each tick it reads the frames that became
 * due and sends them. A player that does not drain its socket stops the
 * clock (nothing is dropped; the play waits). Seek and pause restart the
 * sending on the keyframe at or before the position, after the metadata and
 * codec headers.
 */
export class VodPlay implements PlaybackControl {
  /** the file time the clock started at, and when (wall clock) */
  private baseTs = 0;
  private baseWall = 0;
  /** the last file time sent (the position a pause keeps) */
  private position = 0;
  private paused = false;
  private stopped = false;
  private ended = false;
  /** bumped by every seek/pause/stop: a running loop that sees another generation stops */
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  bytesSent = 0;

  constructor(
    private readonly media: VodMedia,
    private readonly reader: StreamReader,
    private readonly events: PlaybackEvents | undefined,
    private readonly log: Logger,
  ) {}

  get durationMs(): number {
    return this.media.durationMs;
  }

  /** Starts sending from `ms` (a play's start position; negative: from the start). */
  start(ms: number): void {
    this.restart(ms > 0 ? ms : 0);
  }

  seek(ms: number): number {
    this.paused = false;
    return this.restart(ms);
  }

  pause(paused: boolean): void {
    if (paused === this.paused || this.stopped) return;
    this.paused = paused;
    if (paused) {
      this.generation++;
      this.clearTimer();
    } else {
      this.restart(this.position);
    }
  }

  /** The player left: nothing more is sent, the file is closed. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.generation++;
    this.clearTimer();
    this.media.close().catch((e: unknown) => this.log.debug({ err: describeError(e).message }, 'vod: closing the file failed'));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private restart(ms: number): number {
    this.generation++;
    this.clearTimer();
    this.ended = false;
    const at = this.media.seek(ms);
    this.baseTs = at;
    this.baseWall = Date.now();
    this.position = at;
    // metadata and codec headers first, then frames from the keyframe on
    this.reader.restart(this.media.hasVideo);
    this.reader.cork();
    try {
      const meta = this.media.metadata;
      if (meta !== undefined) this.reader.send(new MediaFrame(FrameKind.Data, at, meta, frameFlags(FrameKind.Data, meta)));
      for (const h of this.media.headers) this.reader.send(this.frame(h, at));
    } finally {
      this.reader.uncork();
    }
    const gen = this.generation;
    this.schedule(gen, 0);
    return at;
  }

  private frame(f: VodFrame, timestamp = f.timestamp): MediaFrame {
    return new MediaFrame(f.kind, timestamp, f.payload, frameFlags(f.kind, f.payload));
  }

  private schedule(gen: number, ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick(gen).catch((e: unknown) => {
        // a broken internal rule (the reader threw): this play ends, nothing else
        const d = describeError(e);
        this.ended = true;
        this.log.error({ code: d.code, err: d.message }, 'vod: play failed');
        this.events?.failed('Video on demand stream failed.');
      });
    }, ms);
  }

  private queueFull(): boolean {
    const r = this.reader;
    return r instanceof LiveReader && r.sink.queuedBytes() > r.limits.maxQueuedBytes * QUEUE_SHARE;
  }

  private async tick(gen: number): Promise<void> {
    if (gen !== this.generation || this.stopped || this.paused || this.ended) return;
    if (this.queueFull()) {
      // the player is slow: its clock waits rather than its frames being dropped
      this.baseWall += TICK_MS;
      this.schedule(gen, TICK_MS);
      return;
    }
    const until = this.baseTs + (Date.now() - this.baseWall) + VOD_LEAD_MS;
    let frames: MediaFrame[];
    try {
      frames = await this.media.read(until, MAX_BATCH_BYTES);
    } catch (e) {
      if (gen !== this.generation || this.stopped) return;
      const d = describeError(e);
      this.ended = true;
      this.log.error({ code: d.code, err: d.message }, 'vod: the file cannot be played on: play ended');
      this.events?.failed(`Video on demand stream failed: ${d.message}`);
      return;
    }
    if (gen !== this.generation || this.stopped) return; // a seek or pause came while reading
    if (frames.length === 0) {
      this.ended = true;
      this.events?.complete(this.media.durationMs);
      return;
    }
    let bytes = 0;
    this.reader.cork();
    try {
      for (const f of frames) {
        bytes += f.payload.length;
        // the file's frame, shared with the other plays near this position (and so is its RTMP encoding)
        this.reader.push(f);
      }
    } finally {
      this.reader.uncork();
    }
    this.bytesSent += bytes;
    this.position = frames[frames.length - 1]!.timestamp;
    // a batch cut by its size goes on at once; else the next frames are due in a tick
    this.schedule(gen, bytes >= MAX_BATCH_BYTES ? 0 : TICK_MS);
  }
}
