/**
 * RTMP load tool: one publisher (a real FLV paced at real time) and N players
 * (worker threads, our own RtmpClient), or P publisher/player pairs, or a
 * single pair for publish-to-play latency. Measures delivered vs expected
 * bitrate, lag, startup, the server's CPU and RSS (/proc/PID), and its own CPU.
 *
 *   npm run bench -- --url rtmp://127.0.0.1:1935/live/x --players 200 --seconds 20 --pid 1234
 *   npm run bench -- --latency --url rtmp://127.0.0.1:1935/live/lat
 *   npm run bench -- --publishers 200 --url rtmp://127.0.0.1:1935/live/p
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { RtmpClient } from '../src/rtmp/client.js';
import { isVideoKeyframe } from '../src/media/video.js';
import { USAGE, parseLoadArgs, splitStreamUrl, type LoadArgs } from './lib/args.js';
import { makeMedia } from './make-media.js';
import { LoopMedia, TagType } from './lib/media.js';
import { ProcSampler, cpuBetween, sampleProc, type ProcSample } from './lib/proc.js';
import type { FromWorker, PlayerPlan, PublisherPlan, Startup, ToWorker, WindowReport, WorkerInit } from './lib/protocol.js';
import { Publisher } from './lib/publisher.js';
import { FlvHttpClient, type FlvMessage } from './lib/flv-client.js';
import { readServerDrops } from './lib/server-log.js';
import { figures, formatSummary, machineInfo, type LoadReport, type SummaryJson } from './lib/report.js';
import { Histogram, clock, round, summarize } from './lib/stats.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const sleepUntil = (t: number): Promise<void> => sleep(t - clock());

function summaryJson(values: readonly number[], digits = 1): SummaryJson {
  const v = values.filter((x) => Number.isFinite(x));
  const s = summarize(v);
  return { n: s.n, p50: round(s.p50, digits), p95: round(s.p95, digits), p99: round(s.p99, digits), max: round(s.max, digits) };
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

class Progress {
  constructor(private readonly quiet: boolean) {}
  readonly t0 = clock();
  line(text: string): void {
    if (!this.quiet) process.stderr.write(`[${((clock() - this.t0) / 1000).toFixed(1).padStart(6)} s] ${text}\n`);
  }
}

/** Server /proc figures shared by every mode. */
class ServerProbe {
  readonly sampler: ProcSampler | undefined;
  idle: ProcSample | undefined;
  publisherOnly: ProcSample | undefined;
  windowStart: ProcSample | undefined;
  windowEnd: ProcSample | undefined;
  afterLeave: ProcSample | undefined;

  constructor(readonly pid: number | undefined) {
    if (pid !== undefined) {
      if (sampleProc(pid) === undefined) throw new Error(`--pid ${pid}: no such process`);
      this.sampler = new ProcSampler(pid);
      this.sampler.start(1000);
    }
  }

  sample(): ProcSample | undefined {
    return this.sampler?.sampleNow();
  }

  fill(report: LoadReport, deliveredBits: number, connected: number): void {
    const sv = report.server;
    const ws = this.windowStart;
    const we = this.windowEnd;
    const cpu = cpuBetween(ws, we);
    const inWindow = ws !== undefined && we !== undefined && this.sampler !== undefined ? this.sampler.between(ws.at, we.at) : [];
    const steady = mean(inWindow.map((x) => x.rssKiB));
    const peak = this.sampler === undefined ? NaN : Math.max(...this.sampler.samples.filter((x) => we === undefined || x.at <= we.at).map((x) => x.rssKiB));
    sv.pid = this.pid ?? null;
    sv.cpuSeconds = round(cpu.cpuSeconds, 3);
    sv.cpuCores = round(cpu.cpuSeconds / cpu.wallSeconds, 4);
    sv.cpuSecondsPerGbit = round(cpu.cpuSeconds / (deliveredBits / 1e9), 4);
    sv.rssKiB = {
      idle: round(this.idle?.rssKiB ?? NaN, 0),
      publisherOnly: round(this.publisherOnly?.rssKiB ?? NaN, 0),
      steadyMean: round(steady, 0),
      peak: round(peak, 0),
      afterLeave: round(this.afterLeave?.rssKiB ?? NaN, 0),
    };
    sv.rssPerPlayerKiB = round((steady - (this.publisherOnly?.rssKiB ?? NaN)) / connected, 2);
  }

  stop(): void {
    this.sampler?.stop();
  }
}

function emptyReport(args: LoadArgs, mode: LoadReport['mode'], media: LoopMedia): LoadReport {
  const empty: SummaryJson = { n: 0, p50: null, p95: null, p99: null, max: null };
  return {
    tool: 'rtmp-load',
    version: 1,
    label: args.label,
    mode,
    startedAt: new Date().toISOString(),
    url: args.url,
    machine: machineInfo(),
    args: {
      players: args.players,
      publishers: args.publishers,
      seconds: args.seconds,
      workers: args.workers,
      ramp: args.ramp,
      settle: args.settle,
      warmup: args.warmup,
      drain: args.drain,
      chunkSize: args.chunkSize,
      pid: args.pid ?? null,
      latency: args.latency,
    },
    media: {
      file: path.relative(process.cwd(), media.file),
      bitrateMbps: round(media.bitrate / 1e6, 4),
      loopSeconds: round(media.loopMs / 1000, 3),
      gopMs: round(media.gopMs, 0),
      videoFrameMs: round(media.videoFrameMs, 1),
    },
    players: { planned: 0, connectedAtStart: 0, connected: 0, failed: 0, failures: {} },
    windowSeconds: null,
    throughput: { deliveredMbps: null, expectedMbps: null, nominalMbps: null, ratio: null, wireMbps: null },
    lagMs: { p50: null, p99: null, max: null, mean: null, samples: 0, perPlayerP99: empty },
    startupMs: { connect: empty, play: empty, firstMedia: empty, firstKeyframe: empty },
    server: {
      pid: null,
      cpuSeconds: null,
      cpuCores: null,
      cpuSecondsPerGbit: null,
      rssKiB: { idle: null, publisherOnly: null, steadyMean: null, peak: null, afterLeave: null },
      rssPerPlayerKiB: null,
      droppedFrames: null,
      dropEpisodes: null,
    },
    drops: { gapEpisodes: 0, gapFramesEstimated: 0, playersWithGaps: 0, thresholdMs: 0 },
    publishers: { count: 0, up: 0, maxLateMs: null, late50: 0, maxWriteQueueBytes: 0, errors: [] },
    loadTool: { cpuSeconds: null, cpuCores: null, workerElu: [], saturated: false },
  };
}

/** A video timestamp jump above this is a drop episode: two of the file's largest frame intervals, at least 100 ms. */
export function gapThreshold(media: LoopMedia): number {
  const g = Number.isFinite(media.maxVideoGapMs) ? media.maxVideoGapMs : media.videoFrameMs;
  return Math.max(100, Math.round(2 * g));
}

// ---------------------------------------------------------------------------
// players and publishers modes: worker threads

/**
 * Node 20 does not carry `--import tsx` into worker threads: a TypeScript
 * worker is started through a small bootstrap that registers tsx first.
 */
export function startWorker(url: URL, init: WorkerInit): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: init });
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(code, { eval: true, workerData: init });
}

export interface WorkerHandle {
  readonly worker: Worker;
  readonly index: number;
  lastTick: FromWorker & { kind: 'tick' };
}

export function waitFor<T extends FromWorker['kind']>(
  handles: readonly WorkerHandle[],
  inbox: Map<number, FromWorker[]>,
  kind: T,
  timeoutMs: number,
  failure: () => string | undefined = () => undefined,
): Promise<Extract<FromWorker, { kind: T }>[]> {
  return new Promise((resolve, reject) => {
    const deadline = clock() + timeoutMs;
    const poll = (): void => {
      const got: Extract<FromWorker, { kind: T }>[] = [];
      for (const h of handles) {
        const box = inbox.get(h.index) ?? [];
        const i = box.findIndex((m) => m.kind === kind);
        if (i >= 0) got.push(box[i] as Extract<FromWorker, { kind: T }>);
      }
      if (got.length === handles.length) {
        for (const h of handles) {
          const box = inbox.get(h.index) ?? [];
          const i = box.findIndex((m) => m.kind === kind);
          box.splice(i, 1);
        }
        resolve(got);
      } else if (failure() !== undefined) reject(new Error(failure()));
      else if (clock() > deadline) reject(new Error(`workers: no '${kind}' from ${handles.length - got.length} of ${handles.length} within ${timeoutMs} ms`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

/**
 * Waits until the server answers an RTMP connect, so that the "idle" samples
 * are taken of a server that is ready: ours warms up for about a second after
 * it starts listening (clients wait meanwhile), and its memory is what it is
 * after the warm-up's collection only then. Returns the ms waited.
 */
export async function serverReady(url: string, timeoutMs: number): Promise<number> {
  const t0 = clock();
  const { appUrl } = splitStreamUrl(url);
  const c = await RtmpClient.connect(appUrl, { timeout: timeoutMs });
  await c.close();
  await sleep(500);
  return clock() - t0;
}

async function runWithWorkers(args: LoadArgs, media: LoopMedia, progress: Progress): Promise<LoadReport> {
  const mode: LoadReport['mode'] = args.publishers > 0 ? 'publishers' : args.vod ? 'vod' : 'players';
  const report = emptyReport(args, mode, media);
  const readyMs = await serverReady(args.url, args.connectTimeout * 1000);
  if (readyMs > 1000) progress.line(`server ready after ${Math.round(readyMs)} ms`);
  const probe = new ServerProbe(args.pid);
  probe.idle = probe.sample();
  const { appUrl, name } = splitStreamUrl(args.url);
  const W = Math.max(1, args.workers);
  const rampMs = args.ramp * 1000;
  const warmupMs = args.warmup * 1000;

  // the plan
  const players: PlayerPlan[][] = Array.from({ length: W }, () => []);
  const pubs: PublisherPlan[][] = Array.from({ length: W }, () => []);
  const origins: Record<number, number> = {};
  let mainPublisher: Publisher | undefined;
  let planned: number;
  if (mode === 'publishers') {
    const P = args.publishers;
    planned = P;
    for (let i = 0; i < P; i++) {
      const off = P > 1 ? (i * rampMs) / P : 0;
      pubs[i % W]!.push({ stream: i, appUrl, name: `${name}-${i}`, startOffsetMs: off });
      if (!args.noPlayers) players[i % W]!.push({ index: i, appUrl, name: `${name}-${i}`, stream: i, startOffsetMs: off + warmupMs });
    }
  } else if (mode === 'vod') {
    // no publisher: every player plays the file from its start (no origin: no lag; expected = the file's bitrate)
    const N = args.players;
    planned = N;
    for (let i = 0; i < N; i++) players[i % W]!.push({ index: i, appUrl, name, stream: 0, startOffsetMs: N > 1 ? (i * rampMs) / N : 0 });
    progress.line(`VOD: ${N} players of ${args.url}`);
  } else {
    const N = args.players;
    planned = N;
    for (let i = 0; i < N; i++) {
      players[i % W]!.push({ index: i, appUrl, name, stream: 0, startOffsetMs: N > 1 ? (i * rampMs) / N : 0, ...(args.flvUrl !== undefined ? { flvUrl: args.flvUrl } : {}) });
    }
    mainPublisher = new Publisher({
      appUrl,
      name,
      media,
      chunkSize: args.chunkSize,
      connectTimeoutMs: args.connectTimeout * 1000,
      onError: (e) => progress.line(`publisher error: ${e.message}`),
    });
    progress.line(`publisher -> ${args.url} (${(media.bitrate / 1e6).toFixed(3)} Mbit/s, ${media.file})`);
    await mainPublisher.start();
    origins[0] = mainPublisher.origin;
    await sleep(warmupMs);
  }
  probe.publisherOnly = mode === 'players' ? probe.sample() : probe.idle;

  // workers
  const inbox = new Map<number, FromWorker[]>();
  const handles: WorkerHandle[] = [];
  let workerError: string | undefined;
  const workerUrl = new URL('./lib/player-worker.ts', import.meta.url);
  for (let w = 0; w < W; w++) {
    const init: WorkerInit = {
      workerIndex: w,
      mediaFile: media.file,
      players: players[w]!,
      publishers: pubs[w]!,
      origins,
      chunkSize: args.chunkSize,
      connectTimeoutMs: args.connectTimeout * 1000,
      gapThresholdMs: gapThreshold(media),
      tickMs: 250,
    };
    const worker = startWorker(workerUrl, init);
    const h: WorkerHandle = {
      worker,
      index: w,
      lastTick: { kind: 'tick', workerIndex: w, connected: 0, failed: 0, closed: 0, payloadBytes: 0, publishersUp: 0 },
    };
    inbox.set(w, []);
    worker.on('message', (m: FromWorker) => {
      if (m.kind === 'tick') h.lastTick = m;
      else if (m.kind === 'error') workerError = `worker ${w}: ${m.message}`;
      else inbox.get(w)!.push(m);
    });
    worker.on('error', (e) => {
      workerError = `worker ${w}: ${e.message}`;
    });
    handles.push(h);
  }
  const post = (m: ToWorker): void => {
    for (const h of handles) h.worker.postMessage(m);
  };
  const failure = (): string | undefined => workerError;
  await waitFor(handles, inbox, 'ready', 30_000, failure);

  // ramp, settle, window
  const rampStart = clock() + 100;
  post({ kind: 'start', rampStart });
  progress.line(`${mode === 'publishers' ? `${planned} publishers + players` : `${planned} players`} ramping in over ${args.ramp} s on ${W} worker(s)`);
  let lastBytes = 0;
  let lastAt = clock();
  const progressTimer = setInterval(() => {
    let connected = 0;
    let failed = 0;
    let closed = 0;
    let bytes = 0;
    let up = 0;
    for (const h of handles) {
      connected += h.lastTick.connected;
      failed += h.lastTick.failed;
      closed += h.lastTick.closed;
      bytes += h.lastTick.payloadBytes;
      up += h.lastTick.publishersUp;
    }
    const now = clock();
    const mbps = ((bytes - lastBytes) * 8) / ((now - lastAt) / 1000) / 1e6;
    lastBytes = bytes;
    lastAt = now;
    const srv = args.pid !== undefined ? probe.sampler?.samples.at(-1) : undefined;
    progress.line(
      `players ${connected}/${planned} playing, ${failed} failed, ${closed} closed` +
        (mode === 'publishers' ? `, publishers ${up} up` : '') +
        `, receiving ${mbps.toFixed(1)} Mbit/s` +
        (srv !== undefined ? `, server RSS ${(srv.rssKiB / 1024).toFixed(1)} MiB` : ''),
    );
  }, 1000);
  progressTimer.unref();

  // every player connected (or failed) before measuring, at most the connect timeout after the ramp; then settle
  const rampEnd = rampStart + rampMs + (mode === 'publishers' ? warmupMs : 0);
  await sleepUntil(rampEnd);
  const upDeadline = rampEnd + args.connectTimeout * 1000;
  const allUp = (): boolean => handles.reduce((n, h) => n + h.lastTick.connected + h.lastTick.failed + h.lastTick.closed, 0) >= planned;
  while (!allUp() && clock() < upDeadline && workerError === undefined) await sleep(100);
  if (!allUp()) progress.line(`not every player is up ${args.connectTimeout} s after the ramp: measuring anyway`);
  await sleep(args.settle * 1000);
  if (workerError !== undefined) throw new Error(workerError);
  const selfStart = sampleProc(process.pid);
  probe.windowStart = probe.sample();
  mainPublisher?.resetLateness();
  post({ kind: 'windowStart' });
  progress.line(`measuring for ${args.seconds} s`);
  await sleep(args.seconds * 1000);
  post({ kind: 'windowEnd' });
  probe.windowEnd = probe.sample();
  const selfEnd = sampleProc(process.pid);
  const windows = (await waitFor(handles, inbox, 'window', 30_000, failure)) as WindowReport[];
  clearInterval(progressTimer);

  // players leave; then the server's memory after a while
  post({ kind: 'stop' });
  await waitFor(handles, inbox, 'stopped', 30_000, failure);
  progress.line(`players left; waiting ${args.drain} s for the server's memory`);
  await sleep(args.drain * 1000);
  probe.afterLeave = probe.sample();
  const mainPub = mainPublisher;
  await mainPub?.stop();
  await Promise.all(handles.map((h) => h.worker.terminate()));
  probe.stop();

  // merge
  const lag = new Histogram();
  const perP99: number[] = [];
  const startups: Startup[] = [];
  const failures: Record<string, number> = {};
  let payload = 0;
  let wire = 0;
  let expected = 0;
  let durationSum = 0;
  for (const w of windows) {
    lag.merge(w.lag);
    perP99.push(...w.perPlayerLagP99);
    startups.push(...w.startups);
    for (const [k, v] of Object.entries(w.failures)) failures[k] = (failures[k] ?? 0) + v;
    payload += w.payloadBytes;
    wire += w.wireBytes;
    expected += w.expectedBytes;
    durationSum += w.durationMs;
    report.players.connectedAtStart += w.connectedAtStart;
    report.players.connected += w.connectedAtEnd;
    report.players.failed += w.failed;
    report.drops.gapEpisodes += w.gapEpisodes;
    report.drops.gapFramesEstimated += w.gapFrames;
    report.drops.playersWithGaps += w.playersWithGaps;
    report.loadTool.workerElu.push(round(w.elu, 3));
  }
  const seconds = durationSum / windows.length / 1000;
  report.players.planned = planned;
  report.players.failures = failures;
  report.windowSeconds = round(seconds, 3);
  report.throughput = {
    deliveredMbps: round((payload * 8) / seconds / 1e6, 3),
    expectedMbps: round((expected * 8) / seconds / 1e6, 3),
    nominalMbps: round((media.bitrate * planned) / 1e6, 3),
    ratio: round(payload / expected, 4),
    wireMbps: round((wire * 8) / seconds / 1e6, 3),
  };
  report.lagMs = {
    p50: round(lag.percentile(50), 2),
    p99: round(lag.percentile(99), 2),
    max: round(lag.max, 2),
    mean: round(lag.mean, 2),
    samples: lag.count,
    perPlayerP99: summaryJson(perP99, 2),
  };
  report.startupMs = {
    connect: summaryJson(startups.map((x) => x.connect)),
    play: summaryJson(startups.map((x) => x.play)),
    firstMedia: summaryJson(startups.map((x) => x.firstMedia)),
    firstKeyframe: summaryJson(startups.map((x) => x.firstKeyframe)),
  };
  report.drops.thresholdMs = gapThreshold(media);
  const pubReports = windows.flatMap((w) => w.publishers);
  if (mainPub !== undefined) {
    pubReports.push({
      stream: 0,
      up: !Number.isNaN(mainPub.origin) && mainPub.error === undefined,
      error: mainPub.error?.message,
      messages: mainPub.messages,
      maxLateMs: mainPub.maxLateMs,
      late50: mainPub.late50,
      maxWriteQueue: mainPub.maxWriteQueue,
    });
  }
  report.publishers = {
    count: mode === 'publishers' ? args.publishers : mode === 'vod' ? 0 : 1,
    up: pubReports.filter((p) => p.up).length,
    maxLateMs: round(Math.max(...pubReports.map((p) => p.maxLateMs)), 1),
    late50: pubReports.reduce((a, p) => a + p.late50, 0),
    maxWriteQueueBytes: Math.max(0, ...pubReports.map((p) => p.maxWriteQueue)),
    errors: [...new Set(pubReports.flatMap((p) => (p.error !== undefined ? [p.error] : [])))].slice(0, 5),
  };
  const self = cpuBetween(selfStart, selfEnd);
  report.loadTool.cpuSeconds = round(self.cpuSeconds, 3);
  report.loadTool.cpuCores = round(self.cpuSeconds / self.wallSeconds, 4);
  report.loadTool.saturated = windows.some((w) => w.elu >= 0.9);
  probe.fill(report, payload * 8, report.players.connected);
  return report;
}

// ---------------------------------------------------------------------------
// latency mode: one publisher and one player in this thread

async function runLatency(args: LoadArgs, media: LoopMedia, progress: Progress): Promise<LoadReport> {
  const report = emptyReport(args, 'latency', media);
  await serverReady(args.url, args.connectTimeout * 1000);
  const probe = new ServerProbe(args.pid);
  probe.idle = probe.sample();
  const { appUrl, name } = splitStreamUrl(args.url);
  /** send times by "type:timestamp:length", oldest first */
  const sent = new Map<string, number[]>();
  const publisher = new Publisher({
    appUrl,
    name,
    media,
    chunkSize: args.chunkSize,
    connectTimeoutMs: args.connectTimeout * 1000,
    onSent: (type, ts, len, at) => {
      const k = `${type}:${ts}:${len}`;
      const q = sent.get(k);
      if (q === undefined) sent.set(k, [at]);
      else q.push(at);
    },
    onError: (e) => progress.line(`publisher error: ${e.message}`),
  });
  progress.line(`latency: publisher and player on ${args.url}`);
  await publisher.start();
  await sleep(args.warmup * 1000);
  probe.publisherOnly = probe.sample();
  const pruner = setInterval(() => {
    const old = clock() - 10_000;
    for (const [k, q] of sent) {
      while (q.length > 0 && q[0]! < old) q.shift();
      if (q.length === 0) sent.delete(k);
    }
  }, 1000);

  const delay = new Histogram();
  const lag = new Histogram();
  let unmatched = 0;
  let measuring = false;
  let measureFrom = Infinity;
  let payload = 0;
  const startedAt = clock();
  let firstMedia = NaN;
  let firstKey = NaN;
  let lastVideoTs = -1;
  const threshold = gapThreshold(media);
  const startup = { connect: NaN, play: NaN };
  const flvUrl = args.flvUrl;
  const player: RtmpClient | FlvHttpClient =
    flvUrl !== undefined ? await FlvHttpClient.play(flvUrl, args.connectTimeout * 1000) : await RtmpClient.connect(appUrl, { chunkSize: args.chunkSize, timeout: args.connectTimeout * 1000 });
  startup.connect = clock() - startedAt;
  player.onMedia = (m: FlvMessage, length: number) => {
    const now = clock();
    if (m.type !== TagType.Audio && m.type !== TagType.Video) return;
    if (Number.isNaN(firstMedia)) firstMedia = now - startedAt;
    if (m.type === TagType.Video) {
      if (Number.isNaN(firstKey) && isVideoKeyframe(m.payload)) firstKey = now - startedAt;
      if (measuring && lastVideoTs >= 0 && m.timestamp - lastVideoTs > threshold) report.drops.gapEpisodes++;
      lastVideoTs = m.timestamp;
    }
    const k = `${m.type}:${m.timestamp}:${length}`;
    const q = sent.get(k);
    const at = q?.shift();
    if (q !== undefined && q.length === 0) sent.delete(k);
    if (!measuring) return;
    payload += length;
    lag.add(now - (publisher.origin + m.timestamp));
    if (at === undefined) unmatched++;
    else if (at >= measureFrom) delay.add(now - at);
  };
  if (player instanceof RtmpClient) await player.play(name);
  startup.play = clock() - startedAt;
  // let the GOP-cache burst pass, then measure messages sent from now on
  await sleep(args.settle * 1000);
  const selfStart = sampleProc(process.pid);
  probe.windowStart = probe.sample();
  measureFrom = clock();
  publisher.resetLateness();
  measuring = true;
  progress.line(`measuring for ${args.seconds} s`);
  await sleep(args.seconds * 1000);
  measuring = false;
  const measuredMs = clock() - measureFrom;
  probe.windowEnd = probe.sample();
  const selfEnd = sampleProc(process.pid);
  clearInterval(pruner);
  const stillPlaying = !player.closed;
  await player.close();
  await sleep(Math.min(args.drain, 1) * 1000);
  probe.afterLeave = probe.sample();
  await publisher.stop();
  probe.stop();

  const seconds = measuredMs / 1000;
  const expected = media.bytesBetween(measureFrom - publisher.origin, measureFrom + measuredMs - publisher.origin);
  report.players = { planned: 1, connectedAtStart: 1, connected: stillPlaying ? 1 : 0, failed: 0, failures: {} };
  report.windowSeconds = round(seconds, 3);
  report.throughput = {
    deliveredMbps: round((payload * 8) / seconds / 1e6, 3),
    expectedMbps: round((expected * 8) / seconds / 1e6, 3),
    nominalMbps: round(media.bitrate / 1e6, 3),
    ratio: round(payload / expected, 4),
    wireMbps: null,
  };
  report.lagMs = {
    p50: round(lag.percentile(50), 2),
    p99: round(lag.percentile(99), 2),
    max: round(lag.max, 2),
    mean: round(lag.mean, 2),
    samples: lag.count,
    perPlayerP99: summaryJson([lag.percentile(99)], 2),
  };
  report.startupMs = {
    connect: summaryJson([startup.connect]),
    play: summaryJson([startup.play]),
    firstMedia: summaryJson([firstMedia]),
    firstKeyframe: summaryJson([firstKey]),
  };
  report.drops.thresholdMs = threshold;
  report.publishers = {
    count: 1,
    up: publisher.error === undefined ? 1 : 0,
    maxLateMs: round(publisher.maxLateMs, 1),
    late50: publisher.late50,
    maxWriteQueueBytes: publisher.maxWriteQueue,
    errors: publisher.error !== undefined ? [publisher.error.message] : [],
  };
  report.latencyMs = {
    p50: round(delay.percentile(50), 3),
    p99: round(delay.percentile(99), 3),
    p999: round(delay.percentile(99.9), 3),
    max: round(delay.max, 3),
    mean: round(delay.mean, 3),
    samples: delay.count,
    unmatched,
  };
  const self = cpuBetween(selfStart, selfEnd);
  report.loadTool.cpuSeconds = round(self.cpuSeconds, 3);
  report.loadTool.cpuCores = round(self.cpuSeconds / self.wallSeconds, 4);
  probe.fill(report, payload * 8, 1);
  return report;
}

// ---------------------------------------------------------------------------

async function main(argv: readonly string[]): Promise<number> {
  let args: LoadArgs;
  try {
    args = parseLoadArgs(argv);
  } catch (e) {
    process.stderr.write(`rtmp-load: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const progress = new Progress(args.quiet);
  const file = args.file ?? (await makeMedia(args.publishers > 0 ? 'oneMbit' : 'main'));
  const media = new LoopMedia(path.resolve(file));
  const startedAt = Date.now();
  const report = args.latency ? await runLatency(args, media, progress) : await runWithWorkers(args, media, progress);
  if (args.serverLog !== undefined) {
    const drops = readServerDrops(args.serverLog, startedAt);
    report.server.droppedFrames = drops?.frames ?? null;
    report.server.dropEpisodes = drops?.episodes ?? null;
  }
  const summary = formatSummary(report);
  const json = `${JSON.stringify({ ...report, figures: figures(report) }, null, 2)}\n`;
  if (args.json === '-') {
    process.stderr.write(`${summary}\n`);
    process.stdout.write(json);
  } else {
    process.stdout.write(`${summary}\n`);
    if (args.json !== undefined) writeFileSync(args.json, json);
  }
  return 0;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // sockets of failed connects may linger: leave anyway
      setTimeout(() => process.exit(code), 200).unref();
    },
    (e: unknown) => {
      process.stderr.write(`rtmp-load: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
