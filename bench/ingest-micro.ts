/**
 * The ingest path's own CPU cost per published message, without sockets:
 * STREAMS publishers' chunked bytes go through a ChunkDecoder each (reading
 * from one reused 64 KiB buffer, as the shared read buffer does), into their
 * LiveStream (pushMedia between beginBatch/endBatch, as one read), out to one
 * reader each whose sink makes the RTMP wire encoding (wireFor) and drops it.
 * READS_PER_TURN reads per event-loop turn. Reports CPU µs per message and the
 * collector's time (PerformanceObserver 'gc').
 *
 *   node --max-semi-space-size=1 --single-threaded-gc --import tsx bench/ingest-micro.ts [--src DIR] [--seconds 10]
 *
 * --messages N measures exactly N published messages after --warmup-messages
 * (default 20000) instead of --seconds: a fixed amount of work, for instruction
 * counts under `valgrind --tool=callgrind` (run it with two values of N and
 * divide the difference of the totals by the difference of N: startup and
 * compilation cancel out).
 *
 * With --callgrind (under `valgrind --tool=callgrind`), the counters are
 * zeroed after the warm-up (`callgrind_control -z`) and dumped after the
 * measured messages (`callgrind_control -d`): the dump's total is the
 * measured window alone, without node's start-up and tsx's compilation.
 *
 * --src picks the source tree to measure (default: this one's src/), so that
 * two builds can be compared in alternation, e.g. against a copy of an older
 * commit's tree (git archive <commit> | tar -x -C /tmp/old).
 */
import { spawn } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
};
const SRC = path.resolve(opt('src', path.join(import.meta.dirname, '..', 'src')));
const SECONDS = Number(opt('seconds', '10'));
const STREAMS = Number(opt('streams', '200'));
const READS_PER_TURN = Number(opt('reads-per-turn', '20'));
const MESSAGES = Number(opt('messages', '0'));
const WARMUP_MESSAGES = Number(opt('warmup-messages', '20000'));
const CALLGRIND = argv.includes('--callgrind');
const CHUNK = 4096;

const mod = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(path.join(SRC, rel)).href)) as T;
const { ChunkDecoder, encodeMessage } = await mod<typeof import('../src/rtmp/chunk.js')>('rtmp/chunk.ts');
const { LiveHub } = await mod<typeof import('../src/live/hub.js')>('live/hub.ts');
const { LiveReader } = await mod<typeof import('../src/live/reader.js')>('live/reader.ts');
const { wireFor } = await mod<typeof import('../src/rtmp/player.js')>('rtmp/player.ts');

// one publisher's bytes: ~1 Mbit/s, 30 fps video (4 KB frames, a 30 KB keyframe every 60) and 43 audio messages/s
function publisherBytes(seconds: number): { bytes: Buffer; ends: number[] } {
  const parts: Buffer[] = [];
  const ends: number[] = [];
  let total = 0;
  const add = (b: Buffer): void => {
    parts.push(b);
    total += b.length;
    ends.push(total);
  };
  add(encodeMessage({ csid: 6, type: 9, streamId: 1, timestamp: 0, payload: Buffer.from([0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff]) }, CHUNK));
  add(encodeMessage({ csid: 4, type: 8, streamId: 1, timestamp: 0, payload: Buffer.from([0xaf, 0, 0x12, 0x10]) }, CHUNK));
  let v = 0;
  let a = 0;
  for (;;) {
    const vt = (v * 1000) / 30;
    const at = (a * 1024000) / 44100;
    const ts = Math.min(vt, at);
    if (ts > seconds * 1000) break;
    if (vt <= at) {
      const key = v % 60 === 0;
      const p = Buffer.alloc(key ? 30000 : 4000, v & 0xff);
      p[0] = key ? 0x17 : 0x27;
      p[1] = 1;
      add(encodeMessage({ csid: 6, type: 9, streamId: 1, timestamp: Math.floor(ts), payload: p }, CHUNK));
      v++;
    } else {
      const p = Buffer.alloc(372, a & 0xff);
      p[0] = 0xaf;
      p[1] = 1;
      add(encodeMessage({ csid: 4, type: 8, streamId: 1, timestamp: Math.floor(ts), payload: p }, CHUNK));
      a++;
    }
  }
  return { bytes: Buffer.concat(parts), ends };
}

const LOOP_SECONDS = 60;
const source = publisherBytes(LOOP_SECONDS);
const hub = new LiveHub();
const shared = Buffer.allocUnsafe(64 * 1024);
let wireBytes = 0;
let messages = 0;

interface Pub {
  decoder: InstanceType<typeof ChunkDecoder>;
  stream: ReturnType<typeof hub.publish>;
  /** index of the next message end to read up to */
  next: number;
  /** bytes of source already read */
  at: number;
}

const pubs: Pub[] = [];
for (let i = 0; i < STREAMS; i++) {
  const stream = hub.publish('live', `s${i}`, { id: `p${i}`, remote: '127.0.0.1:1', stop: () => {} });
  const sink = {
    queuedBytes: (): number => 0,
    write(f: Parameters<typeof wireFor>[0]): void {
      wireBytes += wireFor(f, CHUNK, 1).length;
    },
    cork(): void {},
    uncork(): void {},
    onStreamStart(): void {},
    onStreamStop(): void {},
  };
  hub.subscribe('live', `s${i}`, new LiveReader(sink));
  const p: Pub = {
    stream,
    next: 0,
    at: 0,
    decoder: new ChunkDecoder({ maxMessageSize: 1 << 20, copyPayloads: true, arena: true, maxChunkStreams: 32 }, (m) => {
      if (m.type !== 8 && m.type !== 9) return; // Set Chunk Size
      messages++;
      stream.pushMedia(m.type, m.timestamp, m.payload);
    }),
  };
  p.decoder.push(Buffer.from([0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0])); // Set Chunk Size 4096
  pubs.push(p);
}

const newApi = /^push\(data,\s*length/.test(ChunkDecoder.prototype.push.toString());

/** One read: the publisher's next one or two messages (at most 64 KiB), copied into the shared buffer as the kernel would. */
function read(p: Pub): void {
  const ends = source.ends;
  if (p.next >= ends.length) {
    // loop the media: a new decoder state is not needed (timestamps jump back: the stream re-bases)
    p.next = 2;
    p.at = ends[1]!;
  }
  let end = ends[p.next]!;
  if ((p.next & 3) === 0 && p.next + 1 < ends.length && ends[p.next + 1]! - p.at <= shared.length) end = ends[++p.next]!;
  p.next++;
  let from = p.at;
  p.at = end;
  while (from < end) {
    const n = Math.min(end - from, shared.length);
    source.bytes.copy(shared, 0, from, from + n);
    from += n;
    p.stream.beginBatch();
    try {
      if (newApi) p.decoder.push(shared, n);
      else p.decoder.push(shared.subarray(0, n));
    } finally {
      p.stream.endBatch();
    }
  }
}

let gcMs = 0;
let gcCount = 0;
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcCount++;
  }
});
obs.observe({ entryTypes: ['gc'] });

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
async function run(ms: number): Promise<void> {
  const end = Date.now() + ms;
  let k = 0;
  while (Date.now() < end) {
    for (let r = 0; r < READS_PER_TURN; r++) read(pubs[k++ % STREAMS]!);
    await turn();
  }
}

async function runCount(n: number): Promise<void> {
  const end = messages + n;
  let k = 0;
  while (messages < end) {
    for (let r = 0; r < READS_PER_TURN && messages < end; r++) read(pubs[k++ % STREAMS]!);
    await turn();
  }
}

if (MESSAGES > 0) await runCount(WARMUP_MESSAGES);
else await run(3000); // warm-up: compiled code, caches full
/** Runs callgrind_control on this process; the event loop keeps turning (callgrind takes commands while code runs). */
async function callgrindControl(arg: string): Promise<void> {
  const child = spawn('callgrind_control', [arg, String(process.pid)], { stdio: 'ignore' });
  let done = false;
  child.on('exit', () => (done = true));
  // a slow poll: what runs while waiting is counted too, so it must be next to nothing (callgrind_control is a perl script)
  while (!done) await new Promise((r) => setTimeout(r, 50));
}

if (CALLGRIND) await callgrindControl('-z');
messages = 0;
wireBytes = 0;
gcMs = 0;
gcCount = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
if (MESSAGES > 0) await runCount(MESSAGES);
else await run(SECONDS * 1000);
const cpu = process.cpuUsage(cpu0);
if (CALLGRIND) await callgrindControl('-d');
const wall = performance.now() - t0;
await turn();
obs.disconnect();
const cpuUs = cpu.user + cpu.system;
console.log(
  JSON.stringify({
    src: SRC,
    pushApi: newApi ? 'push(buffer, length)' : 'push(view)',
    messages,
    wireMiB: +(wireBytes / 1048576).toFixed(1),
    wallMs: Math.round(wall),
    cpuUsPerMessage: +(cpuUs / messages).toFixed(3),
    gcMsPerKMessages: +((gcMs / messages) * 1000).toFixed(3),
    gcCount,
  }),
);
