import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runFfmpeg } from '../helpers/ffmpeg.js';
import { freePort, runCli } from '../helpers/cli.js';
import { sleep } from '../helpers/server.js';
import { probe, summarize, tempDir } from './helpers.js';

test('kill -9 of the server mid-recording: ffprobe reads the file up to its last second', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const conf = path.join(dir, 'crash.conf');
  writeFileSync(conf, `rtmp { server { listen 127.0.0.1:${port}; application live { live on; record all; record_path ${dir}; } } }\n`);
  const server = runCli(['-c', conf]);
  t.after(() => server.kill());
  assert.ok(await server.waitFor(/listening|started/i), server.stderr().slice(-2000));
  const ff = await runFfmpeg(
    ['-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '30',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'flv', `rtmp://127.0.0.1:${port}/live/crash`],
    60_000,
  );
  t.after(() => ff.kill());
  assert.ok(await server.waitFor(/record: file opened/), server.stderr().slice(-2000));
  const opened = Date.now();
  await sleep(5000);
  const recorded = (Date.now() - opened) / 1000;
  server.child.kill('SIGKILL');
  const exit = await server.exited;
  assert.equal(exit.signal, 'SIGKILL');
  ff.kill();

  const file = path.join(dir, 'crash.flv');
  const s = summarize(file);
  // the metadata written at open is there (its index empty: it is rewritten only at close)
  assert.equal(s.firstTypes[0], 18);
  assert.ok(s.startsOnKeyframe);
  const p = await probe(file);
  const video = p.streams.find((x) => x.codec_type === 'video');
  const audio = p.streams.find((x) => x.codec_type === 'audio');
  assert.equal(video?.codec_name, 'h264');
  assert.equal(audio?.codec_name, 'aac');
  // every complete second: at least (recorded - 1) s of 25 fps video, the GOP the recorder started with aside
  const frames = Number(video?.nb_read_packets);
  assert.ok(frames >= Math.floor((recorded - 1) * 25), `${frames} video packets for ${recorded.toFixed(1)} s recorded`);
  assert.ok(s.lastTimestamp >= (recorded - 1) * 1000, `last timestamp ${s.lastTimestamp} ms for ${recorded.toFixed(1)} s`);
});
