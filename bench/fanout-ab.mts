/**
 * In-process A/B of the fan-out path: two checkouts' src trees loaded side by
 * side, runs alternating A B A B (one process: both see the same load), CPU ns
 * per frame per reader, medians, ranges and the median of the paired B/A ratios.
 *
 *   node --import tsx bench/fanout-ab.mts <rootA> <rootB> [rounds=15]
 *
 * A root is a directory holding a `src` tree (e.g. `git archive <commit> src | tar -x -C /tmp/a`).
 * Only the API that existed before issue 14 is used (LiveHub, LiveReader, MediaWriter);
 * the types are this checkout's.
 */
import { resolve } from 'node:path';
import type * as FrameModule from '../src/live/frame.js';
import type * as HubModule from '../src/live/hub.js';
import type * as ReaderModule from '../src/live/reader.js';
import type * as PlayerModule from '../src/rtmp/player.js';
import type { SocketOutput } from '../src/rtmp/output.js';

interface Build {
  FrameKind: typeof FrameModule.FrameKind;
  LiveHub: typeof HubModule.LiveHub;
  LiveReader: typeof ReaderModule.LiveReader;
  MediaWriter: typeof PlayerModule.MediaWriter;
  Sink?: new () => ReaderModule.FrameSink;
}

async function load(root: string): Promise<Build> {
  const f = (await import(`${root}/src/live/frame.ts`)) as typeof FrameModule;
  const h = (await import(`${root}/src/live/hub.ts`)) as typeof HubModule;
  const r = (await import(`${root}/src/live/reader.ts`)) as typeof ReaderModule;
  const p = (await import(`${root}/src/rtmp/player.ts`)) as typeof PlayerModule;
  return { FrameKind: f.FrameKind, LiveHub: h.LiveHub, LiveReader: r.LiveReader, MediaWriter: p.MediaWriter };
}

const key = Buffer.alloc(4000, 0x65);
key.set([0x17, 0x01, 0, 0, 0]);
const inter = Buffer.alloc(1200, 0x41);
inter.set([0x27, 0x01, 0, 0, 0]);
const aac = Buffer.alloc(300, 0x21);
aac.set([0xaf, 0x01]);

/** The socket output a player writes to, minus the socket (one class for every run: the sites stay monomorphic). */
class Out {
  chunkSize = 4096;
  bytes = 0;
  queuedBytes(): number {
    return 0;
  }
  write(b: Buffer): void {
    this.bytes += b.length;
  }
  cork(): void {}
  uncork(): void {}
}

function sinkClass(b: Build): new () => ReaderModule.FrameSink {
  if (b.Sink === undefined) {
    b.Sink = class extends b.MediaWriter {
      constructor() {
        super(new Out() as unknown as SocketOutput, 1);
      }
      onStreamStart(): void {}
      onStreamStop(): void {}
    };
  }
  return b.Sink;
}

function run(b: Build, frames: number, readers: number, batched: boolean): number {
  const hub = new b.LiveHub();
  const s = hub.publish('live', 'b', { id: 'p', remote: 'x', stop: () => {} });
  const Sink = sinkClass(b);
  for (let i = 0; i < readers; i++) hub.subscribe('live', 'b', new b.LiveReader(new Sink()));
  s.pushMedia(b.FrameKind.Video, 0, Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f]));
  const c0 = process.cpuUsage();
  let ts = 0;
  for (let i = 0; i < frames; ) {
    if (batched) s.beginBatch();
    const n = batched ? 8 : 1;
    for (let j = 0; j < n && i < frames; j++, i++) {
      ts += 20;
      if (i % 2 === 1) s.pushMedia(b.FrameKind.Audio, ts, aac);
      else s.pushMedia(b.FrameKind.Video, ts, (i / 2) % 50 === 0 ? key : inter);
    }
    if (batched) {
      s.endBatch();
      s.flush();
    }
  }
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / frames / readers;
}

const A = await load(resolve(process.argv[2] ?? '.'));
const B = await load(resolve(process.argv[3] ?? '.'));
const rounds = Number(process.argv[4] ?? 15);
const res = { singleA: [] as number[], singleB: [] as number[], batchedA: [] as number[], batchedB: [] as number[] };
for (const b of [A, B]) {
  run(b, 20_000, 300, false);
  run(b, 20_000, 300, true);
}
for (let r = 0; r < rounds; r++) {
  res.singleA.push(run(A, 30_000, 300, false));
  res.singleB.push(run(B, 30_000, 300, false));
  res.batchedA.push(run(A, 30_000, 300, true));
  res.batchedB.push(run(B, 30_000, 300, true));
}
const med = (x: number[]): number => [...x].sort((p, q) => p - q)[x.length >> 1]!;
const ratio = (b: number[], a: number[]): number => med(b.map((v, i) => v / a[i]!));
const fmt = (x: number[]): string => `${med(x).toFixed(2)} (${Math.min(...x).toFixed(2)}-${Math.max(...x).toFixed(2)})`;
console.log(
  JSON.stringify({
    rounds,
    singleA: fmt(res.singleA),
    singleB: fmt(res.singleB),
    singleRatio: ratio(res.singleB, res.singleA).toFixed(3),
    batchedA: fmt(res.batchedA),
    batchedB: fmt(res.batchedB),
    batchedRatio: ratio(res.batchedB, res.batchedA).toFixed(3),
  }),
);
