import type { Logger } from '../core/log.js';
import type { LiveHub } from '../live/hub.js';
import type { StreamReader } from '../live/reader.js';
import type { LiveStream } from '../live/stream.js';

/**
 * Per-application behaviour as a chain of modules, built once per
 * configuration (like nginx-rtmp's next_publish chain). Each step may refuse
 * by throwing a coded ServerError, change the context (a webhook renaming a
 * stream), or call next() to go on. Done-events run every module, in order.
 *
 * Refusals undo what already ran: `publish` and `play` take the server's own
 * acceptance step (`accept`: the live step's name and idle_streams checks),
 * run innermost, after every module, so a refusal there comes back through
 * every module's `await next()` like a module's refusal. When the step is
 * refused (by a module, by `accept`, or by a module's code after `next()`),
 * every module that went on (called `next()`) gets its done-event with
 * `refused` set, last first: it releases what it started for the context
 * (a pull relay, an exec_pull child, an on_update timer). The module that
 * refused gets nothing: it must leave nothing behind itself. Done handlers
 * must therefore accept a context they never finished (and one they saw a
 * done-event for already).
 */

/**
 * One client of an application, whatever its protocol: an RTMP connection, a
 * pull relay's upstream, an HTTP player. Modules see only this.
 */
export interface SessionInfo {
  /** unique within the server (a connection id, a relay's id) */
  readonly id: string;
  /** who the client speaks to us with: 'rtmp', 'relay' (a pull's upstream), 'http'... (logs, stats, modules) */
  readonly protocol: string;
  readonly remoteAddress: string;
  readonly app: string;
  readonly query: string;
  readonly tcUrl: string;
  readonly flashVer: string;
  readonly swfUrl: string;
  readonly pageUrl: string;
  readonly log: Logger;
  /** ends the session (the control API, drop_idle_publisher, an on_update refusal) */
  readonly stop?: (reason: string) => void;
}

export interface ConnectContext {
  readonly session: SessionInfo;
}

export interface PublishContext {
  readonly session: SessionInfo;
  /** may be changed by a module (e.g. a webhook redirect) before the live module runs */
  name: string;
  query: string;
  readonly type: 'live' | 'record' | 'append';
  /** notify_relay_redirect: the stream is also pushed to this rtmp:// URL (set by notify, run by relay) */
  relayUrl?: string;
  /** the live stream, once the live step attached the publisher (the last step of the chain) */
  stream?: LiveStream;
  /** sends an onStatus to the publisher on its stream (record_notify), when its protocol has one */
  readonly status?: (level: 'status' | 'error', code: string, description: string) => void;
}

export interface PlayContext {
  readonly session: SessionInfo;
  name: string;
  query: string;
  readonly start: number;
  readonly duration: number;
  /** notify_relay_redirect: the stream is pulled from this rtmp:// URL (set by notify, run by relay) */
  relayUrl?: string;
  /** set by the server once the play is accepted: ends this player (an on_update refusal) */
  stop?: (reason: string) => void;
  /** the protocol's reader of the stream: the live step subscribes it (the last step of the chain) */
  reader?: StreamReader;
  /** the live step accepted the play (of `name`, as the chain left it): the protocol's status messages go out before the stream's first frames */
  onAccept?: (name: string) => void;
  /** the live stream, once the live step subscribed the reader */
  stream?: LiveStream;
  /** set by a module serving the play from a publisher-less source (VOD): seek and pause */
  playback?: PlaybackControl;
  /** set by the protocol: how such a source tells the player it ended */
  events?: PlaybackEvents;
}

/** The controls of a play from a publisher-less source (a VOD file). */
export interface PlaybackControl {
  /** the source's length in ms */
  readonly durationMs: number;
  /** plays on from the keyframe at or before `ms`; returns the time it lands on */
  seek(ms: number): number;
  /** stops sending (true) or goes on from where it stopped (false, on a keyframe) */
  pause(paused: boolean): void;
}

/** What a publisher-less source tells the protocol about its end. */
export interface PlaybackEvents {
  /** every frame was sent */
  complete(durationMs: number): void;
  /** the source broke (a truncated or corrupt file): the play ends; the source logged it */
  failed(message: string): void;
}

export type Next = () => Promise<void>;

/** A recorder opened or closed a file (exec_record_started/done, on_record_started/done). */
export interface RecordEvent {
  readonly session: SessionInfo;
  /** the stream name */
  readonly name: string;
  /** the stream's query string */
  readonly query: string;
  /** recorder name ('' for the application's own recorder) */
  readonly recorder: string;
  /** the recording's file path */
  readonly path: string;
}

/** How an output tells the application's modules about its files (a small interface: outputs do not import notify/exec). */
export interface RecordEvents {
  recordStarted(ev: RecordEvent): void;
  recordDone(ev: RecordEvent): void;
}

/**
 * How a module publishes a stream itself (a pull relay): through the stream
 * service, like any protocol, so that the whole chain (access, notify, exec,
 * push, live with `meta` and `drop_idle_publisher`) applies to it.
 */
export interface StreamPublisher {
  publish(session: SessionInfo, req: { readonly name: string; readonly query: string; readonly type: PublishContext['type'] }): Promise<PublishingStream>;
}

/** A publish accepted by the whole chain: the normalised ingest of one stream. */
export interface PublishingStream {
  readonly stream: LiveStream;
  /** audio (8) or video (9): an FLV tag body with its absolute timestamp */
  media(kind: number, timestamp: number, payload: Buffer): void;
  /** script data as it came (AMF0 type 18 or AMF3 type 15): unwrapped, bounded, `meta` applied; throws a ServerError when it is oversized */
  data(type: number, timestamp: number, payload: Buffer): void;
  beginBatch(): void;
  endBatch(): void;
  /** the publisher stopped: every module's publishDone */
  close(): void;
}

/** What modules may use besides their configuration: the server's hub and logger. */
export interface ModuleDeps {
  readonly hub: LiveHub;
  readonly logger: Logger;
  /**
   * The stream service, for the application's own chain (known once every
   * module is built): a module that publishes a stream itself (a pull relay)
   * publishes through it, so every module sees that stream as a publish.
   */
  readonly publisher?: () => StreamPublisher | undefined;
  /** the application's chain, for an output's record events (known once every module is built) */
  readonly events?: () => RecordEvents | undefined;
}

export interface AppModule {
  readonly name: string;
  connect?(ctx: ConnectContext, next: Next): Promise<void>;
  publish?(ctx: PublishContext, next: Next): Promise<void>;
  play?(ctx: PlayContext, next: Next): Promise<void>;
  /** the stream is live in the hub: outputs (record, HLS, push relays) attach their readers here */
  published?(ctx: PublishContext, stream: LiveStream): void;
  /** the publish ended, or (`refused`) a later step refused it after this module let it through */
  publishDone?(ctx: PublishContext, refused?: boolean): void;
  /** the play ended, or (`refused`) a later step refused it after this module let it through */
  playDone?(ctx: PlayContext, refused?: boolean): void;
  disconnect?(session: SessionInfo): void;
  /** a recorder opened a file (exec_record_started, on_record_started) */
  recordStarted?(ev: RecordEvent): void;
  /** a recorder closed a file, or failed to open it (exec_record_done, on_record_done) */
  recordDone?(ev: RecordEvent): void;
  /** the length in ms of a recorded stream this module serves (VOD: getStreamLength); undefined: not one of its own */
  streamLength?(name: string): Promise<number | undefined>;
  /** the server stops: end what the module runs (child processes, relays, timers) */
  close?(): Promise<void> | void;
}

type Step<C> = (ctx: C, next: Next) => Promise<void>;

/** The server's terminal step, run after every module (may refuse by throwing). */
export type Accept<C> = (ctx: C) => void | Promise<void>;

interface Link<C> {
  readonly module: AppModule;
  readonly step: Step<C>;
}

/**
 * Runs the steps in order, then `accept`. On a refusal, `undo` runs for every
 * module that called next(), last first, before the refusal is rethrown.
 */
function compose<C>(links: readonly Link<C>[], undo: (m: AppModule, ctx: C) => void): (ctx: C, accept?: Accept<C>) => Promise<void> {
  return async (ctx: C, accept?: Accept<C>) => {
    const passed: AppModule[] = [];
    const run = async (i: number): Promise<void> => {
      const link = links[i];
      if (link === undefined) return accept?.(ctx);
      let called = false;
      return link.step(ctx, () => {
        if (called) return Promise.reject(new Error('next() called twice'));
        called = true;
        passed.push(link.module);
        return run(i + 1);
      });
    };
    try {
      await run(0);
    } catch (e) {
      for (let i = passed.length - 1; i >= 0; i--) undo(passed[i]!, ctx);
      throw e;
    }
  };
}

/** The composed chain of one application. */
export class AppChain implements RecordEvents {
  readonly connect: (ctx: ConnectContext) => Promise<void>;
  /** runs the publish chain, then `accept`; a refusal undoes the modules that went on (publishDone with `refused`) */
  readonly publish: (ctx: PublishContext, accept?: Accept<PublishContext>) => Promise<void>;
  /** runs the play chain, then `accept`; a refusal undoes the modules that went on (playDone with `refused`) */
  readonly play: (ctx: PlayContext, accept?: Accept<PlayContext>) => Promise<void>;

  constructor(readonly modules: readonly AppModule[]) {
    const links = <C>(pick: (m: AppModule) => Step<C> | undefined): Link<C>[] =>
      modules.flatMap((m) => {
        const step = pick(m);
        return step === undefined ? [] : [{ module: m, step: step.bind(m) }];
      });
    this.connect = compose(
      links<ConnectContext>((m) => m.connect),
      () => undefined,
    );
    this.publish = compose(
      links<PublishContext>((m) => m.publish),
      (m, ctx) => this.safely(ctx.session.log, m, () => m.publishDone?.(ctx, true)),
    );
    this.play = compose(
      links<PlayContext>((m) => m.play),
      (m, ctx) => this.safely(ctx.session.log, m, () => m.playDone?.(ctx, true)),
    );
  }

  published(ctx: PublishContext, stream: LiveStream): void {
    for (const m of this.modules) this.safely(ctx.session.log, m, () => m.published?.(ctx, stream));
  }

  /** every module's publishDone; `refused`: the server refused the publish after the whole chain accepted it */
  publishDone(ctx: PublishContext, refused = false): void {
    for (const m of this.modules) this.safely(ctx.session.log, m, () => m.publishDone?.(ctx, refused));
  }

  /** every module's playDone; `refused`: the server refused the play after the whole chain accepted it */
  playDone(ctx: PlayContext, refused = false): void {
    for (const m of this.modules) this.safely(ctx.session.log, m, () => m.playDone?.(ctx, refused));
  }

  disconnect(session: SessionInfo): void {
    for (const m of this.modules) this.safely(session.log, m, () => m.disconnect?.(session));
  }

  recordStarted(ev: RecordEvent): void {
    for (const m of this.modules) this.safely(ev.session.log, m, () => m.recordStarted?.(ev));
  }

  recordDone(ev: RecordEvent): void {
    for (const m of this.modules) this.safely(ev.session.log, m, () => m.recordDone?.(ev));
  }

  /** Server shutdown: every module's close(), errors logged, never thrown. */
  async close(log: Logger): Promise<void> {
    await Promise.all(
      this.modules.map(async (m) => {
        try {
          await m.close?.();
        } catch (e) {
          log.error({ module: m.name, err: e instanceof Error ? e.message : String(e) }, 'module failed to close');
        }
      }),
    );
  }

  private safely(log: Logger, m: AppModule, f: () => void): void {
    try {
      f();
    } catch (e) {
      log.error({ module: m.name, err: e instanceof Error ? e.message : String(e) }, 'module failed in a done handler');
    }
  }
}
