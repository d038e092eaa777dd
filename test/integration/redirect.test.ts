/**
 * rtmp_control redirect/subscriber|publisher|client with real clients: a
 * player redirected to another stream keeps its connection and receives the
 * other stream (our RTMP client counting frames, and ffmpeg decoding through
 * the switch); a redirected publisher keeps its connection and now feeds the
 * new name.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { hookServer } from '../helpers/hooks.js';
import { startServer, until, sleep, type TestServer } from '../helpers/server.js';
import { playCounting, publishSynthetic, type SyntheticPublisher } from '../helpers/synthetic.js';

async function server(t: TestContext, appExtra = ''): Promise<{ srv: TestServer; control: string }> {
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application live { live on; ${appExtra} } } }
     http { server { listen 127.0.0.1:0; location /control { rtmp_control all; allow 127.0.0.1; deny all; } } }`,
    'redirect.conf',
  );
  const srv = await startServer(t, cfg);
  const port = srv.server.http?.addresses()[0]?.port;
  assert.ok(port !== undefined);
  return { srv, control: `http://127.0.0.1:${port}/control` };
}

async function publisher(t: TestContext, url: string, name: string): Promise<SyntheticPublisher> {
  const p = await publishSynthetic(url, name, { fps: 25, gop: 10 });
  t.after(() => p.stop());
  return p;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

test('redirect/subscriber: the player keeps its connection and plays the other stream (Play.Start names it), with on_play asked again', { timeout: 30_000 }, async (t) => {
  const hooks = await hookServer(t);
  const { srv, control } = await server(t, `on_play ${hooks.url}/play;`);
  await publisher(t, `${srv.url}/live`, 'a');
  const b = await publisher(t, `${srv.url}/live`, 'b');
  const player = await playCounting(`${srv.url}/live`, 'a');
  t.after(() => player.client.destroy());
  const statuses: string[] = [];
  player.client.onStatus = (info) => statuses.push(`${String(info['code'])} ${String(info['details'] ?? '')}`);
  assert.ok(await until(() => player.video >= 10, 5000), 'plays a');

  const r = await get(`${control}/redirect/subscriber?app=live&name=a&newname=b`);
  assert.deepEqual(r, { status: 200, body: '1' });
  assert.ok(await until(() => statuses.includes('NetStream.Play.Start b'), 5000), `Play.Start for b (got ${statuses.join(', ')})`);
  assert.ok(!statuses.some((s) => s.startsWith('NetStream.Play.Stop')), 'no Play.Stop: players such as ffmpeg would stop reading');
  assert.ok(await until(() => hooks.calls.filter((c) => c.path === '/play').map((c) => c.params.get('name')).join(',') === 'a,b', 5000), 'on_play asked for a, then for b');
  // the player now reads b: stop a's publisher, frames keep coming, on the same connection
  const stream = srv.server.hub.get('live', 'a');
  assert.equal(stream?.readers.size ?? 0, 0, 'a has no reader left');
  await srv.server.hub.get('live', 'a')?.publisher?.stop('test');
  const before = player.video;
  assert.ok(await until(() => player.video >= before + 20, 5000), 'frames of b keep coming');
  assert.equal(player.client.closed, false);
  assert.ok(b.framesSent > 0);
  const snap = srv.server.snapshot().connections.find((c) => c.streams.some((s) => s.role === 'player'));
  assert.deepEqual(snap?.streams.map((s) => s.name), ['b']);
});

test('redirect/publisher: the publisher keeps its connection and now publishes the new name; players of it get the stream', { timeout: 30_000 }, async (t) => {
  const { srv, control } = await server(t);
  const pub = await publisher(t, `${srv.url}/live`, 'x');
  const waiting = await playCounting(`${srv.url}/live`, 'y');
  t.after(() => waiting.client.destroy());
  await sleep(300);
  assert.equal(waiting.video, 0);
  const r = await get(`${control}/redirect/publisher?app=live&name=x&newname=y`);
  assert.deepEqual(r, { status: 200, body: '1' });
  assert.ok(await until(() => srv.server.hub.get('live', 'y')?.active === true, 5000), 'y is published');
  assert.notEqual(srv.server.hub.get('live', 'x')?.active, true, 'x is not');
  assert.ok(await until(() => waiting.video >= 10, 5000), 'the player of y gets frames');
  assert.equal(pub.client.closed, false, 'the publisher kept its connection');
  // unknown names and a client filter on nobody switch nothing
  assert.deepEqual(await get(`${control}/redirect/publisher?app=live&name=x&newname=z`), { status: 200, body: '0' });
  assert.deepEqual(await get(`${control}/redirect/client?app=live&name=y&clientid=nobody&newname=z`), { status: 200, body: '0' });
});

test('redirect/subscriber with ffmpeg as the player: it decodes through the switch and past the end of the first stream', { timeout: 60_000 }, async (t) => {
  const { srv, control } = await server(t);
  // real H.264/AAC publishers: a for 6 s, b for 20 s
  const pubA = await runFfmpeg(publishArgs(`${srv.url}/live/a`, 6, { size: '160x120', rate: 15 }), 40_000);
  const pubB = await runFfmpeg(publishArgs(`${srv.url}/live/b`, 20, { size: '160x120', rate: 15 }), 40_000);
  t.after(() => {
    pubA.kill();
    pubB.kill();
  });
  assert.ok(await until(() => srv.server.hub.get('live', 'a')?.active === true && srv.server.hub.get('live', 'b')?.active === true, 15_000), 'both published');
  // ffmpeg plays a and decodes 9 s of it: a alone ends after 6 s
  const player = await runFfmpeg(['-i', `${srv.url}/live/a`, '-t', '9', '-f', 'null', '-'], 45_000);
  t.after(() => player.kill());
  assert.ok(await until(() => srv.server.snapshot().connections.some((c) => c.streams.some((s) => s.role === 'player' && s.name === 'a')), 15_000), 'ffmpeg plays a');
  await sleep(1500);
  assert.deepEqual(await get(`${control}/redirect/subscriber?app=live&name=a&newname=b`), { status: 200, body: '1' });
  assert.ok(await until(() => srv.server.hub.get('live', 'a')?.active !== true, 15_000), 'a has ended');
  const result = await player.done;
  assert.equal(result.code, 0, result.stderr.slice(-2000));
  // ffmpeg decoded up to its 9 s: it went on with b after a had ended
  const times = [...result.stderr.matchAll(/time=(\d+):(\d+):(\d+\.\d+)/g)].map((m) => Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]));
  const last = times[times.length - 1] ?? 0;
  assert.ok(last >= 8, `ffmpeg stopped at ${last} s`);
  const frames = [...result.stderr.matchAll(/frame=\s*(\d+)/g)].map((m) => Number(m[1]));
  assert.ok((frames[frames.length - 1] ?? 0) >= 100, `ffmpeg decoded ${frames[frames.length - 1]} frames`);
});

test('a redirect that arrives while the client has a command pending waits its turn, then switches', { timeout: 30_000 }, async (t) => {
  // on_play answers "slow" after 1.5 s, everything else at once
  const hook = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const slow = new URLSearchParams(body).get('name') === 'slow';
      setTimeout(() => res.writeHead(200).end(), slow ? 1500 : 0);
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  t.after(() => {
    hook.closeAllConnections();
    return new Promise<void>((r) => hook.close(() => r()));
  });
  const { srv, control } = await server(t, `on_play http://127.0.0.1:${(hook.address() as AddressInfo).port}/play;`);
  await publisher(t, `${srv.url}/live`, 'a');
  await publisher(t, `${srv.url}/live`, 'b');
  const player = await playCounting(`${srv.url}/live`, 'a');
  t.after(() => player.client.destroy());
  const statuses: string[] = [];
  player.client.onStatus = (info, streamId) => statuses.push(`${streamId} ${String(info['code'])} ${String(info['details'] ?? '')}`);
  // a second NetStream whose play waits on the slow webhook: the connection's commands are held meanwhile
  const slow = player.client.play('slow').catch(() => undefined);
  await sleep(300);
  assert.deepEqual(await get(`${control}/redirect/subscriber?app=live&name=a&newname=b`), { status: 200, body: '1' });
  await sleep(500);
  assert.ok(!statuses.some((s) => s.includes('Play.Start b')), 'not before the pending play is answered');
  await slow;
  assert.ok(await until(() => statuses.some((s) => s.includes('Play.Start b')), 5000), `switched after it (${statuses.join(', ')})`);
  const i = statuses.findIndex((s) => s.includes('Play.Start slow'));
  const j = statuses.findIndex((s) => s.includes('Play.Start b'));
  assert.ok(i >= 0 && i < j, 'in order');
});
