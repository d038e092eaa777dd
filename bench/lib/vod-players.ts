/**
 * The players of bench/vod-mem.ts, in a process of their own (so that the
 * server's RSS is the server's alone): N RTMP plays of one VOD stream, started
 * `rampMs` apart in total; prints one JSON line a second with the bytes
 * received so far, and exits after `seconds`.
 *
 *   node --import tsx bench/lib/vod-players.ts rtmp://127.0.0.1:PORT/vod mp4:vod.mp4 100 20 2000
 */
import { RtmpClient } from '../../src/rtmp/client.js';

const [url, name, n, seconds, ramp] = process.argv.slice(2);
if (url === undefined || name === undefined) throw new Error('usage: vod-players.ts URL NAME N SECONDS RAMP_MS');
const N = Number(n ?? 10);
const S = Number(seconds ?? 20);
const rampMs = Number(ramp ?? 2000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const clients: RtmpClient[] = [];
let playing = 0;
let failed = 0;
async function one(i: number): Promise<void> {
  await sleep(N > 1 ? (i * rampMs) / N : 0);
  try {
    const c = await RtmpClient.connect(url!, { readBufferSize: 64 * 1024, keepMediaBytes: 16 });
    clients.push(c);
    await c.play(name!);
    playing++;
  } catch (e) {
    failed++;
    process.stderr.write(`player ${i}: ${e instanceof Error ? e.message : String(e)}\n`);
  }
}
void Promise.all(Array.from({ length: N }, (_, i) => one(i)));
const t0 = Date.now();
const timer = setInterval(() => {
  const bytes = clients.reduce((a, c) => a + c.bytesReceived, 0);
  process.stdout.write(`${JSON.stringify({ t: Date.now() - t0, playing, failed, bytes })}\n`);
  if (Date.now() - t0 >= S * 1000) {
    clearInterval(timer);
    for (const c of clients) c.destroy();
    process.exit(0);
  }
}, 1000);
