import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { probePackets, publishArgs, runFfmpeg, type FfmpegRun } from '../helpers/ffmpeg.js';
import { startServer, until, sleep } from '../helpers/server.js';
import { playCounting, publishSynthetic } from '../helpers/synthetic.js';

const SECONDS = 6;
const FPS = 25;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function ffmpeg(t: { after(fn: () => void): void }, args: string[], timeout = 60_000): Promise<FfmpegRun> {
  const run = await runFfmpeg(args, timeout);
  t.after(() => run.kill());
  return run;
}

/** ffmpeg plays the stream into an FLV file, copying both tracks. */
function playArgs(url: string, out: string): string[] {
  return ['-i', url, '-c', 'copy', '-f', 'flv', '-y', out];
}

test('ffmpeg publishes H.264+AAC; a player that arrived first and a second player both get nearly every frame', { timeout: 60_000 }, async (t) => {
  const { url, server } = await startServer(t);
  const dir = tempDir(t);
  const out1 = join(dir, 'first.flv');
  const out2 = join(dir, 'second.flv');
  // player 1 arrives before the publisher
  const player1 = await ffmpeg(t, playArgs(`${url}/live/cam`, out1));
  await until(() => server.hub.get('live', 'cam')?.readers.size === 1, 5000);
  const publisher = await ffmpeg(t, publishArgs(`${url}/live/cam`, SECONDS, { rate: FPS }));
  assert.ok(await until(() => server.hub.get('live', 'cam')?.active === true, 10_000), 'publisher is live');
  // player 2 joins shortly after the start: the GOP cache starts it on a keyframe
  await sleep(300);
  const player2 = await ffmpeg(t, playArgs(`${url}/live/cam`, out2));
  const pub = await publisher.done;
  assert.equal(pub.code, 0, `publisher failed:\n${pub.stderr.slice(-2000)}`);
  const [r1, r2] = await Promise.all([player1.done, player2.done]);
  assert.equal(r1.code, 0, `player 1 failed:\n${r1.stderr.slice(-2000)}`);
  assert.equal(r2.code, 0, `player 2 failed:\n${r2.stderr.slice(-2000)}`);
  const p1 = await probePackets(out1);
  const p2 = await probePackets(out2);
  const expectedVideo = SECONDS * FPS;
  assert.equal(p1.videoCodec, 'h264');
  assert.equal(p1.audioCodec, 'aac');
  assert.ok(p1.video >= expectedVideo - 2, `first player: ${p1.video} of ${expectedVideo} video frames`);
  assert.ok(p1.audio >= (SECONDS * 44100) / 1024 - 5, `first player: ${p1.audio} audio frames`);
  assert.equal(p2.videoCodec, 'h264');
  assert.equal(p2.audioCodec, 'aac');
  // joined at most ~1 s late: it has at least the frames from the keyframe before it joined
  assert.ok(p2.video >= expectedVideo - 2 * FPS, `second player: ${p2.video} of ${expectedVideo} video frames`);
  for (const p of [p1, p2]) {
    for (const list of p.dts) {
      for (let i = 1; i < (list?.length ?? 0); i++) assert.ok(list![i]! >= list![i - 1]!, 'dts monotonic');
    }
  }
  assert.ok(statSync(out1).size > 50_000);
});

test('a second publisher to a busy name is refused while the first keeps streaming', { timeout: 60_000 }, async (t) => {
  const { url, server, logs } = await startServer(t);
  const first = await publishSynthetic(url + '/live', 'busy');
  t.after(() => first.stop());
  const watcher = await playCounting(url + '/live', 'busy');
  t.after(() => watcher.client.destroy());
  await until(() => watcher.video > 5);
  const second = await ffmpeg(t, publishArgs(`${url}/live/busy`, 3), 20_000);
  const r = await second.done;
  assert.notEqual(r.code, 0, 'ffmpeg must fail to publish to a busy name');
  assert.ok(logs.some((l) => l.msg === 'publish refused' && l.fields['code'] === 'ERR_LIVE_STREAM_BUSY'));
  const before = watcher.video;
  await sleep(500);
  assert.ok(watcher.video > before + 5, 'the first stream keeps flowing');
  assert.equal(server.hub.get('live', 'busy')?.publisher?.id, server.hub.get('live', 'busy')?.publisher?.id);
});

test('a publisher that reconnects: the player stays connected, resumes, timestamps stay monotonic', { timeout: 60_000 }, async (t) => {
  const { url } = await startServer(t);
  const player = await playCounting(url + '/live', 'again');
  t.after(() => player.client.destroy());
  const codes: string[] = [];
  const events: string[] = [];
  player.client.onStatus = (info) => codes.push(String(info['code']));
  player.client.onUserControl = (type) => events.push(type);
  const p1 = await publishSynthetic(url + '/live', 'again');
  await until(() => player.video >= 25);
  await p1.stop();
  assert.ok(await until(() => codes.includes('NetStream.Play.UnpublishNotify')), 'UnpublishNotify');
  assert.ok(await until(() => events.includes('streamEof')), 'StreamEOF');
  const seen = player.video;
  const p2 = await publishSynthetic(url + '/live', 'again');
  t.after(() => p2.stop());
  assert.ok(await until(() => player.video >= seen + 25), 'frames from the second publisher arrive');
  assert.equal(player.client.closed, false);
  assert.equal(player.backwards, 0, 'video timestamps never go backwards');
  assert.equal(player.firstVideoKeyframe, true);
});

test('ffmpeg plays from an ffmpeg publisher with the default config through the built CLI path', { timeout: 60_000 }, async (t) => {
  // covered by the first test through RtmpServer; this one checks ffmpeg gets onMetaData (stream info has the size)
  const { url } = await startServer(t);
  const publisher = await ffmpeg(t, publishArgs(`${url}/live/meta`, 4, { size: '160x120' }));
  await sleep(1500);
  const probe = await ffmpeg(t, ['-i', `${url}/live/meta`, '-t', '1', '-c', 'copy', '-f', 'null', '-'], 20_000);
  const r = await probe.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.match(r.stderr, /Video: h264.*160x120/);
  assert.match(r.stderr, /Audio: aac/);
  publisher.kill();
});
