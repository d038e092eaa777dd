import http from 'node:http';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, describeError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { HttpLocation, HttpServerConfig, ListenSpec } from '../config/types.js';
import { handleControl } from './control.js';
import { contentTypeFor, lookupStatic, matchLocation, parseRange, parseRequestTarget, type RequestTarget } from './static.js';
import { StatSampler, buildStatTree, statJson, statXml, type RtmpStatusSource, type StatInfo } from './stat.js';

export type { RtmpStatusSource, StatSnapshot, StatConnectionSnapshot, StatStreamSnapshot } from './stat.js';

/**
 * The built-in HTTP server of the `http {}` block: static files (`root`,
 * `alias`), `rtmp_stat` and `rtmp_control` locations, nginx location matching.
 * One node:http server per distinct listen address; when several server
 * blocks share an address, the first one serves it (nginx's default server).
 */

export interface HttpFrontendDeps {
  readonly source: RtmpStatusSource;
  readonly logger: Logger;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Not Allowed',
  416: 'Requested Range Not Satisfiable',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};

type Headers = Record<string, string | string[]>;

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** nginx adds `add_header` headers to these statuses only (without `always`). */
function addsHeaders(status: number): boolean {
  return [200, 201, 204, 206, 301, 302, 303, 304, 307, 308].includes(status);
}

interface Listener {
  readonly server: http.Server;
  readonly spec: ListenSpec;
}

export class HttpFrontend {
  private readonly listeners: Listener[] = [];
  private readonly sampler = new StatSampler();
  private readonly log: Logger;
  private readonly info: StatInfo;

  constructor(
    private readonly configs: readonly HttpServerConfig[],
    private readonly deps: HttpFrontendDeps,
  ) {
    this.log = deps.logger;
    this.info = { version: readVersion(), compiler: `node ${process.version}`, built: new Date().toUTCString(), pid: process.pid };
  }

  /** Binds every listen of every http server block; on failure closes what was bound and rejects (HttpListen). */
  async start(): Promise<void> {
    const taken = new Map<string, number>();
    try {
      for (let i = 0; i < this.configs.length; i++) {
        const cfg = this.configs[i]!;
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
          await this.listen(cfg, spec);
        }
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private async listen(cfg: HttpServerConfig, spec: ListenSpec): Promise<void> {
    const server = http.createServer({ keepAlive: spec.soKeepalive === true }, (req, res) => {
      void this.handle(cfg, req, res);
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
    server.on('clientError', (_e, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    this.listeners.push({ server, spec });
    const a = server.address();
    if (a !== null && typeof a === 'object') this.log.info({ host: a.address, port: a.port }, `HTTP listening on ${a.address}:${a.port}`);
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
    await Promise.all(
      all.map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
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
        if (loc === undefined) this.sendError(res, undefined, 404, method);
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

  private async dispatch(loc: HttpLocation, target: RequestTarget, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (loc.rtmpStat) {
      if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, HEAD', method);
      const tree = buildStatTree(this.deps.source.snapshot(), this.sampler, this.info);
      const json = target.query.get('format') === 'json';
      const body = json ? statJson(tree) : statXml(tree);
      return this.send(res, loc, 200, { 'Content-Type': json ? 'application/json; charset=utf-8' : 'text/xml' }, body, method);
    }
    if (loc.rtmpControl) {
      if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, POST, HEAD', method);
      const r = handleControl(target.path, target.query, this.deps.source);
      return this.send(res, loc, r.status, { 'Content-Type': 'text/plain' }, r.body, method);
    }
    if (loc.root !== undefined || loc.alias !== undefined) {
      if (method !== 'GET' && method !== 'HEAD') return this.notAllowed(res, loc, 'GET, HEAD', method);
      return this.serveFile(loc, target, req, res);
    }
    return this.sendError(res, loc, 404, method);
  }

  private async serveFile(loc: HttpLocation, target: RequestTarget, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const found = await lookupStatic(loc, target.path);
    if (found.kind === 'error') return this.sendError(res, loc, found.status, method);
    const { handle, stats, file } = found;
    let streaming = false;
    try {
      const size = stats.size;
      const headers: Headers = {
        'Content-Type': contentTypeFor(loc, file),
        'Last-Modified': stats.mtime.toUTCString(),
        'Accept-Ranges': 'bytes',
      };
      // If-Range is not evaluated: when present, the whole (current) file is sent, which is always correct
      const range = req.headers['if-range'] === undefined ? parseRange(req.headers.range, size) : undefined;
      if (range === 'invalid') {
        headers['Content-Range'] = `bytes */${size}`;
        return this.sendError(res, loc, 416, method, headers);
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      if (range !== undefined) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
      headers['Content-Length'] = String(Math.max(0, end - start + 1));
      this.writeHead(res, loc, range === undefined ? 200 : 206, headers);
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
    const all: Headers = { ...headers };
    if (loc !== undefined && addsHeaders(status)) {
      for (const [k, v] of loc.addHeaders) {
        const existing = Object.keys(all).find((x) => x.toLowerCase() === k.toLowerCase());
        if (existing === undefined) all[k] = v;
        else all[existing] = [...[all[existing]!].flat(), v];
      }
    }
    res.writeHead(status, all);
  }

  private send(res: http.ServerResponse, loc: HttpLocation | undefined, status: number, headers: Headers, body: string, method: string): void {
    const buf = Buffer.from(body, 'utf8');
    this.writeHead(res, loc, status, { ...headers, 'Content-Length': String(buf.length) });
    res.end(method === 'HEAD' ? undefined : buf);
  }

  private sendError(res: http.ServerResponse, loc: HttpLocation | undefined, status: number, method: string, headers: Headers = {}): void {
    this.send(res, loc, status, { 'Content-Type': 'text/plain', ...headers }, `${status} ${STATUS_TEXT[status] ?? ''}\n`, method);
  }

  private notAllowed(res: http.ServerResponse, loc: HttpLocation, allow: string, method: string): void {
    this.sendError(res, loc, 405, method, { Allow: allow });
  }
}

/** A response the client stopped reading (aborted download): not a server error. */
function isClientGone(e: unknown, res: http.ServerResponse): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return res.destroyed || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}
