import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probe, recordThenKill, summarize, tempDir } from './helpers.js';

test('kill -9 of the server mid-recording: ffprobe reads the file up to its last second', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const { file, recorded } = await recordThenKill(t, dir, 'flv');
  const s = summarize(file);
  // the metadata written at open is there (its index empty: it is rewritten only at close)
  assert.equal(s.firstTypes[0], 18);
  assert.ok(s.startsOnKeyframe);
  const p = await probe(file);
  const video = p.streams.find((x) => x.codec_type === 'video');
  const audio = p.streams.find((x) => x.codec_type === 'audio');
  assert.equal(video?.codec_name, 'h264');
  assert.equal(audio?.codec_name, 'aac');
  // every complete second: at least (recorded - 1) s of 25 fps video, the GOP the recorder started with aside
  const frames = Number(video?.nb_read_packets);
  assert.ok(frames >= Math.floor((recorded - 1) * 25), `${frames} video packets for ${recorded.toFixed(1)} s recorded`);
  assert.ok(s.lastTimestamp >= (recorded - 1) * 1000, `last timestamp ${s.lastTimestamp} ms for ${recorded.toFixed(1)} s`);
});
