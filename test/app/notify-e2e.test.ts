import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import type { ServerConfig } from '../../src/config/types.js';
import { runFfmpeg, type FfmpegRun } from '../helpers/ffmpeg.js';
import { startServer, until } from '../helpers/server.js';
import { hookServer } from '../helpers/hooks.js';
import { RtmpClient } from '../../src/rtmp/client.js';

/** The webhook backend: records every call; publishing needs key=good. */
async function backend(t: TestContext): Promise<{ base: string; calls: URLSearchParams[] }> {
  const hooks = await hookServer(t, ({ params }) => (params.get('call') !== 'publish' || params.get('key') === 'good' ? 200 : 403));
  return {
    base: hooks.url,
    get calls() {
      return hooks.calls.map((c) => c.params);
    },
  };
}

function config(hook: string): ServerConfig {
  const cfg = parseConfigText(
    `rtmp {
  server {
    listen 127.0.0.1:0;
    application live {
      live on;
      on_publish ${hook}/publish;
      on_publish_done ${hook}/publish_done;
    }
  }
}
`,
    'notify-e2e.conf',
  );
  return cfg;
}

async function ffmpeg(t: TestContext, url: string): Promise<FfmpegRun> {
  const run = await runFfmpeg(
    ['-re', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-t', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-f', 'flv', url],
    30_000,
  );
  t.after(() => run.kill());
  return run;
}

test('on_publish with ffmpeg: a bad stream key is refused, a good one streams', { timeout: 60_000 }, async (t) => {
  const hook = await backend(t);
  const { url, server } = await startServer(t, config(hook.base));

  const bad = await ffmpeg(t, `${url}/live/stream?key=bad`);
  const badResult = await bad.done;
  assert.notEqual(badResult.code, 0, 'ffmpeg with a bad key must fail');
  assert.equal(server.hub.get('live', 'stream')?.active ?? false, false);
  assert.equal(hook.calls.length, 1);
  assert.equal(hook.calls[0]!.get('call'), 'publish');
  assert.equal(hook.calls[0]!.get('name'), 'stream');
  assert.equal(hook.calls[0]!.get('key'), 'bad');
  assert.equal(hook.calls[0]!.get('app'), 'live');

  const good = await ffmpeg(t, `${url}/live/stream?key=good`);
  assert.ok(await until(() => server.hub.get('live', 'stream')?.active === true, 10_000), 'the stream goes live');
  const goodResult = await good.done;
  assert.equal(goodResult.code, 0, `ffmpeg with a good key failed:\n${goodResult.stderr.slice(-2000)}`);
  assert.ok(await until(() => hook.calls.some((c) => c.get('call') === 'publish_done'), 5000), 'publish_done is called');
  const done = hook.calls.find((c) => c.get('call') === 'publish_done')!;
  assert.equal(done.get('name'), 'stream');
  assert.equal(done.get('key'), 'good');
});

test('on_disconnect: a connection that leaves is reported once (call=disconnect, its app, clientid and query)', { timeout: 30_000 }, async (t) => {
  const hooks = await hookServer(t);
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; on_connect ${hooks.url}/connect; on_disconnect ${hooks.url}/disconnect; application live { live on; } } }`,
    'on-disconnect.conf',
  );
  const s = await startServer(t, cfg);
  const c = await RtmpClient.connect(`${s.url}/live?token=abc`);
  assert.ok(await until(() => hooks.calls.some((h) => h.path === '/connect'), 5000), 'on_connect called');
  assert.equal(hooks.calls.filter((h) => h.path === '/disconnect').length, 0, 'not before the client leaves');
  c.destroy();
  assert.ok(await until(() => hooks.calls.some((h) => h.path === '/disconnect'), 5000), 'on_disconnect called');
  await new Promise((r) => setTimeout(r, 300));
  const done = hooks.calls.filter((h) => h.path === '/disconnect');
  assert.equal(done.length, 1);
  const connect = hooks.calls.find((h) => h.path === '/connect');
  const p = done[0]?.params;
  assert.equal(p?.get('call'), 'disconnect');
  assert.equal(p?.get('app'), 'live');
  assert.equal(p?.get('addr'), '127.0.0.1');
  assert.equal(p?.get('clientid'), connect?.params.get('clientid'));
  assert.equal(p?.get('token'), 'abc', "the client's connect query");
});
