import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commandMessage } from '../../src/rtmp/commands.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { wireFor } from '../../src/rtmp/player.js';
import { FrameKind, MediaFrame } from '../../src/live/frame.js';
import { loopbackDefault, sleep, startServer, until } from '../helpers/server.js';
import { AAC_HEADER, AVC_HEADER, audioFrame, playCounting, publishSynthetic, videoFrame } from '../helpers/synthetic.js';

test('a message is encoded once per chunk size and stream id; the same Buffer serves every player', () => {
  const f = new MediaFrame(FrameKind.Video, 1234, videoFrame(true, 10_000, 1), 1);
  const a = wireFor(f, 4096, 1);
  const b = wireFor(f, 4096, 1);
  assert.equal(a, b, 'same Buffer object');
  const other = wireFor(f, 128, 1);
  assert.notEqual(other, a);
  assert.ok(other.length > a.length, 'smaller chunks cost more headers');
  assert.equal(wireFor(f, 4096, 1), a, 'the first encoding stays cached');
});

test('AMF3 command messages (type 17) are understood: connect, createStream, publish', async (t) => {
  const { url, server } = await startServer(t);
  const c = await RtmpClient.connect(`${url}/live`, { commandEncoding: 'amf3', connectProperties: { objectEncoding: 3 } });
  t.after(() => c.destroy());
  const id = await c.createStream();
  assert.ok(id >= 1);
  await c.publish('amf3');
  assert.equal(server.hub.get('live', 'amf3')?.active, true);
});

test('aggregate messages from a publisher are split into their parts for players', async (t) => {
  const { url } = await startServer(t);
  const pub = await RtmpClient.connect(`${url}/live`);
  t.after(() => pub.destroy());
  const sid = await pub.publish('agg');
  const player = await playCounting(`${url}/live`, 'agg', true);
  t.after(() => player.client.destroy());
  pub.sendMedia(sid, MessageType.Video, 0, AVC_HEADER);
  pub.sendMedia(sid, MessageType.Audio, 0, AAC_HEADER);
  // one aggregate holding a keyframe, an audio frame and an inter frame
  const parts = [
    { type: MessageType.Video, ts: 1000, data: videoFrame(true, 300, 1) },
    { type: MessageType.Audio, ts: 1010, data: audioFrame(2) },
    { type: MessageType.Video, ts: 1040, data: videoFrame(false, 200, 3) },
  ];
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const h = Buffer.alloc(11);
    h[0] = p.type;
    h.writeUIntBE(p.data.length, 1, 3);
    h.writeUIntBE(p.ts & 0xffffff, 4, 3);
    h[7] = (p.ts >>> 24) & 0xff;
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(11 + p.data.length);
    chunks.push(h, p.data, tail);
  }
  pub.sendMedia(sid, MessageType.Aggregate, 1000, Buffer.concat(chunks));
  assert.ok(await until(() => player.video >= 2 && player.audio >= 1));
  const media = player.messages.filter((m) => m.type !== MessageType.DataAmf0 && m.payload[1] !== 0);
  assert.deepEqual(
    media.map((m) => [m.type, m.timestamp, m.payload.length]),
    parts.map((p) => [p.type, p.ts, p.data.length]),
  );
});

test('pause stops media, unpause resumes on a keyframe; receiveVideo false filters video', async (t) => {
  const { url } = await startServer(t);
  const pub = await publishSynthetic(`${url}/live`, 'p', { gop: 10 });
  t.after(() => pub.stop());
  const player = await playCounting(`${url}/live`, 'p');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video > 5));
  const sid = player.client.statuses.find((s) => s.code === 'NetStream.Play.Start')!.streamId;
  player.client.send(commandMessage(sid, 'pause', 0, null, true, 0));
  assert.ok(await until(() => player.client.statuses.some((s) => s.code === 'NetStream.Pause.Notify')));
  await sleep(100);
  const paused = player.video;
  await sleep(500);
  assert.ok(player.video <= paused + 1, `no media while paused (${player.video - paused} arrived)`);
  let firstAfter: boolean | undefined;
  const prev = player.client.onMedia;
  player.client.onMedia = (m, length) => {
    if (firstAfter === undefined && m.type === MessageType.Video && m.payload[1] !== 0) firstAfter = m.payload[0]! >> 4 === 1;
    prev(m, length);
  };
  player.client.send(commandMessage(sid, 'pause', 0, null, false, 0));
  assert.ok(await until(() => player.video > paused + 5));
  assert.equal(firstAfter, true, 'resumes on a keyframe');
  player.client.send(commandMessage(sid, 'receiveVideo', 0, null, false));
  await sleep(200);
  const v = player.video;
  const a = player.audio;
  await sleep(500);
  assert.equal(player.video, v, 'no video after receiveVideo false');
  assert.ok(player.audio > a + 5, 'audio still flows');
});

test('getStreamLength, _checkbw, releaseStream answer; FCPublish gets onFCPublish', async (t) => {
  const { url } = await startServer(t);
  const c = await RtmpClient.connect(`${url}/live`);
  t.after(() => c.destroy());
  const [, len] = await c.call('getStreamLength', null, 'x');
  assert.equal(len, 0);
  await c.call('_checkbw', null);
  await c.call('releaseStream', null, 'x');
});

test('max_connections refuses the connection over the limit', async (t) => {
  const { url } = await startServer(t, loopbackDefault(() => ({ maxConnections: 2 })));
  const a = await RtmpClient.connect(`${url}/live`);
  const b = await RtmpClient.connect(`${url}/live`);
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  await assert.rejects(RtmpClient.connect(`${url}/live`, { timeout: 3000 }));
  a.destroy();
  await sleep(100);
  const c = await RtmpClient.connect(`${url}/live`);
  c.destroy();
});

test('the server pings a quiet client and keeps it while it answers', async (t) => {
  const { url, logs } = await startServer(t, loopbackDefault(() => ({ ping: 300, pingTimeout: 300, timeout: 1000 })));
  const c = await RtmpClient.connect(`${url}/live`);
  t.after(() => c.destroy());
  await sleep(2500);
  assert.equal(c.closed, false, 'a client that answers pings stays');
  assert.ok(!logs.some((l) => l.fields['code'] === 'ERR_RTMP_TIMEOUT'));
});

test('a message larger than max_message closes the connection with a clear log line', async (t) => {
  const srv = await startServer(t, loopbackDefault(() => ({ maxMessage: 64 * 1024 })));
  const c = await RtmpClient.connect(`${srv.url}/live`);
  t.after(() => c.destroy());
  const sid = await c.publish('big');
  c.sendMedia(sid, MessageType.Video, 0, videoFrame(true, 100 * 1024, 1));
  assert.ok(await until(() => c.closed));
  assert.ok(srv.logs.some((l) => l.fields['code'] === 'ERR_RTMP_MESSAGE_TOO_LARGE'));
});

test('Enhanced RTMP (hvc1): the sequence start is cached and a late player starts on an enhanced keyframe', async (t) => {
  const { url, server } = await startServer(t);
  const pub = await RtmpClient.connect(`${url}/live`, { connectProperties: { fourCcList: ['hvc1'] } });
  t.after(() => pub.destroy());
  const sid = await pub.publish('hevc');
  const hvc1 = Buffer.from('hvc1', 'latin1');
  const ex = (frameType: number, packetType: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([0x80 | (frameType << 4) | packetType]), hvc1, body]);
  const seqStart = ex(1, 0, Buffer.from([1, 1, 0x60, 0, 0, 0]));
  pub.sendMedia(sid, MessageType.Video, 0, seqStart);
  for (let i = 0; i < 30; i++) {
    const key = i % 10 === 0;
    // CodedFrames: SI24 composition time, then NAL units
    pub.sendMedia(sid, MessageType.Video, i * 40, ex(key ? 1 : 2, 1, Buffer.from([0, 0, 0, i, i, i])));
  }
  assert.ok(await until(() => (server.hub.get('live', 'hevc')?.stats.videoFrames ?? 0) >= 31));
  const stream = server.hub.get('live', 'hevc')!;
  assert.deepEqual(stream.videoHeader?.payload, seqStart, 'the enhanced sequence start is the cached header');
  assert.equal(stream.cachedGop[0]?.timestamp, 20 * 40, 'the GOP cache starts at the last enhanced keyframe');
  const late = await playCounting(`${url}/live`, 'hevc', true);
  t.after(() => late.client.destroy());
  assert.ok(await until(() => late.messages.filter((m) => m.type === MessageType.Video).length >= 11));
  const video = late.messages.filter((m) => m.type === MessageType.Video);
  assert.deepEqual(video[0]!.payload, seqStart);
  assert.equal(video[1]!.payload[0], 0x91, 'first frame after the header is an enhanced keyframe');
  assert.equal(video[1]!.timestamp, 800);
});

test('direct_write on and off, native_write off, tcp_nodelay off: each player gets every frame from its first keyframe on, in order, byte for byte', async (t) => {
  for (const [directWrite, tcpNodelay, nativeWrite] of [[true, true, true], [false, true, true], [true, false, true], [true, true, false]] as const) {
    const { url } = await startServer(t, loopbackDefault(() => ({ directWrite, tcpNodelay, nativeWrite })));
    const pub = await publishSynthetic(`${url}/live`, 'd', { gop: 5, frameSize: 20_000 });
    t.after(() => pub.stop());
    const players = await Promise.all([0, 1, 2].map(() => playCounting(`${url}/live`, 'd', true)));
    t.after(() => players.forEach((p) => p.client.destroy()));
    assert.ok(await until(() => players.every((p) => p.video >= 40), 10_000), `players fed (direct_write ${directWrite}, tcp_nodelay ${tcpNodelay}, native_write ${nativeWrite})`);
    for (const p of players) {
      assert.equal(p.firstVideoKeyframe, true);
      assert.equal(p.backwards, 0);
      const video = p.messages.filter((m) => m.type === MessageType.Video && m.payload[1] !== 0);
      // a synthetic frame is filled with its sequence number (mod 256): none missing, repeated or altered
      for (let i = 0; i < video.length; i++) {
        const m = video[i]!;
        const seq = m.payload[5]!;
        if (i > 0) assert.equal(seq, (video[i - 1]!.payload[5]! + 1) & 0xff, `frame ${i} follows frame ${i - 1}`);
        assert.ok(m.payload.equals(videoFrame(m.payload[0] === 0x17, 20_000, seq)), `frame ${i} intact`);
      }
    }
  }
});

test('a client reading into one reused buffer (readBufferSize) gets every frame intact while onMedia runs', async (t) => {
  const { url } = await startServer(t, loopbackDefault());
  // 3000-byte frames fit one 4096-byte chunk (views of the read buffer); 9000-byte frames span chunks (copied)
  for (const [name, frameSize] of [['one-chunk', 3000], ['three-chunks', 9000]] as const) {
    const pub = await publishSynthetic(`${url}/live`, name, { gop: 5, frameSize });
    t.after(() => pub.stop());
    // 1 KiB: nearly every message spans reads (and headers get cut); 64 KiB: several messages per read
    for (const readBufferSize of [1024, 64 * 1024]) {
      const client = await RtmpClient.connect(`${url}/live`, { readBufferSize });
      t.after(() => client.destroy());
      let video = 0;
      let audio = 0;
      const bad: string[] = [];
      client.onMedia = (m) => {
        if (m.type === MessageType.Video && m.payload[1] === 0x01) {
          const seq = m.payload[5]!;
          if (!m.payload.equals(videoFrame(m.payload[0] === 0x17, frameSize, seq))) bad.push(`video ${seq}`);
          video++;
        } else if (m.type === MessageType.Audio && m.payload[1] === 0x01) {
          const seq = m.payload[2]!;
          if (!m.payload.equals(audioFrame(seq))) bad.push(`audio ${seq}`);
          audio++;
        }
      };
      await client.play(name);
      assert.ok(await until(() => video >= 30 && audio >= 30, 10_000), `${name}, read buffer ${readBufferSize}: fed (${video} video, ${audio} audio)`);
      assert.deepEqual(bad, [], `${name}, read buffer ${readBufferSize}: frames intact`);
    }
  }
});

test('readBufferSize below 1024 bytes (or not an integer) is refused before connecting', async () => {
  for (const readBufferSize of [0, 100, 1023, 4096.5, Number.NaN]) {
    await assert.rejects(RtmpClient.connect('rtmp://127.0.0.1:1/live', { readBufferSize }), RangeError, String(readBufferSize));
  }
});
