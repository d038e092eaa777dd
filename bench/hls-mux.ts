/**
 * The HLS muxer alone, in process: bench/media/test-1m.flv (30 s, ~1 Mbit/s
 * H.264 + AAC) through one stream's HLS output (src/hls/stream.ts) into a
 * temporary directory, six rounds; prints the CPU per second of media (the
 * first rounds include JIT warm-up). 50 publishers at 1 Mbit/s cost about 50x
 * the last rounds' figure. A few seconds; not a timed test. ROUNDS (6) rounds;
 * the median of the second half is printed last.
 *
 *   ROUNDS=30 node --import tsx bench/hls-mux.ts
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFlvFile } from '../src/media/flv.js';
import { FrameKind, MediaFrame, frameFlags } from '../src/live/frame.js';
import { HlsStream } from '../src/hls/stream.js';
import { memoryLogger } from '../src/core/log.js';
import { makeMedia, mediaPath } from './make-media.js';
async function main(): Promise<void> {
await makeMedia('oneMbit');
const { tags } = readFlvFile(readFileSync(mediaPath('oneMbit')));
const dir = mkdtempSync(join(tmpdir(), 'hls-micro-'));
const settings = { enabled: true, path: dir, fragment: 2000, maxFragment: 20000, playlistLength: 10000, sync: 2, continuous: true, nested: false, baseUrl: '', cleanup: true, naming: 'sequential', granularity: 0, slicing: 'plain', type: 'live', keys: false, keyPath: dir, keyUrl: '', fragmentsPerKey: 0, maxAudioDelay: 300, audioBufferSize: 1 << 20, variants: [] } as const;
const media = tags.filter((t) => t.type === 8 || t.type === 9);
const dur = media[media.length - 1]!.timestamp;
const logs: never[] = [];
const rounds = Number(process.env.ROUNDS ?? 6);
// frames per writeBatch (a server under load gives each stream one or two a turn)
const batchSize = Number(process.env.BATCH ?? 8);
const perSecond: number[] = [];
for (let round = 0; round < rounds; round++) {
  const s = new HlsStream({ settings: { ...settings, path: join(dir, String(round)) }, name: 'b', log: memoryLogger(logs), now: Date.now, onIdle: () => undefined });
  const sink = s.begin(() => undefined)!;
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  let batch: MediaFrame[] = [];
  for (const t of media) {
    batch.push(new MediaFrame(t.type as FrameKind, t.timestamp, t.data, frameFlags(t.type as FrameKind, t.data)));
    if (batch.length === batchSize) { await sink.writeBatch(batch); batch = []; }
  }
  await sink.writeBatch(batch);
  sink.close(undefined); await sink.done; s.dispose();
  const c = process.cpuUsage(t0);
  perSecond.push((c.user + c.system) / 1000 / (dur / 1000));
  console.log(`round ${round}: ${(dur / 1000).toFixed(1)} s of media, cpu ${((c.user + c.system) / 1000).toFixed(1)} ms (${(((c.user + c.system) / 1000) / (dur / 1000)).toFixed(2)} ms CPU per media second), wall ${(performance.now() - w0).toFixed(0)} ms`);
}
rmSync(dir, { recursive: true, force: true });
const late = perSecond.slice(Math.floor(rounds / 2)).sort((a, b) => a - b);
console.log(`median of rounds ${Math.floor(rounds / 2)}..${rounds - 1}: ${late[Math.floor(late.length / 2)]!.toFixed(2)} ms CPU per media second`);
}

void main();
