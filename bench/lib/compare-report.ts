/**
 * Reads a bench/compare.sh result directory (KEY-rROUND-LABEL.json files from
 * rtmp-load) and prints, for every KEY (players200, latency...), the median of
 * each figure for ours and nginx and the median of the per-round ratios
 * ours/nginx. Writes summary.json and summary.md beside the runs.
 *
 *   node --import tsx bench/lib/compare-report.ts bench/results/<stamp>
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadReport } from './report.js';
import { fmt, median } from './stats.js';

type Figures = Record<string, number | null>;

interface Run {
  key: string;
  round: number;
  label: string;
  figures: Figures;
  report: LoadReport;
}

export interface KeySummary {
  key: string;
  rounds: number;
  figures: { name: string; ours: number | null; nginx: number | null; ratio: number | null }[];
}

/** figure name -> decimals shown; the order of the detailed tables */
const SHOWN: Record<string, number> = {
  connected: 0,
  failed: 0,
  deliveredRatio: 4,
  deliveredMbps: 1,
  lagP50Ms: 1,
  lagP99Ms: 1,
  lagMaxMs: 1,
  firstMediaP50Ms: 0,
  firstKeyP50Ms: 0,
  firstKeyP95Ms: 0,
  serverCpuCores: 3,
  cpuSecPerGbit: 3,
  rssSteadyMiB: 1,
  rssPerPlayerKiB: 1,
  rssAfterLeaveMiB: 1,
  gapEpisodes: 0,
  serverDropEpisodes: 0,
  loadToolCpuCores: 3,
  loadToolMaxElu: 2,
  latencyP50Ms: 3,
  latencyP99Ms: 3,
};

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function loadRuns(dir: string): Run[] {
  const runs: Run[] = [];
  for (const f of readdirSync(dir)) {
    const m = /^(.+)-r(\d+)-([a-z0-9]+)\.json$/.exec(f);
    if (m === null) continue;
    const data = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as LoadReport & { figures?: Record<string, unknown> };
    const figures: Figures = {};
    for (const [k, v] of Object.entries(data.figures ?? {})) figures[k] = num(v);
    runs.push({ key: m[1]!, round: Number(m[2]), label: m[3]!, figures, report: data });
  }
  return runs;
}

function keyOrder(k: string): number {
  const m = /^players(\d+)$/.exec(k);
  if (m !== null) return Number(m[1]);
  const solo = /^solo(\d+)$/.exec(k);
  if (solo !== null) return 1e8 + Number(solo[1]);
  if (k === 'latency') return 1e9;
  return 2e9;
}

export function summarizeRuns(runs: readonly Run[]): KeySummary[] {
  const keys = [...new Set(runs.map((r) => r.key))].sort((a, b) => keyOrder(a) - keyOrder(b) || a.localeCompare(b));
  const out: KeySummary[] = [];
  for (const key of keys) {
    const ours = runs.filter((r) => r.key === key && r.label === 'ours');
    const nginx = runs.filter((r) => r.key === key && r.label === 'nginx');
    const names = Object.keys(SHOWN).filter((n) => [...ours, ...nginx].some((r) => n in r.figures));
    const med = (rs: readonly Run[], n: string): number | null => {
      const v = rs.map((r) => r.figures[n]).filter((x): x is number => typeof x === 'number');
      return v.length > 0 ? median(v) : null;
    };
    const figures = names.map((name) => {
      const ratios: number[] = [];
      for (const o of ours) {
        const ng = nginx.find((r) => r.round === o.round);
        const a = o.figures[name];
        const b = ng?.figures[name];
        if (typeof a === 'number' && typeof b === 'number' && b !== 0) ratios.push(a / b);
      }
      return { name, ours: med(ours, name), nginx: med(nginx, name), ratio: ratios.length > 0 ? median(ratios) : null };
    });
    out.push({ key, rounds: Math.max(ours.length, nginx.length), figures });
  }
  return out;
}

function cell(v: number | null, digits: number): string {
  return fmt(v, digits);
}

/** The headline table (one row per key) and a detailed table per key, in Markdown. */
export function markdown(sums: readonly KeySummary[]): string {
  const get = (s: KeySummary, n: string) => s.figures.find((f) => f.name === n);
  const head = [
    '| run | rounds | CPU s/Gbit ours / nginx (ratio) | delivered/expected ours / nginx | lag p99 ms ours / nginx | first keyframe p95 ms ours / nginx | RSS KiB/player ours / nginx | server cores ours / nginx |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const s of sums) {
    const pair = (n: string, d: number, withRatio = false): string => {
      const f = get(s, n);
      if (f === undefined) return 'n/a';
      return `${cell(f.ours, d)} / ${cell(f.nginx, d)}${withRatio ? ` (${cell(f.ratio, 2)})` : ''}`;
    };
    head.push(
      `| ${s.key} | ${s.rounds} | ${pair('cpuSecPerGbit', 3, true)} | ${pair('deliveredRatio', 3)} | ${pair('lagP99Ms', 1)} | ${pair('firstKeyP95Ms', 0)} | ${pair('rssPerPlayerKiB', 1)} | ${pair('serverCpuCores', 2)} |`,
    );
  }
  const parts = [head.join('\n')];
  for (const s of sums) {
    const rows = [`### ${s.key} (${s.rounds} rounds; medians, ratio = median of per-round ours/nginx)`, '', '| figure | ours | nginx | ratio |', '|---|---|---|---|'];
    for (const f of s.figures) {
      const d = SHOWN[f.name] ?? 2;
      rows.push(`| ${f.name} | ${cell(f.ours, d)} | ${cell(f.nginx, d)} | ${cell(f.ratio, 2)} |`);
    }
    parts.push(rows.join('\n'));
  }
  return `${parts.join('\n\n')}\n`;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write('usage: compare-report.ts RESULT_DIR\n');
    process.exit(2);
  }
  const runs = loadRuns(dir);
  if (runs.length === 0) {
    process.stderr.write(`no KEY-rN-LABEL.json runs in ${dir}\n`);
    process.exit(1);
  }
  const sums = summarizeRuns(runs);
  const md = markdown(sums);
  const machine = runs[0]!.report.machine;
  const header = `Machine: ${machine.nproc} cores, ${machine.cpuModel}, node ${machine.node}, kernel ${machine.kernel}\n\n`;
  writeFileSync(path.join(dir, 'summary.json'), `${JSON.stringify({ machine, summaries: sums }, null, 2)}\n`);
  writeFileSync(path.join(dir, 'summary.md'), header + md);
  process.stdout.write(header + md);
}
