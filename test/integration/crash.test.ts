import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveReader } from '../../src/live/reader.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { commandMessage } from '../../src/rtmp/commands.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { startServer, until, sleep } from '../helpers/server.js';
import { AVC_HEADER, playCounting, publishSynthetic } from '../helpers/synthetic.js';
import { healthyStream, referenceBombSetDataFrame, stillFlowing } from '../helpers/attack-crash.js';

test('a @setDataFrame whose AMF3 references expand beyond the max message cuts off that publisher; the server, its player and a healthy stream live on', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const healthy = await healthyStream(t, srv);
  // the hostile stream has a real start (so its player is attached and writing) before the bomb
  const hostile = await publishSynthetic(srv.url + '/live', 'hostile', { frameSize: 2000 });
  t.after(() => hostile.stop());
  const victim = await playCounting(srv.url + '/live', 'hostile');
  t.after(() => victim.client.destroy());
  assert.ok(await until(() => victim.video > 3), 'the hostile stream flows before the attack');

  const bomb = referenceBombSetDataFrame(); // ~200 KB on the wire, ~60 MB written out: within the AMF default budget
  assert.ok(bomb.length < 256 * 1024 && bomb.length > 200 * 1024);
  const id = 1;
  hostile.client.sendMedia(id, MessageType.DataAmf0, 0, bomb);

  assert.ok(await until(() => hostile.client.closed, 5000), 'the hostile publisher is cut off');
  assert.ok(
    await until(() => srv.logs.some((l) => l.msg === 'connection closed on error' && (l.fields['code'] === 'ERR_AMF_TOO_LARGE' || l.fields['code'] === 'ERR_RTMP_MESSAGE_TOO_LARGE'))),
    'one coded log line',
  );
  assert.ok((srv.server.hub.get('live', 'hostile')?.metadata?.payload.length ?? 0) < 1024 * 1024, 'no oversized metadata cached');
  await stillFlowing(healthy);
  // the player of the hostile stream is still connected (it waits for a new publisher) and a newcomer gets in
  await sleep(200);
  assert.equal(victim.client.closed, false);
  const late = await playCounting(srv.url + '/live', 'healthy');
  t.after(() => late.client.destroy());
  assert.ok(await until(() => late.video > 5), 'the server still serves new players');
});

test('a player on message stream id 65537 first does not make other players receive media tagged 65537', { timeout: 60_000 }, async (t) => {
  const srv = await startServer(t);
  const pub = await publishSynthetic(srv.url + '/live', 's', { frameSize: 1500 });
  t.after(() => pub.stop());
  // a raw client that plays on NetStream 65537 (its own choice of message stream id, as a peer may do)
  const odd = await RtmpClient.connect(srv.url + '/live');
  t.after(() => odd.destroy());
  const oddIds = new Set<number>();
  odd.onMedia = (m) => {
    if (m.type === MessageType.Video || m.type === MessageType.Audio) oddIds.add(m.streamId);
  };
  const started = odd.waitStatus(65537, ['NetStream.Play.Start']);
  odd.send(commandMessage(65537, 'play', 0, null, 's', -2));
  await started;
  assert.ok(await until(() => oddIds.size > 0), 'the odd player gets media');
  assert.deepEqual([...oddIds], [65537]);
  // the odd player is first of every frame's encoding; a normal player must see its own id
  const normal = await RtmpClient.connect(srv.url + '/live');
  t.after(() => normal.destroy());
  const ids = new Map<number, number>();
  normal.onMedia = (m) => {
    if (m.type === MessageType.Video || m.type === MessageType.Audio) ids.set(m.streamId, (ids.get(m.streamId) ?? 0) + 1);
  };
  await normal.play('s');
  assert.ok(await until(() => [...ids.values()].reduce((a, b) => a + b, 0) > 30), 'the normal player gets media');
  assert.deepEqual([...ids.keys()], [1], `stream ids seen by the normal player: ${JSON.stringify([...ids])}`);
});

test('a player that never reads while the publisher sends metadata in every message: its output queue stays at its bound', { timeout: 90_000 }, async (t) => {
  const srv = await startServer(t);
  const healthy = await healthyStream(t, srv);
  const pub = await RtmpClient.connect(srv.url + '/live');
  t.after(() => pub.destroy());
  const id = await pub.publish('meta');
  pub.sendMedia(id, MessageType.Video, 0, AVC_HEADER);
  const stuck = await playCounting(srv.url + '/live', 'meta');
  t.after(() => stuck.client.destroy());
  stuck.client.socket.pause(); // never reads again
  const stream = srv.server.hub.get('live', 'meta')!;
  assert.ok(await until(() => stream.readers.size === 1));
  const reader = [...stream.readers][0]!;
  assert.ok(reader instanceof LiveReader, 'a player reads with the live policy');
  const big = 'm'.repeat(48 * 1024);
  const rss0 = process.memoryUsage().rss;
  let maxQueued = 0;
  const messages = 2000; // ~96 MB of metadata in all
  for (let i = 0; i < messages; i++) {
    // 'profile' is one of the fields that `meta on` (the default) keeps
    pub.sendMetadata(id, { width: 320, height: 240, framerate: i, profile: big });
    if (i % 50 === 49) {
      await sleep(5);
      maxQueued = Math.max(maxQueued, reader.sink.queuedBytes());
    }
  }
  assert.ok(await until(() => stream.stats.framesIn >= messages + 1, 30_000), `the server read everything (${stream.stats.framesIn})`);
  maxQueued = Math.max(maxQueued, reader.sink.queuedBytes());
  const rss1 = process.memoryUsage().rss;
  t.diagnostic(`data ${stuck.data} framesOut ${reader.framesOut} bytesOut ${reader.bytesOut} read ${stuck.client.socket.bytesRead}`);
  t.diagnostic(`max queued ${maxQueued} bytes; rss ${Math.round(rss0 / 1048576)} -> ${Math.round(rss1 / 1048576)} MiB`);
  // the bound (out_queue x chunk_size = 1 MiB by default) plus the one message that crossed it
  assert.ok(maxQueued < 2 * 1024 * 1024, `the stuck player's queue reached ${maxQueued} bytes`);
  // what went to the socket: the bound, the kernel's socket buffers, then nothing (not ~96 MB)
  assert.ok(reader.bytesOut < 16 * 1024 * 1024, `the server wrote ${reader.bytesOut} bytes of metadata to a player that reads nothing`);
  assert.ok(reader.isDropping, 'the reader is dropping and holds the latest metadata');
  await stillFlowing(healthy);
});
