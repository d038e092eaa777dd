/**
 * A stream pulled by a relay and a stream published over RTMP go through the
 * same stream service (issue 14): `meta`, drop_idle_publisher, access and
 * notify treat them alike. Each test runs both side by side on server A; the
 * pulled one comes from origin B.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { hookServer } from '../helpers/hooks.js';
import { startServer, until, sleep, type TestServer } from '../helpers/server.js';
import { AAC_HEADER, AVC_HEADER, playCounting, publishSynthetic, videoFrame } from '../helpers/synthetic.js';

/** Origin B, publishing `remote`; server A with `body` in its application, which pulls from B. */
async function pair(t: TestContext, body: string): Promise<{ a: TestServer; b: TestServer }> {
  const b = await startServer(t);
  const source = await publishSynthetic(`${b.url}/live`, 'remote');
  t.after(() => source.stop());
  const a = await startServer(t, parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; pull rtmp://127.0.0.1:${b.port}/live; ${body} } } }`, 'parity.conf'));
  return { a, b };
}

for (const meta of ['on', 'off'] as const) {
  test(`meta ${meta}: players of the pulled and of the published stream get the same script data`, { timeout: 60_000 }, async (t) => {
    const { a } = await pair(t, `meta ${meta};`);
    const local = await publishSynthetic(`${a.url}/live`, 'local');
    t.after(() => local.stop());
    const pulled = await playCounting(`${a.url}/live`, 'remote', true);
    t.after(() => pulled.client.destroy());
    const published = await playCounting(`${a.url}/live`, 'local', true);
    t.after(() => published.client.destroy());
    assert.ok(await until(() => pulled.video >= 10 && published.video >= 10, 15_000), `both flow (pulled ${pulled.video}, published ${published.video})`);
    const metadata = (p: typeof pulled): number => p.messages.filter((m) => m.type === MessageType.DataAmf0 && m.payload.includes('onMetaData')).length;
    if (meta === 'off') {
      assert.equal(metadata(pulled), 0, 'no onMetaData for the pulled stream');
      assert.equal(metadata(published), 0, 'no onMetaData for the published stream');
    } else {
      assert.equal(metadata(pulled), 1, 'onMetaData for the pulled stream');
      assert.equal(metadata(published), 1, 'onMetaData for the published stream');
    }
  });
}

test('access: deny publish refuses the pulled stream like a publisher (allow/deny see the upstream address)', { timeout: 60_000 }, async (t) => {
  const { a } = await pair(t, 'allow publish 10.0.0.0/8; deny publish all;');
  const c = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => c.destroy());
  await assert.rejects(c.publish('local'), /denied|refused|Denied/i);
  const pulled = await playCounting(`${a.url}/live`, 'remote');
  t.after(() => pulled.client.destroy());
  assert.ok(await until(() => a.logs.some((l) => l.msg.startsWith('pull relay: cannot publish locally') && l.fields['code'] === 'ERR_ACCESS_REFUSED'), 15_000), 'the pull was refused by access');
  await sleep(500);
  assert.equal(pulled.video, 0, 'the refused pull published nothing');
  assert.equal(a.server.hub.get('live', 'remote')?.active ?? false, false);
});

test('notify: on_publish and on_publish_done are called for the pulled stream as for a publisher', { timeout: 60_000 }, async (t) => {
  const hooks = await hookServer(t);
  const { a } = await pair(t, `on_publish ${hooks.url}/publish; on_publish_done ${hooks.url}/done;`);
  const local = await publishSynthetic(`${a.url}/live`, 'local');
  const pulled = await playCounting(`${a.url}/live`, 'remote');
  t.after(() => pulled.client.destroy());
  assert.ok(await until(() => pulled.video >= 5, 15_000), 'the pulled stream flows');
  const publishes = (name: string): URLSearchParams[] => hooks.calls.map((c) => c.params).filter((c) => c.get('call') === 'publish' && c.get('name') === name);
  assert.equal(publishes('local').length, 1);
  assert.equal(publishes('remote').length, 1, 'on_publish for the pulled stream');
  assert.equal(publishes('remote')[0]!.get('addr'), '127.0.0.1', "the pull's session is its upstream");
  assert.match(publishes('remote')[0]!.get('flashver') ?? '', /relay/);
  await local.stop();
  pulled.client.destroy();
  // the pull stops after its linger (5 s) once its last player left
  assert.ok(await until(() => hooks.calls.filter((c) => c.params.get('call') === 'publish_done').length === 2, 20_000), 'on_publish_done for both');
});

test('drop_idle_publisher: a pulled stream whose upstream sends no media is dropped like an idle publisher', { timeout: 60_000 }, async (t) => {
  const b = await startServer(t);
  // an upstream publisher that sends its headers and one keyframe, then nothing (still connected)
  const idle = await RtmpClient.connect(`${b.url}/live`);
  t.after(() => idle.destroy());
  const id = await idle.publish('quiet');
  idle.sendMedia(id, MessageType.Video, 0, AVC_HEADER);
  idle.sendMedia(id, MessageType.Audio, 0, AAC_HEADER);
  idle.sendMedia(id, MessageType.Video, 0, videoFrame(true, 500, 0));
  const a = await startServer(t, parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; drop_idle_publisher 1s; pull rtmp://127.0.0.1:${b.port}/live; } } }`, 'idle.conf'));
  // the same for a local publisher
  const local = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => local.destroy());
  const lid = await local.publish('still');
  local.sendMedia(lid, MessageType.Video, 0, AVC_HEADER);
  const player = await playCounting(`${a.url}/live`, 'quiet');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => a.server.hub.get('live', 'quiet')?.active === true, 10_000), 'the pull published the stream');
  assert.ok(await until(() => local.closed, 5000), 'the idle local publisher is dropped');
  assert.ok(
    await until(() => a.logs.some((l) => l.msg === 'pull relay stopped' && String(l.fields['reason']).includes('drop_idle_publisher')), 5000),
    'the idle pulled stream is dropped too',
  );
});
