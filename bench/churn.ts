/**
 * Memory under churn: players join and leave a server in this process, round
 * after round; prints the JS heap (after forced GC) idle, with the players, and
 * after they left. A leak shows as "after" growing round over round.
 *
 *   node --expose-gc --import tsx bench/churn.ts [--players 300] [--rounds 8]
 */
import { buildModules } from '../src/app/modules.js';
import { defaultConfig } from '../src/config/default.js';
import { silentLogger } from '../src/core/log.js';
import { RtmpClient } from '../src/rtmp/client.js';
import { RtmpServer } from '../src/server.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isFinite(v) && v > 0 ? v : def;
}

async function main(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  const players = arg('players', 300);
  const rounds = arg('rounds', 8);
  const base = defaultConfig(0);
  const cfg = { ...base, rtmp: base.rtmp.map((s) => ({ ...s, listen: [{ host: '127.0.0.1', port: 0, proxyProtocol: false }] })) };
  const server = new RtmpServer(cfg, { logger: silentLogger(), modules: buildModules });
  await server.start();
  const url = `rtmp://127.0.0.1:${server.port}/live`;
  const heapKiB = (): number => {
    gc();
    gc();
    return Math.round(process.memoryUsage().heapUsed / 1024);
  };
  const idle = heapKiB();
  process.stdout.write(`players per round ${players}, JS heap idle ${idle} KiB\n`);
  for (let round = 0; round < rounds; round++) {
    const clients: RtmpClient[] = [];
    for (let i = 0; i < players; i++) {
      const c = await RtmpClient.connect(url);
      await c.play('churn');
      clients.push(c);
    }
    const full = heapKiB();
    for (const c of clients) c.destroy();
    while (server.connections > 0) await new Promise((r) => setTimeout(r, 20));
    const after = heapKiB();
    process.stdout.write(
      `round ${round}: with players ${full} KiB (${((full - idle) / players).toFixed(1)} KiB/player, server and client sides), after ${after} KiB, streams left ${server.hub.list().length}\n`,
    );
  }
  await server.stop();
}

main().catch((e: unknown) => {
  process.stderr.write(`${String(e)}\n`);
  process.exit(1);
});
