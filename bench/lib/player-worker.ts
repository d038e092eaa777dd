/**
 * A worker thread of the load tool: hosts many players (our RtmpClient, reading
 * as fast as the socket allows) and, in publishers mode, their publishers.
 * Measures per message lag (clock() - (origin + timestamp)), startup times,
 * timestamp gaps, delivered bytes; reports to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RtmpClient } from '../../src/rtmp/client.js';
import { FlvHttpClient, type FlvMessage } from './flv-client.js';
import { isVideoKeyframe } from '../../src/media/video.js';
import { LoopMedia, TagType } from './media.js';
import type { FromWorker, PlayerPlan, PublisherReport, Startup, ToWorker, WorkerInit } from './protocol.js';
import { Publisher } from './publisher.js';
import { Histogram, clock } from './stats.js';

const MAX_FAILURE_REASONS = 20;

class LoadPlayer {
  client: RtmpClient | FlvHttpClient | undefined;
  startedAt = NaN;
  connectedAt = NaN;
  playingAt = NaN;
  firstMediaAt = NaN;
  firstKeyAt = NaN;
  failed = false;
  closed = false;
  payloadBytes = 0;
  lastVideoTs = -1;
  readonly lag = new Histogram();
  gapEpisodes = 0;
  gapFrames = 0;

  constructor(readonly plan: PlayerPlan) {}

  get playing(): boolean {
    return !Number.isNaN(this.playingAt) && !this.closed;
  }

  startup(): Startup {
    const t0 = this.startedAt;
    return {
      connect: this.connectedAt - t0,
      play: this.playingAt - t0,
      firstMedia: this.firstMediaAt - t0,
      firstKeyframe: this.firstKeyAt - t0,
    };
  }
}

class WorkerMain {
  readonly init: WorkerInit;
  readonly media: LoopMedia;
  readonly players: LoadPlayer[];
  readonly publishers = new Map<number, Publisher>();
  /** origins by stream index (from the main thread or from local publishers) */
  readonly origins = new Map<number, number>();
  readonly failures = new Map<string, number>();
  readonly lag = new Histogram();
  inWindow = false;
  windowStart = NaN;
  windowPayloadStart = 0;
  windowWireStart = 0;
  eluStart: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  totalPayload = 0;
  failed = 0;
  closedUnexpectedly = 0;
  stopping = false;
  tickTimer: NodeJS.Timeout | undefined;
  readonly timers = new Set<NodeJS.Timeout>();

  constructor(init: WorkerInit) {
    this.init = init;
    this.media = new LoopMedia(init.mediaFile);
    this.players = init.players.map((p) => new LoadPlayer(p));
    for (const [k, v] of Object.entries(init.origins)) this.origins.set(Number(k), v);
  }

  post(m: FromWorker): void {
    parentPort?.postMessage(m);
  }

  onMessage(m: ToWorker): void {
    switch (m.kind) {
      case 'start':
        this.start(m.rampStart);
        return;
      case 'windowStart':
        this.startWindow();
        return;
      case 'windowEnd':
        this.endWindow();
        return;
      case 'stop':
        void this.stop();
        return;
    }
  }

  private at(time: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, Math.max(0, time - clock()));
    this.timers.add(t);
  }

  start(rampStart: number): void {
    for (const p of this.init.publishers) this.at(rampStart + p.startOffsetMs, () => void this.startPublisher(p.stream, p.appUrl, p.name));
    for (const p of this.players) this.at(rampStart + p.plan.startOffsetMs, () => void this.startPlayer(p));
    this.tickTimer = setInterval(() => this.tick(), this.init.tickMs);
  }

  private fail(reason: string): void {
    const key = reason.replace(/\d+/g, 'N').slice(0, 100);
    if (this.failures.has(key) || this.failures.size < MAX_FAILURE_REASONS) this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
  }

  async startPublisher(stream: number, appUrl: string, name: string): Promise<void> {
    if (this.stopping) return;
    const pub = new Publisher({
      appUrl,
      name,
      media: this.media,
      chunkSize: this.init.chunkSize,
      connectTimeoutMs: this.init.connectTimeoutMs,
      onError: (e) => this.fail(`publisher: ${e.message}`),
    });
    this.publishers.set(stream, pub);
    try {
      await pub.start();
      this.origins.set(stream, pub.origin);
    } catch (e) {
      pub.error = e instanceof Error ? e : new Error(String(e));
      this.fail(`publisher: ${pub.error.message}`);
    }
  }

  async startPlayer(p: LoadPlayer): Promise<void> {
    if (this.stopping) return;
    p.startedAt = clock();
    const plan = p.plan;
    if (plan.flvUrl !== undefined) return this.startFlvPlayer(p, plan.flvUrl);
    try {
      // only the first bytes of each frame are looked at (keyframe flag): the rest is skipped, not copied
      const client = await RtmpClient.connect(plan.appUrl, {
        chunkSize: this.init.chunkSize,
        timeout: this.init.connectTimeoutMs,
        keepMediaBytes: 64,
        // one read buffer per player, reused: onMedia below reads the payload only while it runs
        readBufferSize: 64 * 1024,
      });
      p.client = client;
      p.connectedAt = clock();
      if (this.stopping) {
        client.destroy();
        return;
      }
      client.onMedia = (m, length) => this.onMedia(p, m, length);
      client.onClose = (err) => {
        if (p.closed) return;
        const wasPlaying = !Number.isNaN(p.playingAt);
        p.closed = true;
        // before Play.Start a close is a failure, counted by the catch below
        if (!wasPlaying) return;
        if (!this.stopping) {
          this.closedUnexpectedly++;
          this.fail(`closed: ${err?.message ?? 'by the server'}`);
        }
      };
      const timeout = setTimeout(() => client.destroy(new Error(`no NetStream.Play.Start within ${this.init.connectTimeoutMs} ms`)), this.init.connectTimeoutMs);
      try {
        await client.play(plan.name);
      } finally {
        clearTimeout(timeout);
      }
      p.playingAt = clock();
    } catch (e) {
      p.failed = true;
      p.closed = true;
      p.client?.destroy();
      this.failed++;
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  /** An HTTP-FLV player (--flv-url): the GET is its play. */
  async startFlvPlayer(p: LoadPlayer, url: string): Promise<void> {
    try {
      const client = await FlvHttpClient.play(url, this.init.connectTimeoutMs);
      p.client = client;
      p.connectedAt = p.playingAt = clock();
      if (this.stopping) {
        client.destroy();
        return;
      }
      client.onMedia = (m, length) => this.onMedia(p, m, length);
      client.onClose = (err) => {
        if (p.closed) return;
        p.closed = true;
        if (!this.stopping) {
          this.closedUnexpectedly++;
          this.fail(`closed: ${err?.message ?? 'by the server'}`);
        }
      };
    } catch (e) {
      p.failed = true;
      p.closed = true;
      this.failed++;
      this.fail(e instanceof Error ? e.message : String(e));
    }
  }

  /** The hot path: one call per message per player. */
  onMedia(p: LoadPlayer, m: FlvMessage, length: number): void {
    const now = clock();
    const len = length;
    p.payloadBytes += len;
    this.totalPayload += len;
    const type = m.type;
    if (type !== TagType.Audio && type !== TagType.Video) return;
    if (Number.isNaN(p.firstMediaAt)) p.firstMediaAt = now;
    if (type === TagType.Video) {
      if (Number.isNaN(p.firstKeyAt) && isVideoKeyframe(m.payload)) p.firstKeyAt = now;
      const ts = m.timestamp;
      if (this.inWindow && p.lastVideoTs >= 0 && ts - p.lastVideoTs > this.init.gapThresholdMs) {
        p.gapEpisodes++;
        p.gapFrames += Math.max(1, Math.round((ts - p.lastVideoTs) / this.media.videoFrameMs) - 1);
      }
      p.lastVideoTs = ts;
    }
    if (!this.inWindow) return;
    const origin = this.origins.get(p.plan.stream);
    if (origin === undefined) return;
    let lag = now - (origin + m.timestamp);
    if (lag < 0) lag = 0;
    const b = Histogram.bucketOf(lag);
    this.lag.addBucket(b, lag);
    p.lag.addBucket(b, lag);
  }

  wireBytes(): number {
    let n = 0;
    for (const p of this.players) if (p.client !== undefined) n += p.client.bytesReceived;
    return n;
  }

  connected(): number {
    let n = 0;
    for (const p of this.players) if (p.playing) n++;
    return n;
  }

  tick(): void {
    let up = 0;
    for (const pub of this.publishers.values()) if (!pub.closed && !Number.isNaN(pub.origin)) up++;
    this.post({
      kind: 'tick',
      workerIndex: this.init.workerIndex,
      connected: this.connected(),
      failed: this.failed,
      closed: this.closedUnexpectedly,
      payloadBytes: this.totalPayload,
      publishersUp: up,
    });
  }

  startWindow(): void {
    this.lag.reset();
    for (const p of this.players) {
      p.lag.reset();
      p.gapEpisodes = 0;
      p.gapFrames = 0;
    }
    for (const pub of this.publishers.values()) pub.resetLateness();
    this.windowPayloadStart = this.totalPayload;
    this.windowWireStart = this.wireBytes();
    this.connectedAtStart = this.connected();
    this.eluStart = performance.eventLoopUtilization();
    this.windowStart = clock();
    this.inWindow = true;
  }

  connectedAtStart = 0;

  endWindow(): void {
    const end = clock();
    this.inWindow = false;
    const start = this.windowStart;
    const elu = performance.eventLoopUtilization(this.eluStart).utilization;
    let expected = 0;
    for (const p of this.players) {
      const o = this.origins.get(p.plan.stream);
      // a stream whose publisher never started still owed its players the file's bitrate
      expected += o === undefined ? (this.media.bitrate / 8) * ((end - start) / 1000) : this.media.bytesBetween(start - o, end - o);
    }
    const perP99: number[] = [];
    const perMax: number[] = [];
    let gapEpisodes = 0;
    let gapFrames = 0;
    let withGaps = 0;
    for (const p of this.players) {
      if (p.lag.count > 0) {
        perP99.push(p.lag.percentile(99));
        perMax.push(p.lag.max);
      }
      gapEpisodes += p.gapEpisodes;
      gapFrames += p.gapFrames;
      if (p.gapEpisodes > 0) withGaps++;
    }
    const pubs: PublisherReport[] = [];
    for (const [stream, pub] of this.publishers) {
      pubs.push({
        stream,
        up: !pub.closed && !Number.isNaN(pub.origin),
        error: pub.error?.message,
        messages: pub.messages,
        maxLateMs: pub.maxLateMs,
        late50: pub.late50,
        maxWriteQueue: pub.maxWriteQueue,
      });
    }
    this.post({
      kind: 'window',
      workerIndex: this.init.workerIndex,
      durationMs: end - start,
      payloadBytes: this.totalPayload - this.windowPayloadStart,
      wireBytes: this.wireBytes() - this.windowWireStart,
      expectedBytes: expected,
      planned: this.players.length,
      connectedAtStart: this.connectedAtStart,
      connectedAtEnd: this.connected(),
      failed: this.failed,
      failures: Object.fromEntries(this.failures),
      lag: this.lag.toData(),
      perPlayerLagP99: perP99,
      perPlayerLagMax: perMax,
      gapEpisodes,
      gapFrames,
      playersWithGaps: withGaps,
      startups: this.players.map((p) => p.startup()),
      elu,
      publishers: pubs,
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    await Promise.all(
      this.players.map(async (p) => {
        p.closed = true;
        await p.client?.close();
      }),
    );
    // publishers leave after their players (publishers mode)
    await Promise.all([...this.publishers.values()].map((pub) => pub.stop()));
    this.post({ kind: 'stopped', workerIndex: this.init.workerIndex });
  }
}

const init = workerData as WorkerInit;
try {
  const w = new WorkerMain(init);
  parentPort?.on('message', (m: ToWorker) => w.onMessage(m));
  w.post({ kind: 'ready', workerIndex: init.workerIndex });
} catch (e) {
  parentPort?.postMessage({ kind: 'error', workerIndex: init.workerIndex, message: e instanceof Error ? e.message : String(e) } satisfies FromWorker);
}
