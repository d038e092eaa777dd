/**
 * Hostile soak (issue 13): our server as a separate process (`node dist/cli.js
 * -c` on bench/hostile.conf.template, with webhooks to a local HTTP server of
 * this tool, rtmp_stat/rtmp_control, exec and a proxy_protocol listen), one
 * healthy publisher (bench/media/test-1m.flv, ~1 Mbit/s, real time) and 50
 * healthy players in a worker thread (the load tool's player worker), and, in
 * a loop, the hostile cases of bench/lib/hostile.ts one after another. Every
 * 10 s: the server's RSS, whether it lives, the players' delivered/expected
 * ratio and lag. At the end a summary; the exit code is 1 if the server
 * crashed, its RSS grew more than --max-rss-growth % from the first minute
 * after the warm-up to the last, or the healthy players fell behind.
 *
 *   node --import tsx bench/hostile-soak.ts --minutes 10
 *   node --import tsx bench/hostile-soak.ts --minutes 2 --restart --cases 1,2,3
 *
 * Loopback only; every loop ends by itself after --minutes. Not a test: run it
 * by hand on a quiet machine (bench/RESULTS.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { eachArg } from './lib/args.js';
import { makeMedia } from './make-media.js';
import { LoopMedia } from './lib/media.js';
import { sampleProc } from './lib/proc.js';
import type { FromWorker, PlayerPlan, WindowReport, WorkerInit } from './lib/protocol.js';
import { Publisher } from './lib/publisher.js';
import { Histogram, clock, fmt } from './lib/stats.js';
import { HOSTILE_CASES, httpGet, runCase, sleep, startHookServer, type CaseRun, type HookServer, type HostileEnv } from './lib/hostile.js';
import { gapThreshold, serverReady, startWorker, waitFor, type WorkerHandle } from './rtmp-load.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const USAGE = `Usage: node --import tsx bench/hostile-soak.ts [options]

  --minutes M          length of the soak (default 10)
  --players N          healthy players of the healthy stream (default 50)
  --port N             RTMP port of the spawned server (default: a free one)
  --attach             do not spawn: use the server already listening on --port
                       (--pid for its RSS, --http-port for cases 9/10; no webhooks, exec or restart)
  --pid PID            with --attach: the server's pid
  --http-port N        with --attach: its rtmp_stat (/stat) and rtmp_control (/control) port
  --restart            when the server dies, record the crash, start it again and go on
  --cases LIST         hostile cases to run, e.g. 1,2,13 (default: all)
  --case-timeout S     bound on one case (default 30)
  --warmup S           samples before this are left out of the RSS and real-time figures
                       (default: 60, or a quarter of the run when shorter)
  --max-lag-ms MS      a healthy player is real time while its lag p99 stays below this (default 1000)
  --max-rss-growth P   percent from the first minute after the warm-up to the last (default 20)
  --hook-delay-ms MS   how long the webhook server holds a marked on_connect/on_publish (default 5000)
  --no-build           do not run \`npm run build\` first (dist/ must exist)
  --out DIR            server logs, config, JSON (default bench/results/hostile-soak-<UTC stamp>)
  -h, --help`;

interface SoakArgs {
  minutes: number;
  players: number;
  port: number | undefined;
  attach: boolean;
  pid: number | undefined;
  httpPort: number | undefined;
  restart: boolean;
  cases: number[] | undefined;
  caseTimeout: number;
  warmup: number | undefined;
  maxLagMs: number;
  maxRssGrowth: number;
  hookDelayMs: number;
  build: boolean;
  out: string | undefined;
  help: boolean;
}

function parseArgs(argv: readonly string[]): SoakArgs {
  const a: SoakArgs = {
    minutes: 10,
    players: 50,
    port: undefined,
    attach: false,
    pid: undefined,
    httpPort: undefined,
    restart: false,
    cases: undefined,
    caseTimeout: 30,
    warmup: undefined,
    maxLagMs: 1000,
    maxRssGrowth: 20,
    hookDelayMs: 5000,
    build: true,
    out: undefined,
    help: false,
  };
  eachArg(argv, (k, { value, num }) => {
    switch (k) {
      case '--minutes':
        a.minutes = num(0.1, false);
        break;
      case '--players':
        a.players = num(0);
        break;
      case '--port':
        a.port = num(1);
        break;
      case '--attach':
        a.attach = true;
        break;
      case '--pid':
        a.pid = num(1);
        break;
      case '--http-port':
        a.httpPort = num(1);
        break;
      case '--restart':
        a.restart = true;
        break;
      case '--cases':
        a.cases = value()
          .split(',')
          .map((s) => Number(s.trim()));
        if (a.cases.some((n) => !HOSTILE_CASES.some((c) => c.id === n))) throw new Error(`--cases: known cases are ${HOSTILE_CASES.map((c) => c.id).join(',')}`);
        break;
      case '--case-timeout':
        a.caseTimeout = num(1, false);
        break;
      case '--warmup':
        a.warmup = num(0, false);
        break;
      case '--max-lag-ms':
        a.maxLagMs = num(1, false);
        break;
      case '--max-rss-growth':
        a.maxRssGrowth = num(0, false);
        break;
      case '--hook-delay-ms':
        a.hookDelayMs = num(0);
        break;
      case '--no-build':
        a.build = false;
        break;
      case '--out':
        a.out = value();
        break;
      case '-h':
      case '--help':
        a.help = true;
        break;
      default:
        throw new Error(`unknown argument: ${k}`);
    }
  });
  if (a.attach && a.port === undefined) throw new Error('--attach needs --port');
  if (a.attach && a.restart) throw new Error('--restart needs a server this tool starts (no --attach)');
  return a;
}

const t0 = clock();
function line(text: string): void {
  process.stderr.write(`[${((clock() - t0) / 1000).toFixed(1).padStart(6)} s] ${text}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------
// the server process

interface Crash {
  readonly at: number;
  readonly instance: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** the hostile case running when it died */
  readonly duringCase: number | undefined;
  readonly lastLog: string;
}

/** Server processes still running: killed when this tool exits, however it exits. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

class ServerProcess {
  child: ChildProcess | undefined;
  instance = 0;
  alive = false;
  readonly crashes: Crash[] = [];
  private stopping = false;
  onExit: () => void = () => {};
  currentCase: number | undefined;
  lastCase: number | undefined;
  lastCaseEnd = -Infinity;

  constructor(
    readonly configFile: string,
    readonly outDir: string,
    readonly port: number,
  ) {}

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  logFile(instance = this.instance): string {
    return path.join(this.outDir, `server-${instance}.log`);
  }

  async start(): Promise<void> {
    this.instance++;
    const fd = openSync(this.logFile(), 'a');
    const child = spawn(process.execPath, ['--max-semi-space-size=1', '--single-threaded-gc', 'dist/cli.js', '-c', this.configFile], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info' },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.child = child;
    children.add(child);
    this.alive = true;
    const instance = this.instance;
    child.on('exit', (code, signal) => {
      children.delete(child);
      this.alive = false;
      if (this.stopping) return;
      const at = clock();
      // a crash up to 3 s after a case ended is put down to it (the server may die on what the case left behind)
      const duringCase = this.currentCase ?? (at - this.lastCaseEnd < 3000 ? this.lastCase : undefined);
      const crash: Crash = { at, instance, code, signal, duringCase, lastLog: crashText(this.logFile(instance)) };
      this.crashes.push(crash);
      line(`SERVER DIED (instance ${instance}, code ${code}, signal ${signal}) during case ${crash.duringCase ?? '-'}: ${crash.lastLog}`);
      this.onExit();
    });
    const deadline = clock() + 20_000;
    while (!(await portOpen(this.port))) {
      if (!this.alive) throw new Error(`the server exited at start: ${lastLines(this.logFile(instance), 5)}`);
      if (clock() > deadline) throw new Error(`the server does not listen on ${this.port} after 20 s`);
      await sleep(100);
    }
    await serverReady(`rtmp://127.0.0.1:${this.port}/live/x`, 20_000);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child === undefined || !this.alive) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (this.alive) child.kill('SIGKILL');
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** What a dead Node.js process printed last: the error line and its first frame (else the last log lines). */
function crashText(file: string): string {
  let lines: string[];
  try {
    lines = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-60);
  } catch {
    return '';
  }
  const plain = lines.filter((l) => !l.startsWith('{'));
  const i = plain.findIndex((l) => /^\S*Error\b.*:|^\s*\w*Error:/.test(l));
  if (i < 0) return lastLines(file, 3);
  const frame = plain.slice(i + 1).find((l) => /^\s+at /.test(l));
  return `${plain[i]!.trim().slice(0, 200)}${frame !== undefined ? ` ${frame.trim()}` : ''}`;
}

function lastLines(file: string, n: number): string {
  try {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    return lines
      .slice(-n)
      .map((l) => l.slice(0, 300))
      .join(' | ');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------
// the healthy publisher and players (the load tool's publisher and worker)

class Healthy {
  private handle: WorkerHandle | undefined;
  private readonly inbox = new Map<number, FromWorker[]>();
  private workerError: string | undefined;
  publisher: Publisher | undefined;
  windowOpen = false;

  constructor(
    readonly appUrl: string,
    readonly name: string,
    readonly media: LoopMedia,
    readonly players: number,
  ) {}

  get tick(): (FromWorker & { kind: 'tick' }) | undefined {
    return this.handle?.lastTick;
  }

  async start(): Promise<void> {
    this.workerError = undefined;
    const startedAt = clock();
    const pub = new Publisher({ appUrl: this.appUrl, name: this.name, media: this.media, onError: (e) => line(`healthy publisher: ${e.message}`) });
    await pub.start();
    this.publisher = pub;
    await sleep(1000);
    const rampMs = 3000;
    const plans: PlayerPlan[] = Array.from({ length: this.players }, (_, i) => ({ index: i, appUrl: this.appUrl, name: this.name, stream: 0, startOffsetMs: (i * rampMs) / Math.max(1, this.players) }));
    const init: WorkerInit = {
      workerIndex: 0,
      mediaFile: this.media.file,
      players: plans,
      publishers: [],
      origins: { 0: pub.origin },
      chunkSize: 4096,
      connectTimeoutMs: 10_000,
      gapThresholdMs: gapThreshold(this.media),
      tickMs: 250,
    };
    const worker: Worker = startWorker(new URL('./lib/player-worker.ts', import.meta.url), init);
    const h: WorkerHandle = { worker, index: 0, lastTick: { kind: 'tick', workerIndex: 0, connected: 0, failed: 0, closed: 0, payloadBytes: 0, publishersUp: 0 } };
    this.inbox.set(0, []);
    worker.on('message', (m: FromWorker) => {
      if (m.kind === 'tick') h.lastTick = m;
      else if (m.kind === 'error') this.workerError = m.message;
      else this.inbox.get(0)!.push(m);
    });
    worker.on('error', (e) => {
      this.workerError = e.message;
    });
    this.handle = h;
    await waitFor([h], this.inbox, 'ready', 30_000, () => this.workerError);
    worker.postMessage({ kind: 'start', rampStart: clock() + 100 });
    const end = clock() + rampMs + 12_000;
    while (clock() < end && h.lastTick.connected + h.lastTick.failed < this.players) await sleep(100);
    line(`healthy (${((clock() - startedAt) / 1000).toFixed(1)} s): publisher at ${(this.media.bitrate / 1e6).toFixed(2)} Mbit/s, ${h.lastTick.connected}/${this.players} players playing, ${h.lastTick.failed} failed`);
    await sleep(1000);
    worker.postMessage({ kind: 'windowStart' });
    this.windowOpen = true;
  }

  /** Ends the current measurement window and opens the next; the ended window's report. */
  async window(): Promise<WindowReport | undefined> {
    const h = this.handle;
    if (h === undefined || !this.windowOpen) return undefined;
    h.worker.postMessage({ kind: 'windowEnd' });
    let report: WindowReport | undefined;
    try {
      [report] = (await waitFor([h], this.inbox, 'window', 10_000, () => this.workerError)) as WindowReport[];
    } catch (e) {
      line(`healthy worker: ${e instanceof Error ? e.message : String(e)}`);
    }
    h.worker.postMessage({ kind: 'windowStart' });
    return report;
  }

  async stop(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    this.windowOpen = false;
    if (h !== undefined) {
      h.worker.postMessage({ kind: 'stop' });
      await waitFor([h], this.inbox, 'stopped', 10_000, () => this.workerError).catch(() => undefined);
      await h.worker.terminate();
    }
    await this.publisher?.stop();
    this.publisher = undefined;
    this.inbox.clear();
  }
}

// ---------------------------------------------------------------------------
// the /stat probe: an HTTP request answered by the server's event loop, once a second

class LoopProbe {
  readonly probes: { at: number; ms: number; ok: boolean }[] = [];
  private inFlightSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly port: number) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.inFlightSince !== undefined) return;
      const at = clock();
      this.inFlightSince = at;
      httpGet(this.port, '/stat', {}, 600_000).then(
        (r) => this.done(at, r.ms, r.status === 200),
        () => this.done(at, clock() - at, false),
      );
    }, 1000);
  }

  private done(at: number, ms: number, ok: boolean): void {
    this.inFlightSince = undefined;
    this.probes.push({ at, ms, ok });
  }

  /** The slowest answer of a probe that was waiting at some time in [from, to], a probe still waiting counted so far. */
  maxBetween(from: number, to: number): number {
    let m = 0;
    for (const p of this.probes) if (p.at <= to && p.at + p.ms >= from) m = Math.max(m, p.ms);
    if (this.inFlightSince !== undefined && this.inFlightSince <= to) m = Math.max(m, clock() - this.inFlightSince);
    return m;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}

// ---------------------------------------------------------------------------

interface Sample {
  readonly t: number;
  readonly instance: number;
  readonly alive: boolean;
  readonly rssKiB: number;
  readonly ratio: number;
  readonly lagP99: number;
  readonly perPlayerP99Max: number;
  readonly connected: number;
  readonly gapEpisodes: number;
  readonly probeMaxMs: number;
  readonly cases: string;
  readonly window: WindowReport | undefined;
}

function mean(v: readonly number[]): number {
  return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

async function main(argv: readonly string[]): Promise<number> {
  let args: SoakArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`hostile-soak: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const durationMs = args.minutes * 60_000;
  const warmupMs = (args.warmup ?? Math.min(60, (args.minutes * 60) / 4)) * 1000;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const outDir = path.resolve(args.out ?? path.join(ROOT, 'bench', 'results', `hostile-soak-${stamp}`));
  mkdirSync(outDir, { recursive: true });
  const media = new LoopMedia(await makeMedia('oneMbit'));

  let server: ServerProcess | undefined;
  let hooks: HookServer | undefined;
  let rtmpPort: number;
  let httpPort: number | undefined;
  let proxyPort: number | undefined;
  let execDir: string | undefined;
  if (args.attach) {
    rtmpPort = args.port!;
    httpPort = args.httpPort;
  } else {
    if (args.build) {
      line('npm run build');
      const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
      if (b.status !== 0) throw new Error('npm run build failed');
    }
    hooks = await startHookServer(args.hookDelayMs);
    rtmpPort = args.port ?? (await freePort());
    httpPort = await freePort();
    proxyPort = await freePort();
    execDir = path.join(outDir, 'exec');
    mkdirSync(path.join(execDir, 'exec-out'), { recursive: true });
    mkdirSync(path.join(execDir, 'escaped'), { recursive: true });
    const conf = readFileSync(path.join(ROOT, 'bench', 'hostile.conf.template'), 'utf8')
      .replaceAll('@RTMP_PORT@', String(rtmpPort))
      .replaceAll('@PROXY_PORT@', String(proxyPort))
      .replaceAll('@HTTP_PORT@', String(httpPort))
      .replaceAll('@HOOK_PORT@', String(hooks.port))
      .replaceAll('@EXEC_DIR@', execDir);
    const confFile = path.join(outDir, 'hostile.conf');
    writeFileSync(confFile, conf);
    server = new ServerProcess(confFile, outDir, rtmpPort);
    await server.start();
    line(`server pid ${server.pid} (rtmp ${rtmpPort}, proxy_protocol ${proxyPort}, http ${httpPort}, webhooks ${hooks.port}); logs in ${outDir}`);
  }
  const pidOf = (): number | undefined => (server !== undefined ? server.pid : args.pid);
  const appUrl = `rtmp://127.0.0.1:${rtmpPort}/live`;
  const healthyName = 'soak';
  const healthy = new Healthy(appUrl, healthyName, media, args.players);
  await healthy.start();
  const probe = httpPort !== undefined ? new LoopProbe(httpPort) : undefined;
  probe?.start();

  const env: HostileEnv = {
    host: '127.0.0.1',
    rtmpPort,
    app: 'live',
    healthyName,
    media,
    httpPort,
    proxyPort,
    execDir,
    hooks: hooks !== undefined,
    serverPid: pidOf,
  };
  const startAt = clock();
  const endAt = startAt + durationMs;
  let stopReason: string | undefined;
  let restarting: Promise<void> | undefined;
  if (server !== undefined) {
    const srv = server;
    srv.onExit = () => {
      if (!args.restart) {
        stopReason = 'the server died (no --restart)';
        return;
      }
      restarting = (async () => {
        const r0 = clock();
        await healthy.stop().catch(() => undefined);
        line('restarting the server');
        await srv.start();
        line(`server pid ${srv.pid} (instance ${srv.instance}) ready after ${((clock() - r0) / 1000).toFixed(1)} s`);
        await healthy.start();
      })().catch((e: unknown) => {
        stopReason = `restart failed: ${e instanceof Error ? e.message : String(e)}`;
      });
    };
  }
  const running = (): boolean => clock() < endAt && stopReason === undefined;

  // the sampler: every 10 s
  const samples: Sample[] = [];
  const casesRan: CaseRun[] = [];
  let runningCase: number | undefined;
  const sampler = (async () => {
    let last = clock();
    while (running()) {
      await sleep(Math.min(10_000 - (clock() - last), endAt - clock()));
      if (stopReason !== undefined) break;
      const now = clock();
      const w = await healthy.window();
      const pid = pidOf();
      const proc = pid !== undefined ? sampleProc(pid) : undefined;
      const caseIds = [...new Set(casesRan.filter((c) => c.startedAt + c.ms >= last).map((c) => c.id)), ...(runningCase !== undefined ? [runningCase] : [])];
      const lag = new Histogram();
      if (w !== undefined) lag.merge(w.lag);
      const s: Sample = {
        t: now - startAt,
        instance: server?.instance ?? 1,
        alive: proc !== undefined,
        rssKiB: proc?.rssKiB ?? NaN,
        ratio: w !== undefined && w.expectedBytes > 0 ? w.payloadBytes / w.expectedBytes : NaN,
        lagP99: lag.count > 0 ? lag.percentile(99) : NaN,
        perPlayerP99Max: w !== undefined && w.perPlayerLagP99.length > 0 ? Math.max(...w.perPlayerLagP99) : NaN,
        connected: w?.connectedAtEnd ?? 0,
        gapEpisodes: w?.gapEpisodes ?? 0,
        probeMaxMs: probe?.maxBetween(last, now) ?? NaN,
        cases: [...new Set(caseIds)].join(','),
        window: w,
      };
      samples.push(s);
      last = now;
      line(
        `sample: server ${s.alive ? 'alive' : 'DEAD'}, RSS ${fmt(s.rssKiB / 1024, 1)} MiB, players ${s.connected}/${args.players} ratio ${fmt(s.ratio, 3)} lag p99 ${fmt(s.lagP99, 0)} ms` +
          ` (worst player ${fmt(s.perPlayerP99Max, 0)}), gaps ${s.gapEpisodes}, /stat max ${fmt(s.probeMaxMs, 0)} ms, cases ${s.cases || '-'}` +
          (w !== undefined && Object.keys(w.failures).length > 0 ? `; players' failures so far: ${JSON.stringify(w.failures)}` : ''),
      );
    }
  })();

  // the hostile loop: the cases one after another until the end
  const selected = HOSTILE_CASES.filter((c) => (args.cases === undefined || args.cases.includes(c.id)) && (c.needs === undefined || c.needs(env)));
  const skipped = HOSTILE_CASES.filter((c) => !selected.includes(c)).map((c) => c.id);
  if (skipped.length > 0) line(`cases skipped: ${skipped.join(', ')}`);
  let round = 0;
  while (running() && endAt - clock() >= 5000 && selected.length > 0) {
    round++;
    for (const c of selected) {
      // a case gets at least 5 s: none is cut short by the end of the soak
      if (!running() || endAt - clock() < 5000) break;
      if (restarting !== undefined) {
        await restarting;
        restarting = undefined;
        if (!running()) break;
      }
      runningCase = c.id;
      if (server !== undefined) server.currentCase = c.id;
      const r = await runCase(c, env, round, args.caseTimeout * 1000, endAt);
      const stall = probe?.maxBetween(r.startedAt, r.startedAt + r.ms) ?? NaN;
      runningCase = undefined;
      if (server !== undefined) {
        server.currentCase = undefined;
        server.lastCase = c.id;
        server.lastCaseEnd = clock();
      }
      const died = server !== undefined && server.crashes.some((x) => x.at >= r.startedAt && x.at <= r.startedAt + r.ms + 500);
      const run: CaseRun = died ? { ...r, outcome: `SERVER DIED (${r.outcome})` } : r;
      casesRan.push(run);
      line(`case ${c.id} r${round}: ${run.outcome} [${Math.round(run.ms)} ms, /stat max ${fmt(stall, 0)} ms] ${run.notes.join('; ')}`);
      await sleep(Math.min(500, endAt - clock()));
    }
  }
  while (running()) await sleep(Math.min(1000, endAt - clock()));
  await sampler;
  if (restarting !== undefined) await restarting;
  probe?.stop();
  const finalAlive = server !== undefined ? server.alive : pidOf() !== undefined && sampleProc(pidOf()!) !== undefined;
  await healthy.stop().catch(() => undefined);
  await server?.stop();
  await hooks?.close();

  // ---------------------------------------------------------------- summary
  const crashes = server?.crashes ?? [];
  const out: string[] = [];
  const verdicts: string[] = [];
  out.push(`hostile soak: ${((clock() - startAt) / 60_000).toFixed(1)} min${stopReason !== undefined ? ` (stopped early: ${stopReason})` : ''}, ${args.players} healthy players of ${(media.bitrate / 1e6).toFixed(2)} Mbit/s, warm-up ${warmupMs / 1000} s, ${round} round(s) of ${selected.length} cases`);
  out.push(`crashes: ${crashes.length}${server === undefined ? ' (attached: not watched)' : ''}`);
  for (const c of crashes) out.push(`  at ${((c.at - t0) / 1000).toFixed(1)} s (the progress lines' clock), instance ${c.instance}, during case ${c.duringCase ?? '-'}: exit code ${c.code}, signal ${c.signal}; last log: ${c.lastLog}`);
  if (crashes.length > 0) verdicts.push(`${crashes.length} crash(es)`);
  if (!finalAlive) verdicts.push('server not alive at the end');

  const instances = [...new Set(samples.map((s) => s.instance))];
  for (const inst of instances) {
    const ss = samples.filter((s) => s.instance === inst && s.alive && s.t >= warmupMs && Number.isFinite(s.rssKiB));
    if (ss.length === 0) {
      out.push(`RSS (instance ${inst}): no samples after the warm-up`);
      continue;
    }
    const rss = ss.map((s) => s.rssKiB / 1024);
    const firstT = ss[0]!.t;
    const lastT = ss[ss.length - 1]!.t;
    // the first and the last minute; in a run shorter than two minutes, the first and the last half
    const span = Math.min(60_000, (lastT - firstT) / 2);
    const firstMin = mean(ss.filter((s) => s.t <= firstT + span).map((s) => s.rssKiB / 1024));
    const lastMin = mean(ss.filter((s) => s.t >= lastT - span).map((s) => s.rssKiB / 1024));
    const growth = ((lastMin - firstMin) / firstMin) * 100;
    const sl = slope(
      ss.map((s) => s.t / 60_000),
      rss,
    );
    out.push(
      `RSS (instance ${inst}, ${ss.length} samples after the warm-up): first ${fmt(rss[0], 1)}, last ${fmt(rss[rss.length - 1], 1)}, min ${fmt(Math.min(...rss), 1)}, max ${fmt(Math.max(...rss), 1)} MiB;` +
        ` first ${fmt(span / 1000, 0)} s mean ${fmt(firstMin, 1)}, last ${fmt(span / 1000, 0)} s mean ${fmt(lastMin, 1)} (${growth >= 0 ? '+' : ''}${fmt(growth, 1)} %); slope ${fmt(sl, 2)} MiB/min`,
    );
    if (growth > args.maxRssGrowth) verdicts.push(`RSS grew ${fmt(growth, 1)} % (> ${args.maxRssGrowth} %) on instance ${inst}`);
  }

  const measured = samples.filter((s) => s.t >= warmupMs && s.window !== undefined);
  const lag = new Histogram();
  let payload = 0;
  let expected = 0;
  for (const s of measured) {
    lag.merge(s.window!.lag);
    payload += s.window!.payloadBytes;
    expected += s.window!.expectedBytes;
  }
  const ratio = expected > 0 ? payload / expected : NaN;
  const minRatio = Math.min(...measured.map((s) => s.ratio));
  const worstPlayer = Math.max(...measured.map((s) => s.perPlayerP99Max).filter(Number.isFinite));
  const minConnected = Math.min(...measured.map((s) => s.connected));
  const gaps = measured.reduce((a, s) => a + s.gapEpisodes, 0);
  const realTime = measured.length > 0 && ratio >= 0.99 && lag.percentile(99) < args.maxLagMs && worstPlayer < args.maxLagMs && minConnected === args.players;
  out.push(
    `healthy players (${measured.length} windows of 10 s after the warm-up): delivered/expected ${fmt(ratio, 4)} (worst window ${fmt(minRatio, 3)}), lag p99 ${fmt(lag.percentile(99), 0)} ms, max ${fmt(lag.max, 0)} ms,` +
      ` worst player p99 ${fmt(worstPlayer, 0)} ms, fewest playing ${Number.isFinite(minConnected) ? minConnected : 'n/a'}/${args.players}, gap episodes ${gaps} -> real time: ${realTime ? 'yes' : 'NO'}`,
  );
  if (!realTime) verdicts.push(`healthy players not real time (need delivered >= 0.99, lag p99 < ${args.maxLagMs} ms, all ${args.players} playing)`);
  if (probe !== undefined) out.push(`/stat probe (event loop): ${probe.probes.length} probes, slowest ${fmt(Math.max(0, ...probe.probes.map((p) => p.ms)), 0)} ms, ${probe.probes.filter((p) => !p.ok).length} failed`);

  out.push('cases:');
  for (const c of HOSTILE_CASES) {
    const runs = casesRan.filter((r) => r.id === c.id);
    if (runs.length === 0) {
      out.push(`  ${String(c.id).padStart(2)} ${c.title}: ${skipped.includes(c.id) ? 'skipped' : 'not reached'}`);
      continue;
    }
    const counts = new Map<string, number>();
    for (const r of runs) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
    const stall = Math.max(...runs.map((r) => probe?.maxBetween(r.startedAt, r.startedAt + r.ms) ?? NaN));
    out.push(
      `  ${String(c.id).padStart(2)} ${c.title}: ${runs.length} run(s), ${[...counts].map(([k, v]) => `${v}x ${k}`).join('; ')}; longest ${Math.round(Math.max(...runs.map((r) => r.ms)))} ms, slowest /stat answer overlapping it ${fmt(stall, 0)} ms`,
    );
  }
  // outcomes in capitals are what issue 13 calls findings: reported, not part of the verdict
  const findings = [...new Set(casesRan.filter((r) => /[A-Z]{4,}/.test(r.outcome.replace(/NetStream\S*|ERR_\S*/g, ''))).map((r) => `${r.id}: ${r.outcome}`))];
  out.push(`findings (outcomes in capitals; not part of the verdict): ${findings.length === 0 ? 'none' : findings.join(' | ')}`);
  out.push(`verdict: ${verdicts.length === 0 ? 'PASS' : `FAIL: ${verdicts.join('; ')}`}`);
  const summary = out.join('\n');
  process.stdout.write(`${summary}\n`);
  writeFileSync(path.join(outDir, 'summary.txt'), `${summary}\n`);
  writeFileSync(
    path.join(outDir, 'soak.json'),
    `${JSON.stringify({ args, crashes, samples: samples.map(({ window: _w, ...s }) => s), cases: casesRan, probes: probe?.probes ?? [], verdicts }, null, 1)}\n`,
  );
  return verdicts.length === 0 ? 0 : 1;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      setTimeout(() => process.exit(code), 200).unref();
    },
    (e: unknown) => {
      process.stderr.write(`hostile-soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
