import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { hookServer } from '../helpers/hooks.js';
import { startServer, until } from '../helpers/server.js';
import { probe, summarize, tempDir } from './helpers.js';

test('must show: ffmpeg publishes H.264+AAC for 10 s with record all: both streams, duration within 0.5 s, a keyframe index', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const hooks = await hookServer(t);
  const cfg = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0;
      application live { live on; record all; record_path ${dir};
        on_record_started ${hooks.url}/started; on_record_done ${hooks.url}/done;
      } } }`,
    'rec.conf',
  );
  const { url, server } = await startServer(t, cfg);
  const run = await runFfmpeg(publishArgs(`${url}/live/show`, 10, { rate: 25, gop: 25 }), 60_000);
  t.after(() => run.kill());
  const r = await run.done;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.ok(await until(() => hooks.calls.some((c) => c.path === '/done'), 10_000), 'on_record_done called');
  const file = path.join(dir, 'show.flv');
  assert.deepEqual(readdirSync(dir), ['show.flv']);
  const done = hooks.calls.find((c) => c.path === '/done')!;
  assert.equal(done.params.get('call'), 'record_done');
  assert.equal(done.params.get('path'), file);
  assert.equal(done.params.get('name'), 'show');
  assert.equal(done.params.get('recorder'), '');
  assert.ok(hooks.calls.some((c) => c.path === '/started' && c.params.get('path') === file));

  const p = await probe(file);
  const types = p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();
  assert.deepEqual(types, ['audio:aac', 'video:h264']);
  const duration = Number(p.format.duration);
  assert.ok(Math.abs(duration - 10) <= 0.5, `duration ${duration}`);
  const video = p.streams.find((s) => s.codec_type === 'video');
  assert.ok(Number(video?.nb_read_packets) >= 245, `video packets ${video?.nb_read_packets}`);

  const s = summarize(file);
  assert.equal(s.truncatedAt, undefined);
  assert.ok(s.metadata !== undefined);
  const meta = s.metadata;
  assert.ok(Math.abs((meta['duration'] as number) - 10) <= 0.5, `metadata duration ${String(meta['duration'])}`);
  assert.equal(meta['width'], 320);
  assert.equal(meta['height'], 240);
  assert.equal(meta['videocodecid'], 7);
  assert.equal(meta['audiocodecid'], 10);
  const kf = meta['keyframes'] as { times: number[]; filepositions: number[] };
  assert.ok(kf.times.length >= 9 && kf.times.length === s.videoKeyframes, `index ${kf.times.length} of ${s.videoKeyframes} keyframes`);
  assert.equal(kf.times[0], 0);
  assert.equal(meta['filesize'], (await import('node:fs')).statSync(file).size);
  assert.equal(s.firstTypes[0], 18, 'metadata first');
  assert.ok(s.startsOnKeyframe);
  // every file position points at a video keyframe tag
  const bytes = (await import('node:fs')).readFileSync(file);
  for (const pos of kf.filepositions) {
    assert.equal(bytes[pos], 9, `tag type at ${pos}`);
    assert.equal((bytes[pos + 11] ?? 0) >> 4, 1, `keyframe at ${pos}`);
  }
  // the recorder left the stream
  assert.equal(server.hub.get('live', 'show'), undefined);
});
