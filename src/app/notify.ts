import { createHash } from 'node:crypto';
import { ErrorCode, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { NotifySettings } from '../config/types.js';
import type { LiveStream } from '../live/stream.js';
import { normalizeAddress } from './access.js';
import type { AppModule, PlayContext, PublishContext, RecordEvent, SessionInfo } from './chain.js';
import { SessionKey, dropSessionState, peekSessionState, sessionState } from './session-state.js';

/**
 * nginx-rtmp's notify module: HTTP webhooks on connect, publish, play, their
 * ends, and periodically while a stream runs.
 *
 * - on_connect / on_publish / on_play are asked before the step goes on: 2xx
 *   allows, 3xx allows (on publish/play a `Location` renames the stream: the
 *   value itself, or the last path segment of an rtmp:// URL; a `?args` part
 *   replaces the client's arguments), anything else, a refused connection or
 *   no answer within `timeout` refuses.
 * - on_publish_done / on_play_done / on_done / on_disconnect are fire-and-forget,
 *   and so are on_record_started / on_record_done (call=record_started/record_done,
 *   recorder, name, path), which a recorder raises through the chain.
 * - on_update is called every notify_update_timeout while publishing or
 *   playing (the next call is scheduled when the previous one is answered).
 *   A non-2xx reply ends the stream; with notify_update_strict a failed call
 *   (refused, timed out) does too. A publisher is stopped through the
 *   LiveStream's publisher handle. Gap: a module has no handle on a player,
 *   so a refused player update is logged and the player's updates stop, but
 *   the player keeps playing.
 *
 * Arguments (urlencoded POST body, or GET query string): app, flashver,
 * swfurl, tcurl, pageurl, addr, clientid, call, plus name/type (publish),
 * name/start/duration/reset (play), name (done), time/timestamp/name (update),
 * epoch (connect), then the client's own query arguments (`?key=...`). A
 * client argument that would shadow one of the server's is dropped, so a
 * client cannot pass `?name=other` to a key check.
 */

export interface NotifyDeps {
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** bound on one webhook call, connect to response headers, in ms (nginx-rtmp: its netcall timeout) */
  readonly timeout?: number;
}

export const DEFAULT_NOTIFY_TIMEOUT = 10_000;

type HookName = 'on_connect' | 'on_disconnect' | 'on_publish' | 'on_play' | 'on_done' | 'on_publish_done' | 'on_play_done' | 'on_update' | 'on_record_started' | 'on_record_done';

type Fields = [string, string][];

interface HookResult {
  /** undefined when no HTTP answer came (refused, timed out, broken) */
  readonly status: number | undefined;
  readonly location: string | undefined;
  readonly error: string | undefined;
}

function hookUrl(hook: HookName, raw: string | undefined): URL | undefined {
  if (raw === undefined || raw === '') return undefined;
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch (e) {
    throw serverError(ErrorCode.ConfigBadValue, `${hook}: invalid URL ${JSON.stringify(raw)}`, e);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw serverError(ErrorCode.ConfigBadValue, `${hook}: only http:// and https:// URLs are supported`);
  return url;
}

function sessionFields(s: SessionInfo): Fields {
  return [
    ['app', s.app],
    ['flashver', s.flashVer],
    ['swfurl', s.swfUrl],
    ['tcurl', s.tcUrl],
    ['pageurl', s.pageUrl],
    ['addr', normalizeAddress(s.remoteAddress).address],
    ['clientid', s.id],
  ];
}

/** nginx-rtmp sends play start/duration as unsigned 32-bit integers (-2 becomes 4294967294). */
function uint32(n: number): string {
  return Number.isFinite(n) ? String(Math.trunc(n) >>> 0) : '0';
}

/**
 * The name a web framework files an argument under, for comparing keys: PHP
 * reads `a[]`/`a[x]` as `a`, turns ` ` and `.` into `_`; some frameworks
 * ignore case.
 */
function argumentName(key: string): string {
  const bracket = key.indexOf('[');
  return (bracket > 0 ? key.slice(0, bracket) : key).trim().replace(/[. ]/g, '_').toLowerCase();
}

/**
 * Our fields, then the client's query arguments that don't shadow one of ours
 * nor one of the configured URL's own query (`on_publish http://auth/x?secret=1`):
 * a colliding client argument is dropped, never sent beside ours.
 */
function encodeArgs(fields: Fields, clientQuery: string, url: URL, log: Logger): string {
  const params = new URLSearchParams();
  for (const [k, v] of fields) params.append(k, v);
  if (clientQuery !== '') {
    const reserved = new Set([...fields.map(([k]) => argumentName(k)), ...[...url.searchParams.keys()].map(argumentName)]);
    const dropped: string[] = [];
    for (const [k, v] of new URLSearchParams(clientQuery)) {
      if (reserved.has(argumentName(k))) dropped.push(k);
      else params.append(k, v);
    }
    if (dropped.length > 0) log.debug({ dropped }, 'notify: client arguments shadowing server arguments dropped');
  }
  return params.toString();
}

/**
 * notify_relay_redirect: a redirect to an rtmp:// URL becomes a relay (a pull
 * for play, a push for publish) run by the relay module; the local stream is
 * named by the MD5 of the URL, as nginx-rtmp does. Returns false when it does
 * not apply (the redirect then only renames the stream).
 */
function applyRelayRedirectWith(enabled: boolean, ctx: { name: string; relayUrl?: string; session: { log: Logger } }, location: string, kind: 'play' | 'publish'): boolean {
  const loc = location.trim();
  if (!enabled || !/^rtmp:\/\/[^/]+\/[^/?]+\/[^?]+/i.test(loc)) return false;
  const local = createHash('md5').update(loc).digest('hex');
  ctx.session.log.info({ from: ctx.name, to: local, url: loc }, `notify: ${kind} redirect relayed from/to ${loc}`);
  ctx.name = local;
  ctx.relayUrl = loc;
  return true;
}

/** The new name and arguments a 3xx `Location` asks for, undefined to keep the current ones. */
function redirectTarget(location: string): { name: string; query: string | undefined } | undefined {
  const loc = location.trim();
  if (loc === '') return undefined;
  if (/^rtmp:\/\//i.test(loc)) {
    let url: URL;
    try {
      url = new URL(loc);
    } catch {
      return undefined;
    }
    const segments = url.pathname.split('/').filter((p) => p !== '');
    // rtmp://host/app/name: a name needs an application before it
    const name = segments.length >= 2 ? segments[segments.length - 1] : undefined;
    if (name === undefined) return undefined;
    return { name, query: url.search === '' ? undefined : url.search.slice(1) };
  }
  const q = loc.indexOf('?');
  return q < 0 ? { name: loc, query: undefined } : { name: loc.slice(0, q), query: loc.slice(q + 1) };
}

function is2xx(status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status < 300;
}

function is3xx(status: number | undefined): boolean {
  return status !== undefined && status >= 300 && status < 400;
}

/** Periodic on_update calls; the next is scheduled once the previous one is answered. */
class Updater {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly interval: number,
    /** resolves false to stop updating */
    private readonly tick: () => Promise<boolean>,
  ) {
    this.schedule();
  }

  get active(): boolean {
    return !this.stopped;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick().then(
        (goOn) => {
          if (goOn) this.schedule();
          else this.stop();
        },
        () => this.stop(),
      );
    }, this.interval);
    this.timer.unref();
  }
}

interface StreamState {
  readonly start: number;
  updater: Updater | undefined;
}

/** The notify module, or undefined when no webhook of it is configured. */
export function notifyModule(settings: NotifySettings, deps: NotifyDeps = {}): AppModule | undefined {
  const applyRelayRedirect = (ctx: PublishContext | PlayContext, location: string, kind: 'play' | 'publish'): boolean =>
    applyRelayRedirectWith(settings.relayRedirect, ctx, location, kind);
  const urls = {
    on_connect: hookUrl('on_connect', settings.onConnect),
    on_disconnect: hookUrl('on_disconnect', settings.onDisconnect),
    on_publish: hookUrl('on_publish', settings.onPublish),
    on_play: hookUrl('on_play', settings.onPlay),
    on_done: hookUrl('on_done', settings.onDone),
    on_publish_done: hookUrl('on_publish_done', settings.onPublishDone),
    on_play_done: hookUrl('on_play_done', settings.onPlayDone),
    on_update: hookUrl('on_update', settings.onUpdate),
    on_record_started: hookUrl('on_record_started', settings.onRecordStarted),
    on_record_done: hookUrl('on_record_done', settings.onRecordDone),
  } satisfies Record<HookName, URL | undefined>;
  if (Object.values(urls).every((u) => u === undefined)) return undefined;

  const fetchFn = deps.fetch ?? globalThis.fetch;
  const now = deps.now ?? Date.now;
  const timeout = deps.timeout ?? DEFAULT_NOTIFY_TIMEOUT;
  const updateEvery = urls.on_update !== undefined && settings.updateTimeout > 0 ? settings.updateTimeout : 0;

  const publishes = new WeakMap<PublishContext, StreamState>();
  const plays = new WeakMap<PlayContext, StreamState>();
  /** running updaters per session, stopped when it disconnects whatever else happened */
  /** each session's running on_update timers (its state, src/app/session-state.ts), and all of them for close() */
  const UPDATERS = new SessionKey<Set<Updater>>('notify', () => new Set());
  const allUpdaters = new Set<Updater>();
  /** calls in flight, so close() can let the last done events go out (each bounded by `timeout`) */
  const pending = new Set<Promise<HookResult>>();

  /** One webhook call; never rejects, never outlives `timeout`. Logs one line. */
  const call = (hook: HookName, url: URL, fields: Fields, clientQuery: string, log: Logger): Promise<HookResult> => {
    const p = request(hook, url, fields, clientQuery, log);
    pending.add(p);
    void p.finally(() => pending.delete(p));
    return p;
  };

  const request = async (hook: HookName, url: URL, fields: Fields, clientQuery: string, log: Logger): Promise<HookResult> => {
    const args = encodeArgs(fields, clientQuery, url, log);
    const started = now();
    let target = url.href;
    const init: RequestInit = { method: settings.method, redirect: 'manual', signal: AbortSignal.timeout(timeout) };
    if (settings.method === 'POST') {
      init.headers = { 'content-type': 'application/x-www-form-urlencoded' };
      init.body = args;
    } else {
      const u = new URL(url.href);
      u.search = u.search === '' ? args : `${u.search.slice(1)}&${args}`;
      target = u.href;
    }
    let result: HookResult;
    try {
      const res = await fetchFn(target, init);
      result = { status: res.status, location: res.headers.get('location') ?? undefined, error: undefined };
      try {
        await res.body?.cancel();
      } catch {
        // the answer's body is not used
      }
    } catch (e) {
      const name = e instanceof Error ? e.name : '';
      const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : '';
      const error =
        name === 'TimeoutError' || name === 'AbortError'
          ? `no answer within ${timeout} ms`
          : `${e instanceof Error ? e.message : String(e)}${cause !== '' ? ` (${cause})` : ''}`;
      result = { status: undefined, location: undefined, error };
    }
    const ms = now() - started;
    const line = { hook, url: url.href, method: settings.method, status: result.status, ms };
    if (result.error !== undefined) log.warn({ ...line, err: result.error }, `notify: ${hook} failed`);
    else log.info(line, `notify: ${hook}`);
    return result;
  };

  /** Throws Refused unless the answer allows the step. */
  const requireAllowed = (what: string, hook: HookName, r: HookResult): void => {
    if (is2xx(r.status) || is3xx(r.status)) return;
    const why = r.status !== undefined ? `HTTP ${r.status}` : 'no valid answer';
    throw serverError(ErrorCode.Refused, `${what} refused by ${hook} (${why})`);
  };

  const fireAndForget = (hook: HookName, fields: Fields, clientQuery: string, log: Logger): void => {
    const url = urls[hook];
    if (url !== undefined) void call(hook, url, fields, clientQuery, log);
  };

  const track = (session: SessionInfo, u: Updater): void => {
    sessionState(session, UPDATERS).add(u);
    allUpdaters.add(u);
  };

  const untrack = (session: SessionInfo, u: Updater | undefined): void => {
    if (u === undefined) return;
    u.stop();
    allUpdaters.delete(u);
    const set = peekSessionState(session, UPDATERS);
    if (set === undefined) return;
    set.delete(u);
    if (set.size === 0) dropSessionState(session, UPDATERS);
  };

  /** on_update failed this stream? (non-2xx always; no answer only in strict mode) */
  const updateFailed = (r: HookResult): boolean => (r.status === undefined ? settings.updateStrict : !is2xx(r.status));

  const startUpdates = (
    session: SessionInfo,
    state: StreamState,
    kind: 'publish' | 'play',
    current: () => { name: string; query: string },
    onFailure: (r: HookResult) => void,
  ): void => {
    const url = urls.on_update;
    if (url === undefined || updateEvery === 0 || state.updater !== undefined) return;
    const updater: Updater = new Updater(updateEvery, async () => {
      const { name, query } = current();
      const elapsed = Math.max(0, now() - state.start);
      const fields: Fields = [
        ...sessionFields(session),
        ['call', `update_${kind}`],
        ['time', String(Math.floor(elapsed / 1000))],
        ['timestamp', String(elapsed >>> 0)],
        ['name', name],
      ];
      const r = await call('on_update', url, fields, query, session.log);
      if (!updater.active) return false;
      if (!updateFailed(r)) return true;
      onFailure(r);
      return false;
    });
    state.updater = updater;
    track(session, updater);
  };

  return {
    name: 'notify',

    async connect(ctx, next) {
      const s = ctx.session;
      const url = urls.on_connect;
      if (url !== undefined) {
        const fields: Fields = [...sessionFields(s), ['epoch', String(Math.trunc(now()) >>> 0)], ['call', 'connect']];
        const r = await call('on_connect', url, fields, s.query, s.log);
        requireAllowed('connect', 'on_connect', r);
        if (is3xx(r.status) && r.location !== undefined) s.log.info({ location: r.location }, 'notify: on_connect redirect ignored (not supported)');
      }
      await next();
    },

    async publish(ctx, next) {
      const s = ctx.session;
      publishes.set(ctx, { start: now(), updater: undefined });
      const url = urls.on_publish;
      if (url !== undefined) {
        const fields: Fields = [...sessionFields(s), ['call', 'publish'], ['name', ctx.name], ['type', ctx.type]];
        const r = await call('on_publish', url, fields, ctx.query, s.log);
        requireAllowed('publish', 'on_publish', r);
        if (is3xx(r.status) && r.location !== undefined && !applyRelayRedirect(ctx, r.location, 'publish')) {
          const to = redirectTarget(r.location);
          if (to !== undefined) {
            s.log.info({ from: ctx.name, to: to.name }, `notify: publish redirect to '${to.name}'`);
            ctx.name = to.name;
            if (to.query !== undefined) ctx.query = to.query;
          }
        }
      }
      await next();
    },

    async play(ctx, next) {
      const s = ctx.session;
      const state: StreamState = { start: now(), updater: undefined };
      plays.set(ctx, state);
      const url = urls.on_play;
      if (url !== undefined) {
        const fields: Fields = [
          ...sessionFields(s),
          ['call', 'play'],
          ['name', ctx.name],
          ['start', uint32(ctx.start)],
          ['duration', uint32(ctx.duration)],
          // the play context carries no reset flag; nginx-rtmp's default is 0
          ['reset', '0'],
        ];
        const r = await call('on_play', url, fields, ctx.query, s.log);
        requireAllowed('play', 'on_play', r);
        if (is3xx(r.status) && r.location !== undefined && !applyRelayRedirect(ctx, r.location, 'play')) {
          const to = redirectTarget(r.location);
          if (to !== undefined) {
            s.log.info({ from: ctx.name, to: to.name }, `notify: play redirect to '${to.name}'`);
            ctx.name = to.name;
            if (to.query !== undefined) ctx.query = to.query;
          }
        }
      }
      await next();
      // no `played` hook exists: updates start once the chain has let the player through
      startUpdates(s, state, 'play', () => ({ name: ctx.name, query: ctx.query }), (r) => {
        s.log.warn({ hook: 'on_update', status: r.status, err: r.error, stream: ctx.name }, 'notify: on_update refused a player: stopping it');
        ctx.stop?.('on_update refused the player');
      });
    },

    published(ctx, stream: LiveStream) {
      const s = ctx.session;
      let state = publishes.get(ctx);
      if (state === undefined) publishes.set(ctx, (state = { start: now(), updater: undefined }));
      const pub = stream.publisher;
      startUpdates(s, state, 'publish', () => ({ name: ctx.name, query: ctx.query }), (r) => {
        const why = r.status !== undefined ? `HTTP ${r.status}` : (r.error ?? 'no answer');
        s.log.info({ hook: 'on_update', status: r.status, stream: ctx.name }, 'notify: update failed, stopping the publisher');
        if (pub !== undefined && stream.publisher === pub) pub.stop(`publishing stopped by on_update (${why})`);
      });
    },

    publishDone(ctx) {
      const s = ctx.session;
      const state = publishes.get(ctx);
      publishes.delete(ctx);
      untrack(s, state?.updater);
      const fields = sessionFields(s);
      fireAndForget('on_publish_done', [...fields, ['call', 'publish_done'], ['name', ctx.name]], ctx.query, s.log);
      fireAndForget('on_done', [...fields, ['call', 'done'], ['name', ctx.name]], ctx.query, s.log);
    },

    playDone(ctx) {
      const s = ctx.session;
      const state = plays.get(ctx);
      plays.delete(ctx);
      untrack(s, state?.updater);
      const fields = sessionFields(s);
      fireAndForget('on_play_done', [...fields, ['call', 'play_done'], ['name', ctx.name]], ctx.query, s.log);
      fireAndForget('on_done', [...fields, ['call', 'done'], ['name', ctx.name]], ctx.query, s.log);
    },

    recordStarted(ev: RecordEvent) {
      const fields: Fields = [...sessionFields(ev.session), ['call', 'record_started'], ['recorder', ev.recorder], ['name', ev.name], ['path', ev.path]];
      fireAndForget('on_record_started', fields, ev.query, ev.session.log);
    },

    recordDone(ev: RecordEvent) {
      const fields: Fields = [...sessionFields(ev.session), ['call', 'record_done'], ['recorder', ev.recorder], ['name', ev.name], ['path', ev.path]];
      fireAndForget('on_record_done', fields, ev.query, ev.session.log);
    },

    disconnect(session) {
      // nginx-rtmp: not for relay sessions (they are this server's own connections)
      if (session.protocol !== 'relay') fireAndForget('on_disconnect', [...sessionFields(session), ['call', 'disconnect']], session.query, session.log);
      const set = peekSessionState(session, UPDATERS);
      if (set === undefined) return;
      dropSessionState(session, UPDATERS);
      for (const u of set) {
        u.stop();
        allUpdaters.delete(u);
      }
    },

    async close() {
      for (const u of allUpdaters) u.stop();
      allUpdaters.clear();
      await Promise.all([...pending]);
    },
  };
}
