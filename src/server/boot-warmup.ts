/**
 * The boot warm-up's run (`warmup on`, src/warmup.ts does the load): a
 * synthetic stream through a private listener on 127.0.0.1, into a live-only
 * application built with the first server block's settings, so the same code
 * paths run as for real clients. The server holds public clients back while it
 * runs (src/server.ts); a failure is logged, never fatal.
 */
import net from 'node:net';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { defaultConfig } from '../config/default.js';
import type { ServerConfig } from '../config/types.js';
import { warmUp, type WarmupOptions, type WarmupReport } from '../warmup.js';
import type { Applications, ServerBlock } from './applications.js';
import type { RtmpSessions } from './rtmp-sessions.js';

/** The application the warm-up publishes to, on a private listener (no hooks, no recording: only live). */
export const WARMUP_APP = '__warmup';

export type ServerWarmupOptions = Pick<WarmupOptions, 'players' | 'messages' | 'timeoutMs'>;

export interface BootWarmupDeps {
  /** the first server block's settings */
  readonly first: ServerConfig['rtmp'][number] | undefined;
  readonly options: ServerWarmupOptions | undefined;
  readonly apps: Applications;
  readonly sessions: RtmpSessions;
  /** a client of the private listener, for the server to accept as one of `block` */
  accept(socket: net.Socket, block: ServerBlock): void;
  /** the server is stopping: the warm-up ends early */
  stopping(): boolean;
  readonly log: Logger;
}

/** Runs the warm-up; its report, or undefined when it did not run to a report (logged). */
export async function runBootWarmup(deps: BootWarmupDeps): Promise<WarmupReport | undefined> {
  const { first, apps, sessions, log } = deps;
  let listener: net.Server | undefined;
  let block: ServerBlock | undefined;
  const cpu0 = process.cpuUsage();
  try {
    if (first === undefined) return undefined;
    const live = defaultConfig().rtmp[0]?.applications[0];
    if (live === undefined) return undefined;
    const b: ServerBlock = { ...apps.build({ ...first, listen: [], maxConnections: 0, applications: [{ ...live, name: WARMUP_APP }] }), group: {} };
    block = b;
    const server = net.createServer({ pauseOnConnect: true }, (socket) => deps.accept(socket, b));
    listener = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    const a = server.address();
    if (a === null || typeof a !== 'object') return undefined;
    const report = await warmUp(a.port, WARMUP_APP, { ...deps.options, aborted: deps.stopping });
    // the warm-up's connections leave on their own (the clients closed them); wait for the server's side
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && sessions.hasInternal) await new Promise((r) => setTimeout(r, 10));
    sessions.destroyInternal();
    const cpu = process.cpuUsage(cpu0);
    log.info({ ...report, cpuMs: Math.round((cpu.user + cpu.system) / 1000) }, report.stopped === undefined ? 'warm-up done' : 'warm-up ended early');
    return report;
  } catch (e) {
    log.warn(describeError(e), 'warm-up failed: starting cold');
    return undefined;
  } finally {
    if (listener !== undefined) listener.close();
    if (block !== undefined) apps.retire([block]);
  }
}
