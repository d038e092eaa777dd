import { unlink } from 'node:fs/promises';
import type { AppModule, ModuleDeps, PublishContext } from '../app/chain.js';
import type { ApplicationConfig } from '../config/types.js';
import { describeError } from '../core/errors.js';
import { outputErrors } from '../core/metrics.js';
import { CompleteReader } from '../live/complete-reader.js';
import type { LiveStream } from '../live/stream.js';
import { dashLayout, DashMuxer } from './muxer.js';
import type { DashSettings } from '../config/dash.js';

/**
 * The dash step of an application's chain (`dash on`): when a stream is
 * published, a complete reader of it feeds a DashMuxer (src/dash/muxer.ts)
 * writing under `dash_path`; when the publisher leaves, the muxer writes its
 * last fragments and a static MPD. With `dash_cleanup on` (the default), a
 * stream's files are deleted two playlist lengths after it ended, unless it
 * was published again (nginx-rtmp deletes them by age, about as late).
 */

interface Running {
  readonly muxer: DashMuxer;
  readonly reader: CompleteReader;
  readonly stream: LiveStream;
  readonly key: string;
}

/** how long after a stream ended its files stay (in playlist lengths), as nginx-rtmp's cleanup (2 x playlen) */
const END_CLEANUP_PLAYLISTS = 2;

class DashModule implements AppModule {
  readonly name = 'dash';
  private readonly running = new WeakMap<PublishContext, Running>();
  /** stream key -> the muxer that owns its MPD (the newest publish) */
  private readonly owners = new Map<string, DashMuxer>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly settings: DashSettings & { readonly path: string },
  ) {}

  published(ctx: PublishContext, stream: LiveStream): void {
    const s = this.settings;
    const log = ctx.session.log.child({ module: 'dash', stream: ctx.name });
    let layout;
    try {
      layout = dashLayout(s.path, ctx.name, s.nested);
    } catch (e) {
      log.warn({ ...describeError(e) }, 'dash: stream name cannot be a file name; not written');
      return;
    }
    const key = layout.mpd;
    const muxer = new DashMuxer({
      settings: s,
      layout,
      log,
      ownsName: (m) => this.owners.get(key) === m,
      onClose: (m) => {
        if (reader.cutOffReason !== undefined) outputErrors.inc({ output: 'dash', app: stream.app });
        this.ended(ctx, m);
      },
    });
    const reader = new CompleteReader(muxer);
    this.owners.set(key, muxer);
    this.running.set(ctx, { muxer, reader, stream, key });
    stream.addReader(reader);
    log.info({ mpd: layout.mpd }, 'dash: writing');
  }

  publishDone(ctx: PublishContext): void {
    this.running.get(ctx)?.reader.finish();
  }

  private ended(ctx: PublishContext, muxer: DashMuxer): void {
    const r = this.running.get(ctx);
    if (r === undefined || r.muxer !== muxer) return;
    this.running.delete(ctx);
    r.stream.removeReader(r.reader);
    if (!this.settings.cleanup) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const current = this.owners.get(r.key);
      const owner = current === muxer;
      if (owner) this.owners.delete(r.key);
      // the MPD and init segments are shared with a newer publish of the name: only when this one still owns them;
      // and a newer publish whose timestamps restarted may have written fragments of the same names: those stay
      const keep = new Set(current !== undefined && !owner ? current.files(true) : []);
      for (const f of muxer.files(owner)) if (!keep.has(f)) void unlink(f).catch(() => undefined);
    }, END_CLEANUP_PLAYLISTS * this.settings.playlistLength);
    timer.unref();
    this.timers.add(timer);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

/** The dash module of an application, or undefined when `dash` is off (or has no `dash_path`: logged once). */
export function dashModule(app: ApplicationConfig, deps: ModuleDeps): AppModule | undefined {
  const s = app.dash;
  if (s === undefined || !s.enabled) return undefined;
  if (s.path === undefined) {
    deps.logger.warn({ app: app.name }, 'dash on without dash_path: nothing is written');
    return undefined;
  }
  if (s.clockCompensation !== 'off' && s.clockHelperUri === undefined) {
    deps.logger.warn({ app: app.name }, `dash_clock_compensation ${s.clockCompensation} without dash_clock_helper_uri: no UTCTiming is written`);
  }
  return new DashModule({ ...s, path: s.path });
}
