import { closedConnectionBytes, type Counter, type MetricsRegistry } from '../core/metrics.js';
import type { StatSnapshot } from './stat.js';

/**
 * `/metrics`: Prometheus text (exposition format 0.0.4), written by hand.
 * Gauges from a point-in-time snapshot of the server (connections, streams,
 * publishers and players per application and protocol), monotonic byte
 * counters (open connections plus closed ones), every counter of the shared
 * registry (src/core/metrics.ts: dropped frames, output errors...), and the
 * process's CPU and memory.
 */

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsInput {
  readonly snapshot: StatSnapshot;
  /** open HTTP connections (players, pages, files) */
  readonly httpConnections: number;
  readonly registry: MetricsRegistry;
}

type Sample = readonly [labels: Readonly<Record<string, string>>, value: number];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

class TextWriter {
  private readonly out: string[] = [];

  family(name: string, type: 'gauge' | 'counter', help: string, samples: Iterable<Sample>): void {
    this.out.push(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
    for (const [labels, value] of samples) {
      const keys = Object.keys(labels);
      const l = keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
      this.out.push(`${name}${l} ${formatValue(value)}\n`);
    }
  }

  toString(): string {
    return this.out.join('');
  }
}

/** Counts by a key made of label values. */
class Tally {
  private readonly m = new Map<string, { labels: Record<string, string>; value: number }>();

  add(labels: Record<string, string>, n = 1): void {
    const key = JSON.stringify(labels);
    const have = this.m.get(key);
    if (have !== undefined) have.value += n;
    else this.m.set(key, { labels, value: n });
  }

  *samples(): Iterable<Sample> {
    for (const { labels, value } of this.m.values()) yield [labels, value];
  }
}

function counterSamples(c: Counter): Sample[] {
  return [...c.entries()].map((e) => [e.labels, e.value] as const);
}

/** The whole /metrics text. */
export function metricsText(input: MetricsInput): string {
  const { snapshot } = input;
  const w = new TextWriter();
  const conns = new Tally();
  const players = new Tally();
  const publishers = new Tally();
  const bytesIn = new Tally();
  const bytesOut = new Tally();
  for (const [labels, value] of counterSamples(closedConnectionBytes)) {
    const protocol = labels.protocol ?? '';
    (labels.direction === 'in' ? bytesIn : bytesOut).add({ protocol }, value);
  }
  for (const c of snapshot.connections) {
    const protocol = c.protocol ?? 'rtmp';
    conns.add({ protocol });
    bytesIn.add({ protocol }, c.bytesIn);
    bytesOut.add({ protocol }, c.bytesOut);
    for (const s of c.streams) (s.role === 'player' ? players : publishers).add({ app: c.app ?? '', protocol });
  }
  const streams = new Tally();
  const dropped = new Tally();
  for (const s of snapshot.streams) {
    if (s.active) streams.add({ app: s.app });
    dropped.add({ app: s.app }, s.dropped);
  }
  w.family('rtmp_connections', 'gauge', 'Open client connections by protocol (rtmp, http-flv, ws-flv; hls, dash: viewers seen within 2 fragment lengths).', conns.samples());
  w.family('rtmp_http_connections', 'gauge', 'Open HTTP connections (players, pages and files).', [[{}, input.httpConnections]]);
  w.family('rtmp_connections_accepted_total', 'counter', 'RTMP connections accepted since start.', [[{}, snapshot.accepted ?? snapshot.connections.length]]);
  w.family('rtmp_streams', 'gauge', 'Published streams by application.', streams.samples());
  w.family('rtmp_publishers', 'gauge', 'Publishers by application and protocol.', publishers.samples());
  w.family('rtmp_players', 'gauge', 'Players by application and protocol.', players.samples());
  w.family('rtmp_bytes_in_total', 'counter', 'Bytes received from clients, by protocol.', bytesIn.samples());
  w.family('rtmp_bytes_out_total', 'counter', 'Bytes sent to clients, by protocol.', bytesOut.samples());
  w.family('rtmp_stream_dropped_frames', 'gauge', "Frames the streams' current readers did not get (slow players), by application.", dropped.samples());
  for (const c of input.registry.list()) w.family(c.name, 'counter', c.help, counterSamples(c));
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  w.family('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', [[{}, cpu.user / 1e6]]);
  w.family('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', [[{}, cpu.system / 1e6]]);
  w.family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [[{}, (cpu.user + cpu.system) / 1e6]]);
  w.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [[{}, mem.rss]]);
  w.family('process_heap_bytes', 'gauge', 'V8 heap in use, in bytes.', [[{}, mem.heapUsed]]);
  w.family('process_start_time_seconds', 'gauge', 'Start time of the server since the Unix epoch in seconds.', [[{}, Math.floor(snapshot.startedAt / 1000)]]);
  return w.toString();
}
