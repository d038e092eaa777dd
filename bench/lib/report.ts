/** The load tool's JSON report, its human summary, and the flat figures that compare.sh compares. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fmt } from './stats.js';

type N = number | null;

export interface SummaryJson {
  n: number;
  p50: N;
  p95: N;
  p99: N;
  max: N;
}

export interface LoadReport {
  tool: 'rtmp-load';
  version: 1;
  label: string;
  mode: 'players' | 'publishers' | 'latency' | 'vod';
  startedAt: string;
  url: string;
  machine: MachineInfo;
  args: Record<string, string | number | boolean | null>;
  media: { file: string; bitrateMbps: N; loopSeconds: N; gopMs: N; videoFrameMs: N };
  players: {
    planned: number;
    connectedAtStart: number;
    connected: number;
    failed: number;
    failures: Record<string, number>;
  };
  windowSeconds: N;
  throughput: {
    /** media payload delivered to all players, Mbit/s */
    deliveredMbps: N;
    /** what the publishers' real-time schedule called for in the window, all planned players */
    expectedMbps: N;
    /** file bitrate x planned players */
    nominalMbps: N;
    /** delivered / expected */
    ratio: N;
    /** bytes off the sockets incl. chunk headers, Mbit/s */
    wireMbps: N;
  };
  lagMs: { p50: N; p99: N; max: N; mean: N; samples: number; perPlayerP99: SummaryJson };
  startupMs: { connect: SummaryJson; play: SummaryJson; firstMedia: SummaryJson; firstKeyframe: SummaryJson };
  server: {
    pid: number | null;
    cpuSeconds: N;
    /** server CPU seconds / window seconds */
    cpuCores: N;
    cpuSecondsPerGbit: N;
    rssKiB: { idle: N; publisherOnly: N; steadyMean: N; peak: N; afterLeave: N };
    rssPerPlayerKiB: N;
    /** dropped frames as the server reports them (--server-log; null: unknown) */
    droppedFrames: N;
    /** slow-player drop episodes as the server reports them (--server-log) */
    dropEpisodes: N;
  };
  drops: { gapEpisodes: number; gapFramesEstimated: number; playersWithGaps: number; thresholdMs: number };
  publishers: { count: number; up: number; maxLateMs: N; late50: number; maxWriteQueueBytes: number; errors: string[] };
  /** saturated: a worker's event loop was busy >= 90% of the window (lag and delivery then measure the tool too) */
  loadTool: { cpuSeconds: N; cpuCores: N; workerElu: N[]; saturated: boolean };
  latencyMs?: { p50: N; p99: N; p999: N; max: N; mean: N; samples: number; unmatched: number };
}

export interface MachineInfo {
  /** cores of the machine (not of this process's affinity) */
  nproc: number;
  cpuModel: string;
  node: string;
  kernel: string;
  /** this process's CPU affinity (taskset) */
  cpusAllowed: string;
  /** 1, 5, 15 minute load averages when the run started (other work on the machine skews results) */
  loadavg: number[];
}

export function machineInfo(): MachineInfo {
  let allowed: string;
  try {
    allowed = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  } catch {
    allowed = '';
  }
  return {
    nproc: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: os.release(),
    cpusAllowed: allowed,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** The figures compared between servers, flat; null when not measured. */
export function figures(r: LoadReport): Record<string, N> {
  const f: Record<string, N> = {
    connected: r.players.connected,
    failed: r.players.failed,
    deliveredRatio: r.throughput.ratio,
    deliveredMbps: r.throughput.deliveredMbps,
    lagP50Ms: r.lagMs.p50,
    lagP99Ms: r.lagMs.p99,
    lagMaxMs: r.lagMs.max,
    firstMediaP50Ms: r.startupMs.firstMedia.p50,
    firstKeyP50Ms: r.startupMs.firstKeyframe.p50,
    firstKeyP95Ms: r.startupMs.firstKeyframe.p95,
    serverCpuCores: r.server.cpuCores,
    cpuSecPerGbit: r.server.cpuSecondsPerGbit,
    rssSteadyMiB: r.server.rssKiB.steadyMean === null ? null : r.server.rssKiB.steadyMean / 1024,
    rssPerPlayerKiB: r.server.rssPerPlayerKiB,
    rssAfterLeaveMiB: r.server.rssKiB.afterLeave === null ? null : r.server.rssKiB.afterLeave / 1024,
    gapEpisodes: r.drops.gapEpisodes,
    serverDropEpisodes: r.server.dropEpisodes,
    loadToolCpuCores: r.loadTool.cpuCores,
    loadToolMaxElu: r.loadTool.workerElu.reduce<N>((a, b) => (b !== null && (a === null || b > a) ? b : a), null),
  };
  if (r.latencyMs !== undefined) {
    f['latencyP50Ms'] = r.latencyMs.p50;
    f['latencyP99Ms'] = r.latencyMs.p99;
  }
  return f;
}

function s(x: SummaryJson, d = 1): string {
  return `p50 ${fmt(x.p50, d)} / p95 ${fmt(x.p95, d)} / max ${fmt(x.max, d)}`;
}

function kib(v: N): string {
  return v === null ? 'n/a' : `${(v / 1024).toFixed(1)} MiB`;
}

/** The human summary. */
export function formatSummary(r: LoadReport): string {
  const t = r.throughput;
  const sv = r.server;
  const lines = [
    `rtmp-load ${r.mode}${r.label ? ` [${r.label}]` : ''}  ${r.url}  ${r.startedAt}  (load average ${r.machine.loadavg.join(' ')})`,
    `  media        ${r.media.file}: ${fmt(r.media.bitrateMbps, 3)} Mbit/s, GOP ${fmt(r.media.gopMs, 0)} ms`,
    `  players      ${r.players.connected}/${r.players.planned} playing at the end (${r.players.connectedAtStart} at window start), ${r.players.failed} failed`,
  ];
  for (const [reason, n] of Object.entries(r.players.failures)) lines.push(`               ${n} x ${reason}`);
  lines.push(
    `  window       ${fmt(r.windowSeconds, 1)} s`,
    `  delivered    ${fmt(t.deliveredMbps, 1)} Mbit/s of ${fmt(t.expectedMbps, 1)} expected (ratio ${fmt(t.ratio, 4)}), nominal ${fmt(t.nominalMbps, 1)}, wire ${fmt(t.wireMbps, 1)}`,
    `  lag ms       p50 ${fmt(r.lagMs.p50, 1)} / p99 ${fmt(r.lagMs.p99, 1)} / max ${fmt(r.lagMs.max, 1)} (${r.lagMs.samples} messages); per-player p99: ${s(r.lagMs.perPlayerP99)}`,
    `  startup ms   first media ${s(r.startupMs.firstMedia)}; first keyframe ${s(r.startupMs.firstKeyframe)}`,
    `  server       pid ${sv.pid ?? 'n/a'}: CPU ${fmt(sv.cpuSeconds, 2)} s (${fmt(sv.cpuCores, 3)} cores), ${fmt(sv.cpuSecondsPerGbit, 3)} s/Gbit delivered`,
    `  server RSS   idle ${kib(sv.rssKiB.idle)}, publisher only ${kib(sv.rssKiB.publisherOnly)}, steady ${kib(sv.rssKiB.steadyMean)} (peak ${kib(sv.rssKiB.peak)}), after players left ${kib(sv.rssKiB.afterLeave)}; ${fmt(sv.rssPerPlayerKiB, 1)} KiB/player`,
    `  drops        server: ${sv.droppedFrames ?? 'n/a'} frames in ${sv.dropEpisodes ?? 'n/a'} episodes; seen by players: ${r.drops.gapEpisodes} timestamp gaps > ${r.drops.thresholdMs} ms (~${r.drops.gapFramesEstimated} frames, ${r.drops.playersWithGaps} players)`,
    `  publishers   ${r.publishers.up}/${r.publishers.count} up, worst send lateness ${fmt(r.publishers.maxLateMs, 1)} ms, ${r.publishers.late50} msgs > 50 ms late`,
    `  load tool    CPU ${fmt(r.loadTool.cpuSeconds, 2)} s (${fmt(r.loadTool.cpuCores, 3)} cores), worker event-loop utilization ${r.loadTool.workerElu.map((e) => fmt(e, 2)).join(' ') || 'n/a'}`,
  );
  if (r.loadTool.saturated) lines.push('  WARNING      the load tool was saturated: lag and delivered figures are bounded by the tool, not only the server');
  for (const e of r.publishers.errors) lines.push(`               publisher error: ${e}`);
  if (r.latencyMs !== undefined) {
    const l = r.latencyMs;
    lines.push(
      `  latency ms   publish-to-play per message: p50 ${fmt(l.p50, 3)} / p99 ${fmt(l.p99, 3)} / p99.9 ${fmt(l.p999, 3)} / max ${fmt(l.max, 3)} (${l.samples} messages, ${l.unmatched} unmatched)`,
    );
  }
  return lines.join('\n');
}
