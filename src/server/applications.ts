import net from 'node:net';
import { AppChain, type AppModule, type ModuleDeps, type PublishContext, type SessionInfo, type StreamPublisher } from '../app/chain.js';
import { LiveModule } from '../app/live.js';
import type { Application, Publishing, StreamService } from '../app/service.js';
import { streamOptionsFor } from '../app/stream-options.js';
import type { ApplicationConfig, ListenSpec, RtmpServerConfig } from '../config/types.js';
import { addressSetMatcher } from '../core/address.js';
import type { Logger } from '../core/log.js';
import type { LiveHub } from '../live/hub.js';
import type { ReaderLimits } from '../live/reader.js';
import { DEFAULT_CONNECTION_OPTIONS, type ConnectionOptions } from '../rtmp/connection.js';

/** Everything one `server {}` block needs at run time; replaced whole on reload. */
export interface BuiltBlock {
  readonly config: RtmpServerConfig;
  readonly apps: ReadonlyMap<string, Application>;
  readonly connectionOptions: ConnectionOptions;
  readonly readerLimits: ReaderLimits;
}

export interface ServerBlock extends BuiltBlock {
  /**
   * Who counts against the block's max_connections: its sessions and those of
   * the blocks it replaced on reloads (a block keeps the group of the block
   * that had one of its listen addresses).
   */
  readonly group: object;
}

/** One bound rtmp listen. */
export interface Listener {
  readonly server: net.Server;
  /** the listen as configured last (port 0: any port; the bound one is server.address()) */
  spec: ListenSpec;
  /** the server block its clients connect to; a reload that keeps the address replaces it (undefined: bound by a reload not applied yet) */
  block: ServerBlock | undefined;
}

/** Builds an application's modules (access, notify, exec, relay...); the live step is added after them. */
export type ModuleFactory = (app: ApplicationConfig, deps: ModuleDeps) => AppModule[];

/**
 * The hard cap on what may wait for one peer (issue 13): far above the players'
 * drop threshold (a player drops frames past `playerBound` and is never cut for
 * a burst), with room for the largest message on top of it.
 */
export function maxOutputBytes(playerBound: number, maxMessage: number): number {
  return Math.max(16 * 1024 * 1024, 4 * playerBound, playerBound + 2 * maxMessage);
}

/**
 * The applications of every configuration still in use: builds a server
 * block's applications (each chain built once per configuration, the live
 * step last) and counts the sessions using each chain. A reload retires the
 * old configuration's chains; a retired chain closes (its modules' timers,
 * relays, children) when its last session leaves.
 */
export class Applications {
  private readonly chains = new Map<AppChain, { users: number; retired: boolean }>();

  constructor(
    private readonly hub: LiveHub,
    private readonly service: StreamService,
    private readonly modules: ModuleFactory | undefined,
    private readonly log: Logger,
  ) {}

  build(config: RtmpServerConfig): BuiltBlock {
    const apps = new Map<string, Application>();
    const outQueueBytes = Math.max(256 * 1024, config.outQueue * config.chunkSize);
    const readerLimits: ReaderLimits = { maxQueuedBytes: outQueueBytes, resumeQueuedBytes: outQueueBytes >> 2 };
    for (const a of config.applications) {
      // modules get the service for their own application late: the application is built from them
      const ref: { app?: Application } = {};
      const logger = this.log.child({ app: a.name });
      const publisher: StreamPublisher = {
        publish: (session: SessionInfo, req: { name: string; query: string; type: PublishContext['type'] }): Promise<Publishing> => this.service.publish(ref.app!, session, req),
      };
      const modules = this.modules?.(a, { hub: this.hub, logger, publisher: () => (ref.app === undefined ? undefined : publisher), events: () => ref.app?.chain }) ?? [];
      const streamOptions = streamOptionsFor(a);
      // the live step is the chain's last member (src/app/live.ts)
      const chain = new AppChain([...modules, new LiveModule(a, this.hub, streamOptions, logger)]);
      this.chains.set(chain, { users: 0, retired: false });
      const app: Application = { config: a, chain, streamOptions, readerLimits, maxScriptData: config.maxMessage };
      ref.app = app;
      apps.set(a.name, app);
    }
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
      readerLimits,
    };
  }

  /** A session starts using the application; false when its chain was closed (by a reload). */
  claim(app: Application): boolean {
    const use = this.chains.get(app.chain);
    if (use === undefined) return false;
    use.users++;
    return true;
  }

  /** Drops `n` users of a chain; a retired chain nobody uses any more is closed. */
  release(chain: AppChain, n = 1): void {
    const use = this.chains.get(chain);
    if (use === undefined) return;
    use.users -= n;
    if (use.retired && use.users <= 0) {
      this.chains.delete(chain);
      void chain.close(this.log);
    }
  }

  /** The blocks' chains serve no new session: each closes when its last session leaves. */
  retire(blocks: readonly BuiltBlock[]): void {
    for (const b of blocks) {
      for (const a of b.apps.values()) {
        const use = this.chains.get(a.chain);
        if (use === undefined) continue;
        use.retired = true;
        this.release(a.chain, 0);
      }
    }
  }

  /** Open chains (applications of the current or older configurations still used). */
  get open(): number {
    return this.chains.size;
  }

  /** Server shutdown: every chain's modules close. */
  async closeAll(): Promise<void> {
    const chains = [...this.chains.keys()];
    this.chains.clear();
    await Promise.all(chains.map((c) => c.close(this.log)));
  }
}
