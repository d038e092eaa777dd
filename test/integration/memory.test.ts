import assert from 'node:assert/strict';
import test from 'node:test';
import net from 'node:net';
import { buildModules } from '../../src/app/modules.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { MemoryReclaimer } from '../../src/memory.js';
import { RtmpServer } from '../../src/server.js';
import { loopbackDefault, sleep, until } from '../helpers/server.js';

test('memory is reclaimed once when at least half of the peak (and enough connections) left, at most once per interval', () => {
  let runs = 0;
  const r = new MemoryReclaimer(() => runs++, { minGone: 64, minIntervalMs: 10_000 });
  let t = 1_000_000;
  assert.equal(r.check(10, t), 0);
  assert.equal(r.check(0, (t += 250)), 0, 'a few connections leaving is not worth a collection');
  for (const n of [200, 500, 1000]) assert.equal(r.check(n, (t += 250)), 0);
  assert.equal(r.check(600, (t += 250)), 0, 'less than half gone');
  assert.equal(r.check(480, (t += 250)), 520, 'more than half of the peak gone: collect');
  assert.equal(runs, 1);
  assert.equal(r.check(100, (t += 250)), 0, 'not again within the interval');
  assert.equal(r.check(0, (t += 10_000)), 480, 'the rest, once the interval passed');
  assert.equal(runs, 2);
  assert.equal(r.check(0, t + 20_000), 0, 'nothing left to give back');
  assert.equal(runs, 2);
});

test('the server collects garbage once after a crowd of connections left, and logs what it freed', async (t) => {
  const logs: MemoryLogEntry[] = [];
  let collections = 0;
  const server = new RtmpServer(loopbackDefault(), { logger: memoryLogger(logs), modules: buildModules, collectGarbage: () => collections++ });
  await server.start();
  t.after(() => server.stop(1000));
  const sockets = await Promise.all(
    Array.from({ length: 80 }, () => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(server.port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
    })),
  );
  assert.ok(await until(() => server.connections === 80, 5000));
  await sleep(600);
  assert.equal(collections, 0, 'nothing while they stay');
  for (const s of sockets) s.destroy();
  assert.ok(await until(() => collections === 1, 5000), 'one collection after they left');
  const line = logs.find((e) => e.msg === 'memory reclaimed after connections left');
  assert.equal(typeof line?.fields['heapFreedMiB'], 'number');
  await sleep(600);
  assert.equal(collections, 1, 'once');
});
