import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { commandMessage } from '../../src/rtmp/commands.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { decodeAmf0 } from '../../src/rtmp/amf0.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { amfNumber } from '../../src/rtmp/amf-types.js';
import { sleep, startServer, until, type TestServer } from '../helpers/server.js';
import { makeVodFile, playWithFfmpeg } from '../helpers/vod-media.js';

interface Got {
  video: { ts: number; key: boolean; header: boolean; at: number }[];
  audio: number[];
  data: string[];
  events: string[];
}

/** A player of our own client: records every frame (time, keyframe), data message and user control event. */
async function player(t: TestContext, url: string): Promise<{ client: RtmpClient; got: Got }> {
  const client = await RtmpClient.connect(url);
  t.after(() => client.destroy());
  const got: Got = { video: [], audio: [], data: [], events: [] };
  client.onMedia = (m) => {
    if (m.type === MessageType.Video) got.video.push({ ts: m.timestamp, key: m.payload[0]! >> 4 === 1, header: m.payload[1] === 0, at: Date.now() });
    else if (m.type === MessageType.Audio) got.audio.push(m.timestamp);
    else if (m.type === MessageType.DataAmf0) {
      const v = decodeAmf0(m.payload);
      const o = v[1];
      const code = typeof o === 'object' && o !== null && 'code' in o ? String((o as { code: unknown }).code) : '';
      got.data.push(`${String(v[0])}${code !== '' ? `:${code}` : ''}`);
    }
  };
  client.onUserControl = (type) => got.events.push(type);
  return { client, got };
}

function coded(got: Got): Got['video'] {
  return got.video.filter((v) => !v.header);
}

describe('VOD over RTMP', () => {
  let dir = '';
  let media = '';
  let srv: TestServer;
  let httpBase = '';
  let httpServer: http.Server | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vod-'));
    media = path.join(dir, 'media');
    await mkdir(path.join(media, 'sub'), { recursive: true });
    await mkdir(path.join(dir, 'cache'));
    await mkdir(path.join(dir, 'temp'));
    await Promise.all([
      makeVodFile(path.join(media, 'long.mp4'), 'mp4', { seconds: 8, bframes: true }),
      makeVodFile(path.join(media, 'fast.mp4'), 'mp4-faststart', { seconds: 3 }),
      makeVodFile(path.join(media, 'long.flv'), 'flv', { seconds: 8 }),
      makeVodFile(path.join(media, 'sub', 'short.flv'), 'flv', { seconds: 3 }),
    ]);
    await writeFile(path.join(media, 'short.flv'), await readFile(path.join(media, 'sub', 'short.flv')));
    await writeFile(path.join(media, 'bad.mp4'), Buffer.from('not an mp4 file, just bytes'.repeat(20)));
    const whole = await readFile(path.join(media, 'fast.mp4'));
    await writeFile(path.join(media, 'cut.mp4'), whole.subarray(0, Math.floor(whole.length * 0.6)));
    // the http:// location: a plain static server over another directory
    const remote = path.join(dir, 'remote');
    await mkdir(remote);
    await writeFile(path.join(remote, 'far.mp4'), whole);
    httpServer = http.createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '').replace(/^\/files\//, ''));
      readFile(path.join(remote, path.basename(name))).then(
        (b) => res.writeHead(200, { 'content-length': b.length }).end(b),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((r) => httpServer!.listen(0, '127.0.0.1', r));
    httpBase = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/files`;
  });
  after(async () => {
    httpServer?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function server(t: TestContext): Promise<TestServer> {
    const cfg = parseConfigText(
      `rtmp { server { listen 127.0.0.1:0;
        application vod { play ${media}; }
        application remote { play ${path.join(dir, 'cache')} ${httpBase}; play_temp_path ${path.join(dir, 'temp')}; play_local_path ${path.join(dir, 'cache')}; }
        application closed { play ${media}; deny play all; }
      } }`,
      'vod.conf',
    );
    srv = await startServer(t, cfg);
    return srv;
  }

  it('the configuration: play, play_temp_path, play_local_path', () => {
    const cfg = parseConfigText(`rtmp { server { listen 1935; application v { play /a http://h/b; play_temp_path /t; play_local_path /l; } application w { live on; } } }`, 'x.conf');
    const [v, w] = cfg.rtmp[0]!.applications;
    assert.deepEqual(v!.vod, { locations: ['/a', 'http://h/b'], tempPath: '/t', localPath: '/l' });
    assert.equal(w!.vod, undefined);
  });

  it('an MP4 (moov at the end) plays from the start, paced at real time, and completes', async (t) => {
    const s = await server(t);
    const { client, got } = await player(t, `${s.url}/vod`);
    const [, len] = await client.call('getStreamLength', null, 'mp4:long.mp4');
    assert.ok(Math.abs(amfNumber(len ?? null)! - 8) < 0.2, `getStreamLength ${String(len)}`);
    const t0 = Date.now();
    const id = await client.play('mp4:long.mp4');
    assert.ok(got.events.includes('streamBegin') && got.events.includes('streamIsRecorded'));
    await sleep(1500);
    const sent = coded(got);
    assert.ok(sent.length > 0 && sent[0]!.key && sent[0]!.ts === 0, 'starts on the keyframe at 0');
    const ahead = sent[sent.length - 1]!.ts - (Date.now() - t0);
    assert.ok(ahead < 1600, `at most about a second ahead of real time, got ${ahead} ms ahead`);
    assert.ok(got.data.some((d) => d.startsWith('onMetaData')), 'onMetaData');
    await client.waitStatus(id, ['NetStream.Play.Stop'], 15_000);
    assert.ok(Date.now() - t0 >= 6500, 'took about the file duration');
    assert.equal(coded(got).length, 200, 'every video frame');
    assert.ok(got.data.includes('onPlayStatus:NetStream.Play.Complete'));
    await until(() => got.events.includes('streamEof'), 2000);
    assert.ok(got.events.includes('streamEof'));
  });

  it('play with a start position, seek and pause (MP4 and FLV): land on the keyframe before', async (t) => {
    const s = await server(t);
    for (const name of ['mp4:long.mp4', 'long']) {
      // a start position of 5.5 s: the first video frame is the keyframe of 5 s
      const a = await player(t, `${s.url}/vod`);
      const id = await a.client.createStream();
      const started = a.client.waitStatus(id, ['NetStream.Play.Start']);
      a.client.send(commandMessage(id, 'play', 0, null, name, 5500));
      await started;
      await until(() => coded(a.got).length > 0, 3000);
      const first = coded(a.got)[0]!;
      assert.ok(first.key && first.ts >= 5000 && first.ts < 5100, `${name}: start 5.5 s gave ${first.ts}`);
      a.client.destroy();

      // seek to 5 s while playing from the start
      const b = await player(t, `${s.url}/vod`);
      const bid = await b.client.play(name);
      await sleep(300);
      const notified = b.client.waitStatus(bid, ['NetStream.Seek.Notify']);
      const mark = coded(b.got).length;
      b.client.send(commandMessage(bid, 'seek', 0, null, 5000));
      await notified;
      await until(() => coded(b.got).some((v, i) => i >= mark && v.ts >= 4000), 3000);
      const landed = coded(b.got).slice(mark).find((v) => v.ts >= 4000)!;
      // the keyframe at or before 5 s (the FLV's video is 23 ms late: its keyframe before 5 s is the one of 4 s)
      assert.ok(landed.key && landed.ts > 4000 && landed.ts <= 5000, `${name}: seek to 5 s landed on ${landed.ts}`);

      // pause: nothing more; unpause: on from a keyframe at or before where it stopped
      const paused = b.client.waitStatus(bid, ['NetStream.Pause.Notify']);
      b.client.send(commandMessage(bid, 'pause', 0, null, true, 0));
      await paused;
      await sleep(200);
      const n = coded(b.got).length;
      const stoppedAt = coded(b.got)[n - 1]!.ts;
      await sleep(700);
      assert.equal(coded(b.got).length, n, 'nothing sent while paused');
      const unpaused = b.client.waitStatus(bid, ['NetStream.Unpause.Notify']);
      b.client.send(commandMessage(bid, 'pause', 0, null, false, stoppedAt));
      await unpaused;
      await until(() => coded(b.got).length > n, 3000);
      const resumed = coded(b.got)[n]!;
      assert.ok(resumed.key && resumed.ts <= stoppedAt && resumed.ts >= stoppedAt - 1100, `${name}: resumed at ${resumed.ts}, stopped at ${stoppedAt}`);
      b.client.destroy();
    }
  });

  it('missing files, names leaving the directory and access rules: refused; corrupt files: Play.Failed, one error line, the server goes on', async (t) => {
    const s = await server(t);
    const { client } = await player(t, `${s.url}/vod`);
    for (const name of ['nothing-here', 'mp4:../media/fast.mp4', '../../etc/passwd', 'sub/../../x']) {
      const id = await client.createStream();
      const st = client.waitStatus(id, ['NetStream.Play.StreamNotFound']);
      client.send(commandMessage(id, 'play', 0, null, name));
      await st;
    }
    // garbage: refused at open
    const id = await client.createStream();
    const failed = client.waitStatus(id, ['NetStream.Play.Failed']);
    client.send(commandMessage(id, 'play', 0, null, 'mp4:bad.mp4'));
    await failed;
    // truncated: plays, then fails where the data ends
    const cut = await player(t, `${s.url}/vod`);
    const cid = await cut.client.play('mp4:cut.mp4');
    const failedLater = cut.client.waitStatus(cid, ['NetStream.Play.Failed'], 10_000);
    await failedLater;
    assert.ok(coded(cut.got).length > 5, 'played up to the cut');
    await until(() => cut.got.events.includes('streamEof'), 2000);
    const errors = s.logs.filter((l) => l.level === 'error' && String(l.msg).startsWith('vod:'));
    assert.equal(errors.length, 2, `one error line per broken file: ${JSON.stringify(errors)}`);
    // the access chain runs for VOD plays too
    const closed = await RtmpClient.connect(`${s.url}/closed`);
    t.after(() => closed.destroy());
    const did = await closed.createStream();
    const denied = closed.waitStatus(did, ['NetStream.Play.Failed']);
    closed.send(commandMessage(did, 'play', 0, null, 'mp4:fast.mp4'));
    await denied; // deny play all refuses the VOD play
    // the server still serves
    const ok = await player(t, `${s.url}/vod`);
    await ok.client.play('sub/short');
    await until(() => coded(ok.got).length > 3, 3000);
    assert.ok(coded(ok.got).length > 3);
  });

  it('an http:// location: downloaded to play_temp_path, then kept in play_local_path', async (t) => {
    const s = await server(t);
    const { client, got } = await player(t, `${s.url}/remote`);
    const id = await client.play('mp4:far.mp4');
    await client.waitStatus(id, ['NetStream.Play.Stop'], 15_000);
    assert.equal(coded(got).length, 75);
    assert.ok(existsSync(path.join(dir, 'cache', 'far.mp4')), 'moved to play_local_path');
    assert.deepEqual(await readdir(path.join(dir, 'temp')), [], 'nothing left in play_temp_path');
    const missing = await client.createStream();
    const nf = client.waitStatus(missing, ['NetStream.Play.StreamNotFound']);
    client.send(commandMessage(missing, 'play', 0, null, 'mp4:none.mp4'));
    await nf;
  });

  it('ffmpeg plays an MP4 with and without +faststart and an FLV from the start, and from a seek to 5 s', async (t) => {
    const s = await server(t);
    const [slow, fast, flv] = await Promise.all([playWithFfmpeg(`${s.url}/vod/mp4:long.mp4`), playWithFfmpeg(`${s.url}/vod/mp4:fast.mp4`), playWithFfmpeg(`${s.url}/vod/short.flv`)]);
    assert.equal(slow.video, 200, `every video frame of the MP4 with moov at the end (B-frames): ${slow.stderr.slice(-500)}`);
    assert.equal(fast.video, 75, 'every video frame of the faststart MP4');
    assert.ok(fast.audio >= 125 && fast.audio <= 132, `audio ${fast.audio}`);
    assert.equal(fast.videoCodec, 'h264');
    assert.equal(flv.video, 75, `every video frame of the FLV: ${flv.stderr.slice(-600)}`);
    // -ss on an rtmp input: ffmpeg sends seek(5000) after its probe; the first frame after it is the keyframe of 5 s
    const seeked = await playWithFfmpeg(`${s.url}/vod/mp4:long.mp4`, ['-ss', '5']);
    const afterSeek = seeked.videoDts.filter((d) => d >= 4000);
    // ffmpeg asks for a little before 5 s (its preroll): the play lands on the keyframe before that, within a GOP (1 s) of 5 s
    const seek = s.logs.find((l) => l.msg === 'seek');
    assert.ok(seek !== undefined, 'ffmpeg seeked over RTMP');
    assert.ok(afterSeek.length > 0 && afterSeek[0]! >= 4000 && afterSeek[0]! <= 5000, `first frame after the seek at ${afterSeek[0]}: ${seeked.stderr.slice(-800)}`);
    assert.ok(seeked.video < 150, `after the seek ${seeked.video} frames (not the whole file)`);
    // the same with the FLV (its keyframes are 23 ms late: the one before ffmpeg's ~4.9 s is the one of ~4 s)
    const seekedFlv = await playWithFfmpeg(`${s.url}/vod/long.flv`, ['-ss', '5']);
    const afterFlvSeek = seekedFlv.videoDts.filter((d) => d >= 3900);
    assert.ok(afterFlvSeek.length > 0 && afterFlvSeek[0]! >= 3900 && afterFlvSeek[0]! <= 5100, `FLV: first frame after the seek at ${afterFlvSeek[0]}`);
    assert.ok(seekedFlv.video < 150 && s.logs.filter((l) => l.msg === 'seek').length >= 2, 'the FLV play seeked too');
  });
});
