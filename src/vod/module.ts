import { unlink } from 'node:fs/promises';
import type { AppModule, ModuleDeps, Next, PlayContext } from '../app/chain.js';
import type { ApplicationConfig } from '../config/types.js';
import type { VodSettings } from '../config/vod.js';
import { ErrorCode, describeError, isServerError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { LiveHub } from '../live/hub.js';
import { LiveStream } from '../live/stream.js';
import { locateVodFile, type VodLocation } from './locate.js';
import { VodIndexCache, openVodFile } from './media-file.js';
import { VodPlay } from './play.js';

interface Playing {
  readonly play: VodPlay;
  readonly location: VodLocation;
}

/**
 * The VOD step of an application with `play` (nginx-rtmp's play module): a
 * play whose file one of the `play` locations has is served from that file
 * (a publisher-less source for this one player: src/vod/play.ts), and the
 * live step is not run. A name no location has plays the live stream of
 * that name when one is published, else is refused as
 * NetStream.Play.StreamNotFound. It runs after access, notify, exec and
 * relay, so `allow/deny play`, `on_play` and `exec_play` apply to VOD plays
 * exactly as to live ones.
 */
export class VodModule implements AppModule {
  readonly name = 'vod';
  private readonly plays = new Map<PlayContext, Playing>();
  private readonly cache = new VodIndexCache();

  constructor(
    private readonly app: ApplicationConfig,
    private readonly settings: VodSettings,
    private readonly hub: LiveHub,
    private readonly log: Logger,
  ) {}

  async play(ctx: PlayContext, next: Next): Promise<void> {
    const log = ctx.session.log.child({ stream: ctx.name, module: 'vod' });
    let location: VodLocation | undefined;
    try {
      location = await locateVodFile(this.settings, ctx.name, log);
    } catch (e) {
      if (!isServerError(e, ErrorCode.OutputPathUnsafe)) throw e;
      throw serverError(ErrorCode.VodNotFound, `stream ${JSON.stringify(ctx.name.slice(0, 64))}: not a file name`);
    }
    if (location === undefined) {
      if (this.hub.get(this.app.name, ctx.name)?.active === true) return next();
      throw serverError(ErrorCode.VodNotFound, `video on demand stream ${ctx.name} not found`);
    }
    const reader = ctx.reader;
    if (reader === undefined) throw new TypeError('vod: a play without a reader');
    let media;
    try {
      media = await openVodFile(location.path, this.cache);
    } catch (e) {
      if (location.temp) await unlink(location.path).catch(() => undefined);
      const d = describeError(e);
      log.error({ code: d.code, err: d.message }, 'vod: file cannot be played');
      throw e;
    }
    // a stream of its own, in no hub: the play's identity (app, name) and nothing else
    const stream = new LiveStream(this.app.name, ctx.name);
    stream.hasVideo = media.hasVideo;
    stream.hasAudio = media.hasAudio;
    const play = new VodPlay(media, reader, ctx.events, log);
    ctx.stream = stream;
    ctx.playback = play;
    this.plays.set(ctx, { play, location });
    ctx.onAccept?.(ctx.name);
    play.start(ctx.start);
    log.info({ file: location.path, durationMs: media.durationMs, start: ctx.start }, 'vod: play');
  }

  playDone(ctx: PlayContext): void {
    const p = this.plays.get(ctx);
    if (p === undefined) return;
    this.plays.delete(ctx);
    p.play.stop();
    if (p.location.temp) unlink(p.location.path).catch(() => undefined);
  }

  async streamLength(name: string): Promise<number | undefined> {
    // local files only: a remote one is not downloaded just to answer this
    const location = await locateVodFile(this.settings, name, this.log, false).catch(() => undefined);
    if (location === undefined) return undefined;
    try {
      const media = await openVodFile(location.path, this.cache);
      const ms = media.durationMs;
      await media.close();
      return ms;
    } catch {
      return undefined;
    } finally {
      if (location.temp) await unlink(location.path).catch(() => undefined);
    }
  }

  close(): void {
    for (const ctx of [...this.plays.keys()]) this.playDone(ctx);
  }
}

/** The application's VOD step, when it has `play` (one line in the server's wiring). */
export function vodModules(app: ApplicationConfig, deps: ModuleDeps): AppModule[] {
  return app.vod === undefined ? [] : [new VodModule(app, app.vod, deps.hub, deps.logger.child({ module: 'vod' }))];
}
