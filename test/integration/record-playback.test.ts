import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { startServer, until } from '../helpers/server.js';
import { playWithFfmpeg } from '../helpers/vod-media.js';
import { tempDir } from '../record/helpers.js';

/**
 * Issue 15's first must-show, end to end through one server: ffmpeg publishes
 * H.264+AAC for 10 s to an application that records; ffmpeg then plays the
 * recording back through a `play` application over the recordings'
 * directory, from the start and from a seek to 5 s.
 */
test('a recording plays back through a play application, from the start and from a seek to 5 s', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, 'rec-play-');
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0;
      application live { live on; record all; record_path ${dir}; }
      application vod { play ${dir}; }
    } }`,
    'rec-play.conf',
  );
  const { url, server, logs } = await startServer(t, cfg);
  const run = await runFfmpeg(publishArgs(`${url}/live/show`, 10, { rate: 25, gop: 25 }), 60_000);
  t.after(() => run.kill());
  const published = await run.done;
  assert.equal(published.code, 0, published.stderr.slice(-2000));
  // the recorder closes its file when the publish ends
  assert.ok(await until(() => server.hub.get('live', 'show') === undefined, 10_000), 'the recorder finished');

  const whole = await playWithFfmpeg(`${url}/vod/show`);
  assert.equal(whole.videoCodec, 'h264', `${whole.stderr.slice(-1500)}\n${JSON.stringify(logs.filter((l) => l.level === 'warn' || l.level === 'error' || /vod|play/.test(String(l.msg))).slice(-10))}`);
  assert.ok(whole.video >= 245 && whole.video <= 255, `every video frame of 10 s at 25 fps: ${whole.video}\n${whole.stderr.slice(-800)}`);
  assert.ok(whole.audio > 400, `audio packets ${whole.audio}`);
  assert.ok((whole.videoDts[0] ?? -1) >= 0 && (whole.videoDts[0] ?? 1e9) < 100, `starts at 0: ${whole.videoDts[0]}`);

  // -ss on an rtmp input: ffmpeg sends an RTMP seek a little before 5 s; the play lands on the keyframe before it (GOP 1 s)
  const seeked = await playWithFfmpeg(`${url}/vod/show`, ['-ss', '5']);
  const first = seeked.videoDts.find((d) => d >= 3500);
  assert.ok(first !== undefined && first >= 3900 && first <= 5100, `first frame after the seek at ${first}: ${seeked.stderr.slice(-800)}`);
  assert.ok(seeked.video < 170, `after the seek ${seeked.video} frames, not the whole recording`);
});
