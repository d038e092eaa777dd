import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { freePort } from '../helpers/cli.js';
import { hookServer } from '../helpers/hooks.js';
import { sleep, startServer, until } from '../helpers/server.js';
import { probe, summarize, tempDir } from './helpers.js';

test('record manual started and stopped over HTTP (rtmp_control record/start|stop, rec= for a named recorder): the answer is the file path', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const hooks = await hookServer(t);
  const httpPort = await freePort();
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0;
      application live { live on; record all manual; record_path ${dir}; on_record_started ${hooks.url}/started; on_record_done ${hooks.url}/done;
        recorder r1 { record video manual; record_suffix -r1.flv; }
      } } }
     http { server { listen 127.0.0.1:${httpPort}; location /control { rtmp_control all; } } }`,
    'control.conf',
  );
  const { url, server } = await startServer(t, cfg);
  const control = async (q: string): Promise<{ status: number; body: string }> => {
    const r = await fetch(`http://127.0.0.1:${httpPort}/control/record/${q}`);
    return { status: r.status, body: await r.text() };
  };
  assert.deepEqual(await control('start?app=live&name=s'), { status: 204, body: '' }, 'nothing published yet');
  const run = await runFfmpeg(publishArgs(`${url}/live/s`, 9, { rate: 25, gop: 25 }), 60_000);
  t.after(() => run.kill());
  assert.ok(await until(() => server.hub.get('live', 's')?.active === true, 10_000));
  await sleep(1500);
  assert.equal(hooks.calls.length, 0, 'manual: nothing recorded before record/start');
  const own = await control('start?app=live&name=s');
  assert.deepEqual(own, { status: 200, body: path.join(dir, 's.flv') });
  const r1 = await control('start?app=live&name=s&rec=r1');
  assert.deepEqual(r1, { status: 200, body: path.join(dir, 's-r1.flv') });
  assert.deepEqual(await control('start?app=live&name=s&rec=nope'), { status: 204, body: '' });
  assert.deepEqual(await control('start?app=live&name=s'), own, 'a second start answers the running file');
  await sleep(3000);
  assert.deepEqual(await control('stop?app=live&name=s'), own);
  assert.deepEqual(await control('stop?app=live&name=s'), { status: 204, body: '' }, 'not running any more');
  assert.ok(await until(() => hooks.calls.some((c) => c.path === '/done' && c.params.get('recorder') === ''), 5000));
  // r1 runs until the publisher stops
  assert.equal((await run.done).code, 0);
  assert.ok(await until(() => hooks.calls.filter((c) => c.path === '/done').length === 2, 5000));
  assert.deepEqual(hooks.calls.filter((c) => c.path === '/started').map((c) => c.params.get('recorder')).sort(), ['', 'r1']);

  assert.ok(existsSync(own.body) && existsSync(r1.body));
  const a = summarize(own.body);
  assert.ok(a.startsOnKeyframe && a.mediaAudio > 0);
  assert.ok(a.lastTimestamp >= 2500 && a.lastTimestamp <= 4600, `manual recording of ~3 s: ${a.lastTimestamp} ms`);
  const b = summarize(r1.body);
  assert.equal(b.mediaAudio, 0, 'record video: no audio');
  assert.ok(b.lastTimestamp > a.lastTimestamp + 2000, `r1 ran longer: ${b.lastTimestamp} ms`);
  const p = await probe(r1.body);
  assert.deepEqual(p.streams.map((s) => s.codec_type), ['video']);
});
