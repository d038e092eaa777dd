import http from 'node:http';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import type { Socket } from 'node:net';
import { addressRulesCheck, normalizeAddress } from '../core/address.js';
import { ErrorCode, describeError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { HttpAccessRule, HttpLocation, HttpServerConfig, ListenSpec } from '../config/types.js';
import { handleControl } from './control.js';
import { expandForRequest, fileCacheHeaders, ifRangeMatches, withAddedHeaders, withRuleHeaders } from './delivery.js';
import { matchCondition, type HttpReturn } from '../config/http-rules.js';
import { FlvPlayers, flvTarget, rawResponse, type LivePlayDeps } from './flv-live.js';
import { METRICS_CONTENT_TYPE, metricsText } from './metrics.js';
import { metrics } from '../core/metrics.js';
import type { StatConnectionSnapshot } from './stat.js';
import { contentTypeFor, lookupStatic, matchLocation, parseRange, parseRequestTarget, type RequestTarget } from './static.js';
import { StatSampler, buildStatTree, limitStatTree, statJson, statXml, type RtmpStatusSource, type StatInfo } from './stat.js';

export type { RtmpStatusSource, StatSnapshot, StatConnectionSnapshot, StatStreamSnapshot } from './stat.js';

/**
 * The built-in HTTP server of the `http {}` block: static files (`root`,
 * `alias`), `rtmp_stat` and `rtmp_control` locations, nginx location matching.
 * One node:http server per distinct listen address; when several server
 * blocks share an address, the first one serves it (nginx's default server).
 *
 * Protection (issue 13): `allow`/`deny` (nginx's access module: first match
 * wins, a block with its own lines does not inherit the outer ones) refuse a
 * request with 403 before anything else; `rtmp_control` serves only the
 * sections it names and refuses requests a browser marks as sent by another
 * site's page (Sec-Fetch-Site, Origin, Referer), since its GETs change state;
 * `max_connections` caps the open connections of all listeners together;
 * `client_header_timeout` and `send_timeout` close slow or stalled clients.
 */

export interface HttpFrontendDeps {
  readonly source: RtmpStatusSource;
  readonly logger: Logger;
  /** the stream service and applications: `flv_live` locations play live streams (absent: they answer 404) */
  readonly live?: LivePlayDeps;
  /**
   * Told of every file a root/alias location served with 200/206 to a GET
   * (absolute path, client address, bytes, Referer): src/server.ts counts the
   * HLS/DASH viewers from it (src/core/viewers.ts). Absent: nobody counts.
   */
  readonly onFileServed?: (file: string, address: string, bytes: number, pageUrl: string) => void;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Not Allowed',
  416: 'Requested Range Not Satisfiable',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** `max_connections` when the configuration does not say (hand-built configs; the loader always sets it) */
export const DEFAULT_HTTP_MAX_CONNECTIONS = 1024;
/** nginx's client_header_timeout and send_timeout defaults, for hand-built configs */
const DEFAULT_HEADER_TIMEOUT = 60_000;
const DEFAULT_SEND_TIMEOUT = 60_000;
/** at most one "connection refused" log line per this many ms (with the count refused since the last one) */
const REFUSAL_LOG_INTERVAL = 10_000;
/** what a connection over max_connections is told before it is closed */
const OVER_LIMIT_RESPONSE = Buffer.from('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\r\n503 Service Unavailable\n', 'latin1');

/** The deny rule that refuses an address, or undefined when the rules let it in. */
type AccessCheck = (address: string) => string | undefined;

type Headers = Record<string, string | string[]>;

/** the statuses `return CODE URL` sends with a Location header */
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}


interface Listener {
  readonly server: http.Server;
  /** the listen as configured last (port 0: any port) */
  spec: ListenSpec;
  /** the server block it serves: replaced on reload */
  cfg: HttpServerConfig;
}

/** What HttpFrontend.prepare() bound for a new configuration: commit() swaps it in, abort() closes what it bound. */
export interface HttpReload {
  commit(): void;
  abort(): Promise<void>;
}

/**
 * Whether a listener serves a listen of a new configuration: same host and
 * port, the port as configured or as bound (a listener configured with port 0
 * is kept by a listen on port 0 of that host, or on the port it got).
 */
export function sameListen(l: { readonly spec: ListenSpec; readonly server: { address(): unknown } }, spec: ListenSpec): boolean {
  if (l.spec.host !== spec.host) return false;
  if (l.spec.port === spec.port) return true;
  const a = l.server.address();
  return spec.port !== 0 && a !== null && typeof a === 'object' && (a as { port?: unknown }).port === spec.port;
}

export class HttpFrontend {
  private listeners: Listener[] = [];
  private readonly sampler = new StatSampler();
  private readonly log: Logger;
  private readonly info: StatInfo;
  /** the compiled allow/deny rules of every location and server (by the config object) */
  private readonly access = new WeakMap<object, AccessCheck>();
  private readonly maxConnections: number;
  private openConnections = 0;
  /** sockets refused for max_connections: a request already parsed from one is not served */
  private readonly refused = new WeakSet<Socket>();
  private refusedSinceLog = 0;
  private lastRefusalLog = -Infinity;
  /** HTTP-FLV and WebSocket-FLV players of `flv_live` locations */
  private readonly players: FlvPlayers | undefined;

  constructor(
    private readonly configs: readonly HttpServerConfig[],
    private readonly deps: HttpFrontendDeps,
  ) {
    this.log = deps.logger;
    this.info = { version: readVersion(), compiler: `node ${process.version}`, built: new Date().toUTCString(), pid: process.pid };
    this.maxConnections = configs[0]?.maxConnections ?? DEFAULT_HTTP_MAX_CONNECTIONS;
    this.players = deps.live === undefined ? undefined : new FlvPlayers(deps.live, this.log);
    const compile = (owner: object, rules: readonly HttpAccessRule[] | undefined): void => {
      if (rules !== undefined && rules.length > 0) this.access.set(owner, addressRulesCheck(rules, 'http access rule'));
    };
    for (const cfg of configs) {
      compile(cfg, cfg.access);
      for (const loc of cfg.locations) compile(loc, loc.access);
    }
  }

  /** Every listen of every server block, the first block that names an address serving it (nginx's default server). */
  private plan(configs: readonly HttpServerConfig[]): { cfg: HttpServerConfig; spec: ListenSpec }[] {
    const taken = new Map<string, number>();
    const out: { cfg: HttpServerConfig; spec: ListenSpec }[] = [];
    for (let i = 0; i < configs.length; i++) {
      const cfg = configs[i]!;
      for (const spec of cfg.listen) {
        const key = `${spec.host}|${spec.port}`;
        if (spec.port !== 0) {
          const first = taken.get(key);
          if (first !== undefined) {
            if (first !== i) this.log.warn({ host: spec.host, port: spec.port }, 'http: address already served by an earlier server block; this one is ignored there');
            continue;
          }
          taken.set(key, i);
        }
        if (spec.proxyProtocol) this.log.warn({ host: spec.host, port: spec.port }, 'http: proxy_protocol is not supported on http listens; ignored');
        out.push({ cfg, spec });
      }
    }
    return out;
  }

  /** Binds every listen of every http server block; on failure closes what was bound and rejects (HttpListen). */
  async start(): Promise<void> {
    try {
      for (const { cfg, spec } of this.plan(this.configs)) this.listeners.push(await this.listen(cfg, spec));
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /**
   * A reload's first half: listens kept (same address) will serve their new
   * server block, new ones are bound now, removed ones are closed at commit().
   * Rejects (closing what it bound) when a new listen cannot be bound
   * (HttpListen) or a kept one changes `ipv6only` (ConfigReload).
   */
  async prepare(configs: readonly HttpServerConfig[]): Promise<HttpReload> {
    const free = new Set(this.listeners);
    const next: { listener: Listener | undefined; cfg: HttpServerConfig; spec: ListenSpec }[] = [];
    for (const { cfg, spec } of this.plan(configs)) {
      const listener = [...free].find((l) => sameListen(l, spec));
      if (listener !== undefined) {
        free.delete(listener);
        if ((listener.spec.ipv6Only === true) !== (spec.ipv6Only === true)) {
          throw serverError(ErrorCode.ConfigReload, `http: listen ${spec.host}:${spec.port} changes ipv6only: a reload cannot rebind it (restart the server)`);
        }
      }
      next.push({ listener, cfg, spec });
    }
    const bound: Listener[] = [];
    const abort = async (): Promise<void> => {
      await Promise.all(bound.splice(0).map((l) => closeServer(l.server)));
    };
    try {
      for (const n of next) if (n.listener === undefined) bound.push((n.listener = await this.listen(n.cfg, n.spec)));
    } catch (e) {
      await abort();
      throw e;
    }
    return {
      commit: () => {
        const kept: Listener[] = [];
        for (const n of next) {
          const l = n.listener!;
          l.cfg = n.cfg;
          l.spec = n.spec;
          kept.push(l);
        }
        this.listeners = kept;
        for (const l of free) {
          const a = l.server.address();
          if (a !== null && typeof a === 'object') this.log.info({ host: a.address, port: a.port }, `HTTP no longer listening on ${a.address}:${a.port}`);
          void closeServer(l.server);
        }
      },
      abort,
    };
  }

  private async listen(cfg: HttpServerConfig, spec: ListenSpec): Promise<Listener> {
    const headersTimeout = cfg.headerTimeout ?? DEFAULT_HEADER_TIMEOUT;
    const server = http.createServer(
      {
        keepAlive: spec.soKeepalive === true,
        // Node closes (408) a request whose headers, or whole request, are not in by then
        headersTimeout,
        requestTimeout: headersTimeout,
        // how often Node looks for such requests (its default, 30 s, would let a short timeout run long)
        connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeout / 4))),
      },
      (req, res) => {
        if (this.refused.has(req.socket)) {
          res.destroy();
          return;
        }
        void this.handle(listener.cfg, req, res);
      },
    );
    const listener: Listener = { server, spec, cfg };
    // no 'timeout' listener: Node destroys a socket idle (nothing sent, nothing received) this long
    server.timeout = cfg.sendTimeout ?? DEFAULT_SEND_TIMEOUT;
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on('error', () => undefined);
      if (this.refused.has(socket)) {
        socket.destroy();
        return;
      }
      void this.upgrade(listener.cfg, req, socket, head);
    });
    await new Promise<void>((resolve, reject) => {
      const fail = (e: Error): void => reject(serverError(ErrorCode.HttpListen, `http: cannot listen on ${spec.host}:${spec.port}: ${e.message}`, e));
      server.once('error', fail);
      server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.ipv6Only === true }, () => {
        server.off('error', fail);
        resolve();
      });
    });
    server.on('error', (e) => this.log.error({ err: e.message }, 'http listener error'));
    server.on('clientError', (e, socket) => {
      // client_header_timeout: Node's headersTimeout / requestTimeout
      const timedOut = (e as { code?: unknown }).code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (socket.writable) socket.end(timedOut ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    const a = server.address();
    if (a !== null && typeof a === 'object') this.log.info({ host: a.address, port: a.port }, `HTTP listening on ${a.address}:${a.port}`);
    return listener;
  }

  /** Counts a new connection; over max_connections it is told 503 and closed, with a rate-limited log line. */
  private admit(socket: Socket): void {
    const max = this.maxConnections;
    if (max > 0 && this.openConnections >= max) {
      this.refused.add(socket);
      this.refusedSinceLog++;
      const now = performance.now();
      if (now - this.lastRefusalLog >= REFUSAL_LOG_INTERVAL) {
        this.log.warn(
          { code: ErrorCode.HttpConnectionLimit, max, refused: this.refusedSinceLog, remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}` },
          'http: connection refused: max_connections reached (count since the last such line)',
        );
        this.lastRefusalLog = now;
        this.refusedSinceLog = 0;
      }
      socket.on('error', () => undefined);
      socket.end(OVER_LIMIT_RESPONSE, () => socket.destroy());
      // a peer that does not read cannot keep it open either
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.openConnections++;
    socket.once('close', () => this.openConnections--);
  }

  /** The HTTP-FLV and WebSocket-FLV players now, as the stat snapshot lists connections. */
  playerConnections(): StatConnectionSnapshot[] {
    return (this.players?.list() ?? []).map((p) => ({
      id: p.id,
      remoteAddress: p.remoteAddress,
      app: p.app,
      flashVer: '',
      swfUrl: '',
      pageUrl: p.pageUrl,
      tcUrl: '',
      connectedAt: p.connectedAt,
      bytesIn: p.bytesIn,
      bytesOut: p.bytesOut,
      streams: [{ streamId: 1, name: p.name, role: 'player' }],
      dropped: p.dropped,
      protocol: p.protocol,
    }));
  }

  /** Ends an HTTP-FLV or WebSocket-FLV player by id (the control API's drop); true if there was one. */
  dropPlayer(id: string, reason: string): boolean {
    return this.players?.drop(id, reason) ?? false;
  }

  /** A WebSocket upgrade: WebSocket-FLV in a `flv_live` location, refused elsewhere. */
  private async upgrade(cfg: HttpServerConfig, req: http.IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const refuse = (status: number): void => {
      if (socket.writable) socket.end(rawResponse(status));
      else socket.destroy();
    };
    try {
      const raw = req.url ?? '';
      const target = parseRequestTarget(raw);
      if (target === undefined) return refuse(400);
      const loc = matchLocation(cfg.locations, target.path);
      const denied = this.access.get(loc ?? cfg)?.(req.socket.remoteAddress ?? '');
      if (denied !== undefined) {
        this.log.info({ code: ErrorCode.HttpForbidden, addr: normalizeAddress(socket.remoteAddress ?? '?').address, path: target.path }, `http: access forbidden by rule "${denied}"`);
        return refuse(403);
      }
      if (loc?.delivery?.flvLive !== true || this.players === undefined || flvTarget(target.path) === undefined) return refuse(404);
      await this.players.serveWebSocket(target.path, rawQueryOf(raw), loc.addHeaders, req, socket, head);
    } catch (e) {
      const err = describeError(e);
      this.log.error({ code: err.code, err: err.message }, 'http: websocket handler failed');
      socket.destroy();
    }
  }

  /** Open HTTP connections (those over max_connections not counted). */
  connectionCount(): number {
    return this.openConnections;
  }

  /** The bound addresses (useful with port 0). */
  addresses(): { host: string; port: number }[] {
    return this.listeners.flatMap(({ server }) => {
      const a = server.address();
      return a !== null && typeof a === 'object' ? [{ host: a.address, port: a.port }] : [];
    });
  }

  /** Closes the listeners and every open connection. */
  async stop(): Promise<void> {
    const all = this.listeners.splice(0);
    await Promise.all(all.map(({ server }) => closeServer(server)));
  }

  private async handle(cfg: HttpServerConfig, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    let path = req.url ?? '';
    try {
      const target = parseRequestTarget(req.url ?? '');
      if (target === undefined) {
        this.sendError(res, undefined, 400, method);
      } else {
        path = target.path;
        const loc = matchLocation(cfg.locations, target.path);
        const denied = this.access.get(loc ?? cfg)?.(req.socket.remoteAddress ?? '');
        if (denied !== undefined) this.forbid(res, loc, method, req, path, `access forbidden by rule "${denied}"`);
        else if (loc === undefined) this.sendError(res, undefined, 404, method);
        else await this.dispatch(loc, target, req, res);
      }
    } catch (e) {
      const err = describeError(e);
      if (isClientGone(e, res)) {
        this.log.debug({ method, path, err: err.message }, 'http: client went away');
      } else {
        this.log.error({ method, path, code: err.code, err: err.message }, 'http: request handler failed');
        if (!res.headersSent) this.sendError(res, undefined, 500, method);
        else res.destroy();
      }
    } finally {
      this.log.debug({ method, path, status: res.statusCode, ms: Math.round((performance.now() - started) * 10) / 10 }, 'http request');
    }
  }

  private async dispatch(matched: HttpLocation, target: RequestTarget, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    // `if ($request_method …) { add_header …; return …; }`, then the location's `return`
    const rules = matched.rules;
    const rule = matchCondition(rules, method);
    const { loc, ret } = expandForRequest(rules === undefined || rule === undefined ? matched : withRuleHeaders(matched, rules, rule.headers), rule !== undefined ? rule.ret : rules?.ret, req);
    if (ret !== undefined) return this.answerReturn(res, loc, ret, method);
    if (loc.rtmpStat) {
      if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, HEAD', method);
      const tree = limitStatTree(buildStatTree(this.deps.source.snapshot(), this.sampler, this.info), loc.statSections ?? ['live', 'clients']);
      const json = target.query.get('format') === 'json';
      const body = json ? statJson(tree) : statXml(tree, loc.delivery?.statStylesheet);
      return this.send(res, loc, 200, { 'Content-Type': json ? 'application/json; charset=utf-8' : 'text/xml' }, body, method);
    }
    if (loc.delivery?.metrics === true) {
      if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, HEAD', method);
      const body = metricsText({ snapshot: this.deps.source.snapshot(), httpConnections: this.openConnections, registry: metrics });
      return this.send(res, loc, 200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Cache-Control': 'no-cache' }, body, method);
    }
    if (loc.delivery?.flvLive === true && this.players !== undefined && flvTarget(target.path) !== undefined) {
      // a browser's CORS preflight: the location's add_header lines (Access-Control-Allow-*) answer it
      if (method === 'OPTIONS') return this.send(res, loc, 204, { Allow: 'GET, HEAD, OPTIONS' }, '', method);
      if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, HEAD, OPTIONS', method);
      return this.players.serveHttp(target.path, rawQueryOf(req.url ?? ''), loc.addHeaders, req, res);
    }
    if (loc.rtmpControl) {
      if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, POST, HEAD', method);
      const foreign = crossSite(req);
      if (foreign !== undefined) return this.forbid(res, loc, method, req, target.path, `control request from another site's page refused (${foreign})`);
      const r = handleControl(target.path, target.query, this.deps.source, loc.controlSections);
      return this.send(res, loc, r.status, { 'Content-Type': 'text/plain' }, r.body, method);
    }
    if (loc.root !== undefined || loc.alias !== undefined) {
      if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, HEAD', method);
      return this.serveFile(loc, target, req, res);
    }
    return this.sendError(res, loc, 404, method);
  }

  /** nginx's `return`: the code, with the text as body (or as Location for a redirect); add_header applies. */
  private answerReturn(res: http.ServerResponse, loc: HttpLocation, ret: HttpReturn, method: string): void {
    const { status, text } = ret;
    if (REDIRECT_STATUSES.has(status) && text !== undefined) {
      return this.send(res, loc, status, { 'Content-Type': 'text/plain', Location: text }, `${status}\n`, method);
    }
    if (text === undefined && status >= 400) return this.sendError(res, loc, status, method);
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      this.writeHead(res, loc, status, {});
      res.end();
      return;
    }
    return this.send(res, loc, status, { 'Content-Type': loc.defaultType ?? 'text/plain' }, text ?? '', method);
  }

  private async serveFile(loc: HttpLocation, target: RequestTarget, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const found = await lookupStatic(loc, target.path);
    if (found.kind === 'error') return this.sendError(res, loc, found.status, method);
    const { handle, stats, file } = found;
    let streaming = false;
    try {
      const size = stats.size;
      const lastModified = stats.mtime.toUTCString();
      const headers: Headers = {
        'Content-Type': contentTypeFor(loc, file),
        'Last-Modified': lastModified,
        'Accept-Ranges': 'bytes',
      };
      // If-Range: the range only when the validator is the file's current Last-Modified, else the whole file
      const range = ifRangeMatches(header(req, 'if-range'), lastModified) ? parseRange(req.headers.range, size) : undefined;
      if (range === 'invalid') {
        headers['Content-Range'] = `bytes */${size}`;
        return this.sendError(res, loc, 416, method, headers);
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      if (range !== undefined) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      headers['Content-Length'] = String(Math.max(0, end - start + 1));
      Object.assign(headers, fileCacheHeaders(loc, file, stats.mtimeMs, Date.now()));
      this.writeHead(res, loc, range === undefined ? 200 : 206, headers);
      if (method === 'GET') this.deps.onFileServed?.(file, normalizeAddress(req.socket.remoteAddress ?? '?').address, Math.max(0, end - start + 1), header(req, 'referer') ?? '');
      if (method === 'HEAD' || size === 0) {
        res.end();
        return;
      }
      streaming = true;
      await pipeline(handle.createReadStream({ start, end, autoClose: true }), res);
    } finally {
      if (!streaming) await handle.close();
    }
  }

  private writeHead(res: http.ServerResponse, loc: HttpLocation | undefined, status: number, headers: Headers): void {
    res.writeHead(status, withAddedHeaders(loc, status, headers));
  }

  private send(res: http.ServerResponse, loc: HttpLocation | undefined, status: number, headers: Headers, body: string, method: string): void {
    const buf = Buffer.from(body, 'utf8');
    this.writeHead(res, loc, status, { ...headers, 'Content-Length': String(buf.length) });
    res.end(method === 'HEAD' ? undefined : buf);
  }

  private sendError(res: http.ServerResponse, loc: HttpLocation | undefined, status: number, method: string, headers: Headers = {}): void {
    this.send(res, loc, status, { 'Content-Type': 'text/plain', ...headers }, `${status} ${STATUS_TEXT[status] ?? ''}\n`, method);
  }

  /** 403, and the one log line that says why. */
  private forbid(res: http.ServerResponse, loc: HttpLocation | undefined, method: string, req: http.IncomingMessage, path: string, why: string): void {
    const addr = normalizeAddress(req.socket.remoteAddress ?? '?').address;
    this.log.info({ code: ErrorCode.HttpForbidden, addr, method, path }, `http: ${why}`);
    this.sendError(res, loc, 403, method);
  }

  private notAllowed(res: http.ServerResponse, loc: HttpLocation, allow: string, method: string): void {
    this.sendError(res, loc, 405, method, { Allow: allow });
  }
}

/** The query string of a request target, as sent (without the `?`). */
function rawQueryOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q + 1);
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
}

/** The host[:port] of a URL or a Host header value, the way URL writes it (default port dropped); undefined when it is none. */
function hostOf(text: string, isUrl: boolean): string | undefined {
  try {
    return new URL(isUrl ? text : `http://${text}`).host.toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * What shows that a request was made by another site's page (a link, an
 * image, a form, a script) rather than typed, bookmarked or sent by a tool;
 * undefined when nothing does. Browsers send `Sec-Fetch-Site` (anything but
 * `same-origin`/`none` is refused), `Origin` on cross-origin and POST
 * requests, usually `Referer`: one naming another host than the request's
 * Host header is refused. Tools (curl, scripts) send none of them.
 */
export function crossSite(req: http.IncomingMessage): string | undefined {
  const site = header(req, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site: ${site}`;
  const hostHeader = header(req, 'host');
  const host = hostHeader === undefined ? undefined : hostOf(hostHeader, false);
  for (const name of ['origin', 'referer']) {
    const v = header(req, name);
    if (v === undefined) continue;
    const from = hostOf(v, true);
    if (from === undefined || from === '' || from !== host) return `${name === 'origin' ? 'Origin' : 'Referer'}: ${v.slice(0, 200)}`;
  }
  return undefined;
}

/** A response the client stopped reading (aborted download): not a server error. */
function isClientGone(e: unknown, res: http.ServerResponse): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return res.destroyed || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** Stops listening and closes the server's connections. */
function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
