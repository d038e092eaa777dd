import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { hookServer } from '../helpers/hooks.js';
import { startServer, until } from '../helpers/server.js';
import { summarize, tempDir, type FlvSummary } from './helpers.js';

function pieces(dir: string): { file: string; s: FlvSummary }[] {
  return readdirSync(dir)
    .sort()
    .map((f) => ({ file: f, s: summarize(path.join(dir, f)) }));
}

test('rolling on record_interval, record_max_frames and record_max_size loses no frame; every piece starts with metadata, headers and a keyframe', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  for (const d of ['interval', 'whole', 'frames', 'size']) mkdirSync(path.join(dir, d));
  const hooks = await hookServer(t);
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0;
      application live { live on; record all; record_path ${dir}/interval; record_interval 3s; record_unique on;
        on_record_done ${hooks.url}/done;
        recorder whole { record_path ${dir}/whole; record_interval off; record_unique off; }
        recorder frames { record_path ${dir}/frames; record_interval off; record_max_frames 60; }
        recorder size { record_path ${dir}/size; record_interval off; record_max_size 150k; record_suffix -%Y.flv; }
      } } }`,
    'rolling.conf',
  );
  const { url, server } = await startServer(t, cfg);
  const run = await runFfmpeg(publishArgs(`${url}/live/roll`, 8, { rate: 25, gop: 25 }), 60_000);
  t.after(() => run.kill());
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  // every recorder closed its last piece and left the stream
  assert.ok(await until(() => server.hub.get('live', 'roll') === undefined, 10_000));
  const whole = pieces(path.join(dir, 'whole'));
  assert.equal(whole.length, 1);
  assert.equal(whole[0]!.file, 'roll.flv');
  const total = whole[0]!.s;
  assert.ok(total.mediaVideo >= 195 && total.mediaVideo <= 201, `video frames ${total.mediaVideo}`);
  assert.ok(total.mediaAudio > 300, `audio frames ${total.mediaAudio}`);
  const year = String(new Date().getFullYear());

  for (const [sub, min] of [['interval', 3], ['frames', 3], ['size', 2]] as const) {
    const list = pieces(path.join(dir, sub));
    assert.ok(list.length >= min, `${sub}: ${list.length} pieces`);
    let v = 0;
    let a = 0;
    for (const { file, s } of list) {
      assert.equal(s.truncatedAt, undefined, file);
      assert.equal(s.firstTypes[0], 18, `${sub}/${file}: metadata first`);
      assert.ok(s.videoConfigs >= 1 && s.audioConfigs >= 1, `${sub}/${file}: codec headers`);
      assert.ok(s.startsOnKeyframe, `${sub}/${file}: starts on a keyframe`);
      assert.equal(s.firstTimestamp, 0, `${sub}/${file}: timestamps from 0`);
      const kf = s.metadata?.['keyframes'] as { times: number[] } | undefined;
      assert.equal(kf?.times.length, s.videoKeyframes, `${sub}/${file}: index`);
      v += s.mediaVideo;
      a += s.mediaAudio;
      if (sub === 'interval') assert.ok(s.lastTimestamp <= 3100, `${sub}/${file}: ${s.lastTimestamp} ms`);
      if (sub === 'frames') assert.ok(s.mediaVideo <= 75, `${sub}/${file}: ${s.mediaVideo} video frames`);
      if (sub === 'size') assert.ok(file.endsWith(`-${year}.flv`) || file.includes(`-${year}-`), file);
    }
    assert.equal(v, total.mediaVideo, `${sub}: video frames over the pieces`);
    assert.equal(a, total.mediaAudio, `${sub}: audio frames over the pieces`);
  }
  // on_record_done once per piece of the default recorder and once for each other file
  const files = ['interval', 'whole', 'frames', 'size'].reduce((n, d) => n + readdirSync(path.join(dir, d)).length, 0);
  assert.ok(await until(() => hooks.calls.length === files, 5000), `${hooks.calls.length} on_record_done calls for ${files} files`);
  assert.deepEqual(new Set(hooks.calls.map((c) => c.params.get('recorder'))), new Set(['', 'whole', 'frames', 'size']));
});
