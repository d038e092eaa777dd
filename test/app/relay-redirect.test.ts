import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { startServer, until } from '../helpers/server.js';
import { playCounting, publishSynthetic } from '../helpers/synthetic.js';

test('notify_relay_redirect: on_play / on_publish redirects to rtmp:// URLs become a pull / a push', { timeout: 60_000 }, async (t) => {
  const b = await startServer(t);
  const playUrl = `rtmp://127.0.0.1:${b.port}/live/src`;
  const pushUrl = `rtmp://127.0.0.1:${b.port}/live/dst`;
  const hooks = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      // the pulled stream is published through the chain too (its on_publish names the relay): let it be
      if (new URLSearchParams(body).get('flashver')?.includes('relay') === true) {
        res.end();
        return;
      }
      res.statusCode = 302;
      res.setHeader('Location', req.url?.startsWith('/play') === true ? playUrl : pushUrl);
      res.end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', () => r()));
  t.after(() => hooks.close());
  const hp = (hooks.address() as { port: number }).port;
  const a = await startServer(
    t,
    parseConfigText(
      `rtmp { server { listen 127.0.0.1:0; application live { live on; notify_relay_redirect on;
         on_play http://127.0.0.1:${hp}/play; on_publish http://127.0.0.1:${hp}/publish; push_reconnect 200ms; pull_reconnect 200ms; } } }`,
      'redirect.conf',
    ),
  );

  // play: A pulls B's live/src under the MD5 of the URL
  const source = await publishSynthetic(`${b.url}/live`, 'src');
  t.after(() => source.stop());
  const viewer = await playCounting(`${a.url}/live`, 'whatever');
  t.after(() => viewer.client.destroy());
  assert.ok(await until(() => viewer.video >= 10, 10_000), `the redirected player got ${viewer.video} frames`);
  assert.equal(viewer.firstVideoKeyframe, true);
  const hashed = createHash('md5').update(playUrl).digest('hex');
  assert.equal(a.server.hub.get('live', hashed)?.active, true, 'the pulled stream is named by the MD5 of the URL');

  // publish: A pushes the publisher's stream to B's live/dst
  const pub = await publishSynthetic(`${a.url}/live`, 'mine');
  t.after(() => pub.stop());
  assert.ok(await until(() => b.server.hub.get('live', 'dst')?.active === true, 10_000), 'the push reached B');
  const far = await playCounting(`${b.url}/live`, 'dst');
  t.after(() => far.client.destroy());
  assert.ok(await until(() => far.video >= 10, 10_000));
});
