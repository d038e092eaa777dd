import net from 'node:net';
import type { ListenSpec, ServerConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { sameListen } from '../http/server.js';
import type { Listener, ServerBlock } from './applications.js';

/**
 * Binds one rtmp listen; rejects with the system's error. The listener
 * accepts paused (the connection may be read through a socket of its own:
 * shared_read) and hands each socket to `accept`.
 */
export async function bindListener(spec: ListenSpec, block: ServerBlock | undefined, accept: (socket: net.Socket, listener: Listener) => void, log: Logger): Promise<Listener> {
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    // so_keepalive is read per connection: a reload may change it on a kept listener
    if (listener.spec.soKeepalive === true) socket.setKeepAlive(true);
    accept(socket, listener);
  });
  const listener: Listener = { server, spec, block };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.ipv6Only === true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => log.error({ err: e.message }, 'listener error'));
  const a = server.address();
  if (a !== null && typeof a === 'object') log.info({ host: a.address, port: a.port }, `RTMP listening on ${a.address}:${a.port}`);
  return listener;
}

/** One listen of a new configuration: the listener that keeps serving its address, or none yet (bind it). */
export interface ListenPlan {
  readonly spec: ListenSpec;
  /** the index of its server block in the new configuration */
  readonly index: number;
  listener: Listener | undefined;
}

/**
 * Matches a new configuration's rtmp listens to the bound listeners by address
 * (host and port; the order of blocks in the file does not matter). `free`:
 * the listeners no listen keeps. Throws (through `refuse`) when a kept address
 * changes `ipv6only`, which cannot be applied without a rebind.
 */
export function planListens(listeners: readonly Listener[], config: ServerConfig, refuse: (msg: string) => Error): { plan: ListenPlan[]; free: Set<Listener> } {
  const free = new Set(listeners);
  const plan: ListenPlan[] = [];
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
  return { plan, free };
}

/** A listener no configuration names any more stops accepting; its sessions go on. */
export function closeListener(l: Listener, log: Logger): void {
  const a = l.server.address();
  if (a !== null && typeof a === 'object') log.info({ host: a.address, port: a.port }, `RTMP no longer listening on ${a.address}:${a.port}`);
  l.server.close();
}
