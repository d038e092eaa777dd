import type { AppModule, ModuleDeps, PublishContext } from '../app/chain.js';
import { streamOptionsFor } from '../app/stream-options.js';
import type { HlsSettings } from '../config/hls.js';
import type { ApplicationConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { outputErrors } from '../core/metrics.js';
import { CompleteReader } from '../live/complete-reader.js';
import type { LiveHub } from '../live/hub.js';
import type { LiveStream } from '../live/stream.js';
import { HlsStream, type PublishSink } from './stream.js';

/**
 * The HLS output of an application (`hls on`): for every stream published in
 * it, a complete reader feeding that stream's HLS muxer (src/hls/stream.ts).
 * The muxer of a name outlives a publish so that a reconnecting publisher
 * continues the media sequence (`hls_continuous`); it is forgotten once its
 * files were cleaned up.
 */
class HlsModule implements AppModule {
  readonly name = 'hls';
  private readonly streams = new Map<string, HlsStream>();
  private readonly publishes = new Map<PublishContext, { readonly reader: CompleteReader; readonly sink: PublishSink }>();
  private readonly hub: LiveHub;
  private readonly log: Logger;
  private closed = false;
  /** publishes whose last fragment and playlist are still being written */
  private readonly ending = new Set<Promise<void>>();

  constructor(
    private readonly app: ApplicationConfig,
    private readonly settings: HlsSettings,
    deps: ModuleDeps,
  ) {
    this.hub = deps.hub;
    this.log = deps.logger.child({ module: 'hls', app: app.name });
  }

  published(ctx: PublishContext, stream: LiveStream): void {
    if (this.closed) return;
    let hls = this.streams.get(stream.name);
    if (hls === undefined) {
      hls = new HlsStream({
        settings: this.settings,
        name: stream.name,
        log: this.log.child({ stream: stream.name }),
        now: Date.now,
        onIdle: (s) => {
          if (this.streams.get(stream.name) === s) this.streams.delete(stream.name);
        },
      });
      this.streams.set(stream.name, hls);
    }
    const held: { reader?: CompleteReader } = {};
    const sink = hls.begin(() => {
      if (held.reader?.cutOffReason !== undefined) outputErrors.inc({ output: 'hls', app: this.app.name });
      if (held.reader !== undefined) this.hub.unsubscribe(stream, held.reader);
    });
    if (sink === undefined) return;
    // the reader logs nothing itself: the sink's close logs the one line (with the write error's code)
    const reader = new CompleteReader(sink);
    held.reader = reader;
    this.publishes.set(ctx, { reader, sink });
    this.hub.subscribe(this.app.name, stream.name, reader, streamOptionsFor(this.app));
  }

  publishDone(ctx: PublishContext): void {
    const p = this.publishes.get(ctx);
    this.publishes.delete(ctx);
    if (p === undefined) return;
    p.reader.finish();
    this.ending.add(p.sink.done);
    void p.sink.done.then(() => this.ending.delete(p.sink.done));
  }

  /** Server stop or reload: every publish's HLS ends (last fragment, playlist with EXT-X-ENDLIST). */
  async close(): Promise<void> {
    this.closed = true;
    const done = [...this.publishes.values()].map((p) => {
      p.reader.finish();
      return p.sink.done;
    });
    this.publishes.clear();
    await Promise.all([...done, ...this.ending]);
    for (const s of this.streams.values()) s.dispose();
    this.streams.clear();
  }
}

/** The HLS module of an application, or undefined when `hls` is off (or has no `hls_path`, as nginx-rtmp). */
export function hlsModule(app: ApplicationConfig, deps: ModuleDeps): AppModule | undefined {
  const s = app.hls;
  if (s === undefined || !s.enabled) return undefined;
  if (s.path === undefined) {
    deps.logger.warn({ app: app.name }, 'hls on without hls_path: no HLS is written (as nginx-rtmp)');
    return undefined;
  }
  return new HlsModule(app, s, deps);
}
