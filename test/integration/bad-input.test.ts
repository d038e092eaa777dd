import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encodeAmf0 } from '../../src/rtmp/amf0.js';
import { encodeMessage } from '../../src/rtmp/chunk.js';
import { setChunkSizeMessage } from '../../src/rtmp/control.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { loopbackDefault, startServer, until, sleep } from '../helpers/server.js';
import { closed, handshaken, healthyStream, logged, rawSocket, stillFlowing } from '../helpers/attack-conn.js';

test('random bytes instead of a handshake: that connection ends, the stream beside it flows', async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await rawSocket(t, srv.port);
  s.write(Buffer.concat([Buffer.from([0x47]), randomBytes(4000)]));
  assert.ok(await closed(s), 'bad socket closed');
  assert.ok(await until(() => logged(srv, 'ERR_RTMP_HANDSHAKE_VERSION')));
  await stillFlowing(player);
});

test('a handshake that never finishes times out', async (t) => {
  const base = loopbackDefault();
  const srv = await startServer(t, base);
  // shorten the handshake timeout for this test through the connection defaults is not configurable: use a half handshake
  const s = await rawSocket(t, srv.port);
  s.write(Buffer.from([3]));
  s.write(randomBytes(100));
  // the default handshake timeout is 10 s; the connection must still be open after 1 s and closed by 12 s
  await sleep(1000);
  assert.equal(s.destroyed, false);
  assert.ok(await closed(s, 12_000), 'half handshake closed by the timeout');
  assert.ok(logged(srv, 'ERR_RTMP_HANDSHAKE_TIMEOUT'));
});

test('garbage after the handshake ends only that connection', async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port);
  // a type-3 chunk on a chunk stream never seen, then noise
  s.write(Buffer.concat([Buffer.from([0xc9]), randomBytes(3000)]));
  assert.ok(await closed(s), 'garbage socket closed');
  assert.ok(await until(() => srv.logs.some((l) => l.msg === 'connection closed on error' && String(l.fields['code']).startsWith('ERR_'))));
  await stillFlowing(player);
});

test('an absurd chunk size ends only that connection', async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port);
  const m = setChunkSizeMessage(1);
  m.payload.writeUInt32BE(0x7fffffff, 0);
  s.write(encodeMessage(m, 128));
  assert.ok(await closed(s));
  assert.ok(await until(() => logged(srv, 'ERR_RTMP_CHUNK_SIZE')));
  await stillFlowing(player);
});

test('a 16 MB message length is refused at the header, before any allocation', async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port);
  // fmt 0 header on csid 3: timestamp 0, length 0xFFFFFF, type 20, stream 0, then a few bytes
  s.write(Buffer.from([0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0, 1, 2, 3, 4]));
  assert.ok(await closed(s));
  assert.ok(await until(() => logged(srv, 'ERR_RTMP_MESSAGE_TOO_LARGE')));
  await stillFlowing(player);
});

test('a truncated AMF command ends only that connection', async (t) => {
  const srv = await startServer(t);
  const player = await healthyStream(t, srv);
  const s = await handshaken(t, srv.port);
  const full = encodeAmf0(['connect', 1, { app: 'live', tcUrl: 'rtmp://127.0.0.1/live' }]);
  const payload = full.subarray(0, full.length - 9);
  s.write(encodeMessage({ csid: 3, type: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload }, 128));
  assert.ok(await closed(s));
  assert.ok(await until(() => srv.logs.some((l) => String(l.fields['code']).startsWith('ERR_AMF_'))));
  await stillFlowing(player);
});

test('a player that stops reading drops frames, is cut off, and the others keep flowing', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(
    t,
    loopbackDefault(() => ({ timeout: 1500, outQueue: 64 })),
  );
  const player = await healthyStream(t, srv, { frameSize: 100_000 });
  const stuck = await RtmpClient.connect(srv.url + '/live');
  t.after(() => stuck.destroy());
  await stuck.play('healthy');
  stuck.socket.pause(); // never reads again
  const t0 = Date.now();
  const wasClosed = await until(() => srv.logs.some((l) => l.fields['code'] === 'ERR_RTMP_TIMEOUT'), 40_000, 100);
  assert.ok(wasClosed, 'the stuck player is cut off');
  assert.ok(srv.logs.some((l) => l.msg.startsWith('slow player')), 'the drop was logged');
  assert.ok(Date.now() - t0 < 40_000);
  await stillFlowing(player);
  assert.ok(player.backwards === 0);
});

test('an unknown application is refused; an unknown command gets _error and nothing crashes', async (t) => {
  const srv = await startServer(t);
  await assert.rejects(RtmpClient.connect(srv.url + '/nope'), /Connect\.Rejected|refused/);
  const c = await RtmpClient.connect(srv.url + '/live');
  t.after(() => c.destroy());
  await assert.rejects(c.call('noSuchCommand', null, 1, 'x'), /Call\.Failed/);
  const id = await c.createStream();
  assert.ok(id >= 1);
});
