/**
 * /proc sampling of a process (the server under test, or the load tool
 * itself): CPU seconds (utime + stime of all its threads, in clock ticks of
 * CLK_TCK) from /proc/PID/stat, and resident memory from /proc/PID/status.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;

/** `getconf CLK_TCK` (normally 100), asked once. */
export function clockTicksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clkTck = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** epoch ms */
  at: number;
  /** user + system CPU seconds since the process started */
  cpuSeconds: number;
  userSeconds: number;
  systemSeconds: number;
  /** resident set size, KiB */
  rssKiB: number;
  threads: number;
}

/** Reads /proc/PID/stat and /proc/PID/status; undefined when the process is gone. */
export function sampleProc(pid: number): ProcSample | undefined {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  // the command name may contain spaces and parentheses: fields start after the last ')'
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15, num_threads field 20
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  const threads = Number(rest[20 - 3]);
  const tck = clockTicksPerSecond();
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return {
    at: Date.now(),
    cpuSeconds: (utime + stime) / tck,
    userSeconds: utime / tck,
    systemSeconds: stime / tck,
    rssKiB: rss !== null ? Number(rss[1]) : NaN,
    threads,
  };
}

/** The difference of two samples: CPU seconds used and the wall time between them. */
export function cpuBetween(a: ProcSample | undefined, b: ProcSample | undefined): { cpuSeconds: number; wallSeconds: number } {
  if (a === undefined || b === undefined) return { cpuSeconds: NaN, wallSeconds: NaN };
  return { cpuSeconds: b.cpuSeconds - a.cpuSeconds, wallSeconds: (b.at - a.at) / 1000 };
}

/** Samples a process every `intervalMs` until stopped; keeps every sample. */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly pid: number) {}

  start(intervalMs = 1000): void {
    this.sampleNow();
    this.timer = setInterval(() => this.sampleNow(), intervalMs);
    this.timer.unref();
  }

  sampleNow(): ProcSample | undefined {
    const s = sampleProc(this.pid);
    if (s !== undefined) this.samples.push(s);
    return s;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Samples taken in [from, to] (epoch ms). */
  between(from: number, to: number): ProcSample[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to);
  }
}
