/**
 * The fan-out micro path without sockets: one stream, READERS live readers
 * whose sink is a player's MediaWriter (shared RTMP encoding) on a fake output,
 * FRAMES frames pushed (video GOPs of 50 with audio between), both unbatched
 * (one pushMedia per frame) and batched (8 frames per publisher read, as
 * socket input delivers). Prints one JSON line: ns per frame per reader, wall
 * clock and CPU time of the process (the CPU figure is the steadier one on a
 * loaded machine).
 *
 *   node --import tsx bench/fanout.ts [frames=100000] [readers=300]
 *   COMPLETE=10 node --import tsx bench/fanout.ts   # plus 10 complete readers (recorders) taking the shared FLV tags
 *
 * Uses only the API that existed before issue 14 (LiveHub, LiveReader,
 * MediaWriter), so the same file measures an older checkout (A/B).
 */
import { FrameKind } from '../src/live/frame.js';
import { LiveHub } from '../src/live/hub.js';
import { LiveReader } from '../src/live/reader.js';
import type { SocketOutput } from '../src/rtmp/output.js';
import { MediaWriter } from '../src/rtmp/player.js';

const FRAMES = Number(process.argv[2] ?? 100_000);
const READERS = Number(process.argv[3] ?? 300);
const CHUNK_SIZE = 4096;
const STREAM_ID = 1;
const BATCH = 8;
const GOP = 50;
const COMPLETE = Number(process.env.COMPLETE ?? 0);

/** Complete readers (issue 14 on): a recorder-like sink summing the shared FLV tags of each batch. */
async function completeReaders(n: number): Promise<{ reader: StreamReaderLike; bytes: () => number }[]> {
  if (n === 0) return [];
  const { CompleteReader } = await import('../src/live/complete-reader.js');
  const { flvTag } = await import('../src/live/formats.js');
  return Array.from({ length: n }, () => {
    let bytes = 0;
    const reader = new CompleteReader(
      {
        writeBatch: (frames) => {
          for (const f of frames) bytes += flvTag(f).length;
        },
        close: (reason) => {
          if (reason !== undefined) throw new Error(`complete reader cut off: ${reason}`);
        },
      },
      { maxBufferedBytes: 1 << 30, maxBufferedFrames: 1 << 20 },
    );
    return { reader, bytes: () => bytes };
  });
}
type StreamReaderLike = Parameters<LiveHub['subscribe']>[2];
const completes: { reader: StreamReaderLike; bytes: () => number }[] = [];

/** The socket output a player writes to, minus the socket. */
class FakeOutput {
  chunkSize = CHUNK_SIZE;
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

/** A player's sink as src/rtmp/connection.ts's PlayerOutput is: a MediaWriter on the connection's output. */
class FakeSink extends MediaWriter {
  constructor(readonly fake: FakeOutput) {
    super(fake as unknown as SocketOutput, STREAM_ID);
  }
  get bytes(): number {
    return this.fake.bytes;
  }
  onStreamStart(): void {}
  onStreamStop(): void {}
}

const key = Buffer.alloc(4000, 0x65);
key.set([0x17, 0x01, 0, 0, 0]);
const inter = Buffer.alloc(1200, 0x41);
inter.set([0x27, 0x01, 0, 0, 0]);
const aac = Buffer.alloc(300, 0x21);
aac.set([0xaf, 0x01]);

async function run(frames: number, batched: boolean): Promise<{ ns: number; cpuNs: number; bytes: number }> {
  const hub = new LiveHub();
  const sinks: FakeSink[] = [];
  const s = hub.publish('live', 'bench', { id: 'p', remote: 'x', stop: () => {} });
  for (let i = 0; i < READERS; i++) {
    const sink = new FakeSink(new FakeOutput());
    sinks.push(sink);
    hub.subscribe('live', 'bench', new LiveReader(sink));
  }
  completes.length = 0;
  completes.push(...(await completeReaders(COMPLETE)));
  for (const c of completes) hub.subscribe('live', 'bench', c.reader);
  s.pushMedia(FrameKind.Video, 0, Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f]));
  s.pushMedia(FrameKind.Audio, 0, Buffer.from([0xaf, 0x00, 0x12, 0x10]));
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let ts = 0;
  for (let i = 0; i < frames; ) {
    if (batched) s.beginBatch();
    const n = batched ? BATCH : 1;
    for (let j = 0; j < n && i < frames; j++, i++) {
      ts += 20;
      if (i % 2 === 1) s.pushMedia(FrameKind.Audio, ts, aac);
      else s.pushMedia(FrameKind.Video, ts, (i / 2) % GOP === 0 ? key : inter);
    }
    if (batched) {
      s.endBatch();
      s.flush();
    }
    // complete readers write from a microtask: let them, as the event loop would between reads
    if (COMPLETE > 0 && i % 64 < (batched ? BATCH : 1)) await Promise.resolve();
  }
  if (COMPLETE > 0) await new Promise((r) => setImmediate(r));
  const ns = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  const cpuNs = (c.user + c.system) * 1000;
  let bytes = 0;
  for (const k of sinks) bytes += k.bytes;
  for (const c of completes) bytes += c.bytes();
  return { ns: ns / frames / READERS, cpuNs: cpuNs / frames / READERS, bytes };
}

await run(Math.min(FRAMES, 20_000), false); // warm-up
await run(Math.min(FRAMES, 20_000), true);
const single = await run(FRAMES, false);
const batched = await run(FRAMES, true);
console.log(
  JSON.stringify({
    frames: FRAMES,
    readers: READERS,
    complete: COMPLETE,
    singleNs: +single.ns.toFixed(2),
    singleCpuNs: +single.cpuNs.toFixed(2),
    batchedNs: +batched.ns.toFixed(2),
    batchedCpuNs: +batched.cpuNs.toFixed(2),
    rss: process.memoryUsage().rss,
  }),
);
