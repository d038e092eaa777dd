import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relayBackoff, relayModule, resolveRelayTarget, type RelayOptions } from '../../src/app/relay.js';
import { parseConfigText } from '../../src/config/load.js';
import type { RelayTarget, ServerConfig } from '../../src/config/types.js';
import { silentLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveReader } from '../../src/live/reader.js';
import { decodeAmf0 } from '../../src/rtmp/amf0.js';
import { commandMessage } from '../../src/rtmp/commands.js';
import { probePackets, publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { loopbackDefault, startServer, until, sleep, type TestServer } from '../helpers/server.js';
import { playCounting, publishSynthetic, type SyntheticPublisher } from '../helpers/synthetic.js';

/** Fast retries for tests: push_reconnect 100ms in the configs, capped at 800 ms. */
const FAST: RelayOptions = { reconnectCap: 800, pullLinger: 300 };

function relayConfig(appBody: string): ServerConfig {
  return parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; push_reconnect 100ms; pull_reconnect 100ms; ${appBody} } } }`, 'relay-test.conf');
}

/** A server whose applications run only the relay module. */
async function relayServer(t: TestContext, appBody: string, options: RelayOptions = FAST): Promise<TestServer> {
  return startServer(t, relayConfig(appBody), { modules: (app, deps) => [relayModule(app, deps, options)].filter((m) => m !== undefined) });
}

/** A loopback port nobody listens on (until a test starts a server there). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  if (a === null || typeof a !== 'object') throw new Error('no port');
  return a.port;
}

async function startServerOn(t: TestContext, port: number): Promise<TestServer> {
  return startServer(t, loopbackDefault(() => ({ listen: [{ host: '127.0.0.1', port, proxyProtocol: false }] })));
}

async function synthetic(t: TestContext, url: string, name: string, opts: Parameters<typeof publishSynthetic>[2] = {}): Promise<SyntheticPublisher> {
  const p = await publishSynthetic(url, name, opts);
  t.after(() => p.stop());
  return p;
}

async function counting(t: TestContext, url: string, name: string): Promise<Awaited<ReturnType<typeof playCounting>>> {
  const p = await playCounting(url, name);
  t.after(() => p.client.destroy());
  return p;
}

function logged(logs: readonly MemoryLogEntry[], msg: string): number {
  return logs.filter((e) => e.msg.startsWith(msg)).length;
}

function metadataName(payload: Buffer | undefined): unknown {
  return payload === undefined ? undefined : decodeAmf0(payload)[0];
}

// ---------------------------------------------------------------- targets

test('targets resolve as nginx-rtmp does: app and play path from the URL or parameters, local names otherwise', () => {
  const target = (url: string, more: Partial<RelayTarget> = {}): RelayTarget => ({ url, app: undefined, name: undefined, playPath: undefined, live: undefined, isStatic: false, params: {}, ...more });
  const a = resolveRelayTarget(target('rtmp://origin.example:1936/src', { app: 'src' }), 'live', 'cam');
  assert.deepEqual([a.connectUrl, a.host, a.port, a.app, a.stream, a.label], ['rtmp://origin.example:1936/src', 'origin.example', 1936, 'src', 'cam', 'rtmp://origin.example:1936/src/cam']);
  const b = resolveRelayTarget(target('rtmp://live.twitch.tv/app/KEY?x=1', { app: 'app', playPath: 'KEY?x=1' }), 'live', 'cam');
  assert.deepEqual([b.connectUrl, b.stream], ['rtmp://live.twitch.tv:1935/app', 'KEY?x=1']);
  // no app in the URL: the local application's name
  const c = resolveRelayTarget(target('rtmp://backup'), 'live', 'cam');
  assert.deepEqual([c.connectUrl, c.stream], ['rtmp://backup:1935/live', 'cam']);
  const d = resolveRelayTarget(target('rtmp://[::1]:1937/a', { app: 'other', params: { tcUrl: 'rtmp://x/other', flashVer: 'LNX 9,0,124,2', pageUrl: 'http://p' } }), 'live', 'cam');
  assert.deepEqual([d.host, d.port, d.connectUrl], ['::1', 1937, 'rtmp://[::1]:1937/other']);
  assert.deepEqual(d.connectProperties, { tcUrl: 'rtmp://x/other', flashVer: 'LNX 9,0,124,2', pageUrl: 'http://p' });
  assert.throws(() => resolveRelayTarget(target('http://x/y'), 'live', 'cam'), /relay URL without a host/);
});

test('reconnection backoff doubles from push_reconnect up to the cap, and never spins at 0', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 10, 50].map((n) => relayBackoff(3000, n, 30_000)), [3000, 6000, 12_000, 24_000, 30_000, 30_000, 30_000]);
  assert.equal(relayBackoff(0, 0, 30_000), 100);
  assert.equal(relayBackoff(60_000, 3, 30_000), 60_000);
});

test('no push and no pull: no module', () => {
  const cfg = parseConfigText('rtmp { server { application live { live on; } } }', 't.conf');
  assert.equal(relayModule(cfg.rtmp[0]!.applications[0]!, { hub: new LiveHub(), logger: silentLogger() }), undefined);
});

// ---------------------------------------------------------------- push

test('push: a stream published on A is re-published on B, keyframe first with metadata and headers; it ends with the local publish', { timeout: 30_000 }, async (t) => {
  const b = await startServer(t);
  const a = await relayServer(t, `push rtmp://127.0.0.1:${b.port}/live;`);
  const pub = await synthetic(t, `${a.url}/live`, 's', { fps: 25, gop: 10 });
  assert.ok(await until(() => b.server.hub.get('live', 's')?.active === true, 5000), 'the push publishes on B');
  const remote = b.server.hub.get('live', 's')!;
  assert.ok(await until(() => remote.videoHeader !== undefined && remote.metadata !== undefined, 3000), 'headers and metadata reached B');
  assert.equal(metadataName(remote.metadata?.payload), 'onMetaData');
  assert.ok(remote.audioHeader !== undefined);
  const player = await counting(t, `${b.url}/live`, 's');
  assert.ok(await until(() => player.video >= 30, 5000), `B's player got ${player.video} video frames`);
  assert.equal(player.firstVideoKeyframe, true);
  assert.equal(player.backwards, 0);
  // the relay is one reader of A's stream
  assert.equal(a.server.hub.get('live', 's')?.readers.size, 1);
  assert.equal(logged(a.logs, 'push relay publishing'), 1);

  await pub.stop();
  assert.ok(await until(() => b.server.hub.get('live', 's')?.active !== true, 3000), "B's stream ends when A's publisher leaves");
  assert.ok(await until(() => a.server.hub.get('live', 's') === undefined, 3000), "A's stream is forgotten: the relay reader left");
  assert.ok(await until(() => b.server.connections === 1, 3000), 'the relay connection to B is closed (only the player is left)');
  assert.equal(logged(a.logs, 'push relay connection lost'), 0);
});

test('push: only the stream named by name= is pushed, under playPath', { timeout: 30_000 }, async (t) => {
  const b = await startServer(t);
  const a = await relayServer(t, `push rtmp://127.0.0.1:${b.port}/live/renamed name=wanted;`);
  await synthetic(t, `${a.url}/live`, 'other');
  await synthetic(t, `${a.url}/live`, 'wanted');
  assert.ok(await until(() => b.server.hub.get('live', 'renamed')?.active === true, 5000), 'wanted is pushed as renamed');
  await sleep(300);
  assert.equal(b.server.hub.get('live', 'other'), undefined);
  assert.equal(b.server.hub.get('live', 'wanted'), undefined);
});

test('push: B is down at first; the push connects after retries and B gets the stream', { timeout: 30_000 }, async (t) => {
  const port = await freePort();
  const a = await relayServer(t, `push rtmp://127.0.0.1:${port}/live;`);
  await synthetic(t, `${a.url}/live`, 's', { fps: 25, gop: 10 });
  assert.ok(await until(() => logged(a.logs, 'push relay failed') >= 2, 5000), 'failed attempts are logged and retried');
  const failure = a.logs.find((e) => e.msg.startsWith('push relay failed'))!;
  assert.equal(failure.level, 'warn');
  assert.equal(typeof failure.fields['retryInMs'], 'number');
  const b = await startServerOn(t, port);
  assert.ok(await until(() => b.server.hub.get('live', 's')?.active === true, 5000), 'the push reaches B once it is up');
  const player = await counting(t, `${b.url}/live`, 's');
  assert.ok(await until(() => player.video >= 10, 5000));
  assert.equal(player.firstVideoKeyframe, true);
  // B restarts: the push notices, reconnects and publishes again
  player.client.destroy();
  await b.server.stop(500);
  assert.ok(await until(() => logged(a.logs, 'push relay connection lost') === 1, 3000), 'the drop is logged');
  const b2 = await startServerOn(t, port);
  assert.ok(await until(() => b2.server.hub.get('live', 's')?.active === true, 5000), 'the push reaches the restarted B');
  // B sees the publish before A's relay hears Publish.Start and attaches its reader
  assert.ok(await until(() => a.server.hub.get('live', 's')?.readers.size === 1, 3000), 'the relay reader is attached');
  await sleep(200);
  assert.equal(a.server.hub.get('live', 's')?.readers.size, 1, 'one relay reader, the old one detached');
});

test('push: the local stream keeps flowing while the target is unreachable', { timeout: 30_000 }, async (t) => {
  const port = await freePort();
  const a = await relayServer(t, `push rtmp://127.0.0.1:${port}/live;`);
  const pub = await synthetic(t, `${a.url}/live`, 's', { fps: 25, gop: 10 });
  const player = await counting(t, `${a.url}/live`, 's');
  await sleep(2000);
  assert.ok(player.video >= 40, `local player got ${player.video} video frames in 2 s`);
  assert.ok(pub.framesSent >= 45);
  assert.equal(player.firstVideoKeyframe, true);
  assert.ok(logged(a.logs, 'push relay failed') >= 2, 'the push keeps retrying');
  const stream = a.server.hub.get('live', 's')!;
  assert.equal(stream.active, true);
  assert.equal(stream.readers.size, 1, 'only the local player reads: a failed push attaches nothing');
});

test('push: a stalled target drops frames to the next keyframe and never slows the local stream', { timeout: 40_000 }, async (t) => {
  const b = await startServer(t);
  // a proxy in front of B that stops reading on demand
  let stalled = false;
  const sockets: net.Socket[] = [];
  const proxy = net.createServer((down) => {
    const up = net.connect(b.port, '127.0.0.1');
    sockets.push(down, up);
    down.on('data', (d: Buffer) => {
      if (!stalled) up.write(d);
      else down.pause();
    });
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    proxy.close();
  });
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  const a = await relayServer(t, `push rtmp://127.0.0.1:${proxyPort}/live;`, { ...FAST, readerLimits: { maxQueuedBytes: 256 * 1024, resumeQueuedBytes: 64 * 1024 } });
  const pub = await synthetic(t, `${a.url}/live`, 's', { fps: 25, gop: 25, frameSize: 150_000 });
  assert.ok(await until(() => b.server.hub.get('live', 's')?.active === true, 5000));
  const local = await counting(t, `${a.url}/live`, 's');
  stalled = true;
  const stream = a.server.hub.get('live', 's')!;
  const relayReader = (): { dropped: number; dropEpisodes: number } | undefined => [...stream.readers].find((r): r is LiveReader => r instanceof LiveReader && r.dropped > 0);
  assert.ok(await until(() => relayReader() !== undefined, 25_000), 'the relay reader drops once the target stops reading');
  const before = local.video;
  const sentBefore = pub.framesSent;
  await sleep(1000);
  assert.ok(pub.framesSent - sentBefore >= 20, 'the publisher is not slowed');
  assert.ok(local.video - before >= 20, `the local player keeps receiving (${local.video - before} frames in 1 s)`);
  assert.equal([...stream.readers].filter((r) => r.dropped > 0).length, 1, 'only the relay drops');
  assert.ok(logged(a.logs, 'slow push target') >= 1);
});

test('push with session_relay: off ends the push with the unpublish, on keeps it until the connection closes', { timeout: 30_000 }, async (t) => {
  for (const sessionRelay of [false, true]) {
    const b = await startServer(t);
    const a = await relayServer(t, `push rtmp://127.0.0.1:${b.port}/live; session_relay ${sessionRelay ? 'on' : 'off'};`);
    const pub = await synthetic(t, `${a.url}/live`, 's');
    assert.ok(await until(() => b.server.hub.get('live', 's')?.active === true, 5000));
    // unpublish (deleteStream) but keep the connection
    pub.client.send(commandMessage(0, 'deleteStream', 0, null, 1));
    assert.ok(await until(() => a.server.hub.get('live', 's')?.active !== true, 3000), 'the local publish ended');
    await sleep(300);
    assert.equal(b.server.hub.get('live', 's')?.active === true, sessionRelay, `session_relay ${String(sessionRelay)}: remote still published?`);
    pub.client.destroy();
    assert.ok(await until(() => b.server.hub.get('live', 's')?.active !== true, 3000), 'gone once the session closed');
  }
});

// ---------------------------------------------------------------- pull

test('pull: ffmpeg plays A, A pulls from B (ffmpeg publisher); players share one pull, which stops after the last leaves', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'relay-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const b = await startServer(t);
  const publisher = await runFfmpeg(publishArgs(`${b.url}/live/p`, 20), 40_000);
  t.after(() => publisher.kill());
  assert.ok(await until(() => b.server.hub.get('live', 'p')?.active === true, 15_000), 'ffmpeg publishes on B');
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${b.port}/live;`);
  assert.equal(a.server.hub.get('live', 'p'), undefined, 'nothing pulled before a player asks');

  const out = join(dir, 'pulled.flv');
  const player = await runFfmpeg(['-i', `${a.url}/live/p`, '-t', '2', '-c', 'copy', '-f', 'flv', '-y', out], 30_000);
  t.after(() => player.kill());
  assert.ok(await until(() => a.server.hub.get('live', 'p')?.active === true, 10_000), 'A publishes the pulled stream');
  const second = await counting(t, `${a.url}/live`, 'p');
  assert.ok(await until(() => second.video >= 10, 5000));
  assert.equal(second.firstVideoKeyframe, true);
  assert.equal(b.server.hub.get('live', 'p')?.readers.size, 1, 'one pull shared by both players');
  const local = a.server.hub.get('live', 'p')!;
  assert.equal(metadataName(local.metadata?.payload), 'onMetaData', 'onMetaData passes through');

  const r = await player.done;
  assert.equal(r.code, 0, `ffmpeg player failed:\n${r.stderr.slice(-2000)}`);
  const probe = await probePackets(out);
  assert.equal(probe.videoCodec, 'h264');
  assert.equal(probe.audioCodec, 'aac');
  assert.ok(probe.video >= 30, `${probe.video} video packets in 2 s`);

  // the second player still holds the pull
  await sleep(600);
  assert.equal(b.server.hub.get('live', 'p')?.readers.size, 1);
  second.client.destroy();
  assert.ok(await until(() => b.server.hub.get('live', 'p')?.readers.size === 0, 5000), 'the pull stops after the linger');
  assert.ok(await until(() => a.server.hub.get('live', 'p') === undefined, 3000), "A's pulled stream is gone");
  assert.equal(logged(a.logs, 'pull relay: no players left'), 1);
});

test('pull: B down at first; the player waits, the pull retries, follows B unpublishing and republishing', { timeout: 40_000 }, async (t) => {
  const port = await freePort();
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${port}/live;`);
  const player = await counting(t, `${a.url}/live`, 'p');
  assert.ok(await until(() => logged(a.logs, 'pull relay failed') >= 2, 5000), 'failed pulls are logged and retried while the player waits');
  const b = await startServerOn(t, port);
  assert.ok(await until(() => logged(a.logs, 'pull relay playing') === 1, 5000), 'the pull connects once B is up');
  assert.equal(a.server.hub.get('live', 'p')?.active, false, 'nothing published locally before the remote sends media');

  const pub1 = await synthetic(t, `${b.url}/live`, 'p', { fps: 25, gop: 10 });
  assert.ok(await until(() => player.video >= 10, 5000), `player on A got ${player.video}`);
  assert.equal(player.firstVideoKeyframe, true);
  await pub1.stop();
  assert.ok(await until(() => a.server.hub.get('live', 'p')?.active === false, 3000), 'the local stream stops with the remote one');
  const before = player.video;
  await synthetic(t, `${b.url}/live`, 'p', { fps: 25, gop: 10 });
  assert.ok(await until(() => a.server.hub.get('live', 'p')?.active === true && player.video >= before + 10, 5000), 'and starts again with it');
  assert.equal(player.backwards, 0, 'timestamps stay monotonic across the remote republish');
  assert.equal(logged(a.logs, 'pull relay playing'), 1, 'the same pull connection carried both');
});

test('pull: a static pull runs without players, under its name=, and reconnects when the remote drops', { timeout: 30_000 }, async (t) => {
  const b = await startServer(t);
  await synthetic(t, `${b.url}/live`, 'src', { fps: 25, gop: 10 });
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${b.port}/live/src name=mirror static;`);
  assert.ok(await until(() => a.server.hub.get('live', 'mirror')?.active === true, 5000), 'the static pull publishes without a player');
  const player = await counting(t, `${a.url}/live`, 'mirror');
  assert.ok(await until(() => player.video >= 10, 5000));
  player.client.destroy();
  await sleep(600);
  assert.equal(a.server.hub.get('live', 'mirror')?.active, true, 'a static pull does not linger out');
  assert.equal(a.server.hub.get('live', 'src'), undefined);
  // B goes away and comes back on the same port
  await b.server.stop(500);
  assert.ok(await until(() => a.server.hub.get('live', 'mirror')?.active !== true, 3000), 'the local stream ends with the connection');
  assert.ok(await until(() => logged(a.logs, 'pull relay connection lost') === 1, 3000));
  const b2 = await startServerOn(t, b.port);
  await synthetic(t, `${b2.url}/live`, 'src', { fps: 25, gop: 10 });
  assert.ok(await until(() => a.server.hub.get('live', 'mirror')?.active === true, 5000), 'the static pull reconnects');
});

test('pull with session_relay: off releases the pull when the play ends, on when the connection closes', { timeout: 30_000 }, async (t) => {
  for (const sessionRelay of [false, true]) {
    const b = await startServer(t);
    await synthetic(t, `${b.url}/live`, 'p');
    const a = await relayServer(t, `pull rtmp://127.0.0.1:${b.port}/live; session_relay ${sessionRelay ? 'on' : 'off'};`);
    const player = await counting(t, `${a.url}/live`, 'p');
    assert.ok(await until(() => player.video >= 5, 5000));
    // stop playing (deleteStream) but keep the connection
    player.client.send(commandMessage(0, 'deleteStream', 0, null, 1));
    assert.ok(await until(() => a.server.hub.get('live', 'p')?.readers.size === 0, 3000), 'the play ended');
    await sleep(800);
    assert.equal(b.server.hub.get('live', 'p')?.readers.size, sessionRelay ? 1 : 0, `session_relay ${String(sessionRelay)}: pull still up?`);
    player.client.destroy();
    assert.ok(await until(() => b.server.hub.get('live', 'p')?.readers.size === 0, 3000), 'released once the session closed');
  }
});

test('pull: a local publisher wins; close() ends pulls and pushes', { timeout: 30_000 }, async (t) => {
  const b = await startServer(t);
  await synthetic(t, `${b.url}/live`, 'p');
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${b.port}/live; push rtmp://127.0.0.1:${b.port}/live/pushed name=p;`);
  await synthetic(t, `${a.url}/live`, 'p');
  const player = await counting(t, `${a.url}/live`, 'p');
  assert.ok(await until(() => player.video >= 5, 5000));
  assert.equal(logged(a.logs, 'pull relay created'), 0, 'a stream published here is not pulled');
  assert.equal(b.server.hub.get('live', 'p')?.readers.size, 0);

  const player2 = await counting(t, `${a.url}/live`, 'q');
  assert.ok(await until(() => b.server.hub.get('live', 'q')?.readers.size === 1, 5000), 'q is pulled');
  assert.ok(await until(() => b.server.hub.get('live', 'pushed')?.active === true, 5000), 'p is pushed');
  await a.server.stop(500);
  assert.ok(await until(() => b.server.hub.get('live', 'q') === undefined, 3000), 'stop() closes the pull');
  assert.ok(await until(() => b.server.hub.get('live', 'pushed') === undefined, 3000), 'stop() closes the push');
  assert.equal(player2.client.closed || player2.client.socket.destroyed, true);
});

test('push end to end with real clients: ffmpeg publishes to A, A pushes to B, ffmpeg plays B', { timeout: 60_000 }, async (t) => {
  const b = await startServer(t);
  const a = await relayServer(t, `push rtmp://127.0.0.1:${b.port}/live;`);
  const dir = mkdtempSync(join(tmpdir(), 'relay-push-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const publisher = await runFfmpeg(publishArgs(`${a.url}/live/cam`, 5), 30_000);
  t.after(() => publisher.kill());
  assert.ok(await until(() => b.server.hub.get('live', 'cam')?.active === true, 10_000), 'the push reached B');
  const out = join(dir, 'far.flv');
  const player = await runFfmpeg(['-i', `${b.url}/live/cam`, '-t', '2', '-c', 'copy', '-f', 'flv', '-y', out], 30_000);
  t.after(() => player.kill());
  const r = await player.done;
  assert.equal(r.code, 0, r.stderr.slice(-1500));
  const p = await probePackets(out);
  assert.equal(p.videoCodec, 'h264');
  assert.equal(p.audioCodec, 'aac');
  assert.ok(p.video >= 40, `${p.video} video frames at the far end`);
});

test('a pulled stream goes through the application chain: A pulls from B and pushes it on to C', { timeout: 40_000 }, async (t) => {
  const b = await startServer(t);
  const c = await startServer(t);
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${b.port}/live; push rtmp://127.0.0.1:${c.port}/live;`);
  await synthetic(t, `${b.url}/live`, 'chain', { fps: 25, gop: 10 });
  // a player on A starts the pull; the pulled stream is announced like a publish, so A's push runs
  const local = await counting(t, `${a.url}/live`, 'chain');
  assert.ok(await until(() => local.video >= 10, 10_000), 'the pull feeds A');
  assert.ok(await until(() => c.server.hub.get('live', 'chain')?.active === true, 10_000), 'the pulled stream is pushed on to C');
  const far = await counting(t, `${c.url}/live`, 'chain');
  assert.ok(await until(() => far.video >= 10, 10_000), `C's player got ${far.video} frames`);
  assert.equal(far.firstVideoKeyframe, true);
});

test('pull_reconnect: a pull retries after pull_reconnect (doubling to the cap), not after push_reconnect', { timeout: 30_000 }, async (t) => {
  const dead = await freePort();
  const a = await startServer(t, parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; push_reconnect 100ms; pull_reconnect 400ms; pull rtmp://127.0.0.1:${dead}/live/src name=mirror static; } } }`, 'pull-reconnect.conf'), {
    modules: (app, deps) => [relayModule(app, deps, { reconnectCap: 1000, pullLinger: 300 })].filter((m) => m !== undefined),
  });
  const failures = (): MemoryLogEntry[] => a.logs.filter((e) => e.msg === 'pull relay failed; retrying');
  // when each failure was first seen (polled every 10 ms)
  const seen: number[] = [];
  const deadline = Date.now() + 10_000;
  while (seen.length < 3 && Date.now() < deadline) {
    while (seen.length < failures().length) seen.push(Date.now());
    await sleep(10);
  }
  assert.equal(seen.length, 3, 'three failed attempts');
  const [f1, f2, f3] = failures();
  assert.deepEqual([f1, f2, f3].map((e) => e?.fields['retryInMs']), [400, 800, 1000], 'pull_reconnect, doubled, capped');
  // the attempts really are that far apart (not push_reconnect's 100 ms)
  const gap = (seen[1] ?? 0) - (seen[0] ?? 0);
  assert.ok(gap >= 350, `second attempt ${gap} ms after the first`);
  // and the pull comes up once the origin is there
  const b = await startServerOn(t, dead);
  await synthetic(t, `${b.url}/live`, 'src', { fps: 25, gop: 10 });
  assert.ok(await until(() => a.server.hub.get('live', 'mirror')?.active === true, 5000), 'the static pull connects on a later attempt');
});
