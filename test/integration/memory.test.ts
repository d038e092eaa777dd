import assert from 'node:assert/strict';
import test from 'node:test';
import net from 'node:net';
import { buildModules } from '../../src/app/modules.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { MemoryReclaimer } from '../../src/memory.js';
import { RtmpServer } from '../../src/server.js';
import { loopbackDefault, sleep, until } from '../helpers/server.js';

test('memory is reclaimed once at least half of the peak (and enough connections) left and the departures settled, at most once per interval', () => {
  let runs = 0;
  const r = new MemoryReclaimer(() => runs++, { minGone: 64, minIntervalMs: 10_000, maxWaitMs: 5_000 });
  let t = 1_000_000;
  assert.equal(r.check(10, t), 0);
  assert.equal(r.check(0, (t += 250)), 0, 'a few connections leaving is not worth a collection');
  assert.equal(r.check(0, (t += 250)), 0);
  for (const n of [200, 500, 1000]) assert.equal(r.check(n, (t += 250)), 0);
  assert.equal(r.check(600, (t += 250)), 0, 'less than half gone');
  assert.equal(r.check(480, (t += 250)), 0, 'more than half of the peak gone: due, but they are still leaving');
  assert.equal(r.check(200, (t += 250)), 0, 'still leaving');
  assert.equal(r.check(200, (t += 250)), 800, 'settled: collect');
  assert.equal(runs, 1);
  assert.equal(r.check(0, (t += 250)), 0, 'not again within the interval');
  assert.equal(r.check(0, (t += 250)), 0);
  t += 10_000;
  assert.equal(r.check(0, t), 0, 'the rest, once the interval passed: due');
  assert.equal(r.check(0, (t += 250)), 200, 'and settled');
  assert.equal(runs, 2);
  assert.equal(r.check(0, t + 20_000), 0, 'nothing left to give back');
  assert.equal(runs, 2);
});

test('a steady trickle of departures does not put the collection off for more than maxWaitMs', () => {
  let runs = 0;
  const r = new MemoryReclaimer(() => runs++, { minGone: 64, minIntervalMs: 10_000, maxWaitMs: 5_000 });
  let t = 0;
  assert.equal(r.check(1000, t), 0);
  let n = 1000;
  while (n > 500) assert.equal(r.check((n -= 10), (t += 250)), 0);
  // due from here; one more connection leaves at every check
  const dueAt = t;
  let collected = 0;
  while (collected === 0 && t - dueAt <= 6_000) collected = r.check((n -= 1), (t += 250));
  assert.equal(runs, 1);
  assert.ok(t - dueAt >= 5_000 && t - dueAt <= 5_250, `collected ${t - dueAt} ms after it was due`);
  assert.equal(collected, 1000 - n);
});

test('players coming back while a collection is due call it off', () => {
  let runs = 0;
  const r = new MemoryReclaimer(() => runs++, { minGone: 64, minIntervalMs: 10_000, maxWaitMs: 5_000 });
  assert.equal(r.check(400, 0), 0);
  assert.equal(r.check(100, 250), 0, 'due');
  assert.equal(r.check(500, 500), 0, 'a new peak');
  assert.equal(r.check(500, 750), 0);
  assert.equal(runs, 0);
});

/** n plain TCP connections to the server (no RTMP: connections are what the reclaimer counts). */
function connectMany(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    })),
  );
}

test('the server collects garbage once after a crowd of connections left, trims the C heap after it, and logs what it freed', async (t) => {
  const logs: MemoryLogEntry[] = [];
  let collections = 0;
  const trims: number[] = [];
  // the native writer's trimHeap() runs right after the collection
  const nativeWriter = { writeSlots: () => undefined, trimHeap: () => (trims.push(collections), true) };
  const server = new RtmpServer(loopbackDefault(), { logger: memoryLogger(logs), modules: buildModules, collectGarbage: () => collections++, nativeWriter, warmup: false });
  await server.start();
  t.after(() => server.stop(1000));
  const sockets = await connectMany(server.port, 80);
  assert.ok(await until(() => server.connections === 80, 5000));
  await sleep(600);
  assert.equal(collections, 0, 'nothing while they stay');
  for (const s of sockets) s.destroy();
  assert.ok(await until(() => collections === 1, 5000), 'one collection after they left');
  const line = logs.find((e) => e.msg === 'memory reclaimed after connections left');
  assert.equal(typeof line?.fields['heapFreedMiB'], 'number');
  assert.equal(typeof line?.fields['cHeapTrimmedMiB'], 'number');
  assert.deepEqual(trims, [1], 'one trim, after the collection');
  await sleep(600);
  assert.equal(collections, 1, 'once');
});

test('a collection that throws is logged and the server goes on', async (t) => {
  const logs: MemoryLogEntry[] = [];
  let calls = 0;
  const server = new RtmpServer(loopbackDefault(), {
    logger: memoryLogger(logs),
    modules: buildModules,
    warmup: false,
    collectGarbage: () => {
      calls++;
      throw new Error('no gc here');
    },
  });
  await server.start();
  t.after(() => server.stop(1000));
  const sockets = await connectMany(server.port, 70);
  assert.ok(await until(() => server.connections === 70, 5000));
  await sleep(600); // the housekeeping ticks see the peak
  for (const s of sockets) s.destroy();
  assert.ok(await until(() => calls === 1, 5000), 'the collection was tried');
  assert.ok(await until(() => logs.some((e) => e.msg === 'memory reclaim failed' && e.fields['message'] === 'no gc here'), 2000), 'and logged');
  // the housekeeping timer still runs: a new connection is served
  const s = net.connect(server.port, '127.0.0.1');
  t.after(() => s.destroy());
  assert.ok(await until(() => server.connections === 1, 5000));
});
