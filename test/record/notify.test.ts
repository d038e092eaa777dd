import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { commandMessage } from '../../src/rtmp/commands.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { startServer, until } from '../helpers/server.js';
import { AAC_HEADER, AVC_HEADER, audioFrame, videoFrame } from '../helpers/synthetic.js';
import { summarize, tempDir } from './helpers.js';

test('record_notify: NetStream.Record.Start and Stop to the publisher; NoAccess when the file cannot be opened', { timeout: 30_000 }, async (t) => {
  const dir = tempDir(t);
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0;
      application live { live on; record all; record_path ${dir}; record_notify on; }
      application bad { live on; record all; record_path ${dir}/missing; record_notify on; }
      application quiet { live on; record all; record_path ${dir}; }
    } }`,
    'notify.conf',
  );
  const { url } = await startServer(t, cfg);
  for (const [app, expect] of [
    ['live', ['NetStream.Publish.Start', 'NetStream.Record.Start', 'NetStream.Record.Stop']],
    ['bad', ['NetStream.Publish.Start', 'NetStream.Record.NoAccess']],
    ['quiet', ['NetStream.Publish.Start']],
  ] as const) {
    const c = await RtmpClient.connect(`${url}/${app}`);
    t.after(() => c.destroy());
    const codes: string[] = [];
    const details: unknown[] = [];
    c.onStatus = (info) => {
      codes.push(String(info['code']));
      details.push(info['description']);
    };
    const id = await c.publish(`n${app}`);
    c.sendMedia(id, MessageType.Video, 0, AVC_HEADER);
    c.sendMedia(id, MessageType.Audio, 0, AAC_HEADER);
    for (let i = 0; i < 50; i++) {
      c.sendMedia(id, MessageType.Video, i * 40, videoFrame(i % 25 === 0, 800, i));
      c.sendMedia(id, MessageType.Audio, i * 40, audioFrame(i));
    }
    // the file opens with the first frames (asynchronously): wait for it before unpublishing
    if (app !== 'quiet') assert.ok(await until(() => codes.length === 2, 5000), codes.join());
    c.send(commandMessage(0, 'deleteStream', 0, null, id));
    await until(() => codes.length >= expect.length + 1, 5000);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(codes.filter((x) => x !== 'NetStream.Unpublish.Success'), expect, app);
    if (app === 'live') {
      assert.equal(details[1], path.join(dir, 'nlive.flv'));
      const s = summarize(path.join(dir, 'nlive.flv'));
      assert.equal(s.mediaVideo, 50);
      assert.equal(s.mediaAudio, 50);
      assert.equal(s.videoKeyframes, 2);
    }
  }
});
