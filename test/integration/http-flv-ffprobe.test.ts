import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import ffprobe from '@ffprobe-installer/ffprobe';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { startServer, until } from '../helpers/server.js';

const LOCAL = { host: '127.0.0.1', port: 0, proxyProtocol: false } as const;

function probe(url: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(ffprobe.path, ['-v', 'error', '-rw_timeout', '10000000', '-show_entries', 'stream=codec_type,codec_name,width,height,sample_rate', '-of', 'json', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

test('ffprobe reads the HTTP-FLV URL with both streams while ffmpeg publishes H.264+AAC', async (t) => {
  const cfg = parseConfigText('rtmp { server { listen 1935; application live { live on; } } }\nhttp { server { listen 8080; location / { flv_live on; } } }', 'test.conf');
  const s = await startServer(t, { ...cfg, rtmp: cfg.rtmp.map((x) => ({ ...x, listen: [LOCAL] })), http: cfg.http.map((h) => ({ ...h, listen: [LOCAL] })) });
  const port = s.server.http?.addresses()[0]?.port;
  assert.ok(port !== undefined);
  const pub = await runFfmpeg(publishArgs(`${s.url}/live/cam`, 30));
  t.after(() => pub.kill());
  assert.ok(await until(() => s.server.snapshot().streams.some((x) => x.active && x.hasVideo && x.hasAudio), 20_000), 'published');
  const r = await probe(`http://127.0.0.1:${port}/live/cam.flv`);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err.trim(), '', 'no error from ffprobe');
  const streams = (JSON.parse(r.out) as { streams: { codec_type: string; codec_name: string; width?: number; sample_rate?: string }[] }).streams;
  const video = streams.find((x) => x.codec_type === 'video');
  const audio = streams.find((x) => x.codec_type === 'audio');
  assert.equal(video?.codec_name, 'h264');
  assert.equal(video?.width, 320);
  assert.equal(audio?.codec_name, 'aac');
  assert.equal(audio?.sample_rate, '44100');
  // ffprobe left: the player is gone
  assert.ok(await until(() => !s.server.snapshot().connections.some((c) => c.protocol === 'http-flv')));
});
