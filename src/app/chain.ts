import type { Logger } from '../core/log.js';
import type { LiveHub } from '../live/hub.js';
import type { LiveStream } from '../live/stream.js';

/**
 * Per-application behaviour as a chain of modules, built once per
 * configuration (like nginx-rtmp's next_publish chain). Each step may refuse
 * by throwing a coded ServerError, change the context (a webhook renaming a
 * stream), or call next() to go on. Done-events run every module, in order.
 */

export interface SessionInfo {
  /** connection id */
  readonly id: string;
  readonly remoteAddress: string;
  readonly app: string;
  readonly query: string;
  readonly tcUrl: string;
  readonly flashVer: string;
  readonly swfUrl: string;
  readonly pageUrl: string;
  readonly log: Logger;
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
}

export type Next = () => Promise<void>;

/** What modules may use besides their configuration: the server's hub and logger. */
export interface ModuleDeps {
  readonly hub: LiveHub;
  readonly logger: Logger;
  /**
   * The application's own chain (known once every module is built). A module
   * that publishes a stream itself (a pull relay) runs its `published` and
   * `publishDone` through it, so exec, push and notify see that stream too.
   */
  readonly chain?: () => AppChain | undefined;
}

export interface AppModule {
  readonly name: string;
  connect?(ctx: ConnectContext, next: Next): Promise<void>;
  publish?(ctx: PublishContext, next: Next): Promise<void>;
  play?(ctx: PlayContext, next: Next): Promise<void>;
  /** the stream is live in the hub: outputs (record, HLS, push relays) attach their readers here */
  published?(ctx: PublishContext, stream: LiveStream): void;
  publishDone?(ctx: PublishContext): void;
  playDone?(ctx: PlayContext): void;
  disconnect?(session: SessionInfo): void;
  /** the server stops: end what the module runs (child processes, relays, timers) */
  close?(): Promise<void> | void;
}

type Step<C> = (ctx: C, next: Next) => Promise<void>;

function compose<C>(steps: readonly Step<C>[]): (ctx: C) => Promise<void> {
  return (ctx: C) => {
    const run = (i: number): Promise<void> => {
      const step = steps[i];
      if (step === undefined) return Promise.resolve();
      let called = false;
      return step(ctx, () => {
        if (called) return Promise.reject(new Error('next() called twice'));
        called = true;
        return run(i + 1);
      });
    };
    return run(0);
  };
}

/** The composed chain of one application. */
export class AppChain {
  readonly connect: (ctx: ConnectContext) => Promise<void>;
  readonly publish: (ctx: PublishContext) => Promise<void>;
  readonly play: (ctx: PlayContext) => Promise<void>;

  constructor(readonly modules: readonly AppModule[]) {
    this.connect = compose(modules.flatMap((m) => (m.connect ? [m.connect.bind(m)] : [])));
    this.publish = compose(modules.flatMap((m) => (m.publish ? [m.publish.bind(m)] : [])));
    this.play = compose(modules.flatMap((m) => (m.play ? [m.play.bind(m)] : [])));
  }

  published(ctx: PublishContext, stream: LiveStream): void {
    for (const m of this.modules) this.safely(ctx.session.log, m, () => m.published?.(ctx, stream));
  }

  publishDone(ctx: PublishContext): void {
    for (const m of this.modules) this.safely(ctx.session.log, m, () => m.publishDone?.(ctx));
  }

  playDone(ctx: PlayContext): void {
    for (const m of this.modules) this.safely(ctx.session.log, m, () => m.playDone?.(ctx));
  }

  disconnect(session: SessionInfo): void {
    for (const m of this.modules) this.safely(session.log, m, () => m.disconnect?.(session));
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
