import { ErrorCode, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { ApplicationConfig } from '../config/types.js';
import type { LiveHub } from '../live/hub.js';
import type { PublisherInfo, StreamOptions } from '../live/stream.js';
import type { AppModule, PlayContext, PublishContext } from './chain.js';
import { checkStreamName } from './names.js';

/** How often drop_idle_publisher looks at the application's publishers (at most; less for a shorter setting). */
const IDLE_CHECK_INTERVAL = 1000;

/**
 * The live step (nginx-rtmp's live module), the last member of every
 * application's chain: a publish that every other module let through attaches
 * its publisher to the hub's stream; a play subscribes its reader. What it
 * refuses (an invalid name, a busy name, `idle_streams off` for a stream
 * nobody publishes, `live off` for a play) comes back through the chain like
 * any module's refusal, so the modules before it undo what they started.
 *
 * `live off`: the application serves no live players (a play is refused as
 * not found); what is published still reaches the stream core, for push
 * relays, exec and the outputs that read it.
 *
 * drop_idle_publisher: one timer for the application checks every publisher's
 * last audio/video; one that sent none for that long is stopped through its
 * session (its protocol ends it: the RTMP connection, the pull relay).
 */
export class LiveModule implements AppModule {
  readonly name = 'live';
  private readonly publishers = new Map<PublishContext, PublisherInfo>();
  private idleTimer: NodeJS.Timeout | undefined = undefined;

  constructor(
    private readonly app: ApplicationConfig,
    private readonly hub: LiveHub,
    private readonly streamOptions: StreamOptions,
    private readonly log: Logger,
  ) {}

  publish(ctx: PublishContext, next: () => Promise<void>): Promise<void> {
    checkStreamName(ctx.name);
    const session = ctx.session;
    const pub: PublisherInfo = {
      id: session.id,
      remote: session.remoteAddress,
      stop: (reason: string) => {
        if (session.stop !== undefined) session.stop(reason);
        else this.log.warn({ stream: ctx.name, session: session.id, reason }, 'live: a publisher without a way to stop it was asked to stop');
      },
    };
    // throws StreamBusy: the chain undoes the modules before this one
    ctx.stream = this.hub.publish(this.app.name, ctx.name, pub, this.streamOptions);
    this.publishers.set(ctx, pub);
    this.watchIdle();
    return next();
  }

  publishDone(ctx: PublishContext): void {
    const pub = this.publishers.get(ctx);
    if (pub === undefined) return;
    this.publishers.delete(ctx);
    if (ctx.stream !== undefined) this.hub.unpublish(ctx.stream, pub);
    if (this.publishers.size === 0 && this.idleTimer !== undefined) {
      clearInterval(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  play(ctx: PlayContext, next: () => Promise<void>): Promise<void> {
    checkStreamName(ctx.name);
    const live = this.app.live;
    if (!live.live) throw serverError(ErrorCode.StreamNameInvalid, `stream ${ctx.name}: application ${this.app.name} serves no live players (live off)`);
    if (!live.idleStreams && this.hub.get(this.app.name, ctx.name)?.active !== true) {
      throw serverError(ErrorCode.StreamNameInvalid, `stream ${ctx.name} is not published (idle_streams off)`);
    }
    const reader = ctx.reader;
    if (reader === undefined) throw new TypeError('live: a play without a reader');
    ctx.onAccept?.(ctx.name);
    ctx.stream = this.hub.subscribe(this.app.name, ctx.name, reader, this.streamOptions);
    return next();
  }

  playDone(ctx: PlayContext): void {
    const stream = ctx.stream;
    const reader = ctx.reader;
    if (stream === undefined || reader === undefined || !reader.attached) return;
    this.hub.unsubscribe(stream, reader);
  }

  close(): void {
    if (this.idleTimer !== undefined) clearInterval(this.idleTimer);
    this.idleTimer = undefined;
  }

  private watchIdle(): void {
    const limit = this.app.live.dropIdlePublisher;
    if (limit <= 0 || this.idleTimer !== undefined) return;
    this.idleTimer = setInterval(() => {
      const now = Date.now();
      for (const [ctx, pub] of [...this.publishers]) {
        const s = ctx.stream;
        if (s !== undefined && now - s.stats.lastMediaAt > limit) pub.stop(`no media for ${limit} ms (drop_idle_publisher)`);
      }
    }, Math.min(IDLE_CHECK_INTERVAL, limit));
    this.idleTimer.unref();
  }
}
