/**
 * Where a process allocates its JavaScript heap: a preload that runs V8's
 * sampling heap profiler (through node:inspector, in the process itself) and,
 * when the process gets SIGTERM, prints the allocation sites by bytes a second
 * to stderr: the allocating function and its two callers. Objects the
 * collector already freed are counted too, so short-lived garbage shows.
 *
 *   node --import tsx --import ./bench/heap-sampling.ts dist/cli.js -c hls50.conf
 *   (load it, then kill -TERM the server)
 *
 * HEAP_SAMPLING_DELAY_MS (default 8000) skips the start-up; HEAP_SAMPLING_TOP
 * (default 25) sites are printed. A diagnostic, not a benchmark: the sampling
 * (every 4 KiB allocated) costs CPU. The server's own SIGTERM handling (files
 * finalized, then exit) runs as usual after the report.
 */
import { Session } from 'node:inspector';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

const delayMs = Number(process.env.HEAP_SAMPLING_DELAY_MS ?? 8000);
const top = Number(process.env.HEAP_SAMPLING_TOP ?? 25);
const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
let startedAt: number | undefined;
setTimeout(() => {
  session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  startedAt = Date.now();
}, delayMs).unref();

function site(n: SamplingNode): string {
  const f = n.callFrame;
  const file = f.url.replace(/^file:\/\/.*?\/(dist|src)\//, '');
  return `${f.functionName || '(anonymous)'} ${file}:${f.lineNumber + 1}`;
}

process.once('SIGTERM', () => {
  if (startedAt === undefined) {
    process.stderr.write('heap-sampling: stopped before sampling began\n');
    return;
  }
  const seconds = (Date.now() - startedAt) / 1000;
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err !== null) {
      process.stderr.write(`heap-sampling: ${err.message}\n`);
      return;
    }
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (n: SamplingNode, callers: string[]): void => {
      const name = site(n);
      if (n.selfSize > 0) {
        const key = [name, ...callers].slice(0, 3).join(' < ');
        bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
        total += n.selfSize;
      }
      for (const c of n.children) walk(c, [name, ...callers]);
    };
    walk((result.profile as { head: SamplingNode }).head, []);
    const lines = [`heap-sampling: ${(total / seconds / 1e6).toFixed(2)} MB/s allocated over ${seconds.toFixed(0)} s`];
    for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${(v / seconds / 1e3).toFixed(0).padStart(6)} KB/s  ${k}`);
    process.stderr.write(lines.join('\n') + '\n');
  });
});
