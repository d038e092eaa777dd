/**
 * Recording and HLS in process, in real time: STREAMS publishers of
 * bench/media/test-1m.flv (~1 Mbit/s H.264 + AAC, looped) pushed through the
 * stream core (LiveHub, LiveStream.pushMedia between beginBatch/endBatch,
 * one read's worth of frames per publisher every TICK ms) into a complete
 * reader each, feeding an FlvRecorder (`record all`) and/or an HlsStream
 * (`hls on`) that write to a real file system (DIR, /dev/shm by default).
 * Reports the process's CPU per wall second (the server's share of one core
 * for these outputs), the collector's time, and the frames in vs written.
 * A real-time run of SECONDS; not a timed test.
 *
 *   node --import tsx bench/record-mux.ts [--mode record|hls|both] [--streams 50] [--seconds 20] [--dir /dev/shm] [--src DIR]
 *
 * --keep leaves the files (bench/lib/record-check.ts ours=DIR counts their frames and gaps).
 * --src picks the source tree (default: this one's src/), e.g. a copy of the
 * base commit's tree for paired runs (git archive <commit> src | tar -x -C /tmp/base).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeMedia, mediaPath } from './make-media.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
};
const SRC = path.resolve(opt('src', path.join(import.meta.dirname, '..', 'src')));
const SECONDS = Number(opt('seconds', '20'));
const STREAMS = Number(opt('streams', '50'));
const MODE = opt('mode', 'record');
const DIR = opt('dir', '/dev/shm');
const TICK = Number(opt('tick', '10'));
/** keep the files (e.g. for bench/lib/record-check.ts) */
const KEEP = argv.includes('--keep');

const mod = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(path.join(SRC, rel)).href)) as T;
const { readFlvFile } = await mod<typeof import('../src/media/flv.js')>('media/flv.ts');
const { LiveHub } = await mod<typeof import('../src/live/hub.js')>('live/hub.ts');
const { CompleteReader } = await mod<typeof import('../src/live/complete-reader.js')>('live/complete-reader.ts');
const { FlvRecorder } = await mod<typeof import('../src/record/recorder.js')>('record/recorder.ts');
const { HlsStream } = await mod<typeof import('../src/hls/stream.js')>('hls/stream.ts');
const { memoryLogger } = await mod<typeof import('../src/core/log.js')>('core/log.ts');

await makeMedia('oneMbit');
const { tags } = readFlvFile(readFileSync(mediaPath('oneMbit')));
const media = tags.filter((t) => t.type === 8 || t.type === 9 || t.type === 18);
const loopMs = media[media.length - 1]!.timestamp + 40;
/** the first tag after the metadata and codec headers (AVC/AAC packet type 0) */
const firstMedia = media.findIndex((t) => t.type !== 18 && t.data[1] !== 0);
const root = mkdtempSync(path.join(DIR, 'record-mux-'));
const hub = new LiveHub();
const logs: unknown[] = [];
const log = memoryLogger(logs as never[]);

const hlsSettings = { enabled: true, path: root, fragment: 2000, maxFragment: 20000, playlistLength: 10000, sync: 2, continuous: true, nested: false, baseUrl: '', cleanup: true, naming: 'sequential', granularity: 0, slicing: 'plain', type: 'live', keys: false, keyPath: root, keyUrl: '', fragmentsPerKey: 0, maxAudioDelay: 300, audioBufferSize: 1 << 20, variants: [] } as const;
const recConfig = { name: '', audio: true, video: true, keyframes: false, manual: false, path: root, suffix: '.flv', unique: false, append: false, lock: false, maxSize: 0, maxFrames: 0, interval: 0, notify: false, format: 'flv' as const };
const session = { id: 'bench', remote: '127.0.0.1:1', app: 'live' } as never;

interface Pub {
  stream: ReturnType<typeof hub.publish>;
  /** index of the next tag, loops done */
  next: number;
  loops: number;
  /** ms after the bench's start that this publisher starts */
  delay: number;
}
const pubs: Pub[] = [];
const recorders: InstanceType<typeof FlvRecorder>[] = [];
const readers: InstanceType<typeof CompleteReader>[] = [];
const ends: Promise<void>[] = [];
for (let i = 0; i < STREAMS; i++) {
  const name = `s${i}`;
  const stream = hub.publish('live', name, { id: `p${i}`, remote: '127.0.0.1:1', stop: () => {} });
  if (MODE === 'record' || MODE === 'both') {
    const rec = new FlvRecorder({ config: recConfig, session, app: 'live', name, query: '', log, events: undefined, onClosed: () => undefined });
    const reader = new CompleteReader(rec);
    hub.subscribe('live', name, reader);
    recorders.push(rec);
    readers.push(reader);
    ends.push(rec.whenClosed());
  }
  if (MODE === 'hls' || MODE === 'both') {
    const hls = new HlsStream({ settings: { ...hlsSettings, path: path.join(root, 'hls') }, name, log, now: Date.now, onIdle: () => undefined });
    const sink = hls.begin(() => undefined)!;
    const reader = new CompleteReader(sink);
    hub.subscribe('live', name, reader);
    readers.push(reader);
    ends.push(sink.done);
  }
  // staggered starts, as real publishers
  pubs.push({ stream, next: 0, loops: 0, delay: (i * 37) % 1000 });
}

let frames = 0;
function pump(elapsedMs: number): void {
  for (const p of pubs) {
    p.stream.beginBatch();
    try {
      for (;;) {
        const t = media[p.next]!;
        const ts = p.loops * loopMs + t.timestamp;
        if (ts + p.delay > elapsedMs) break;
        // a copy, as a socket read gives each message its own bytes
        p.stream.pushMedia(t.type as 8 | 9 | 18, ts, Buffer.from(t.data));
        frames++;
        if (++p.next === media.length) {
          // the next loop, without the codec headers and metadata again
          p.next = firstMedia;
          p.loops++;
        }
      }
    } finally {
      p.stream.endBatch();
    }
  }
}

let gcMs = 0;
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
});
obs.observe({ entryTypes: ['gc'] });

const start = performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const WARM = 3000;
let cpu0 = process.cpuUsage();
let t0 = start;
let warm = false;
let framesAt0 = 0;
for (;;) {
  const el = performance.now() - start;
  if (!warm && el >= WARM) {
    warm = true;
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    gcMs = 0;
    framesAt0 = frames;
  }
  if (el >= WARM + SECONDS * 1000) break;
  pump(el);
  await sleep(TICK);
}
const cpu = process.cpuUsage(cpu0);
const wall = performance.now() - t0;
const rss = process.memoryUsage().rss;
for (const p of pubs) hub.unpublish(p.stream, { id: '', remote: '', stop: () => {} } as never);
for (const r of readers) r.finish();
await Promise.all(ends);
obs.disconnect();
const written = recorders.reduce((a, r) => a + r.framesWritten, 0);
const cutOff = readers.filter((r) => r.isCutOff).length;
console.log(
  JSON.stringify({
    src: SRC,
    mode: MODE,
    streams: STREAMS,
    dir: DIR,
    frames: frames - framesAt0,
    wallMs: Math.round(wall),
    cpuPctOfCore: +(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(2),
    userMs: Math.round(cpu.user / 1000),
    sysMs: Math.round(cpu.system / 1000),
    gcMs: Math.round(gcMs),
    rssMiB: +(rss / 1048576).toFixed(1),
    framesIn: frames,
    recorderFramesWritten: written,
    cutOff,
    skipped: readers.reduce((a, r) => a + r.skipped, 0),
    dropped: readers.reduce((a, r) => a + r.dropped, 0),
    readerWritten: readers.reduce((a, r) => a + r.framesWritten, 0),
  }),
);
if (KEEP) console.log(`files kept in ${root}`);
else rmSync(root, { recursive: true, force: true });
