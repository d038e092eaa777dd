/**
 * One RTMP publisher: sends a LoopMedia at real time with our own RtmpClient.
 * Timestamps start at 0 at `origin` (epoch ms, `clock()`), so a player can
 * compute its lag as clock() - (origin + timestamp).
 */
import { RtmpClient } from '../../src/rtmp/client.js';
import { encodeAmf0 } from '../../src/rtmp/amf0.js';
import { TagType, type LoopMedia } from './media.js';
import { clock } from './stats.js';

export interface PublisherOptions {
  /** rtmp://host:port/app (no stream name) */
  readonly appUrl: string;
  readonly name: string;
  readonly media: LoopMedia;
  readonly chunkSize?: number;
  readonly connectTimeoutMs?: number;
  /** called after each media message is handed to the socket (latency mode) */
  readonly onSent?: (type: number, timestamp: number, length: number, at: number) => void;
  readonly onError?: (e: Error) => void;
}

export class Publisher {
  /** epoch ms of timestamp 0; NaN until publishing started */
  origin = NaN;
  messages = 0;
  bytes = 0;
  /** how late the worst message left (ms after its due time) */
  maxLateMs = 0;
  /** messages that left more than 50 ms late */
  late50 = 0;
  /** largest socket write queue seen (bytes) */
  maxWriteQueue = 0;
  error: Error | undefined;
  private client: RtmpClient | undefined;
  private streamId = 0;
  private loop = 0;
  private index = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(readonly opts: PublisherOptions) {}

  get closed(): boolean {
    return this.client === undefined || this.client.closed;
  }

  /** Connects, publishes, sends metadata and codec headers, then paces the loop until stop(). */
  async start(): Promise<void> {
    const o = this.opts;
    const client = await RtmpClient.connect(o.appUrl, { chunkSize: o.chunkSize ?? 4096, timeout: o.connectTimeoutMs ?? 10_000 });
    this.client = client;
    client.onClose = (err) => {
      if (!this.stopped) {
        this.error ??= err ?? new Error('publisher connection closed');
        o.onError?.(this.error);
      }
      this.stopTimer();
    };
    this.streamId = await client.publish(o.name);
    this.origin = clock();
    const media = o.media;
    if (media.metadata !== undefined) {
      client.sendMedia(this.streamId, TagType.Script, 0, Buffer.concat([encodeAmf0(['@setDataFrame']), media.metadata]));
    }
    for (const h of media.headers) client.sendMedia(this.streamId, h.type, 0, h.data);
    this.tick();
  }

  private tick(): void {
    this.timer = undefined;
    const client = this.client;
    if (this.stopped || client === undefined || client.closed) return;
    const media = this.opts.media;
    const tags = media.tags;
    const now = clock();
    for (;;) {
      const tag = tags[this.index]!;
      const ts = this.loop * media.loopMs + tag.offset;
      const due = this.origin + ts;
      if (due > now + 0.5) {
        this.timer = setTimeout(() => this.tick(), Math.max(0, due - clock()));
        return;
      }
      const late = now - due;
      if (late > this.maxLateMs) this.maxLateMs = late;
      if (late > 50) this.late50++;
      client.sendMedia(this.streamId, tag.type, ts, tag.data);
      this.messages++;
      this.bytes += tag.data.length;
      this.opts.onSent?.(tag.type, ts, tag.data.length, clock());
      const q = client.socket.writableLength;
      if (q > this.maxWriteQueue) this.maxWriteQueue = q;
      if (++this.index === tags.length) {
        this.index = 0;
        this.loop++;
      }
    }
  }

  /** Starts the lateness counters afresh (at the start of a measurement window). */
  resetLateness(): void {
    this.maxLateMs = 0;
    this.late50 = 0;
    this.maxWriteQueue = 0;
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTimer();
    await this.client?.close();
  }
}
