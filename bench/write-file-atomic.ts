/**
 * writeFileAtomic's two paths side by side (not a test): the addon's one
 * thread-pool job (native/files.c) and node:fs/promises (open, writev, close,
 * rename: four round trips). N files of 200 KB (a gather list of 25 buffers of
 * 8 KB, as HLS/DASH fragments) and, one in ten, a 1 KB playlist (a string),
 * from W concurrent writers, each replacing its own stream's files in a temp
 * directory (6 fragment names and one playlist per writer, like an HLS window).
 * Runs alternate between the paths (after one short warm-up of each); reported:
 * files/s, process CPU (all threads, process.cpuUsage) and the main thread's
 * CPU (/proc/self/task/PID/stat, 10 ms ticks) per file.
 *
 *   node --import tsx bench/write-file-atomic.ts [--files 2000] [--writers 50] [--runs 3] [--dir /tmp] [--fragment-kb 200]
 *
 * (--fragment-kb 8: small files, where the per-file overhead is all there is.)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomicWith } from '../src/core/files.js';
import { loadNativeWriter, type NativeWriter } from '../src/core/native.js';
import { clockTicksPerSecond } from './lib/proc.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '2000' },
    writers: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string', default: tmpdir() },
    'fragment-kb': { type: 'string', default: '200' },
  },
});
const FILES = Number(values.files);
const WRITERS = Number(values.writers);
const RUNS = Number(values.runs);

const native = loadNativeWriter().writer;
if (native?.writeFileAtomic === undefined) {
  process.stderr.write('the addon is not built with writeFileAtomic (npm run install)\n');
  process.exit(1);
}

const fragment: readonly Buffer[] = Array.from({ length: Math.max(1, Math.round(Number(values['fragment-kb']) / 8)) }, (_, i) => Buffer.alloc(8192, i));
const playlist = '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n' + '#EXTINF:2.000,\nseg-0000001.ts\n'.repeat(33);

/** The main thread's user + system CPU ms (its task's stat line). */
function mainThreadMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicksPerSecond();
}

interface Result {
  filesPerSecond: number;
  cpuMsPerFile: number;
  mainMsPerFile: number;
}

async function run(writer: NativeWriter | undefined, files: number): Promise<Result> {
  const dir = mkdtempSync(path.join(values.dir, 'wfa-bench-'));
  try {
    for (let w = 0; w < WRITERS; w++) mkdirSync(path.join(dir, `s${w}`));
    let next = 0;
    const writerLoop = async (w: number): Promise<void> => {
      for (let k = 0; ; k++) {
        const n = next++;
        if (n >= files) return;
        if (n % 10 === 9) await writeFileAtomicWith(writer, path.join(dir, `s${w}`, 'index.m3u8'), playlist);
        else await writeFileAtomicWith(writer, path.join(dir, `s${w}`, `seg-${k % 6}.ts`), fragment);
      }
    };
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadMs();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: WRITERS }, (_, w) => writerLoop(w)));
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const main = mainThreadMs() - main0;
    return { filesPerSecond: (files * 1000) / ms, cpuMsPerFile: (cpu.user + cpu.system) / 1000 / files, mainMsPerFile: main / files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (r: Result): string => `${r.filesPerSecond.toFixed(0).padStart(6)} files/s  ${r.cpuMsPerFile.toFixed(3)} CPU ms/file  ${r.mainMsPerFile.toFixed(3)} main-thread ms/file`;

await run(undefined, Math.min(200, FILES));
await run(native, Math.min(200, FILES));
const results: Record<'fs' | 'native', Result[]> = { fs: [], native: [] };
for (let i = 0; i < RUNS; i++) {
  for (const [name, w] of [['fs', undefined], ['native', native]] as const) {
    const r = await run(w, FILES);
    results[name].push(r);
    process.stdout.write(`run ${i + 1} ${name.padEnd(6)} ${fmt(r)}\n`);
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const name of ['fs', 'native'] as const) {
  const rs = results[name];
  process.stdout.write(
    `median ${name.padEnd(6)} ${fmt({ filesPerSecond: median(rs.map((r) => r.filesPerSecond)), cpuMsPerFile: median(rs.map((r) => r.cpuMsPerFile)), mainMsPerFile: median(rs.map((r) => r.mainMsPerFile)) })}\n`,
  );
}
process.stdout.write(`${FILES} files (${WRITERS} writers, 10 % playlists of ${Buffer.byteLength(playlist)} B, fragments of ${fragment.length} x 8 KB) in ${values.dir}, node ${process.version}\n`);
