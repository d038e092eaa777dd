import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { startServer, until } from '../helpers/server.js';
import { AAC_HEADER, AVC_HEADER, audioFrame, videoFrame } from '../helpers/synthetic.js';
import { summarize, tempDir } from './helpers.js';

async function publishOnce(url: string, name: string, frames: number): Promise<void> {
  const c = await RtmpClient.connect(url);
  const id = await c.publish(name);
  c.sendMedia(id, MessageType.Video, 0, AVC_HEADER);
  c.sendMedia(id, MessageType.Audio, 0, AAC_HEADER);
  for (let i = 0; i < frames; i++) {
    c.sendMedia(id, MessageType.Video, i * 40, videoFrame(i % 25 === 0, 500, i));
    c.sendMedia(id, MessageType.Audio, i * 40, audioFrame(i));
  }
  await new Promise((r) => setTimeout(r, 300));
  await c.close();
}

test('record_append continues one file over two publishes; exec_record_started/done get $path, $filename, $basename, $dirname, $name, $recorder', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'exec');
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0;
      application live { live on; record all; record_path ${dir}; record_append on;
        exec_record_done sh -c "echo done $path $filename $basename $dirname $name [$recorder] >> ${out}.log";
        exec_record_started sh -c "echo started $filename >> ${out}.log";
      } } }`,
    'append.conf',
  );
  const { url } = await startServer(t, cfg);
  await publishOnce(`${url}/live`, 'a', 50);
  const file = path.join(dir, 'a.flv');
  assert.ok(await until(() => readdirSync(dir).includes('exec.log') && readFileSync(`${out}.log`, 'utf8').includes('done'), 5000));
  const first = summarize(file);
  await publishOnce(`${url}/live`, 'a', 50);
  assert.ok(await until(() => readFileSync(`${out}.log`, 'utf8').split('\n').filter((l) => l.startsWith('done')).length === 2, 5000));
  const both = summarize(file);
  assert.equal(both.mediaVideo, 2 * first.mediaVideo);
  assert.equal(both.mediaAudio, 2 * first.mediaAudio);
  assert.ok(both.lastTimestamp > first.lastTimestamp + 1900, `timestamps go on: ${first.lastTimestamp} then ${both.lastTimestamp}`);
  assert.equal(both.truncatedAt, undefined);
  const log = readFileSync(`${out}.log`, 'utf8');
  assert.match(log, new RegExp(`^done ${file} a\\.flv a ${dir} a \\[\\]$`, 'm'));
  assert.match(log, /^started a\.flv$/m);
});
