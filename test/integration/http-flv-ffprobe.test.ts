import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import { ffprobe, publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { startServer, until } from '../helpers/server.js';

const LOCAL = { host: '127.0.0.1', port: 0, proxyProtocol: false } as const;

test('ffprobe reads the HTTP-FLV URL with both streams while ffmpeg publishes H.264+AAC', async (t) => {
  const cfg = parseConfigText('rtmp { server { listen 1935; application live { live on; } } }\nhttp { server { listen 8080; location / { flv_live on; } } }', 'test.conf');
  const s = await startServer(t, { ...cfg, rtmp: cfg.rtmp.map((x) => ({ ...x, listen: [LOCAL] })), http: cfg.http.map((h) => ({ ...h, listen: [LOCAL] })) });
  const port = s.server.http?.addresses()[0]?.port;
  assert.ok(port !== undefined);
  const pub = await runFfmpeg(publishArgs(`${s.url}/live/cam`, 30));
  t.after(() => pub.kill());
  assert.ok(await until(() => s.server.snapshot().streams.some((x) => x.active && x.hasVideo && x.hasAudio), 20_000), 'published');
  // rejects when ffprobe exits with an error
  const { streams, stderr } = await ffprobe(`http://127.0.0.1:${port}/live/cam.flv`, ['-rw_timeout', '10000000']);
  assert.equal(stderr.trim(), '', 'no error from ffprobe');
  const video = streams.find((x) => x.codec_type === 'video');
  const audio = streams.find((x) => x.codec_type === 'audio');
  assert.equal(video?.codec_name, 'h264');
  assert.equal(video?.width, 320);
  assert.equal(audio?.codec_name, 'aac');
  assert.equal(audio?.sample_rate, '44100');
  // ffprobe left: the player is gone
  assert.ok(await until(() => !s.server.snapshot().connections.some((c) => c.protocol === 'http-flv')));
});
