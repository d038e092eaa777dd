import type { TestContext } from 'node:test';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { defaultConfig } from '../../src/config/default.js';
import type { ServerConfig } from '../../src/config/types.js';
import { RtmpServer, type ServerOptions } from '../../src/server.js';
import { buildModules } from '../../src/app/modules.js';

export interface TestServer {
  readonly server: RtmpServer;
  readonly port: number;
  readonly url: string;
  readonly logs: MemoryLogEntry[];
}

/** A server on 127.0.0.1, port 0, with an in-memory log; stopped in t.after. `modules`: the applications' modules (default: all). */
export async function startServer(t: TestContext, config: ServerConfig = loopbackDefault(), opts: { modules?: ServerOptions['modules'] } = {}): Promise<TestServer> {
  const logs: MemoryLogEntry[] = [];
  // no boot warm-up: a second of synthetic load per test server buys nothing in a test
  const server = new RtmpServer(config, { logger: memoryLogger(logs), modules: opts.modules ?? buildModules, warmup: false });
  await server.start();
  t.after(() => server.stop(1000));
  const port = server.port;
  return { server, port, url: `rtmp://127.0.0.1:${port}`, logs };
}

/** The embedded default configuration, bound to 127.0.0.1 on an ephemeral port. */
export function loopbackDefault(overrides: (c: ServerConfig['rtmp'][number]) => Partial<ServerConfig['rtmp'][number]> = () => ({})): ServerConfig {
  const base = defaultConfig(0);
  return {
    ...base,
    rtmp: base.rtmp.map((s) => ({ ...s, listen: [{ host: '127.0.0.1', port: 0, proxyProtocol: false }], ...overrides(s) })),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until cond() is true or the time is up; returns the last value of cond(). */
export async function until(cond: () => boolean, timeoutMs = 10_000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(stepMs);
  }
  return cond();
}
