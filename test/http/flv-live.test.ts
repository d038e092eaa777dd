import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { parseConfigText } from '../../src/config/load.js';
import type { ServerConfig } from '../../src/config/types.js';
import { websocketAccept } from '../../src/http/websocket.js';
import { flvTarget } from '../../src/http/flv-live.js';
import { publishSynthetic } from '../helpers/synthetic.js';
import { hookServer } from '../helpers/hooks.js';
import { sleep, startServer, until, type TestServer } from '../helpers/server.js';

const LOCAL = { host: '127.0.0.1', port: 0, proxyProtocol: false } as const;

/** A server whose http block has a flv_live location at `/` (with a CORS header), /metrics and /stat. */
function config(appExtra = '', httpExtra = ''): ServerConfig {
  const text = `
rtmp { server { listen 1935; application live { live on; ${appExtra} } } }
http { ${httpExtra} server { listen 8080;
  location / { flv_live on; add_header Access-Control-Allow-Origin *; }
  location /metrics { metrics; }
  location /stat { rtmp_stat all; rtmp_stat_stylesheet /stat.xsl; }
  location /control { rtmp_control all; }
} }`;
  const cfg = parseConfigText(text, 'test.conf');
  return { ...cfg, rtmp: cfg.rtmp.map((s) => ({ ...s, listen: [LOCAL] })), http: cfg.http.map((h) => ({ ...h, listen: [LOCAL] })) };
}

function httpPort(s: TestServer): number {
  const a = s.server.http?.addresses()[0];
  assert.ok(a !== undefined);
  return a.port;
}

interface FlvTag {
  type: number;
  timestamp: number;
  data: Buffer;
}

/** Parses an FLV byte stream as far as it goes; throws on a broken one. */
function parseFlv(buf: Buffer): { flags: number; tags: FlvTag[] } {
  assert.equal(buf.subarray(0, 3).toString('latin1'), 'FLV');
  const flags = buf[4]!;
  let off = 13;
  const tags: FlvTag[] = [];
  while (off + 11 <= buf.length) {
    const type = buf[off]!;
    const size = buf.readUIntBE(off + 1, 3);
    const timestamp = buf.readUIntBE(off + 4, 3) | (buf[off + 7]! << 24);
    if (off + 11 + size + 4 > buf.length) break;
    assert.ok(type === 8 || type === 9 || type === 18, `tag type ${type}`);
    tags.push({ type, timestamp, data: buf.subarray(off + 11, off + 11 + size) });
    assert.equal(buf.readUInt32BE(off + 11 + size), size + 11, 'PreviousTagSize');
    off += 11 + size + 4;
  }
  return { flags, tags };
}

interface FlvGet {
  res: http.IncomingMessage;
  bytes(): Buffer;
  close(): void;
}

function getFlv(port: number, path: string): Promise<FlvGet> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', () => undefined);
      resolve({ res, bytes: () => Buffer.concat(chunks), close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

function request(port: number, path: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function withPublisher(t: TestContext, s: TestServer, name = 'cam'): Promise<void> {
  const pub = await publishSynthetic(`${s.url}/live`, name, { fps: 25, gop: 25, frameSize: 3000 });
  t.after(() => pub.stop());
  assert.ok(await until(() => s.server.snapshot().streams.some((x) => x.name === name && x.active)));
}

test('flvTarget: APP and NAME are the last two segments of a .flv path', () => {
  assert.deepEqual(flvTarget('/live/cam.flv'), { app: 'live', name: 'cam' });
  assert.deepEqual(flvTarget('/flv/live/cam.flv'), { app: 'live', name: 'cam' });
  assert.deepEqual(flvTarget('/live/cam.v2.flv'), { app: 'live', name: 'cam.v2' });
  for (const bad of ['/cam.flv', '/live/.flv', '/live/cam', '/live/cam.flv/', '/.flv', '', '/live/cam.FLV']) assert.equal(flvTarget(bad), undefined, bad);
});

test('HTTP-FLV: FLV header, metadata, codec headers, then media from a keyframe; CORS header; the player leaves on disconnect', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  await withPublisher(t, s);
  await sleep(300);
  const g = await getFlv(port, '/live/cam.flv?token=abc');
  assert.equal(g.res.statusCode, 200);
  assert.equal(g.res.headers['content-type'], 'video/x-flv');
  assert.equal(g.res.headers['access-control-allow-origin'], '*');
  assert.ok(await until(() => g.bytes().length > 30_000));
  const flv = parseFlv(g.bytes());
  assert.equal(flv.flags, 5, 'audio and video');
  assert.equal(flv.tags[0]?.type, 18, 'metadata first');
  const video = flv.tags.filter((x) => x.type === 9);
  assert.equal(video[0]?.data[1], 0, 'AVC sequence header first');
  assert.equal(video[1]?.data[0], 0x17, 'then a keyframe');
  assert.ok(flv.tags.some((x) => x.type === 8 && x.data[1] === 0), 'AAC header');
  const snap = s.server.snapshot();
  const player = snap.connections.find((c) => c.protocol === 'http-flv');
  assert.ok(player !== undefined, 'listed as a connection');
  assert.deepEqual(player.streams.map((x) => x.name), ['cam']);
  g.close();
  assert.ok(await until(() => !s.server.snapshot().connections.some((c) => c.protocol === 'http-flv')), 'gone after the disconnect');
  assert.ok(await until(() => s.server.snapshot().streams.find((x) => x.name === 'cam')?.readers === 0), 'reader unsubscribed');
});

test('HTTP-FLV: a player outlives client_header_timeout and send_timeout (its writes bypass Node\'s socket timers)', async (t) => {
  const s = await startServer(t, config('', 'client_header_timeout 1s; send_timeout 1s;'));
  const port = httpPort(s);
  await withPublisher(t, s);
  const g = await getFlv(port, '/live/cam.flv');
  t.after(() => g.close());
  await sleep(2500);
  const before = g.bytes().length;
  await sleep(500);
  assert.ok(g.bytes().length > before, 'still receiving after 3 s');
  assert.ok(s.server.snapshot().connections.some((c) => c.protocol === 'http-flv'));
});

test('HTTP-FLV: 404 for an unknown application or stream, HEAD, 405 for POST', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  assert.equal((await request(port, '/nope/cam.flv')).status, 404);
  assert.equal((await request(port, '/live/nobody.flv')).status, 404);
  assert.equal((await request(port, '/live/')).status, 404);
  await withPublisher(t, s);
  const head = await request(port, '/live/cam.flv', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-type'], 'video/x-flv');
  assert.equal(head.body, '');
  assert.equal((await request(port, '/live/cam.flv', 'POST')).status, 405);
  const preflight = await request(port, '/live/cam.flv', 'OPTIONS');
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], '*');
  assert.equal(s.server.snapshot().streams.find((x) => x.name === 'cam')?.readers, 0, 'HEAD plays nothing');
});

test('HTTP-FLV: the response ends when the publisher leaves', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  const pub = await publishSynthetic(`${s.url}/live`, 'cam', { fps: 25 });
  t.after(() => pub.stop());
  assert.ok(await until(() => s.server.snapshot().streams.some((x) => x.active)));
  const g = await getFlv(port, '/live/cam.flv');
  const ended = new Promise<void>((r) => g.res.on('end', () => r()));
  await sleep(300);
  await pub.stop();
  await Promise.race([ended, sleep(5000).then(() => assert.fail('response did not end'))]);
  parseFlv(g.bytes());
});

test('HTTP-FLV goes through the chain: on_play gets the query and protocol, a refusal is 403, on_play_done fires', async (t) => {
  const hooks = await hookServer(t, (c) => (c.params.get('token') === 'bad' ? 403 : 200));
  const s = await startServer(t, config(`on_play ${hooks.url}/play; on_play_done ${hooks.url}/done;`));
  const port = httpPort(s);
  await withPublisher(t, s);
  assert.equal((await request(port, '/live/cam.flv?token=bad')).status, 403);
  const g = await getFlv(port, '/live/cam.flv?token=good');
  assert.equal(g.res.statusCode, 200);
  const play = hooks.calls.find((c) => c.path === '/play' && c.params.get('token') === 'good');
  assert.ok(play !== undefined);
  assert.equal(play.params.get('name'), 'cam');
  assert.equal(play.params.get('app'), 'live');
  g.close();
  assert.ok(await until(() => hooks.calls.some((c) => c.path === '/done' && c.params.get('token') === 'good')));
});

test('the control API drops HTTP-FLV and WebSocket-FLV players like RTMP subscribers', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  await withPublisher(t, s);
  const g = await getFlv(port, '/live/cam.flv');
  const ended = new Promise<void>((r) => g.res.on('close', () => r()));
  const ws = await wsConnect(port, '/live/cam.flv');
  t.after(() => ws.sock.destroy());
  const wsClosed = new Promise<void>((r) => ws.sock.once('close', () => r()));
  assert.ok(await until(() => s.server.snapshot().connections.filter((c) => c.protocol !== undefined).length === 2));
  const r = await request(port, '/control/drop/subscriber?app=live&name=cam');
  assert.equal(r.status, 200);
  assert.equal(r.body, '2');
  await Promise.race([Promise.all([ended, wsClosed]), sleep(5000).then(() => assert.fail('not dropped'))]);
  assert.ok(await until(() => s.server.snapshot().connections.every((c) => c.protocol === undefined)));
});

test('HTTP-FLV: access rules of the application apply (deny play)', async (t) => {
  const s = await startServer(t, config('deny play all;'));
  const port = httpPort(s);
  await withPublisher(t, s);
  assert.equal((await request(port, '/live/cam.flv')).status, 403);
});

test('HTTP-FLV: a reader that stops reading drops to the next keyframe, then resumes on one', async (t) => {
  // a small player bound: out_queue 16 chunks of 4096 = 256 KiB (the minimum)
  const s = await startServer(t, config());
  const port = httpPort(s);
  const pub = await publishSynthetic(`${s.url}/live`, 'cam', { fps: 50, gop: 10, frameSize: 60_000 });
  t.after(() => pub.stop());
  assert.ok(await until(() => s.server.snapshot().streams.some((x) => x.active)));
  // a raw socket with a tiny receive window that we do not read for a while
  const sock = net.connect({ host: '127.0.0.1', port });
  t.after(() => sock.destroy());
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write('GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n');
  sock.pause();
  assert.ok(await until(() => (s.server.snapshot().connections.find((c) => c.protocol === 'http-flv')?.dropped ?? 0) > 0, 15_000), 'the slow player dropped frames');
  assert.ok(s.logs.some((e) => /slow player/.test(e.msg)));
  // read again: what comes is a valid FLV stream; after the drop, video resumes on a keyframe
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  sock.resume();
  await sleep(1500);
  const all = Buffer.concat(chunks);
  const bodyAt = all.indexOf('\r\n\r\n') + 4;
  const flv = parseFlv(all.subarray(bodyAt));
  const video = flv.tags.filter((x) => x.type === 9 && x.data[1] === 1);
  assert.ok(video.length > 10);
  // frames are 20 ms apart: a gap of more than one frame is a drop, and the frame after it must be a keyframe
  let gaps = 0;
  for (let i = 1; i < video.length; i++) {
    if (video[i]!.timestamp - video[i - 1]!.timestamp > 25) {
      gaps++;
      assert.equal(video[i]!.data[0], 0x17, `frame after a gap at ${video[i]!.timestamp} is a keyframe`);
    }
  }
  assert.ok(gaps > 0, 'a gap was seen');
});

/** A raw WebSocket client: the upgrade, then frames. */
async function wsConnect(port: number, path: string): Promise<{ sock: net.Socket; head: string; data: () => Buffer }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const key = randomBytes(16).toString('base64');
  sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
  assert.ok(await until(() => buf.includes('\r\n\r\n')));
  const end = buf.indexOf('\r\n\r\n') + 4;
  const head = buf.subarray(0, end).toString('latin1');
  if (head.startsWith('HTTP/1.1 101')) assert.ok(head.includes(`Sec-WebSocket-Accept: ${websocketAccept(key)}`));
  return { sock, head, data: () => buf.subarray(end) };
}

/** Server frames (unmasked) as far as they go. */
function wsFrames(buf: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = [];
  let off = 0;
  while (off + 2 <= buf.length) {
    assert.equal(buf[off + 1]! & 0x80, 0, 'server frames are not masked');
    let len = buf[off + 1]! & 0x7f;
    let h = 2;
    if (len === 126) {
      if (off + 4 > buf.length) break;
      len = buf.readUInt16BE(off + 2);
      h = 4;
    } else if (len === 127) {
      if (off + 10 > buf.length) break;
      len = buf.readUInt32BE(off + 6);
      h = 10;
    }
    if (off + h + len > buf.length) break;
    out.push({ opcode: buf[off]! & 0x0f, payload: buf.subarray(off + h, off + h + len) });
    off += h + len;
  }
  return out;
}

function masked(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, body]);
}

test('WebSocket-FLV: 101 with the accept key, binary frames carrying FLV, ping → pong, close → close', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  await withPublisher(t, s);
  const ws = await wsConnect(port, '/live/cam.flv');
  t.after(() => ws.sock.destroy());
  assert.match(ws.head, /^HTTP\/1\.1 101/);
  assert.match(ws.head, /Access-Control-Allow-Origin: \*/);
  assert.ok(await until(() => wsFrames(ws.data()).length > 20));
  const frames = wsFrames(ws.data());
  assert.ok(frames.every((f) => f.opcode === 2), 'binary frames');
  const flv = parseFlv(Buffer.concat(frames.map((f) => f.payload)));
  assert.equal(flv.tags[0]?.type, 18);
  assert.ok(s.server.snapshot().connections.some((c) => c.protocol === 'ws-flv'));
  ws.sock.write(masked(0x9, Buffer.from('hi')));
  assert.ok(await until(() => wsFrames(ws.data()).some((f) => f.opcode === 0xa && f.payload.toString() === 'hi')), 'pong');
  // a text frame from the client is read and discarded
  ws.sock.write(masked(0x1, Buffer.from('hello server')));
  const closed = new Promise<void>((r) => ws.sock.once('close', () => r()));
  ws.sock.write(masked(0x8, Buffer.from([0x03, 0xe8])));
  await Promise.race([closed, sleep(5000).then(() => assert.fail('not closed'))]);
  assert.ok(wsFrames(ws.data()).some((f) => f.opcode === 0x8), 'close frame');
  assert.ok(await until(() => !s.server.snapshot().connections.some((c) => c.protocol === 'ws-flv')));
});

test('WebSocket-FLV: a bad upgrade is 400, an unknown stream 404, an unmasked client frame closes with 1002', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  const bad = net.connect({ host: '127.0.0.1', port });
  t.after(() => bad.destroy());
  await new Promise<void>((r) => bad.once('connect', () => r()));
  let reply = '';
  bad.setEncoding('latin1').on('data', (d: string) => (reply += d));
  bad.write('GET /live/cam.flv HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n');
  assert.ok(await until(() => reply.includes('\r\n\r\n')));
  assert.match(reply, /^HTTP\/1\.1 400/);
  const missing = await wsConnect(port, '/live/nobody.flv');
  t.after(() => missing.sock.destroy());
  assert.match(missing.head, /^HTTP\/1\.1 404/);
  await withPublisher(t, s);
  const ws = await wsConnect(port, '/live/cam.flv');
  t.after(() => ws.sock.destroy());
  assert.match(ws.head, /^HTTP\/1\.1 101/);
  const closed = new Promise<void>((r) => ws.sock.once('close', () => r()));
  ws.sock.write(Buffer.from([0x89, 0x00]));
  await Promise.race([closed, sleep(5000).then(() => assert.fail('not closed'))]);
  const close = wsFrames(ws.data()).find((f) => f.opcode === 0x8);
  assert.equal(close?.payload.readUInt16BE(0), 1002);
});
