import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { relayModule, type RelayOptions } from '../../src/app/relay.js';
import { parseConfigText } from '../../src/config/load.js';
import { startServer, until, type TestServer } from '../helpers/server.js';
import { AVC_HEADER, playCounting, videoFrame } from '../helpers/synthetic.js';
import { fakeUpstream, healthyStream, referenceBombSetDataFrame, stillFlowing } from '../helpers/attack-crash.js';

/** A server whose applications run only the relay module (as in relay.test.ts). */
async function relayServer(t: TestContext, appBody: string, options: RelayOptions): Promise<TestServer> {
  const config = parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; push_reconnect 100ms; pull_reconnect 100ms; ${appBody} } } }`, 'relay-crash.conf');
  return startServer(t, config, { modules: (app, deps) => [relayModule(app, deps, options)].filter((m) => m !== undefined) });
}

test('pull: an upstream sending a reference-bomb @setDataFrame: the message is dropped (logged once), the pulled stream, its player and a healthy stream flow on', { timeout: 60_000 }, async (t) => {
  const up = await fakeUpstream(t);
  const a = await relayServer(t, `pull rtmp://127.0.0.1:${up.port}/live;`, { reconnectCap: 800, pullLinger: 300 });
  const healthy = await healthyStream(t, a);
  const player = await playCounting(`${a.url}/live`, 'up');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => up.players === 1, 10_000), 'A pulls from the upstream');
  let ts = 0;
  let n = 0;
  up.sendVideo(0, AVC_HEADER);
  const timer = setInterval(() => {
    up.sendVideo((ts += 40), videoFrame(n % 10 === 0, 1000, n));
    n++;
  }, 40);
  t.after(() => clearInterval(timer));
  assert.ok(await until(() => player.video > 5, 10_000), 'the pulled stream reaches the player');

  const bomb = referenceBombSetDataFrame(); // ~200 KB, ~60 MB once its references are written out
  up.sendData(bomb);
  up.sendData(bomb);
  const before = player.video;
  assert.ok(await until(() => player.video >= before + 15, 10_000), `the pulled stream flows on after the bomb (${player.video})`);
  assert.equal(player.client.closed, false);
  assert.equal(a.logs.filter((l) => l.msg.startsWith('pull relay: oversized script data dropped')).length, 1, 'logged once');
  assert.ok((a.server.hub.get('live', 'up')?.metadata?.payload.length ?? 0) < 1024 * 1024, 'nothing oversized cached');
  await stillFlowing(healthy);
});
