import net from 'node:net';
import { ErrorCode, ServerError, describeError, isServerError, serverError } from './core/errors.js';
import type { Logger } from './core/log.js';
import type { AppModule, ModuleDeps } from './app/chain.js';
import { startExecStatic } from './app/exec.js';
import { dashModule } from './dash/module.js';
import { vodModules } from './vod/module.js';
import { StreamService } from './app/service.js';
import { Applications, type Listener, type ServerBlock } from './server/applications.js';
import { RtmpSessions } from './server/rtmp-sessions.js';
import { bindListener, closeListener, planListens } from './server/listeners.js';
import type { ApplicationConfig, ListenSpec, ServerConfig } from './config/types.js';
import { HttpFrontend, type HttpReload } from './http/server.js';
import type { StatSnapshot } from './http/stat.js';
import type { LivePlayDeps } from './http/flv-live.js';
import { LiveHub } from './live/hub.js';
import { WriteGroup } from './rtmp/output.js';
import { loadNativeWriter, type NativeWriter, type NativeWriterLoad } from './core/native.js';
import { createSocketInput, type SocketInput } from './rtmp/socket-input.js';
import type { WarmupReport } from './warmup.js';
import { WARMUP_APP, runBootWarmup, type ServerWarmupOptions } from './server/boot-warmup.js';
import { RecordControl, recordModule, type RecordModuleOptions } from './record/module.js';
import { hlsModule } from './hls/module.js';
import { viewerConnection, viewerRegistry } from './server/viewers.js';
import { streamSnapshot } from './server/snapshot.js';

export interface ServerOptions {
  readonly logger: Logger;
  /** modules put in front of the live step of every application (access, notify...) */
  readonly modules?: (app: ApplicationConfig, deps: ModuleDeps) => AppModule[];
  /** false: never load the native fan-out writer (its writes are then made from JavaScript); tests may pass their own */
  readonly nativeWriter?: false | NativeWriter;
  /** false: no boot warm-up, whatever the configuration says (tests); otherwise its sizes and tuning */
  readonly warmup?: false | ServerWarmupOptions;
  /** the recorders' reader bounds and file system (tests) */
  readonly record?: RecordModuleOptions;
}

export type { ServerWarmupOptions } from './server/boot-warmup.js';

const SHUTDOWN_TIMEOUT = 5000;
/** how often connection timeouts and pings are checked */
const HOUSEKEEPING_INTERVAL = 250;

/** What snapshot() returns: the shape the HTTP stat page reads (declared in src/http, below this file). */
export type ServerSnapshot = StatSnapshot;

export class RtmpServer {
  /** media fanned out in one event-loop turn is written after the fan-out, one system call per player */
  private readonly writeGroup: WriteGroup;
  readonly hub: LiveHub;
  /** publish and play for every protocol, through each application's chain */
  readonly service = new StreamService();
  /** the native fan-out writer, or why it is not used */
  private readonly native: NativeWriterLoad;
  /** one read buffer for every connection (shared_read), where the native addon can dup(2) */
  private readonly sharedReader: SocketInput | undefined;
  private config: ServerConfig;
  private blocks: ServerBlock[] = [];
  private listeners: Listener[] = [];
  /** reloads run one after the other */
  private reloading: Promise<unknown> = Promise.resolve();
  /** the applications of every configuration still in use */
  private readonly apps: Applications;
  /** the running recorders of every application, for rtmp_control */
  private readonly records = new RecordControl();
  /** every RTMP connection, and what turns its commands into the stream service's calls */
  private readonly sessions: RtmpSessions;
  private stopping = false;
  private housekeeping: NodeJS.Timeout | undefined;
  private execStatic: { close(): Promise<void> } | undefined;
  /** the built-in HTTP server (static files, rtmp_stat, rtmp_control), when the configuration has an http block */
  http: HttpFrontend | undefined;
  /** HLS/DASH viewers: the clients the http block served a live stream's playlists and fragments to */
  private readonly viewers = viewerRegistry(() => this.blocks.flatMap((b) => [...b.apps.values()].map((a) => a.config)), (app, name) => this.hub.get(app, name)?.active === true);
  readonly startedAt = Date.now();
  private readonly log: Logger;
  /** true from start() until the warm-up is over: new clients wait in `held` (paused) */
  private warming = false;
  private held: { socket: net.Socket; listener: Listener }[] = [];
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
    // one poller for the process: the first server block's read_window counts, as for warmup
    this.sharedReader = createSocketInput(this.native.writer, this.writeGroup, config.rtmp[0]?.readWindow ?? 0);
    this.hub = new LiveHub({ outputBatch: this.writeGroup, logger: this.log.child({ module: 'live' }) });
    // the outputs, one line each, after the application's own modules (the live step is added last)
    const outputs = (app: ApplicationConfig, deps: ModuleDeps): (AppModule | undefined)[] => [
      recordModule(app, deps, this.records, options.record),
      hlsModule(app, deps),
      dashModule(app, deps),
      ...vodModules(app, deps),
    ];
    const modules = (app: ApplicationConfig, deps: ModuleDeps): AppModule[] => [...(options.modules?.(app, deps) ?? []), ...outputs(app, deps).filter((m): m is AppModule => m !== undefined)];
    this.apps = new Applications(this.hub, this.service, modules, this.log);
    this.sessions = new RtmpSessions({
      apps: this.apps,
      service: this.service,
      writeGroup: this.writeGroup,
      sharedReader: this.sharedReader,
      log: this.log,
    });
    this.blocks = config.rtmp.map((c) => ({ ...this.apps.build(c), group: {} }));
  }

  /** What the HTTP front end's `flv_live` players need: the stream service, the applications of now, the write group. */
  private liveDeps(): LivePlayDeps {
    return {
      service: this.service,
      findApp: (name) => {
        for (const b of this.blocks) {
          const app = b.apps.get(name);
          if (app !== undefined) return app;
        }
        return undefined;
      },
      claim: (app) => this.apps.claim(app),
      release: (app) => this.apps.release(app.chain),
      published: (app, name) => {
        const s = this.hub.get(app, name);
        return s?.active === true ? s : undefined;
      },
      writeGroup: this.writeGroup,
    };
  }

  /** Binds every `listen` of every rtmp server block, and the http block's listens. */
  async start(): Promise<void> {
    this.restartExecStatic(undefined);
    if (this.native.writer !== undefined) this.log.info({ path: this.native.path, sharedRead: this.sharedReader !== undefined }, 'native fan-out writer loaded');
    else this.log.info({ reason: this.native.reason }, 'native fan-out writer not used: player writes are made from JavaScript');
    // one timer drives every connection's timeouts and pings
    this.housekeeping = setInterval(() => {
      const now = Date.now();
      this.sessions.tick(now);
    }, HOUSEKEEPING_INTERVAL);
    this.housekeeping.unref();
    const warm = this.warmupWanted();
    this.warming = warm;
    if (this.config.http.length > 0) {
      this.http = new HttpFrontend(this.config.http, { source: this, logger: this.log.child({ module: 'http' }), live: this.liveDeps(), onFileServed: (...a) => this.viewers.served(...a) });
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

  private bind(spec: ListenSpec, block: ServerBlock | undefined): Promise<Listener> {
    return bindListener(spec, block, (socket, listener) => this.accept(socket, listener), this.log);
  }


  private warmupWanted(): boolean {
    return this.options.warmup !== false && this.config.rtmp[0]?.warmup === true;
  }

  /** The boot warm-up (src/server/boot-warmup.ts); clients that arrived meanwhile are let in when it ends. */
  private async warmUp(): Promise<void> {
    try {
      this.warmupReport = await runBootWarmup({
        first: this.config.rtmp[0],
        options: this.options.warmup === false ? undefined : this.options.warmup,
        apps: this.apps,
        sessions: this.sessions,
        accept: (socket, block) => this.accept(socket, undefined, block),
        stopping: () => this.stopping,
        log: this.log,
      });
    } finally {
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
    return this.sessions.count;
  }

  /** A point-in-time view of connections and streams, for stats pages and control. */
  snapshot(): ServerSnapshot {
    const now = Date.now();
    return {
      startedAt: this.startedAt,
      accepted: this.sessions.accepted,
      now,
      connections: [...this.sessions.connections(), ...(this.http?.playerConnections() ?? []), ...this.viewers.list(now).map(viewerConnection)],
      streams: this.hub.list().filter((s) => !(this.warming && s.app === WARMUP_APP)).map(streamSnapshot),
    };
  }

  /** rtmp_control record/start|stop: the recording's file path, or 204 when no such stream or recorder runs. */
  recordControl(action: 'start' | 'stop', app: string, name: string, rec: string): { status: number; body: string } {
    return this.records.control(action, app, name, rec);
  }

  /** Disconnects a connection by id (control API); true if it existed. */
  dropConnection(id: string, reason: string): boolean {
    return this.sessions.drop(id, reason) || (this.http?.dropPlayer(id, reason) ?? false) || this.viewers.drop(id);
  }

  /** Switches a connection's publish / play to another stream name (control API redirect); how many were switched. */
  redirectConnection(id: string, role: 'publisher' | 'subscriber' | 'client', name: string | undefined, newName: string): number {
    return this.sessions.redirect(id, role, name, newName);
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
    const { plan, free } = planListens(this.listeners, config, refuse);
    // a block keeps the connection count of the block that had one of its addresses
    const groups = config.rtmp.map((_, index) => plan.find((p) => p.index === index && p.listener?.block !== undefined)?.listener?.block?.group ?? {});
    const blocks: ServerBlock[] = [];
    const bound: Listener[] = [];
    let http: { frontend: HttpFrontend; reload: HttpReload } | undefined;
    try {
      for (let i = 0; i < config.rtmp.length; i++) blocks.push({ ...this.apps.build(config.rtmp[i]!), group: groups[i]! });
      for (const p of plan) {
        if (p.listener !== undefined) continue;
        try {
          p.listener = await this.bind(p.spec, undefined);
        } catch (e) {
          throw refuse(`cannot listen on ${p.spec.host}:${p.spec.port}: ${describeError(e).message}`, e);
        }
        bound.push(p.listener);
      }
      const frontend = this.http ?? new HttpFrontend([], { source: this, logger: this.log.child({ module: 'http' }), live: this.liveDeps(), onFileServed: (...a) => this.viewers.served(...a) });
      try {
        http = { frontend, reload: await frontend.prepare(config.http) };
      } catch (e) {
        throw isServerError(e, ErrorCode.ConfigReload) ? e : refuse(describeError(e).message, e);
      }
      if (this.stopping) throw refuse('the server is stopping');
    } catch (e) {
      await Promise.all(bound.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
      this.apps.retire(blocks);
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
    for (const l of free) closeListener(l, this.log);
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
    this.apps.retire(retiring);
    this.restartExecStatic(previous);
    this.log.info({ source: config.source }, 'configuration reloaded');
  }

  /** How many open chains (applications of the current or older configurations still used); for tests. */
  get openChains(): number {
    return this.apps.open;
  }

  /** Stops accepting, closes every connection (politely, then by force), resolves when done. */
  async stop(timeoutMs = SHUTDOWN_TIMEOUT): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.housekeeping !== undefined) clearInterval(this.housekeeping);
    const closing = this.listeners.map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    for (const h of this.held.splice(0)) h.socket.destroy();
    this.sessions.shutdownAll();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.sessions.destroyAll();
    await this.apps.closeAll();
    await this.execStatic?.close();
    await this.http?.stop();
    await Promise.all(closing);
    this.sharedReader?.close();
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
    this.sessions.accept(accepted, block, listener, internal !== undefined);
  }
}
