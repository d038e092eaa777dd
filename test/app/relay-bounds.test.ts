/**
 * Issue 13, item 12 (pull fan-out): a `pull` without `name=` opens one
 * upstream connection per distinct name played; the application's and the
 * connection's bounds, and a refused play undoing what the chain started.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { AppChain, type AppModule, type PlayContext, type PublishContext, type SessionInfo } from '../../src/app/chain.js';
import { relayModule } from '../../src/app/relay.js';
import { parseConfigText } from '../../src/config/load.js';
import { silentLogger, memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { RtmpServer } from '../../src/server.js';
import { startServer, sleep, until, type TestServer } from '../helpers/server.js';
import { playCounting, publishSynthetic } from '../helpers/synthetic.js';
import { hookServer } from '../helpers/hooks.js';

/** A server whose application `live` runs only the relay module (default bounds, short linger). */
async function relayServer(t: TestContext, appBody: string): Promise<TestServer> {
  const logs: MemoryLogEntry[] = [];
  const config = parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; push_reconnect 100ms; pull_reconnect 100ms; ${appBody} } } }`, 'relay-bounds.conf');
  const server = new RtmpServer(config, {
    logger: memoryLogger(logs),
    warmup: false,
    modules: (app, deps) => {
      const m = relayModule(app, deps, { reconnectCap: 800, pullLinger: 300 });
      return m === undefined ? [] : [m];
    },
  });
  await server.start();
  t.after(() => server.stop(1000));
  return { server, port: server.port, url: `rtmp://127.0.0.1:${server.port}`, logs };
}

/** A publisher and a player of `healthy` on the server under attack: they must keep flowing. */
async function healthy(t: TestContext, url: string): Promise<() => Promise<void>> {
  const pub = await publishSynthetic(`${url}/live`, 'healthy', { fps: 25, gop: 10 });
  t.after(() => pub.stop());
  const player = await playCounting(`${url}/live`, 'healthy');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video >= 5, 5000), 'the healthy stream flows before the attack');
  return async () => {
    const before = player.video;
    assert.ok(await until(() => player.video >= before + 10, 5000), `the healthy stream still flows (${before} -> ${player.video})`);
  };
}

test('pull without name=: 50 connections playing 50 names open at most 32 upstream connections; the rest are refused', { timeout: 60_000 }, async (t) => {
  const b = await startServer(t);
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${b.port}/live;`);
  const stillFlowing = await healthy(t, a.url);
  const clients: RtmpClient[] = [];
  t.after(() => clients.forEach((c) => c.destroy()));
  const results = await Promise.allSettled(
    Array.from({ length: 50 }, async (_, i) => {
      const c = await RtmpClient.connect(`${a.url}/live`);
      clients.push(c);
      await c.play(`n${i}`);
    }),
  );
  const played = results.filter((r) => r.status === 'fulfilled').length;
  assert.equal(played, 32, `plays accepted: ${played}`);
  assert.ok(await until(() => b.server.connections === 32, 10_000), `B sees ${b.server.connections} pull connections`);
  await sleep(500);
  assert.equal(b.server.connections, 32);
  await stillFlowing();
  // the connections that hold no pull are still open (a refused play is not a protocol error)
  assert.equal(a.server.connections, 50 + 2);
});

test('pull without name=: one connection playing 50 names holds at most 4 pulls', { timeout: 60_000 }, async (t) => {
  const b = await startServer(t);
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${b.port}/live;`);
  const stillFlowing = await healthy(t, a.url);
  const c = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => c.destroy());
  let played = 0;
  for (let i = 0; i < 50; i++) {
    try {
      await c.play(`n${i}`);
      played++;
    } catch {
      // refused
    }
  }
  assert.equal(played, 4);
  assert.ok(await until(() => b.server.connections === 4, 10_000), `B sees ${b.server.connections} pull connections`);
  await sleep(500);
  assert.equal(b.server.connections, 4);
  await stillFlowing();
  // other connections can still pull
  const other = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => other.destroy());
  await other.play('fresh');
  assert.ok(await until(() => b.server.connections === 5, 10_000));
});

/** An on_update backend: records the stream name of each call, answers 200. */
async function updateServer(t: TestContext): Promise<{ readonly url: string; calls: (name?: string) => number }> {
  const hooks = await hookServer(t);
  const names = (): string[] => hooks.calls.filter((c) => c.path.startsWith('/update')).map((c) => c.params.get('name') ?? '');
  return { url: hooks.url, calls: (name) => names().filter((n) => name === undefined || n === name).length };
}

test('a play refused after the chain (idle_streams off) is undone: the pull closes after its linger, on_update never runs', { timeout: 60_000 }, async (t) => {
  const b = await startServer(t);
  const hooks = await updateServer(t);
  const config = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application live { live on; idle_streams off;
       pull rtmp://127.0.0.1:${b.port}/live;
       on_update ${hooks.url}/update; notify_update_timeout 200ms; } } }`,
    'refused-play.conf',
  );
  const a = await startServer(t, config);
  const stillFlowing = await healthy(t, a.url);
  const c = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => c.destroy());
  // nobody publishes `p` here: the relay starts a pull, then the live step refuses the play
  await assert.rejects(c.play('p'));
  assert.ok(await until(() => b.server.connections === 1, 3000), 'the relay started a pull');
  // the default linger is 5 s; before, the refused play held the pull until the client disconnected
  assert.ok(await until(() => b.server.connections === 0, 10_000), `the pull's upstream connection closed (B has ${b.server.connections})`);
  await sleep(1000);
  assert.equal(b.server.connections, 0, 'no pull comes back');
  assert.ok(hooks.calls('healthy') >= 2, 'on_update runs for the healthy stream');
  assert.equal(hooks.calls('p'), 0, 'no on_update for the refused play');
  assert.ok(!c.closed && !c.socket.destroyed, 'the client stays connected (the refusal is not a protocol error)');
  assert.ok(a.logs.some((l) => l.msg === 'pull relay: no players left'));
  await stillFlowing();
});

test('a play refused after the chain: no on_update timer is left running for it', { timeout: 30_000 }, async (t) => {
  const hooks = await updateServer(t);
  const config = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application live { live on; idle_streams off; on_update ${hooks.url}/update; notify_update_timeout 100ms; } } }`,
    'refused-update.conf',
  );
  const a = await startServer(t, config);
  const c = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => c.destroy());
  for (let i = 0; i < 5; i++) await assert.rejects(c.play(`nobody${i}`));
  await sleep(1000);
  assert.equal(hooks.calls(), 0, 'no on_update for refused plays');
  assert.ok(!c.closed && !c.socket.destroyed);
});

// --------------------------------------------------------------- the chain

function session(id = 'c1'): SessionInfo {
  return { id, protocol: 'rtmp', remoteAddress: '127.0.0.1', app: 'live', query: '', tcUrl: '', flashVer: '', swfUrl: '', pageUrl: '', log: silentLogger() };
}

test('AppChain: a refusal (a module, the accept step, or code after next()) gives every module that went on its done-event with refused, last first', async () => {
  const events: string[] = [];
  const mod = (name: string, behaviour: 'pass' | 'refuse' | 'refuseAfter' | 'stop'): AppModule => ({
    name,
    async play(ctx: PlayContext, next) {
      if (behaviour === 'refuse') throw new Error(`${name} refuses`);
      if (behaviour === 'stop') return;
      await next();
      if (behaviour === 'refuseAfter') throw new Error(`${name} refuses after`);
      events.push(`${name}:after`);
    },
    async publish(ctx: PublishContext, next) {
      if (behaviour === 'refuse') throw new Error(`${name} refuses`);
      await next();
    },
    playDone: (_ctx, refused) => void events.push(`${name}:playDone:${String(refused)}`),
    publishDone: (_ctx, refused) => void events.push(`${name}:publishDone:${String(refused)}`),
  });
  const playCtx = (): PlayContext => ({ session: session(), name: 's', query: '', start: -2, duration: -1 });

  await assert.rejects(new AppChain([mod('a', 'pass'), mod('b', 'pass'), mod('c', 'refuse'), mod('d', 'pass')]).play(playCtx()), /c refuses/);
  assert.deepEqual(events.splice(0), ['b:playDone:true', 'a:playDone:true'], 'c refused itself: only a and b are undone');

  await assert.rejects(
    new AppChain([mod('a', 'pass'), mod('b', 'pass')]).play(playCtx(), () => {
      throw new Error('not published');
    }),
    /not published/,
  );
  assert.deepEqual(events.splice(0), ['b:playDone:true', 'a:playDone:true'], 'the accept step refused: nothing ran after next()');

  await assert.rejects(new AppChain([mod('a', 'pass'), mod('b', 'refuseAfter'), mod('c', 'pass')]).play(playCtx()), /b refuses after/);
  assert.deepEqual(events.splice(0), ['c:after', 'c:playDone:true', 'b:playDone:true', 'a:playDone:true']);

  let accepted = 0;
  await new AppChain([mod('a', 'pass'), mod('b', 'pass')]).play(playCtx(), () => void accepted++);
  assert.equal(accepted, 1);
  assert.deepEqual(events.splice(0), ['b:after', 'a:after']);

  // a module that answers without next(): the accept step does not run, nothing is undone
  await new AppChain([mod('a', 'stop'), mod('b', 'pass')]).play(playCtx(), () => void accepted++);
  assert.equal(accepted, 1);
  assert.deepEqual(events.splice(0), []);

  const pub: PublishContext = { session: session(), name: 's', query: '', type: 'live' };
  await assert.rejects(
    new AppChain([mod('a', 'pass'), mod('b', 'pass')]).publish(pub, () => {
      throw new Error('bad name');
    }),
    /bad name/,
  );
  assert.deepEqual(events.splice(0), ['b:publishDone:true', 'a:publishDone:true']);
});

test('idle_streams off with a pull: the first play is refused, a retry finds the stream the pull published meanwhile', { timeout: 30_000 }, async (t) => {
  const b = await startServer(t);
  const pub = await publishSynthetic(`${b.url}/live`, 'p', { fps: 25, gop: 10 });
  t.after(() => pub.stop());
  // the default linger (5 s)
  const a = await startServer(t, parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; idle_streams off; pull rtmp://127.0.0.1:${b.port}/live; } } }`, 'retry.conf'));
  const first = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => first.destroy());
  await assert.rejects(first.play('p'));
  assert.ok(await until(() => a.server.hub.get('live', 'p')?.active === true, 5000), 'the pull published p while lingering');
  const player = await playCounting(`${a.url}/live`, 'p');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video >= 10, 5000));
});
