/**
 * Issue 13, conn area: hostile clients against the connection layer (client
 * strings, the command backlog, the output queue, chunk streams, aggregates).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { encodeAmf0 } from '../../src/rtmp/amf0.js';
import { ChunkDecoder, encodeMessage } from '../../src/rtmp/chunk.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { commandMessage } from '../../src/rtmp/commands.js';
import { userControlMessage } from '../../src/rtmp/control.js';
import { logText, MAX_CLIENT_STRING } from '../../src/rtmp/connection.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { loopbackDefault, startServer, until, type TestServer } from '../helpers/server.js';
import { aggregateTag, closed, flood, handshaken, healthyStream, logged, loopProbe, stillFlowing } from '../helpers/attack-conn.js';

const MiB = 1024 * 1024;

function connectMessage(object: Record<string, string>): Buffer {
  return encodeMessage({ csid: 3, type: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload: encodeAmf0(['connect', 1, object]) }, 128);
}

/** Every log line's string fields are short: no client text of kilobytes. */
function logsAreShort(srv: TestServer): void {
  for (const l of srv.logs) {
    for (const [k, v] of Object.entries(l.fields)) {
      if (typeof v === 'string') assert.ok(v.length <= 400, `log field ${k} of "${l.msg}" is ${v.length} characters`);
      if (Array.isArray(v)) for (const x of v) assert.ok(String(x).length <= 400, `log field ${k} of "${l.msg}" holds a long string`);
    }
  }
}

test('item 2: connect with app "a" + 160 000 slashes + "b" is refused at once; the loop is not blocked; the stream beside flows', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port);
  const probe = loopProbe(t);
  const t0 = Date.now();
  s.write(connectMessage({ app: 'a' + '/'.repeat(160_000) + 'b', tcUrl: 'rtmp://127.0.0.1/live' }));
  assert.ok(await closed(s, 20_000), 'the attacker is cut off');
  const took = Date.now() - t0;
  assert.ok(await until(() => logged(srv, ErrorCode.StringTooLong)), 'refused with ERR_RTMP_STRING_TOO_LONG');
  probe.stop();
  // the quadratic regex blocked the loop for ~12 s on a quiet machine; the check is linear
  t.diagnostic(`refused after ${took} ms; largest timer delay ${probe.maxDelay} ms`);
  assert.ok(probe.maxDelay < 1500, `event loop blocked for ${probe.maxDelay} ms`);
  assert.ok(took < 5000, `refusal took ${took} ms`);
  await stillFlowing(player);
  logsAreShort(srv);
});

test('item 2: an over-long stream name in publish or play is refused with a coded error; logs stay short', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const long = 'x'.repeat(MAX_CLIENT_STRING + 1);
  const pub = await RtmpClient.connect(srv.url + '/live');
  t.after(() => pub.destroy());
  await assert.rejects(pub.publish(long));
  assert.ok(await until(() => pub.closed), 'the publisher is cut off');
  const player = await RtmpClient.connect(srv.url + '/live');
  t.after(() => player.destroy());
  await assert.rejects(player.play('ok?' + long));
  assert.ok(await until(() => player.closed), 'the player is cut off');
  assert.ok(await until(() => srv.logs.filter((l) => l.fields['code'] === ErrorCode.StringTooLong).length >= 2));
  // a name just below the bound is no string-length problem (the name check refuses it: too long for a name)
  const ok = await RtmpClient.connect(srv.url + '/live');
  t.after(() => ok.destroy());
  await assert.rejects(ok.publish('y'.repeat(MAX_CLIENT_STRING)), /BadName|Publish/);
  assert.equal(ok.closed, false);
  logsAreShort(srv);
  assert.equal(logText('z'.repeat(10_000)).length < 200, true);
});

/** A webhook backend that accepts and never answers. */
async function silentHook(t: TestContext): Promise<string> {
  const server = http.createServer(() => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function hookedServer(t: TestContext): Promise<TestServer> {
  const hook = await silentHook(t);
  const cfg = parseConfigText(
    `rtmp {
  server {
    listen 127.0.0.1:0;
    application live {
      live on;
    }
    application hooked {
      live on;
      on_publish ${hook}/publish;
    }
  }
}
`,
    'hostile-conn.conf',
  );
  return startServer(t, cfg);
}

test('item 3: small messages sent while a webhook is pending: cut off with a coded error, memory bounded, the stream beside flows', { timeout: 90_000 }, async (t) => {
  const srv = await hookedServer(t);
  const player = await healthyStream(t, srv);
  const c = await RtmpClient.connect(srv.url + '/hooked');
  t.after(() => c.destroy());
  const id = await c.createStream();
  c.send(commandMessage(id, 'publish', 0, null, 'stuck', 'live'));
  await until(() => false, 300); // the publish reaches the server and waits for the webhook
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  // a type 0 header of a 64-byte command message on chunk stream 40, then type 3 headers: one small message each.
  // Each costs its bytes + 256 in the 8 MiB backlog: ~26 000 fill it, under the message rate limit's 30 000 burst
  // (a flood of empty messages meets that limit first: the next test)
  c.socket.write(Buffer.concat([Buffer.from([40, 0, 0, 0, 0, 0, 64, MessageType.CommandAmf0, 0, 0, 0, 0]), Buffer.alloc(64)]));
  const probe = loopProbe(t);
  await flood(c.socket, Buffer.concat([Buffer.from([0xc0 | 40]), Buffer.alloc(64)]), 40_000 * 65);
  assert.ok(await until(() => c.closed || c.socket.destroyed, 20_000), 'the flooding client is cut off');
  assert.ok(await until(() => logged(srv, ErrorCode.BacklogOverflow)), 'ERR_RTMP_BACKLOG_OVERFLOW logged');
  const grown = (process.memoryUsage().rss - rss0) / MiB;
  probe.stop();
  // unbounded, 400 KB of headers queued ~140 MiB of message objects
  t.diagnostic(`RSS grew by ${grown.toFixed(1)} MiB; largest timer delay ${probe.maxDelay} ms`);
  assert.ok(grown < 64, `RSS grew by ${grown.toFixed(1)} MiB`);
  assert.ok(probe.maxDelay < 2000, `event loop blocked for ${probe.maxDelay} ms`);
  await stillFlowing(player);
});

test('item 3: media for a NetStream that is not publishing never enters the backlog', { timeout: 90_000 }, async (t) => {
  const srv = await hookedServer(t);
  const c = await RtmpClient.connect(srv.url + '/hooked');
  t.after(() => c.destroy());
  const id = await c.createStream();
  const other = await c.createStream();
  c.send(commandMessage(id, 'publish', 0, null, 'stuck2', 'live'));
  await until(() => false, 300);
  // 12 MB of audio on a NetStream that does not publish, more than the 8 MiB backlog: dropped, not queued
  const audio = encodeMessage({ csid: 6, type: MessageType.Audio, streamId: other, timestamp: 0, payload: Buffer.alloc(4000, 0xaf) }, 4096);
  await flood(c.socket, audio, 12 * MiB);
  await until(() => false, 500);
  assert.equal(c.closed, false, 'the client is not cut off for media that was dropped');
  assert.equal(logged(srv, ErrorCode.BacklogOverflow) || logged(srv, ErrorCode.ProtocolViolation), false);
});

test('item 4: a client that sends unknown commands and never reads is cut off; the stream beside flows', { timeout: 120_000 }, async (t) => {
  // max_message 1m: the output cap is its floor, 16 MiB (players drop frames past 1 MiB)
  const srv = await startServer(t, loopbackDefault(() => ({ maxMessage: MiB })));
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port, { paused: true });
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  // the first command with a full header, then type 3 headers: each 15-byte message gets a ~120-byte _error back;
  // paced below the message rate limit (10 000 a second, 30 000 at once), so that the output cap is what cuts it
  const body = encodeAmf0(['x', 1, null]);
  const first = encodeMessage({ csid: 3, type: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload: body }, 128);
  s.write(first);
  const unit = Buffer.concat([Buffer.from([0xc3]), body]);
  let sent = await flood(s, unit, 25_000 * unit.length);
  for (let i = 0; i < 30 && !s.destroyed; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    sent += await flood(s, unit, 8_000 * unit.length);
  }
  assert.ok(await closed(s, 30_000), `the client that never reads is cut off (${sent} bytes sent)`);
  assert.ok(await until(() => logged(srv, ErrorCode.OutputOverflow)), 'ERR_RTMP_OUTPUT_OVERFLOW logged');
  await until(() => false, 200);
  global.gc?.();
  const grown = (process.memoryUsage().rss - rss0) / MiB;
  // the 16 MiB cap counts each small reply as its bytes + 128: a few MiB of replies at most wait when it is cut
  t.diagnostic(`${sent} bytes sent; RSS grew by ${grown.toFixed(1)} MiB`);
  assert.ok(grown < 128, `RSS grew by ${grown.toFixed(1)} MiB`);
  await stillFlowing(player);
  assert.equal(srv.logs.filter((l) => l.fields['code'] === ErrorCode.OutputOverflow && l.msg === 'connection closed on error').length, 1, 'one error line');
});

test('a flood of tiny messages (100 000 ping requests at once) is cut off at the message rate limit; the event loop and the stream beside it go on', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port, { paused: true });
  const probe = loopProbe(t);
  // a User Control ping request: 6-byte payload on chunk stream 2, then type 3 headers repeating it
  const first = userControlWire();
  s.write(first);
  const unit = Buffer.concat([Buffer.from([0xc2]), first.subarray(12)]);
  const sent = await flood(s, unit, 100_000 * unit.length);
  assert.ok(await until(() => logged(srv, ErrorCode.MessageFlood), 20_000), `ERR_RTMP_MESSAGE_FLOOD logged (${sent} bytes sent)`);
  assert.ok(await until(() => srv.server.connections === 2), 'the flooding connection is gone (the healthy publisher and player remain)');
  const cut = srv.logs.find((l) => l.msg === 'close' && l.fields['code'] === ErrorCode.MessageFlood);
  assert.ok(cut !== undefined && Number(cut.fields['bytesIn']) < sent / 2, `cut early: ${String(cut?.fields['bytesIn'])} of ${sent} bytes read`);
  probe.stop();
  t.diagnostic(`largest event-loop delay during the flood: ${probe.maxDelay} ms`);
  assert.ok(probe.maxDelay < 1000, `the event loop was held ${probe.maxDelay} ms`);
  await stillFlowing(player);
});

function userControlWire(): Buffer {
  return encodeMessage(userControlMessage({ type: 'pingRequest', timestamp: 1 }), 128);
}

test('item 5: a client opening chunk streams 3..65599 is cut off at max_streams with a coded error', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port);
  const rss0 = process.memoryUsage().rss;
  const headers: Buffer[] = [];
  for (let csid = 3; csid <= 65599; csid++) {
    // basic header (1, 2 or 3 bytes), then a type 0 header of an empty audio message on NetStream 1
    const basic = csid < 64 ? [csid] : csid < 320 ? [0, csid - 64] : [1, (csid - 64) & 0xff, (csid - 64) >>> 8];
    headers.push(Buffer.from([...basic, 0, 0, 0, 0, 0, 0, MessageType.Audio, 1, 0, 0, 0]));
  }
  const all = Buffer.concat(headers);
  for (let off = 0; off < all.length && !s.destroyed; off += 64 * 1024) s.write(all.subarray(off, off + 64 * 1024));
  assert.ok(await closed(s, 20_000), 'cut off');
  assert.ok(await until(() => logged(srv, ErrorCode.ChunkStreamLimit)), 'ERR_RTMP_CHUNK_STREAM_LIMIT logged');
  const grown = (process.memoryUsage().rss - rss0) / MiB;
  t.diagnostic(`RSS grew by ${grown.toFixed(1)} MiB`);
  assert.ok(grown < 64, `RSS grew by ${grown.toFixed(1)} MiB`);
  assert.ok(srv.logs.some((l) => l.msg === 'connection closed on error' && String(l.fields['err']).includes('32 allowed')), 'cut at max_streams (32)');
  await stillFlowing(player);
});

test('item 5: the chunk decoder refuses one chunk stream more than maxChunkStreams, reuse is free', () => {
  const got: number[] = [];
  const d = new ChunkDecoder({ maxMessageSize: 1000, maxChunkStreams: 3 }, (m) => got.push(m.csid));
  const empty = (csid: number): Buffer => Buffer.from([csid, 0, 0, 0, 0, 0, 0, MessageType.Audio, 1, 0, 0, 0]);
  d.push(Buffer.concat([empty(2), empty(3), empty(4), empty(3), Buffer.from([0xc4]), empty(2)]));
  assert.deepEqual(got, [2, 3, 4, 3, 4, 2]);
  assert.throws(() => d.push(empty(5)), (e: unknown) => isServerError(e, ErrorCode.ChunkStreamLimit));
});

function aggregateOf(streamId: number, ...commands: Buffer[]): Buffer {
  const payload = Buffer.concat(commands.map((c) => aggregateTag(MessageType.CommandAmf0, 0, c)));
  return encodeMessage({ csid: 8, type: MessageType.Aggregate, streamId, timestamp: 0, payload }, 4096);
}

test('item 6: two publishes in one aggregate: after the client leaves the name is free and the hub holds no stale handle', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const c = await RtmpClient.connect(srv.url + '/live');
  t.after(() => c.destroy());
  const id = await c.createStream();
  const started = c.waitStatus(id, ['NetStream.Publish.Start']);
  const publish = encodeAmf0(['publish', 0, null, 'dup', 'live']);
  c.socket.write(aggregateOf(id, publish, publish));
  await started;
  await until(() => srv.logs.filter((l) => l.msg === 'publish' || l.msg === 'publish refused').length >= 2, 3000);
  c.destroy();
  assert.ok(await until(() => srv.server.hub.get('live', 'dup')?.active !== true, 5000), 'the name is released when the client leaves');
  const next = await RtmpClient.connect(srv.url + '/live');
  t.after(() => next.destroy());
  await next.publish('dup'); // rejects with BadName if a stale handle still holds the name
  await next.close();
  assert.ok(await until(() => srv.server.hub.get('live', 'dup')?.active !== true, 5000));
  await stillFlowing(player);
});

test('item 6: two plays in one aggregate leave no reader behind', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const stream = srv.server.hub.get('live', 'healthy');
  assert.ok(stream !== undefined);
  const readers0 = stream.readers.size;
  const c = await RtmpClient.connect(srv.url + '/live');
  t.after(() => c.destroy());
  const id = await c.createStream();
  const play = encodeAmf0(['play', 0, null, 'healthy', -2]);
  c.socket.write(aggregateOf(id, play, play));
  assert.ok(await until(() => srv.logs.filter((l) => l.msg === 'play').length >= 3, 5000), 'both plays ran');
  assert.ok(await until(() => stream.readers.size === readers0 + 1, 3000), `one reader for the connection, got ${stream.readers.size - readers0}`);
  c.destroy();
  assert.ok(await until(() => stream.readers.size === readers0, 5000), `a reader leaked: ${stream.readers.size - readers0} left`);
  await stillFlowing(player);
});
