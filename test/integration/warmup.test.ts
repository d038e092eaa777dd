import assert from 'node:assert/strict';
import test, { type TestContext } from 'node:test';
import { buildModules } from '../../src/app/modules.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import type { ServerConfig } from '../../src/config/types.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { RtmpServer, type ServerWarmupOptions } from '../../src/server.js';
import { warmUp } from '../../src/warmup.js';
import { loopbackDefault, sleep, until } from '../helpers/server.js';
import { playCounting, publishSynthetic } from '../helpers/synthetic.js';

interface Started {
  readonly server: RtmpServer;
  readonly logs: MemoryLogEntry[];
  /** start()'s promise: it resolves once the warm-up is over */
  readonly started: Promise<void>;
}

/** A server whose start() is not awaited, so a test can act while it warms up. */
/** warmup is off by default (issue 14): these tests turn it on in the configuration */
function launch(t: TestContext, warmup: false | ServerWarmupOptions | undefined, config: ServerConfig = loopbackDefault(() => ({ warmup: true }))): Started {
  const logs: MemoryLogEntry[] = [];
  const server = new RtmpServer(config, { logger: memoryLogger(logs), modules: buildModules, ...(warmup === undefined ? {} : { warmup }) });
  const started = server.start();
  t.after(() => server.stop(1000));
  return { server, logs, started };
}

test('the boot warm-up plays a synthetic stream to the server and leaves nothing behind', async (t) => {
  const { server, logs, started } = launch(t, { players: 6, messages: 400 });
  await started;
  const r = server.warmupReport;
  assert.ok(r !== undefined, 'a report');
  assert.equal(r.stopped, undefined, `ended early: ${r.stopped ?? ''}`);
  assert.equal(r.players, 6);
  assert.equal(r.messages, 400);
  const done = logs.find((l) => l.msg === 'warm-up done');
  assert.ok(done !== undefined, 'logged');
  assert.equal(done.fields['players'], 6);
  assert.equal(typeof done.fields['cpuMs'], 'number');
  // none of its connections or streams shows, counts or stays
  assert.equal(server.connections, 0);
  const snap = server.snapshot();
  assert.equal(snap.accepted, 0, 'warm-up connections are not counted as accepted');
  assert.deepEqual(snap.connections, []);
  assert.deepEqual(snap.streams, []);
  assert.equal(server.hub.list().length, 0, 'the hub forgot the warm-up stream');
  // its connections logged nothing (a silent logger)
  assert.ok(!logs.some((l) => String(l.fields['conn'] ?? '').startsWith('warmup-')), 'no log line of a warm-up connection');
  // and a real client is served as usual, with connection id 1
  const url = `rtmp://127.0.0.1:${server.port}/live`;
  const pub = await publishSynthetic(url, 'cam', { fps: 25, gop: 25, frameSize: 2000 });
  t.after(() => pub.stop());
  const p = await playCounting(url, 'cam');
  t.after(() => p.client.close());
  assert.ok(await until(() => p.video >= 10), `player got ${p.video} video frames`);
  assert.deepEqual(
    server.snapshot().connections.map((c) => c.id).sort(),
    ['1', '2'],
  );
});

test('a client that connects during the warm-up waits, then is served', async (t) => {
  // enough messages that the warm-up is still running when the client connects
  const { server, started } = launch(t, { players: 4, messages: 6000 });
  assert.ok(await until(() => server.addresses().length > 0), 'the public listener is bound before the warm-up');
  const url = `rtmp://127.0.0.1:${server.port}/live`;
  let warmedWhenConnected: boolean | undefined;
  const connecting = RtmpClient.connect(url, { timeout: 10_000 }).then((c) => {
    warmedWhenConnected = server.warmupReport !== undefined;
    return c;
  });
  await sleep(50);
  assert.equal(server.warmupReport, undefined, 'still warming up (the test needs a longer warm-up on this machine)');
  const client = await connecting;
  t.after(() => client.close());
  await started;
  assert.equal(warmedWhenConnected, true, 'the connect was answered only after the warm-up');
  const id = await client.publish('late');
  assert.ok(id > 0);
  assert.equal(server.connections, 1);
});

test('warmup off (the default) in the configuration, or false from the embedding code, skips it', async (t) => {
  const byDefault = launch(t, undefined, loopbackDefault());
  await byDefault.started;
  assert.equal(byDefault.server.warmupReport, undefined, 'the default configuration starts cold');
  const off = launch(t, undefined, loopbackDefault(() => ({ warmup: false })));
  await off.started;
  assert.equal(off.server.warmupReport, undefined);
  assert.ok(!off.logs.some((l) => l.msg.startsWith('warm-up')));
  const overridden = launch(t, false, loopbackDefault(() => ({ warmup: true })));
  await overridden.started;
  assert.equal(overridden.server.warmupReport, undefined);
});

test('a warm-up that runs out of time ends early, and the server starts anyway', async (t) => {
  const { server, logs, started } = launch(t, { players: 4, messages: 1_000_000, timeoutMs: 300 });
  await started;
  const r = server.warmupReport;
  assert.ok(r !== undefined);
  assert.match(r.stopped ?? '', /timed out after 300 ms/);
  assert.ok(r.messages < 1_000_000);
  assert.ok(logs.some((l) => l.msg === 'warm-up ended early'));
  assert.equal(server.connections, 0, 'its connections are gone');
  const pub = await publishSynthetic(`rtmp://127.0.0.1:${server.port}/live`, 'cam', { fps: 25, gop: 25, frameSize: 1000 });
  await pub.stop();
});

test('stopping the server during the warm-up ends it and drops the waiting clients', async (t) => {
  const { server, started } = launch(t, { players: 4, messages: 1_000_000, timeoutMs: 20_000 });
  assert.ok(await until(() => server.addresses().length > 0));
  // settled at once either way, so that the rejection is not left unhandled while the test waits
  const connecting = RtmpClient.connect(`rtmp://127.0.0.1:${server.port}/live`, { timeout: 5000 }).then(
    (c) => c,
    (e: unknown) => e,
  );
  await sleep(100);
  const t0 = Date.now();
  await server.stop(1000);
  await started;
  assert.ok(Date.now() - t0 < 3000, 'stop() did not wait for the warm-up to run out');
  assert.ok((await connecting) instanceof Error, 'the waiting client was closed');
  assert.match(server.warmupReport?.stopped ?? '', /stopping/);
});

test('max_connections does not count the warm-up, and applies to real clients after it', async (t) => {
  const { server, started } = launch(t, { players: 3, messages: 200 }, loopbackDefault(() => ({ maxConnections: 1, warmup: true })));
  await started;
  assert.equal(server.warmupReport?.players, 3, 'all its players joined despite the limit of 1');
  const url = `rtmp://127.0.0.1:${server.port}/live`;
  const a = await RtmpClient.connect(url);
  t.after(() => a.close());
  await assert.rejects(RtmpClient.connect(url, { timeout: 2000 }), 'the second real client is refused');
});

test('warmUp() reports a server that is not there instead of throwing', async () => {
  const r = await warmUp(1, 'live', { players: 1, messages: 10, timeoutMs: 1000 });
  assert.equal(r.messages, 0);
  assert.ok(r.stopped !== undefined && r.stopped.length > 0);
});
