/**
 * VOD cost in process: our server in this process (so its RSS and CPU are
 * this process's), N players of one file in a child process (real sockets,
 * our RtmpClient). Reports RSS (and heap, external memory) per player above
 * the server with one play, and the server's CPU per delivered Gbit.
 *
 *   node --expose-gc --import tsx bench/vod-mem.ts [--players 100] [--seconds 20] [--ramp 2000] [--file bench/media/vod/vod.mp4]
 *
 * With --expose-gc the baseline is taken after a full collection (else the
 * warm-up's garbage, collected later, can make the figure per player
 * negative).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { parseConfigText } from '../src/config/load.js';
import { memoryLogger, type MemoryLogEntry } from '../src/core/log.js';
import { buildModules } from '../src/app/modules.js';
import { RtmpServer } from '../src/server.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}
const players = Number(arg('players', '100'));
const seconds = Number(arg('seconds', '20'));
const rampMs = Number(arg('ramp', '2000'));
const file = path.resolve(arg('file', 'bench/media/vod/vod.mp4'));
const name = file.endsWith('.mp4') ? `mp4:${path.basename(file)}` : path.basename(file, '.flv');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;

interface Tick {
  t: number;
  playing: number;
  failed: number;
  bytes: number;
}

async function runPlayers(url: string, n: number, secs: number, onTick: (t: Tick) => void): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/vod-players.ts', url, name, String(n), String(secs), String(rampMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (l) => onTick(JSON.parse(l) as Tick));
  await new Promise((r) => child.on('exit', r));
}

const logs: MemoryLogEntry[] = [];
const cfg = parseConfigText(`rtmp { server { listen 127.0.0.1:0; chunk_size 4096; application vod { play ${path.dirname(file)}; } } }`, 'vod-mem.conf');
const server = new RtmpServer(cfg, { logger: memoryLogger(logs), modules: buildModules, warmup: false });
await server.start();
const url = `rtmp://127.0.0.1:${server.port}/vod`;

// warm up: one player for a few seconds (code compiled, the index built)
await runPlayers(url, 1, 4, () => undefined);
await sleep(1000);
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
await sleep(200);
const base = process.memoryUsage();
const samples: { rss: number; heap: number; external: number; ab: number }[] = [];
let startCpu: NodeJS.CpuUsage | undefined;
let startBytes = 0;
let startT = 0;
let last: Tick | undefined;
let cpuUs = 0;
await runPlayers(url, players, seconds, (tick) => {
  last = tick;
  // measure from when the ramp is over plus 2 s to the end
  if (tick.t >= rampMs + 2000) {
    if (startCpu === undefined) {
      startCpu = process.cpuUsage();
      startBytes = tick.bytes;
      startT = tick.t;
    } else {
      const u = process.cpuUsage(startCpu);
      cpuUs = u.user + u.system;
      const m = process.memoryUsage();
      samples.push({ rss: m.rss, heap: m.heapUsed, external: m.external, ab: m.arrayBuffers });
    }
  }
});
await server.stop(1000);
if (last === undefined || samples.length === 0 || startCpu === undefined) throw new Error('no measurement (too short a run?)');
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rss = med(samples.map((s) => s.rss));
const heap = med(samples.map((s) => s.heap));
const ext = med(samples.map((s) => s.external));
const gbit = ((last.bytes - startBytes) * 8) / 1e9;
const wallS = (last.t - startT) / 1000;
const out = {
  file: path.basename(file),
  baselineAfterGc: gc !== undefined,
  players,
  playing: last.playing,
  failed: last.failed,
  windowS: wallS,
  deliveredMbitPerPlayer: Math.round((gbit * 1000 / wallS / Math.max(1, last.playing)) * 100) / 100,
  baseRssMB: Math.round((base.rss / MB) * 10) / 10,
  rssMB: Math.round((rss / MB) * 10) / 10,
  rssPerPlayerKiB: Math.round((rss - base.rss) / 1024 / Math.max(1, last.playing)),
  heapPerPlayerKiB: Math.round((heap - base.heapUsed) / 1024 / Math.max(1, last.playing)),
  externalPerPlayerKiB: Math.round((ext - base.external) / 1024 / Math.max(1, last.playing)),
  cpuPercent: Math.round((cpuUs / 1e4 / wallS) * 10) / 10,
  cpuSecondsPerGbit: Math.round((cpuUs / 1e6 / gbit) * 1000) / 1000,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
