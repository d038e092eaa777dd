import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { sleep, startServer, until } from '../helpers/server.js';
import { playCounting, publishSynthetic } from '../helpers/synthetic.js';

const CONFIG = `
rtmp {
  server {
    listen 127.0.0.1:0;
    listen [::1]:0;
    chunk_size 8192;
    application open {
      live on;
      meta copy;
      publish_notify on;
    }
    application locked {
      live on;
      meta off;
      idle_streams off;
      allow publish 10.0.0.0/8;
      deny publish all;
      allow play all;
    }
    application gated {
      live on;
      deny play all;
    }
  }
}
`;

test('two applications configured differently behave differently', { timeout: 60_000 }, async (t) => {
  const cfg = parseConfigText(CONFIG, 'apps.conf');
  const srv = await startServer(t, cfg);
  const [v4, v6] = srv.server.addresses();
  assert.equal(v4!.host, '127.0.0.1');
  assert.equal(v6!.host, '::1', 'IPv6 listen');
  const url4 = `rtmp://127.0.0.1:${v4!.port}`;
  const url6 = `rtmp://[::1]:${v6!.port}`;

  // open: publish works (over IPv6 too), players get metadata copied verbatim and PublishNotify
  const waiting = await playCounting(`${url4}/open`, 's', true);
  t.after(() => waiting.client.destroy());
  const pub = await publishSynthetic(`${url6}/open`, 's');
  t.after(() => pub.stop());
  assert.ok(await until(() => waiting.video > 5));
  assert.ok(waiting.client.statuses.some((s) => s.code === 'NetStream.Play.PublishNotify'), 'publish_notify on');
  const meta = waiting.messages.find((m) => m.type === MessageType.DataAmf0 && m.payload.includes(Buffer.from('onMetaData')));
  assert.ok(meta !== undefined && meta.payload.includes(Buffer.from('framerate')), 'meta copy keeps every field');

  // locked: publishing from 127.0.0.1 is denied by the access rules; the open stream is unaffected
  const denied = await RtmpClient.connect(`${url4}/locked`);
  t.after(() => denied.destroy());
  await assert.rejects(denied.publish('s'), /NetStream\.Publish\.Denied/);
  // idle_streams off: playing a stream nobody publishes is refused
  const idle = await RtmpClient.connect(`${url4}/locked`);
  t.after(() => idle.destroy());
  await assert.rejects(idle.play('nothing'), /NetStream\.Play\.StreamNotFound/);

  // gated: play denied, publish allowed
  const gatedPub = await publishSynthetic(`${url4}/gated`, 'g');
  t.after(() => gatedPub.stop());
  const gatedPlay = await RtmpClient.connect(`${url4}/gated`);
  t.after(() => gatedPlay.destroy());
  await assert.rejects(gatedPlay.play('g'), /NetStream\.Play\.Failed/);

  const before = waiting.video;
  await sleep(400);
  assert.ok(waiting.video > before + 3);
  assert.ok(srv.logs.some((l) => l.msg.includes('denied') || l.fields['code'] === 'ERR_ACCESS_REFUSED'));
});

test('meta off drops onMetaData; meta on rebuilds it with the standard fields only', { timeout: 30_000 }, async (t) => {
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application off { live on; meta off; } application on { live on; meta on; } } }`,
    'meta.conf',
  );
  const srv = await startServer(t, cfg);
  for (const app of ['off', 'on']) {
    const pub = await RtmpClient.connect(`${srv.url}/${app}`);
    t.after(() => pub.destroy());
    const sid = await pub.publish('m');
    pub.sendMetadata(sid, { width: 640, height: 360, secretEncoderNote: 'x' });
    await sleep(100);
    const player = await playCounting(`${srv.url}/${app}`, 'm', true);
    t.after(() => player.client.destroy());
    await sleep(300);
    const data = player.messages.filter((m) => m.type === MessageType.DataAmf0 && m.payload.includes(Buffer.from('onMetaData')));
    if (app === 'off') assert.equal(data.length, 0);
    else {
      assert.equal(data.length, 1);
      assert.ok(data[0]!.payload.includes(Buffer.from('width')));
      assert.ok(!data[0]!.payload.includes(Buffer.from('secretEncoderNote')));
    }
  }
});

test('an http block in the configuration serves rtmp_stat, rtmp_control and static files', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'http-root-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'index.m3u8'), '#EXTM3U\n');
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application live { live on; } } }
     http { server { listen 127.0.0.1:0;
       location /stat { rtmp_stat all; }
       location /control { rtmp_control all; }
       location /hls { alias ${dir}; add_header Cache-Control no-cache; }
     } }`,
    'http.conf',
  );
  const srv = await startServer(t, cfg);
  const http = srv.server.http!.addresses()[0]!;
  const base = `http://127.0.0.1:${http.port}`;
  const pub = await publishSynthetic(`${srv.url}/live`, 'cam');
  t.after(() => pub.stop());
  await sleep(300);
  const stat = await (await fetch(`${base}/stat`)).text();
  assert.match(stat, /<name>live<\/name>/);
  assert.match(stat, /<name>cam<\/name>/);
  assert.match(stat, /<publishing\/>/);
  const file = await fetch(`${base}/hls/index.m3u8`);
  assert.equal(file.status, 200);
  assert.equal(file.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  assert.equal(file.headers.get('cache-control'), 'no-cache');
  assert.equal((await fetch(`${base}/hls/../../etc/passwd`)).status >= 400, true);
  const dropped = await (await fetch(`${base}/control/drop/publisher?app=live&name=cam`)).text();
  assert.equal(dropped.trim(), '1');
  assert.ok(await until(() => pub.client.closed));
});
