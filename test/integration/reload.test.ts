import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { freePort } from '../helpers/cli.js';
import { sleep, startServer, until, type TestServer } from '../helpers/server.js';
import { playCounting, publishSynthetic, type CountingPlayer } from '../helpers/synthetic.js';

/** Server lifecycle under a hostile or careless operator/client: reloads, per-block limits, clients leaving mid-hook. */

const refusedReload = (e: unknown): boolean => isServerError(e, ErrorCode.ConfigReload);

/** `connect` to rtmp://127.0.0.1:port/app succeeds (then closes) or rejects. */
async function connects(port: number, app: string): Promise<boolean> {
  try {
    const c = await RtmpClient.connect(`rtmp://127.0.0.1:${port}/${app}`);
    await c.close();
    return true;
  } catch {
    return false;
  }
}

/** A published stream and a player of it on `srv`, flowing. */
async function healthyStream(t: TestContext, url: string, app: string): Promise<CountingPlayer> {
  const pub = await publishSynthetic(`${url}/${app}`, 'healthy');
  t.after(() => pub.stop());
  const player = await playCounting(`${url}/${app}`, 'healthy');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video > 10), 'the healthy stream flows');
  return player;
}

async function stillFlowing(player: CountingPlayer): Promise<void> {
  const before = player.video;
  assert.ok(await until(() => player.video > before + 5, 10_000), 'the healthy stream keeps flowing');
  assert.equal(player.client.closed, false);
}

const twoBlocks = (pa: number, pb: number, extraA = ''): string => `
rtmp {
  server { listen 127.0.0.1:${pa}; application a { live on; } ${extraA} }
  server { listen 127.0.0.1:${pb}; application b { live on; } }
}`;

function ports(srv: TestServer): [number, number] {
  const [a, b] = srv.server.addresses();
  assert.ok(a !== undefined && b !== undefined);
  return [a.port, b.port];
}

test('reload: an empty configuration is refused; streams and new connections keep working', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t, parseConfigText('rtmp { server { listen 127.0.0.1:0; application live { live on; } } }', 'one.conf'));
  const player = await healthyStream(t, srv.url, 'live');
  for (const text of ['', 'rtmp { }', 'rtmp { server { application live { live on; } } }']) {
    const outcome = await (async () => srv.server.reload(parseConfigText(text, 'empty.conf')))().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(await connects(srv.port, 'live'), true, `a new client is served by the old configuration (after ${JSON.stringify(text)})`);
    assert.ok(refusedReload(outcome), `the reload to ${JSON.stringify(text)} is refused with ${ErrorCode.ConfigReload}`);
  }
  assert.ok(srv.logs.every((l) => l.msg !== 'configuration reloaded'));
  await stillFlowing(player);
});

test('reload: two server blocks swapped keep each port serving its own applications; listens added and removed', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t, parseConfigText(twoBlocks(0, 0), 'two.conf'));
  const [pa, pb] = ports(srv);
  const player = await healthyStream(t, `rtmp://127.0.0.1:${pb}`, 'b');
  // the same listens, the blocks in the other order, and a new application in a's block
  await srv.server.reload(
    parseConfigText(
      `rtmp {
        server { listen 127.0.0.1:${pb}; application b { live on; } }
        server { listen 127.0.0.1:${pa}; application a { live on; } application a2 { live on; } }
      }`,
      'swapped.conf',
    ),
  );
  assert.equal(await connects(pa, 'a'), true, 'port a serves a');
  assert.equal(await connects(pa, 'a2'), true, "port a serves a's new application");
  assert.equal(await connects(pa, 'b'), false, 'port a does not serve b');
  assert.equal(await connects(pb, 'b'), true, 'port b serves b');
  assert.equal(await connects(pb, 'a'), false, 'port b does not serve a');
  assert.deepEqual(
    srv.server.addresses().map((a) => a.port),
    [pb, pa],
  );

  // a listen already taken by someone else: the whole reload is refused, nothing changes
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
  t.after(() => squatter.close());
  const taken = (squatter.address() as AddressInfo).port;
  await assert.rejects(async () => srv.server.reload(parseConfigText(twoBlocks(pa, taken), 'taken.conf')), refusedReload);
  assert.equal(await connects(pb, 'b'), true, 'the refused reload left port b bound');
  assert.equal(await connects(pa, 'a2'), true, 'the refused reload left the configuration running');

  // port b removed, a new port c: c is bound, b stops accepting, b's running stream goes on
  const pc = await freePort();
  await srv.server.reload(parseConfigText(twoBlocks(pa, pc), 'moved.conf'));
  assert.equal(await connects(pc, 'b'), true, 'the new port serves its block');
  assert.equal(await connects(pa, 'a'), true);
  assert.equal(await connects(pb, 'b'), false, 'the removed port no longer accepts');
  await stillFlowing(player);
});

test('reload: the http block follows its listens too', { timeout: 30_000 }, async (t) => {
  const conf = (port: number): string => `rtmp { server { listen 127.0.0.1:0; application live { live on; } } }
    http { server { listen 127.0.0.1:${port}; location /stat { rtmp_stat all; } } }`;
  const srv = await startServer(t, parseConfigText(conf(0), 'http.conf'));
  const old = srv.server.http!.addresses()[0]!.port;
  assert.equal((await fetch(`http://127.0.0.1:${old}/stat`)).status, 200);
  const next = await freePort();
  await srv.server.reload(parseConfigText(conf(next), 'http2.conf'));
  assert.equal((await fetch(`http://127.0.0.1:${next}/stat`)).status, 200, 'the new http listen serves');
  await assert.rejects(fetch(`http://127.0.0.1:${old}/stat`), 'the removed http listen is closed');
  assert.equal(await connects(srv.port, 'live'), true, 'the rtmp listen (port 0, kept) still serves');
});

test('max_connections counts the sessions of its own server block only', { timeout: 30_000 }, async (t) => {
  const conf = (pa: number, pb: number): string => twoBlocks(pa, pb, 'max_connections 1;');
  const srv = await startServer(t, parseConfigText(conf(0, 0), 'limits.conf'));
  const [pa, pb] = ports(srv);
  const other = await RtmpClient.connect(`rtmp://127.0.0.1:${pb}/b`);
  t.after(() => other.destroy());
  const first = await RtmpClient.connect(`rtmp://127.0.0.1:${pa}/a`);
  t.after(() => first.destroy());
  assert.equal(await connects(pa, 'a'), false, 'a second client of the limited block is refused');
  assert.ok(srv.logs.some((l) => l.fields['code'] === ErrorCode.ConnectionLimit));
  assert.equal(await connects(pb, 'b'), true, 'the unlimited block is not limited by it');
  // a reload keeping the address keeps the count
  await srv.server.reload(parseConfigText(conf(pa, pb), 'limits2.conf'));
  assert.equal(await connects(pa, 'a'), false, 'the count survives a reload');
  first.destroy();
  assert.ok(await until(() => srv.server.connections === 1));
  assert.equal(await connects(pa, 'a'), true, 'a place freed is taken again');
});

test('a client that leaves while on_connect is pending does not keep an old configuration alive', { timeout: 30_000 }, async (t) => {
  // the webhook answers only when told to
  const waiting: http.ServerResponse[] = [];
  let status = 200;
  const hooks = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => waiting.push(res));
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  t.after(() => {
    hooks.closeAllConnections();
    hooks.close();
  });
  const hp = (hooks.address() as AddressInfo).port;
  const conf = `rtmp { server { listen 127.0.0.1:0; on_connect http://127.0.0.1:${hp}/connect; application live { live on; } } }`;
  const srv = await startServer(t, parseConfigText(conf, 'hook.conf'));
  assert.equal(srv.server.openChains, 1);

  const leaveDuringHook = async (): Promise<void> => {
    const client = RtmpClient.connect(`${srv.url}/live`).then(
      (c) => c.destroy(),
      () => undefined,
    );
    assert.ok(await until(() => waiting.length > 0), 'the on_connect call arrives');
    const id = srv.server.snapshot().connections[0]?.id;
    assert.ok(id !== undefined);
    // the client is gone before the webhook answers
    assert.equal(srv.server.dropConnection(id, 'test: the client leaves'), true);
    assert.ok(await until(() => srv.server.connections === 0));
    waiting.shift()!.writeHead(status).end();
    await client;
    await sleep(100);
  };
  await leaveDuringHook();
  status = 403;
  await leaveDuringHook();

  // the configuration those clients connected under retires: its chain closes
  await srv.server.reload(parseConfigText(conf, 'hook2.conf'));
  assert.ok(await until(() => srv.server.openChains === 1, 5000), `the old chain closed (open chains: ${srv.server.openChains})`);

  // a client that stays holds its chain across a reload, and frees it when it leaves
  status = 200;
  const pending = RtmpClient.connect(`${srv.url}/live`);
  assert.ok(await until(() => waiting.length > 0));
  waiting.shift()!.writeHead(200).end();
  const stayed = await pending;
  t.after(() => stayed.destroy());
  await srv.server.reload(parseConfigText(conf, 'hook3.conf'));
  await sleep(200);
  assert.equal(srv.server.openChains, 2, 'the connected client keeps its chain open');
  stayed.destroy();
  assert.ok(await until(() => srv.server.openChains === 1, 5000), 'and it closes when the client leaves');
});

test('a client accepted before a reload and connecting after it gets the configuration of now', { timeout: 30_000 }, async (t) => {
  const conf = (app: string): string => `rtmp { server { listen 127.0.0.1:0; application ${app} { live on; } } }`;
  const srv = await startServer(t, parseConfigText(conf('old'), 'old.conf'));
  // a TCP relay that opens the server connection at once but holds the client's bytes until released
  let release = (): void => {};
  const held = new Promise<void>((r) => (release = r));
  const relay = net.createServer((client) => {
    const upstream = net.connect(srv.port, '127.0.0.1');
    client.pause();
    void held.then(() => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  t.after(() => relay.close());
  const rp = (relay.address() as AddressInfo).port;
  const attempt = (app: string): Promise<boolean> =>
    RtmpClient.connect(`rtmp://127.0.0.1:${rp}/${app}`).then(
      async (c) => {
        await c.close();
        return true;
      },
      () => false,
    );
  const toOld = attempt('old');
  const toNew = attempt('new');
  assert.ok(await until(() => srv.server.connections === 2), 'both clients are accepted before the reload');
  await srv.server.reload(parseConfigText(conf('new'), 'new.conf'));
  release();
  assert.equal(await toNew, true, 'the application of the new configuration');
  assert.equal(await toOld, false, 'not an application the reload removed');
  assert.ok(await until(() => srv.server.openChains === 1, 5000), 'the old configuration closed');
});
