import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { ErrorCode } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { sleep, startServer, until, type TestServer } from '../helpers/server.js';

/**
 * Issue 13 (http): allow/deny in http blocks, rtmp_control sections, cross-site
 * control requests, the connection cap and the header timeout, against a real
 * server (RTMP and HTTP on 127.0.0.1, ports chosen by the system).
 */

interface Started extends TestServer {
  readonly base: string;
  readonly httpPort: number;
}

async function start(t: TestContext, httpBody: string, rtmpExtra = ''): Promise<Started> {
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; ${rtmpExtra} application live { live on; } } }\nhttp {\n${httpBody}\n}`,
    'protect.conf',
  );
  const srv = await startServer(t, cfg);
  const httpPort = srv.server.http?.addresses()[0]?.port;
  assert.ok(httpPort !== undefined, 'the http server listens');
  return { ...srv, base: `http://127.0.0.1:${httpPort}`, httpPort };
}

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** A GET with exactly these headers (fetch() would add its own). */
function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function publisher(t: TestContext, srv: TestServer, name: string): Promise<RtmpClient> {
  const c = await RtmpClient.connect(`${srv.url}/live`);
  t.after(() => c.destroy());
  await c.publish(name);
  return c;
}

function publishing(srv: TestServer, name: string): boolean {
  return srv.server.snapshot().connections.some((c) => c.streams.some((s) => s.name === name && s.role === 'publisher'));
}

test('http allow/deny on a control location: a denied address gets 403 and drops nothing, an allowed one drops', async (t) => {
  const srv = await start(
    t,
    `server {
      listen 127.0.0.1:0;
      location /denied { rtmp_control all; deny 127.0.0.1; allow all; }
      location /control { rtmp_control all; allow 127.0.0.1; allow ::1; deny all; }
    }`,
  );
  await publisher(t, srv, 'cam');
  assert.ok(publishing(srv, 'cam'));
  const denied = await get(`${srv.base}/denied/drop/publisher?app=live&name=cam`);
  assert.equal(denied.status, 403);
  await sleep(200);
  assert.ok(publishing(srv, 'cam'), 'a refused request dropped nothing');
  const refusals = srv.logs.filter((e) => e.fields['code'] === ErrorCode.HttpForbidden);
  assert.equal(refusals.length, 1, 'one log line per refused request');
  assert.match(refusals[0]!.msg, /deny 127\.0\.0\.1/);
  const allowed = await get(`${srv.base}/control/drop/publisher?app=live&name=cam`);
  assert.deepEqual(allowed, { status: 200, body: '1' });
  assert.ok(await until(() => !publishing(srv, 'cam')), 'the allowed request dropped the publisher');
});

test('allow/deny inherit from the server block when a location has none, and cover unmatched URIs', async (t) => {
  const srv = await start(
    t,
    `deny all;
    server {
      listen 127.0.0.1:0;
      deny 127.0.0.0/8;
      allow all;
      location /stat { rtmp_stat all; }
      location /open { rtmp_stat all; allow 127.0.0.1; }
    }`,
  );
  await publisher(t, srv, 'secret-key');
  const stat = await get(`${srv.base}/stat`);
  assert.equal(stat.status, 403, 'stat behind the server\'s deny');
  assert.doesNotMatch(stat.body, /secret-key/);
  assert.equal((await get(`${srv.base}/nothing-here`)).status, 403, 'no location: the server\'s rules');
  const open = await get(`${srv.base}/open`);
  assert.equal(open.status, 200, 'a location with its own rules does not inherit the outer ones');
  assert.match(open.body, /secret-key/);
});

test('rtmp_stat modes: global shows no stream names, live no client addresses, all both', async (t) => {
  const srv = await start(
    t,
    `server {
      listen 127.0.0.1:0;
      location /global { rtmp_stat global; }
      location /live { rtmp_stat live; }
      location /all { rtmp_stat all; }
    }`,
  );
  await publisher(t, srv, 'secret-key');
  const global = await get(`${srv.base}/global`);
  assert.equal(global.status, 200);
  assert.match(global.body, /<uptime>/);
  assert.doesNotMatch(global.body, /secret-key/);
  const live = await get(`${srv.base}/live`);
  assert.match(live.body, /<name>secret-key<\/name>/);
  assert.doesNotMatch(live.body, /<client>/);
  const all = await get(`${srv.base}/all?format=json`);
  assert.match(all.body, /secret-key/);
  assert.match(all.body, /"address": "127\.0\.0\.1"/);
});

test('rtmp_control record; does not serve drop (404), and drops nothing', async (t) => {
  const srv = await start(
    t,
    `server {
      listen 127.0.0.1:0;
      location /control { rtmp_control record; }
      location /dropper { rtmp_control drop; }
    }`,
  );
  await publisher(t, srv, 'cam');
  const r = await get(`${srv.base}/control/drop/publisher?app=live&name=cam`);
  assert.equal(r.status, 404);
  await sleep(200);
  assert.ok(publishing(srv, 'cam'), 'drop is not served by rtmp_control record');
  assert.equal((await get(`${srv.base}/control/record/start?app=live&name=cam&rec=r`)).status, 204, 'record is served (no such recorder: 204, as nginx-rtmp)');
  assert.equal((await get(`${srv.base}/dropper/record/start?app=live&name=cam&rec=r`)).status, 404);
  assert.deepEqual(await get(`${srv.base}/dropper/drop/publisher?app=live&name=cam`), { status: 200, body: '1' });
});

test('control requests from another site\'s page are refused with 403; same-origin and tool requests are served', async (t) => {
  const srv = await start(t, 'server { listen 127.0.0.1:0; location /control { rtmp_control all; } }');
  await publisher(t, srv, 'cam');
  const url = `${srv.base}/control/drop/publisher?app=live&name=cam`;
  const foreign: Record<string, string>[] = [
    { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' },
    { 'Sec-Fetch-Site': 'same-site' },
    { Origin: 'http://evil.example' },
    { Origin: 'null' },
    { Origin: `http://127.0.0.1:${srv.httpPort + 1}` },
    { Referer: 'http://evil.example/page.html' },
  ];
  for (const headers of foreign) {
    const r = await get(url, headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
  }
  await sleep(200);
  assert.ok(publishing(srv, 'cam'), 'no cross-site request dropped anything');
  assert.equal(srv.logs.filter((e) => e.fields['code'] === ErrorCode.HttpForbidden).length, foreign.length);
  // typed in the address bar (Sec-Fetch-Site: none), from the server's own page, or from curl: served
  const own = await get(url, { 'Sec-Fetch-Site': 'same-origin', Origin: srv.base, Referer: `${srv.base}/stat` });
  assert.deepEqual(own, { status: 200, body: '1' });
  await publisher(t, srv, 'cam2');
  assert.deepEqual(await get(`${srv.base}/control/drop/publisher?app=live&name=cam2`, { 'Sec-Fetch-Site': 'none' }), { status: 200, body: '1' });
});

/** A raw connection to the http server; resolves with what it received once the server closed it. */
function rawConnection(port: number): { socket: net.Socket; closed: Promise<string>; connected: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  let got = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (got += d));
  socket.on('error', () => undefined);
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(got)));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed, connected };
}

test('max_connections caps open http connections: the next one gets 503 and is closed, one log line for a burst', async (t) => {
  const srv = await start(t, 'max_connections 3;\nserver { listen 127.0.0.1:0; location /stat { rtmp_stat all; } }');
  const holders = [0, 1, 2].map(() => rawConnection(srv.httpPort));
  t.after(() => holders.forEach((h) => h.socket.destroy()));
  await Promise.all(holders.map((h) => h.connected));
  assert.ok(await until(() => srv.server.http?.connectionCount() === 3), 'three connections held');
  const over = [0, 1, 2, 3].map(() => rawConnection(srv.httpPort));
  t.after(() => over.forEach((h) => h.socket.destroy()));
  const answers = await Promise.race([Promise.all(over.map((h) => h.closed)), sleep(10_000).then(() => undefined)]);
  assert.ok(answers !== undefined, 'connections over the cap are closed by the server');
  for (const a of answers) assert.match(a, /^HTTP\/1\.1 503 /);
  const lines = srv.logs.filter((e) => e.fields['code'] === ErrorCode.HttpConnectionLimit);
  assert.equal(lines.length, 1, 'one log line for the burst');
  assert.equal(srv.server.http?.connectionCount(), 3);
  // a slot freed is a slot served
  holders[0]!.socket.destroy();
  assert.ok(await until(() => srv.server.http?.connectionCount() === 2));
  assert.equal((await get(`${srv.base}/stat`)).status, 200);
  // RTMP is not affected by the HTTP cap
  await publisher(t, srv, 'beside');
});

test('client_header_timeout closes a client that trickles its headers; a healthy request beside it is served', async (t) => {
  const srv = await start(t, 'client_header_timeout 1s;\nsend_timeout 30s;\nserver { listen 127.0.0.1:0; location /stat { rtmp_stat all; } }');
  const slow = rawConnection(srv.httpPort);
  t.after(() => slow.socket.destroy());
  await slow.connected;
  slow.socket.write('GET /stat HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => slow.socket.write('X-A: b\r\n'), 200);
  t.after(() => clearInterval(trickle));
  const started = Date.now();
  assert.equal((await get(`${srv.base}/stat`)).status, 200, 'served beside the slow client');
  const got = await Promise.race([slow.closed, sleep(15_000).then(() => undefined)]);
  clearInterval(trickle);
  assert.ok(got !== undefined, 'the trickling client is closed');
  assert.match(got, /^HTTP\/1\.1 408 /);
  assert.ok(Date.now() - started < 10_000);
});

test('send_timeout closes a connection that sends nothing', async (t) => {
  const srv = await start(t, 'send_timeout 1s;\nserver { listen 127.0.0.1:0; location /stat { rtmp_stat all; } }');
  const idle = rawConnection(srv.httpPort);
  t.after(() => idle.socket.destroy());
  await idle.connected;
  const done = await Promise.race([idle.closed.then(() => true), sleep(15_000).then(() => false)]);
  assert.ok(done, 'the silent client is closed');
});

test('without max_connections the http server still caps connections at 1024', async (t) => {
  const srv = await start(t, 'server { listen 127.0.0.1:0; location /stat { rtmp_stat all; } }');
  const holders: ReturnType<typeof rawConnection>[] = [];
  t.after(() => holders.forEach((h) => h.socket.destroy()));
  for (let i = 0; i < 1024; i += 64) {
    const batch = Array.from({ length: 64 }, () => rawConnection(srv.httpPort));
    holders.push(...batch);
    await Promise.all(batch.map((h) => h.connected));
  }
  // (written so that it also runs against a server without connectionCount(): it then only waits a moment)
  const count = (): number | undefined => (srv.server.http as { connectionCount?: () => number } | undefined)?.connectionCount?.();
  assert.ok(await until(() => (count() ?? 1024) === 1024, 20_000), 'the server holds 1024 connections');
  await sleep(100);
  const over = rawConnection(srv.httpPort);
  t.after(() => over.socket.destroy());
  const answer = await Promise.race([over.closed, sleep(10_000).then(() => undefined)]);
  assert.ok(answer !== undefined, 'the 1025th connection is closed by the server');
  assert.match(answer, /^HTTP\/1\.1 503 /);
  assert.equal(srv.logs.filter((e) => e.fields['code'] === ErrorCode.HttpConnectionLimit).length, 1);
});
