import net from 'node:net';
import { addressSetMatcher } from './core/address.js';
import { ErrorCode, ServerError, describeError, isServerError, serverError } from './core/errors.js';
import type { Logger } from './core/log.js';
import { AppChain, type AppModule, type ModuleDeps, type PlayContext, type PublishContext, type SessionInfo } from './app/chain.js';
import { applyMetaMode } from './app/meta.js';
import { startExecStatic } from './app/exec.js';
import { checkStreamName } from './app/names.js';
import { streamOptionsFor } from './app/stream-options.js';
import type { ApplicationConfig, ListenSpec, RtmpServerConfig, ServerConfig } from './config/types.js';
import { FrameKind } from './live/frame.js';
import { HttpFrontend, sameListen, type HttpReload } from './http/server.js';
import type { StatSnapshot } from './http/stat.js';
import { LiveHub } from './live/hub.js';
import { WriteGroup } from './rtmp/output.js';
import { loadNativeWriter, type NativeWriter, type NativeWriterLoad } from './core/native.js';
import { SharedSocketReader } from './rtmp/socket-input.js';
import { warmUp, type WarmupOptions, type WarmupReport } from './warmup.js';
import { defaultConfig } from './config/default.js';
import { silentLogger } from './core/log.js';
import { LiveReader, type ReaderLimits } from './live/reader.js';
import type { LiveStream, PublisherInfo, StreamOptions } from './live/stream.js';
import {
  DEFAULT_CONNECTION_OPTIONS,
  RtmpConnection,
  type ConnectInfo,
  type ConnectionHandler,
  type ConnectionOptions,
  type PlayHandle,
  type PlayInfo,
  type PlayerOutput,
  type PublishHandle,
  type PublishInfo,
} from './rtmp/connection.js';

/** One configured application, its chain built once per configuration. */
interface Application {
  readonly config: ApplicationConfig;
  readonly chain: AppChain;
  readonly streamOptions: StreamOptions;
}

/** Everything one `server {}` block needs at run time; replaced whole on reload. */
interface BuiltBlock {
  readonly config: RtmpServerConfig;
  readonly apps: ReadonlyMap<string, Application>;
  readonly connectionOptions: ConnectionOptions;
  readonly readerLimits: ReaderLimits;
}

interface ServerBlock extends BuiltBlock {
  /**
   * Who counts against the block's max_connections: its sessions and those of
   * the blocks it replaced on reloads (a block keeps the group of the block
   * that had one of its listen addresses).
   */
  readonly group: object;
}

/** One bound rtmp listen. */
interface Listener {
  readonly server: net.Server;
  /** the listen as configured last (port 0: any port; the bound one is server.address()) */
  spec: ListenSpec;
  /** the server block its clients connect to; a reload that keeps the address replaces it (undefined: bound by a reload not applied yet) */
  block: ServerBlock | undefined;
}

export interface ServerOptions {
  readonly logger: Logger;
  /** modules put in front of the live step of every application (access, notify...) */
  readonly modules?: (app: ApplicationConfig, deps: ModuleDeps) => AppModule[];
  /** false: never load the native fan-out writer (its writes are then made from JavaScript); tests may pass their own */
  readonly nativeWriter?: false | NativeWriter;
  /** false: no boot warm-up, whatever the configuration says (tests); otherwise its sizes and tuning */
  readonly warmup?: false | ServerWarmupOptions;
}

export type ServerWarmupOptions = Pick<WarmupOptions, 'players' | 'messages' | 'timeoutMs'>;

/** The application the warm-up publishes to, on a private listener (no hooks, no recording: only live). */
const WARMUP_APP = '__warmup';

const SHUTDOWN_TIMEOUT = 5000;
/** how often connection timeouts and pings are checked */
const HOUSEKEEPING_INTERVAL = 250;

/**
 * The hard cap on what may wait for one peer (issue 13): far above the players'
 * drop threshold (a player drops frames past `playerBound` and is never cut for
 * a burst), with room for the largest message on top of it.
 */
export function maxOutputBytes(playerBound: number, maxMessage: number): number {
  return Math.max(16 * 1024 * 1024, 4 * playerBound, playerBound + 2 * maxMessage);
}

/** What snapshot() returns: the shape the HTTP stat page reads (declared in src/http, below this file). */
export type ServerSnapshot = StatSnapshot;

/** A session's state as the handler sees it. */
interface Session {
  readonly conn: RtmpConnection;
  /** its listener's block when it connects (at the accept before): a reload meanwhile gives it the configuration of now */
  block: ServerBlock;
  /** undefined: the warm-up's private listener */
  readonly listener: Listener | undefined;
  /** a connection of the boot warm-up (not shown, not counted) */
  readonly internal: boolean;
  app: Application | undefined;
  info: SessionInfo | undefined;
}

export class RtmpServer {
  /** media fanned out in one event-loop turn is written after the fan-out, one system call per player */
  private readonly writeGroup: WriteGroup;
  readonly hub: LiveHub;
  /** the native fan-out writer, or why it is not used */
  private readonly native: NativeWriterLoad;
  /** one read buffer for every connection (shared_read), where the native addon can dup(2) */
  private readonly sharedReader: SharedSocketReader | undefined;
  private config: ServerConfig;
  private blocks: ServerBlock[] = [];
  private listeners: Listener[] = [];
  /** reloads run one after the other */
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly sessions = new Map<RtmpConnection, Session>();
  private connectionCount = 0;
  private stopping = false;
  private housekeeping: NodeJS.Timeout | undefined;
  private execStatic: { close(): Promise<void> } | undefined;
  /** the built-in HTTP server (static files, rtmp_stat, rtmp_control), when the configuration has an http block */
  http: HttpFrontend | undefined;
  readonly startedAt = Date.now();
  private readonly log: Logger;
  /** every open chain, with the number of sessions using it; a retired chain (from an older configuration) closes when its last session leaves */
  private readonly chains = new Map<AppChain, { users: number; retired: boolean }>();
  /** true from start() until the warm-up is over: new clients wait in `held` (paused) */
  private warming = false;
  private held: { socket: net.Socket; listener: Listener }[] = [];
  private internalCount = 0;
  /** what the boot warm-up did (undefined: it did not run) */
  warmupReport: WarmupReport | undefined;

  constructor(
    config: ServerConfig,
    private readonly options: ServerOptions,
  ) {
    this.config = config;
    this.log = options.logger;
    const given = options.nativeWriter;
    this.native = given === false ? { writer: undefined, reason: 'disabled by the embedding code' } : given !== undefined ? { writer: given, path: '(given by the embedding code)' } : loadNativeWriter();
    this.writeGroup = new WriteGroup({ native: this.native.writer });
    const dupFd = this.native.writer?.dupFd?.bind(this.native.writer);
    this.sharedReader = dupFd !== undefined ? new SharedSocketReader(dupFd) : undefined;
    this.hub = new LiveHub({ outputBatch: this.writeGroup, logger: this.log.child({ module: 'live' }) });
    this.blocks = config.rtmp.map((c) => ({ ...this.buildBlock(c), group: {} }));
  }

  /** Binds every `listen` of every rtmp server block, and the http block's listens. */
  async start(): Promise<void> {
    this.restartExecStatic(undefined);
    if (this.native.writer !== undefined) this.log.info({ path: this.native.path, sharedRead: this.sharedReader !== undefined }, 'native fan-out writer loaded');
    else this.log.info({ reason: this.native.reason }, 'native fan-out writer not used: player writes are made from JavaScript');
    // one timer drives every connection's timeouts and pings
    this.housekeeping = setInterval(() => {
      const now = Date.now();
      for (const s of this.sessions.values()) s.conn.tick(now);
    }, HOUSEKEEPING_INTERVAL);
    this.housekeeping.unref();
    const warm = this.warmupWanted();
    this.warming = warm;
    if (this.config.http.length > 0) {
      this.http = new HttpFrontend(this.config.http, { source: this, logger: this.log.child({ module: 'http' }) });
      await this.http.start();
    }
    for (const block of this.blocks) {
      const cfg = block.config;
      if (cfg.listen.some((l) => l.proxyProtocol) && (cfg.realIpFrom ?? []).length === 0) {
        this.log.warn(
          { listen: cfg.listen.filter((l) => l.proxyProtocol).map((l) => `${l.host}:${l.port}`) },
          'proxy_protocol without set_real_ip_from: every peer may name the client address that allow/deny, logs and addr= see; add "set_real_ip_from <your load balancers>;"',
        );
      }
      for (const spec of cfg.listen) this.listeners.push(await this.bind(spec, block));
    }
    if (warm) await this.warmUp();
  }

  /** Binds one rtmp listen; rejects with the system's error. */
  private async bind(spec: ListenSpec, block: ServerBlock | undefined): Promise<Listener> {
    // paused: accept() may read the connection through a socket of its own (shared_read)
    const server = net.createServer({ pauseOnConnect: true }, (socket) => {
      // so_keepalive is read per connection: a reload may change it on a kept listener
      if (listener.spec.soKeepalive === true) socket.setKeepAlive(true);
      this.accept(socket, listener);
    });
    const listener: Listener = { server, spec, block };
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.ipv6Only === true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.log.error({ err: e.message }, 'listener error'));
    const a = server.address();
    if (a !== null && typeof a === 'object') this.log.info({ host: a.address, port: a.port }, `RTMP listening on ${a.address}:${a.port}`);
    return listener;
  }

  private warmupWanted(): boolean {
    return this.options.warmup !== false && this.config.rtmp[0]?.warmup === true;
  }

  /**
   * The boot warm-up (src/warmup.ts): a synthetic stream through a private
   * listener on 127.0.0.1, into a live-only application built with the first
   * server block's settings, so the same code paths run as for real clients.
   * The public listeners are bound already; clients that arrive meanwhile wait
   * (paused) and are let in when it ends. A failure is logged, never fatal.
   */
  private async warmUp(): Promise<void> {
    const first = this.config.rtmp[0];
    const given = this.options.warmup === false ? undefined : this.options.warmup;
    let listener: net.Server | undefined;
    let block: ServerBlock | undefined;
    const cpu0 = process.cpuUsage();
    try {
      if (first === undefined) return;
      const live = defaultConfig().rtmp[0]?.applications[0];
      if (live === undefined) return;
      const b: ServerBlock = { ...this.buildBlock({ ...first, listen: [], maxConnections: 0, applications: [{ ...live, name: WARMUP_APP }] }), group: {} };
      block = b;
      const server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket, undefined, b));
      listener = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
      });
      const a = server.address();
      if (a === null || typeof a !== 'object') return;
      const report = await warmUp(a.port, WARMUP_APP, { ...given, aborted: () => this.stopping });
      // the warm-up's connections leave on their own (the clients closed them); wait for the server's side
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && [...this.sessions.values()].some((s) => s.internal)) await new Promise((r) => setTimeout(r, 10));
      for (const s of [...this.sessions.values()]) if (s.internal) s.conn.output.destroy();
      this.warmupReport = report;
      const cpu = process.cpuUsage(cpu0);
      this.log.info({ ...report, cpuMs: Math.round((cpu.user + cpu.system) / 1000) }, report.stopped === undefined ? 'warm-up done' : 'warm-up ended early');
    } catch (e) {
      this.log.warn(describeError(e), 'warm-up failed: starting cold');
    } finally {
      if (listener !== undefined) listener.close();
      if (block !== undefined) {
        for (const app of block.apps.values()) {
          const use = this.chains.get(app.chain);
          if (use !== undefined) use.retired = true;
          this.releaseChain(app.chain, 0);
        }
      }
      this.warming = false;
      const held = this.held;
      this.held = [];
      for (const h of held) this.accept(h.socket, h.listener);
    }
  }

  /** The bound addresses (useful with port 0). */
  addresses(): { host: string; port: number }[] {
    return this.listeners.flatMap(({ server }) => {
      const a = server.address();
      return a !== null && typeof a === 'object' ? [{ host: a.address, port: a.port }] : [];
    });
  }

  get port(): number {
    const a = this.addresses()[0];
    if (a === undefined) throw new Error('server is not listening');
    return a.port;
  }

  get connections(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (!s.internal) n++;
    return n;
  }

  /** A point-in-time view of connections and streams, for stats pages and control. */
  snapshot(): ServerSnapshot {
    const now = Date.now();
    return {
      startedAt: this.startedAt,
      accepted: this.connectionCount,
      now,
      connections: [...this.sessions.values()].filter((s) => !s.internal).map(({ conn }) => ({
        id: conn.id,
        remote: conn.remote,
        remoteAddress: conn.remoteAddress,
        app: conn.app,
        flashVer: conn.connectInfo?.flashVer ?? '',
        swfUrl: conn.connectInfo?.swfUrl ?? '',
        pageUrl: conn.connectInfo?.pageUrl ?? '',
        tcUrl: conn.connectInfo?.tcUrl ?? '',
        connectedAt: conn.connectedAt,
        bytesIn: conn.bytesIn,
        bytesOut: conn.bytesOut,
        streams: conn.activeStreams(),
      })),
      streams: this.hub.list().filter((s) => !(this.warming && s.app === WARMUP_APP)).map((s) => ({
        app: s.app,
        name: s.name,
        active: s.active,
        publisher: s.publisher?.id,
        readers: s.readers.size,
        hasVideo: s.hasVideo,
        hasAudio: s.hasAudio,
        publishedAt: s.stats.publishedAt,
        bytesIn: s.stats.bytesIn,
        framesIn: s.stats.framesIn,
        videoFrames: s.stats.videoFrames,
        audioFrames: s.stats.audioFrames,
        dropped: s.stats.droppedByGoneReaders + [...s.readers].reduce((n, r) => n + r.dropped, 0),
        videoHeader: s.videoHeader?.payload,
        audioHeader: s.audioHeader?.payload,
      })),
    };
  }

  /** Disconnects a connection by id (control API); true if it existed. */
  dropConnection(id: string, reason: string): boolean {
    for (const { conn, internal } of this.sessions.values()) {
      if (conn.id === id && !internal) {
        conn.fail(serverError(ErrorCode.Refused, reason), 'info');
        return true;
      }
    }
    return false;
  }

  /**
   * Takes a new configuration: new and changed applications apply to new
   * sessions; running sessions keep the applications they connected to.
   * Listeners are matched to the new server blocks by address (host and
   * port): a kept address serves the block that names it now, a new one is
   * bound before anything changes, a removed one stops accepting (its sessions
   * go on). Rejects with ConfigReload, the old configuration still running,
   * when the new one has no rtmp listen, names a listen it cannot bind, or
   * changes `ipv6only` on a kept address. The http block's listens likewise.
   */
  reload(config: ServerConfig): Promise<void> {
    const run = this.reloading.then(() => this.applyReload(config));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async applyReload(config: ServerConfig): Promise<void> {
    const refuse = (msg: string, cause?: unknown): ServerError => serverError(ErrorCode.ConfigReload, `reload refused: ${msg}`, cause);
    if (this.stopping) throw refuse('the server is stopping');
    if (config.rtmp.length === 0) throw refuse('the configuration has no rtmp server block (an empty file?)');
    if (config.rtmp.every((c) => c.listen.length === 0)) throw refuse('the configuration has no rtmp listen');
    // which listener serves each listen of the new configuration
    const free = new Set(this.listeners);
    const plan: { spec: ListenSpec; index: number; listener: Listener | undefined }[] = [];
    config.rtmp.forEach((c, index) => {
      for (const spec of c.listen) {
        const listener = [...free].find((l) => sameListen(l, spec));
        if (listener !== undefined) {
          free.delete(listener);
          if ((listener.spec.ipv6Only === true) !== (spec.ipv6Only === true)) throw refuse(`listen ${spec.host}:${spec.port} changes ipv6only: it cannot be rebound (restart the server)`);
        }
        plan.push({ spec, index, listener });
      }
    });
    // a block keeps the connection count of the block that had one of its addresses
    const groups = config.rtmp.map((_, index) => plan.find((p) => p.index === index && p.listener?.block !== undefined)?.listener?.block?.group ?? {});
    const blocks: ServerBlock[] = [];
    const bound: Listener[] = [];
    let http: { frontend: HttpFrontend; reload: HttpReload } | undefined;
    try {
      for (let i = 0; i < config.rtmp.length; i++) blocks.push({ ...this.buildBlock(config.rtmp[i]!), group: groups[i]! });
      for (const p of plan) {
        if (p.listener !== undefined) continue;
        try {
          p.listener = await this.bind(p.spec, undefined);
        } catch (e) {
          throw refuse(`cannot listen on ${p.spec.host}:${p.spec.port}: ${describeError(e).message}`, e);
        }
        bound.push(p.listener);
      }
      const frontend = this.http ?? new HttpFrontend([], { source: this, logger: this.log.child({ module: 'http' }) });
      try {
        http = { frontend, reload: await frontend.prepare(config.http) };
      } catch (e) {
        throw isServerError(e, ErrorCode.ConfigReload) ? e : refuse(describeError(e).message, e);
      }
      if (this.stopping) throw refuse('the server is stopping');
    } catch (e) {
      await Promise.all(bound.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
      this.retire(blocks);
      if (http !== undefined) await http.reload.abort();
      throw e;
    }
    // nothing can fail from here on
    for (const p of plan) {
      const l = p.listener!;
      l.spec = p.spec;
      l.block = blocks[p.index];
    }
    this.listeners = plan.map((p) => p.listener!);
    for (const l of free) {
      const a = l.server.address();
      if (a !== null && typeof a === 'object') this.log.info({ host: a.address, port: a.port }, `RTMP no longer listening on ${a.address}:${a.port}`);
      l.server.close();
    }
    this.held = this.held.filter((h) => {
      if (!free.has(h.listener)) return true;
      h.socket.destroy();
      return false;
    });
    http.reload.commit();
    this.http = http.frontend;
    const previous = this.config;
    const retiring = this.blocks;
    this.config = config;
    this.blocks = blocks;
    this.retire(retiring);
    this.restartExecStatic(previous);
    this.log.info({ source: config.source }, 'configuration reloaded');
  }

  /** The chains of blocks no longer used by new sessions close when their last session leaves. */
  private retire(blocks: readonly ServerBlock[]): void {
    for (const b of blocks) {
      for (const a of b.apps.values()) {
        const use = this.chains.get(a.chain);
        if (use === undefined) continue;
        use.retired = true;
        this.releaseChain(a.chain, 0);
      }
    }
  }

  /** How many open chains (applications of the current or older configurations still used); for tests. */
  get openChains(): number {
    return this.chains.size;
  }

  /** Stops accepting, closes every connection (politely, then by force), resolves when done. */
  async stop(timeoutMs = SHUTDOWN_TIMEOUT): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.housekeeping !== undefined) clearInterval(this.housekeeping);
    const closing = this.listeners.map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    for (const h of this.held.splice(0)) h.socket.destroy();
    for (const s of [...this.sessions.values()]) s.conn.shutdown();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of [...this.sessions.values()]) s.conn.output.destroy();
    const chains = [...this.chains.keys()];
    this.chains.clear();
    await Promise.all(chains.map((c) => c.close(this.log)));
    await this.execStatic?.close();
    await this.http?.stop();
    await Promise.all(closing);
  }

  /** exec_static programs run for the server's lifetime; a reload restarts them only if they changed. */
  private restartExecStatic(previous: ServerConfig | undefined): void {
    const next = this.config.execStatic;
    if (previous !== undefined && JSON.stringify(previous.execStatic) === JSON.stringify(next)) return;
    const old = this.execStatic;
    this.execStatic = undefined;
    if (old !== undefined) void old.close();
    if (next !== undefined) this.execStatic = startExecStatic(next, this.log.child({ module: 'exec_static' }));
  }

  /** Drops `n` users of a chain; a retired chain nobody uses any more is closed. */
  private releaseChain(chain: AppChain, n: number): void {
    const use = this.chains.get(chain);
    if (use === undefined) return;
    use.users -= n;
    if (use.retired && use.users <= 0) {
      this.chains.delete(chain);
      void chain.close(this.log);
    }
  }

  private buildBlock(config: RtmpServerConfig): BuiltBlock {
    const apps = new Map<string, Application>();
    for (const a of config.applications) {
      // modules get their own chain late: it is built from them
      const ref: { chain?: AppChain } = {};
      const modules = this.options.modules?.(a, { hub: this.hub, logger: this.log.child({ app: a.name }), chain: () => ref.chain }) ?? [];
      const chain = new AppChain(modules);
      ref.chain = chain;
      this.chains.set(chain, { users: 0, retired: false });
      apps.set(a.name, {
        config: a,
        chain,
        streamOptions: streamOptionsFor(a),
      });
    }
    const outQueueBytes = Math.max(256 * 1024, config.outQueue * config.chunkSize);
    return {
      config,
      apps,
      connectionOptions: {
        ...DEFAULT_CONNECTION_OPTIONS,
        chunkSize: config.chunkSize,
        windowAckSize: config.ackWindow,
        peerBandwidth: config.ackWindow,
        maxMessageSize: config.maxMessage,
        directWrite: config.directWrite,
        nativeWrite: config.nativeWrite,
        noDelay: config.tcpNodelay,
        idleTimeout: config.timeout,
        pingInterval: config.ping,
        pingTimeout: config.pingTimeout,
        maxStreams: config.maxStreams,
        maxOutputBytes: maxOutputBytes(outQueueBytes, config.maxMessage),
        ...(config.realIpFrom !== undefined && config.realIpFrom.length > 0 ? { trustedProxy: addressSetMatcher(config.realIpFrom, 'set_real_ip_from') } : {}),
      },
      readerLimits: { maxQueuedBytes: outQueueBytes, resumeQueuedBytes: outQueueBytes >> 2 },
    };
  }

  /** A client of a listener (or of the warm-up's private one: `internal`). */
  private accept(accepted: net.Socket, listener: Listener | undefined, internal?: ServerBlock): void {
    const block = internal ?? listener?.block;
    if (block === undefined || this.stopping || accepted.destroyed) {
      accepted.destroy();
      return;
    }
    if (this.warming && listener !== undefined) {
      // paused since the accept: nothing is read until the warm-up is over
      this.held.push({ socket: accepted, listener });
      return;
    }
    const proxyProtocol = listener?.spec.proxyProtocol === true;
    const max = block.config.maxConnections;
    if (internal === undefined && max > 0 && this.blockConnections(block.group) >= max) {
      this.log.warn({ remote: `${accepted.remoteAddress}:${accepted.remotePort}`, code: ErrorCode.ConnectionLimit, max }, 'connection refused: limit reached');
      accepted.destroy();
      return;
    }
    let id: string;
    if (internal !== undefined) id = `warmup-${(++this.internalCount).toString(36)}`;
    else id = (++this.connectionCount).toString(36);
    let options = proxyProtocol ? { ...block.connectionOptions, proxyProtocol } : block.connectionOptions;
    let socket = accepted;
    if (block.config.sharedRead && this.sharedReader !== undefined) {
      // reads start on a later turn of the event loop, when conn (below) exists
      const adopted = this.sharedReader.adopt(accepted, (data) => conn.receive(data));
      if (adopted.socket !== undefined) {
        socket = adopted.socket;
        options = { ...options, sharedInput: true };
      } else {
        this.log.debug({ conn: id, reason: adopted.reason }, 'shared read buffer not used for this connection');
      }
    }
    const conn = new RtmpConnection(id, socket, this.handler, options, internal !== undefined ? silentLogger() : this.log, this.writeGroup);
    // the listener accepts paused; a socket read the usual way starts here (an adopted one already reads)
    if (socket === accepted) accepted.resume();
    this.sessions.set(conn, { conn, block, listener, internal: internal !== undefined, app: undefined, info: undefined });
  }

  /** The sessions counted against a block's max_connections. */
  private blockConnections(group: object): number {
    let n = 0;
    for (const s of this.sessions.values()) if (!s.internal && s.block.group === group) n++;
    return n;
  }

  private session(conn: RtmpConnection): Session & { app: Application; info: SessionInfo } {
    const s = this.sessions.get(conn);
    if (s?.app === undefined || s.info === undefined) throw serverError(ErrorCode.ProtocolViolation, 'not connected');
    return s as Session & { app: Application; info: SessionInfo };
  }

  private readonly handler: ConnectionHandler = {
    connect: async (conn: RtmpConnection, info: ConnectInfo): Promise<void> => {
      const s = this.sessions.get(conn);
      if (s === undefined) throw serverError(ErrorCode.ProtocolViolation, 'unknown connection');
      const block = s.listener?.block ?? s.block;
      s.block = block;
      const app = block.apps.get(info.app);
      if (app === undefined) throw serverError(ErrorCode.AppNotFound, `application "${info.app}" not found`);
      // the session uses the chain from now on, so that a reload meanwhile does not close it under the hook
      const use = this.chains.get(app.chain);
      if (use === undefined) throw serverError(ErrorCode.AppNotFound, `application "${info.app}" was closed by a reload`);
      use.users++;
      const session: SessionInfo = {
        id: conn.id,
        remoteAddress: conn.remoteAddress,
        app: info.app,
        query: info.query,
        tcUrl: info.tcUrl,
        flashVer: info.flashVer,
        swfUrl: info.swfUrl,
        pageUrl: info.pageUrl,
        log: conn.log,
      };
      try {
        await app.chain.connect({ session });
      } catch (e) {
        this.releaseChain(app.chain, 1);
        throw e;
      }
      if (this.sessions.get(conn) !== s) {
        // the client left while the chain decided: closed() found no application to release
        app.chain.disconnect(session);
        this.releaseChain(app.chain, 1);
        throw serverError(ErrorCode.ClientClosed, 'the client left during connect');
      }
      s.app = app;
      s.info = session;
    },

    publish: async (conn: RtmpConnection, req: PublishInfo): Promise<PublishHandle> => {
      const { app, info } = this.session(conn);
      checkStreamName(req.name);
      const ctx: PublishContext = { session: info, name: req.name, query: req.query, type: req.type };
      // a refusal (here or by a module) undoes the modules that let it through
      await app.chain.publish(ctx, () => void checkStreamName(ctx.name));
      const pub: PublisherInfo = {
        id: conn.id,
        remote: conn.remote,
        stop: (reason: string) => conn.fail(serverError(ErrorCode.Refused, reason), 'info'),
      };
      const live = app.config.live;
      let stream: LiveStream;
      try {
        stream = this.hub.publish(info.app, ctx.name, pub, app.streamOptions);
      } catch (e) {
        app.chain.publishDone(ctx, true);
        throw e;
      }
      app.chain.published(ctx, stream);
      let open = true;
      // drop_idle_publisher: a publisher that sends no audio/video for that long is disconnected
      const idleCheck =
        live.dropIdlePublisher > 0
          ? setInterval(() => {
              if (Date.now() - stream.stats.lastMediaAt > live.dropIdlePublisher) pub.stop(`no media for ${live.dropIdlePublisher} ms (drop_idle_publisher)`);
            }, Math.min(1000, live.dropIdlePublisher)).unref()
          : undefined;
      return {
        media: (kind: number, timestamp: number, payload: Buffer) => {
          if (kind === FrameKind.Audio || kind === FrameKind.Video) stream.pushMedia(kind, timestamp, payload);
          else if (kind === FrameKind.Data) {
            const data = applyMetaMode(live.meta, payload);
            if (data !== undefined) stream.pushMedia(kind, timestamp, data);
          }
        },
        beginBatch: () => stream.beginBatch(),
        endBatch: () => stream.endBatch(),
        close: () => {
          if (!open) return;
          open = false;
          if (idleCheck !== undefined) clearInterval(idleCheck);
          this.hub.unpublish(stream, pub);
          app.chain.publishDone(ctx);
        },
      };
    },

    play: async (conn: RtmpConnection, req: PlayInfo, output: PlayerOutput): Promise<PlayHandle> => {
      const { app, info, block } = this.session(conn);
      checkStreamName(req.name);
      const ctx: PlayContext = { session: info, name: req.name, query: req.query, start: req.start, duration: req.duration };
      const live = app.config.live;
      // the live step's checks run inside the chain: a refusal undoes the modules that let the play through
      await app.chain.play(ctx, () => {
        checkStreamName(ctx.name);
        if (!live.idleStreams && this.hub.get(info.app, ctx.name)?.active !== true) {
          throw serverError(ErrorCode.StreamNameInvalid, `stream ${ctx.name} is not published (idle_streams off)`);
        }
      });
      output.configure({ publishNotify: live.publishNotify, playRestart: live.playRestart, closeOnUnpublish: !live.idleStreams, interleave: live.interleave });
      const log = conn.log.child({ stream: ctx.name });
      const limits = { ...block.readerLimits, waitKey: live.waitKey, waitVideo: live.waitVideo };
      const reader = new LiveReader(output, limits, (r) =>
        log.warn({ dropped: r.dropped, episodes: r.dropEpisodes, queued: output.queuedBytes() }, 'slow player: dropping to the next keyframe'),
      );
      ctx.stop = (reason: string) => conn.fail(serverError(ErrorCode.Refused, reason), 'info');
      // the status messages, metadata, codec headers and cached GOP leave in one writev(2)
      output.cork();
      let stream: LiveStream;
      try {
        output.begin(ctx.name, req.reset);
        stream = this.hub.subscribe(info.app, ctx.name, reader, app.streamOptions);
      } catch (e) {
        app.chain.playDone(ctx, true);
        throw e;
      } finally {
        output.uncork();
      }
      let open = true;
      return {
        resume: () => reader.restart(stream.hasVideo),
        close: () => {
          if (!open) return;
          open = false;
          this.hub.unsubscribe(stream, reader);
          if (reader.dropped > 0) log.info({ dropped: reader.dropped, episodes: reader.dropEpisodes }, 'player dropped frames');
          app.chain.playDone(ctx);
        },
      };
    },

    closed: (conn: RtmpConnection, _error: ServerError | undefined): void => {
      const s = this.sessions.get(conn);
      this.sessions.delete(conn);
      if (s?.app !== undefined && s.info !== undefined) {
        s.app.chain.disconnect(s.info);
        this.releaseChain(s.app.chain, 1);
      }
    },
  };
}
