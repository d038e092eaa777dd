/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`): the top functions by self
 * time, with their total (inclusive) time, as a Markdown table. Several files
 * (e.g. one per thread) are added up.
 *
 *   node --import tsx bench/profile-summary.ts [--top 15] FILE.cpuprofile...
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  key: string;
  /** microseconds */
  self: number;
  total: number;
}

export interface ProfileSummary {
  /** microseconds sampled, all functions */
  sampled: number;
  /** microseconds outside (idle) */
  busy: number;
  functions: FunctionTime[];
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function isProfile(v: unknown): v is CpuProfile {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return Array.isArray(o['nodes']) && Array.isArray(o['samples']) && Array.isArray(o['timeDeltas']);
}

function shortUrl(url: string): string {
  if (url === '') return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) u = u.slice(nm + 1);
  else {
    const cwd = process.cwd() + '/';
    if (u.startsWith(cwd)) u = u.slice(cwd.length);
  }
  return u;
}

const sourceMaps = new Map<string, SourceMap | null>();

/** The TypeScript position of a compiled dist/*.js frame, through its .js.map (tsc's sourceMap: true). */
function original(f: CallFrame): string | undefined {
  if (!f.url.startsWith('file://') || !f.url.endsWith('.js')) return undefined;
  const file = fileURLToPath(f.url);
  let map = sourceMaps.get(file);
  if (map === undefined) {
    map = null;
    try {
      if (existsSync(`${file}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
    } catch {
      map = null;
    }
    sourceMaps.set(file, map);
  }
  if (map === null) return undefined;
  const e = map.findEntry(f.lineNumber, f.columnNumber);
  if (!('originalSource' in e) || typeof e.originalSource !== 'string') return undefined;
  const src = e.originalSource.startsWith('file://') ? e.originalSource : new URL(e.originalSource, f.url).href;
  return `${shortUrl(src)}:${e.originalLine + 1}`;
}

function keyOf(f: CallFrame): string {
  const name = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (SPECIAL.has(name) || f.url === '') return name;
  return `${name} ${original(f) ?? `${shortUrl(f.url)}:${f.lineNumber + 1}`}`;
}

/** Self and total time per function of one or more profiles. */
export function summarizeProfiles(profiles: readonly CpuProfile[]): ProfileSummary {
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let sampled = 0;
  let idle = 0;
  for (const p of profiles) {
    const byId = new Map<number, ProfileNode>();
    for (const n of p.nodes) byId.set(n.id, n);
    const nodeSelf = new Map<number, number>();
    for (let i = 0; i < p.samples.length; i++) {
      const id = p.samples[i]!;
      const dt = Math.max(0, p.timeDeltas[i] ?? 0);
      nodeSelf.set(id, (nodeSelf.get(id) ?? 0) + dt);
      sampled += dt;
      const n = byId.get(id);
      if (n !== undefined && n.callFrame.functionName === '(idle)') idle += dt;
    }
    // inclusive time: each function counted once per stack (recursion does not double count)
    const children = new Set<number>();
    for (const n of p.nodes) for (const c of n.children ?? []) children.add(c);
    const inclusive = new Map<number, number>();
    const incl = (id: number): number => {
      const cached = inclusive.get(id);
      if (cached !== undefined) return cached;
      const n = byId.get(id);
      let t = nodeSelf.get(id) ?? 0;
      for (const c of n?.children ?? []) t += incl(c);
      inclusive.set(id, t);
      return t;
    };
    const walk = (id: number, onStack: ReadonlySet<string>): void => {
      const n = byId.get(id);
      if (n === undefined) return;
      const key = keyOf(n.callFrame);
      self.set(key, (self.get(key) ?? 0) + (nodeSelf.get(id) ?? 0));
      let stack = onStack;
      if (!onStack.has(key)) {
        total.set(key, (total.get(key) ?? 0) + incl(id));
        stack = new Set(onStack).add(key);
      }
      for (const c of n.children ?? []) walk(c, stack);
    };
    for (const n of p.nodes) if (!children.has(n.id)) walk(n.id, new Set());
  }
  const functions = [...self.entries()].map(([key, s]) => ({ key, self: s, total: total.get(key) ?? s })).sort((a, b) => b.self - a.self);
  return { sampled, busy: sampled - idle, functions };
}

export function readProfile(file: string): CpuProfile {
  const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!isProfile(v)) throw new Error(`${file}: not a .cpuprofile`);
  return v;
}

export function markdownTable(s: ProfileSummary, top: number): string {
  const pct = (us: number, of: number): string => (of > 0 ? ((100 * us) / of).toFixed(1) : 'n/a');
  const rows = [
    `Sampled ${(s.sampled / 1e6).toFixed(2)} s, busy (not idle) ${(s.busy / 1e6).toFixed(2)} s.`,
    '',
    '| # | function (file:line) | self ms | self % of busy | total ms | total % of busy |',
    '|---|---|---|---|---|---|',
  ];
  const fns = s.functions.filter((f) => f.key !== '(idle)' && f.key !== '(root)').slice(0, top);
  fns.forEach((f, i) => {
    rows.push(`| ${i + 1} | \`${f.key}\` | ${(f.self / 1000).toFixed(0)} | ${pct(f.self, s.busy)} | ${(f.total / 1000).toFixed(0)} | ${pct(f.total, s.busy)} |`);
  });
  return rows.join('\n');
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const argv = process.argv.slice(2);
  let top = 15;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--top') top = Number(argv[++i] ?? '15');
    else files.push(a);
  }
  if (files.length === 0 || !Number.isInteger(top) || top < 1) {
    process.stderr.write('usage: profile-summary.ts [--top N] FILE.cpuprofile...\n');
    process.exit(2);
  }
  const s = summarizeProfiles(files.map(readProfile));
  process.stdout.write(`${markdownTable(s, top)}\n`);
}
