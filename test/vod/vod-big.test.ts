import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { parseBoxHeader } from '../../src/media/mp4-demux.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { startServer } from '../helpers/server.js';
import { makeVodFile } from '../helpers/vod-media.js';

/** 2 GiB of hole between moov and mdat: the sample offsets all lie past 2 GiB. */
const GAP = 2 ** 31;

/**
 * A 2 GB MP4 made cheaply: ffmpeg's faststart file with a sparse `free` box of
 * 2 GiB put between its moov and mdat (stco offsets moved by as much). A server
 * that read the file whole, or mapped it, would need gigabytes; a play reads
 * the moov and the samples it sends.
 */
test('a 2 GB MP4 plays with the server process under 150 MB RSS', { timeout: 90_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vod-big-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const small = path.join(dir, 'small.mp4');
  await makeVodFile(small, 'mp4-faststart', { seconds: 4 });
  const whole = await readFile(small);
  const ftyp = parseBoxHeader(whole, 0, 0, whole.length)!;
  const moovH = parseBoxHeader(whole, ftyp.size, ftyp.size, whole.length)!;
  assert.equal(moovH.type, 'moov');
  const moovEnd = ftyp.size + moovH.size;
  const head = Buffer.from(whole.subarray(0, moovEnd));
  // move every chunk offset (stco) by the gap
  for (let i = head.indexOf('stco', ftyp.size); i >= 0; i = head.indexOf('stco', i + 4)) {
    const count = head.readUInt32BE(i + 8);
    for (let k = 0; k < count; k++) head.writeUInt32BE(head.readUInt32BE(i + 12 + 4 * k) + GAP, i + 12 + 4 * k);
  }
  const big = path.join(dir, 'big.mp4');
  const fh = await open(big, 'w');
  try {
    await fh.write(head, 0, head.length, 0);
    const free = Buffer.alloc(8);
    free.writeUInt32BE(GAP, 0);
    free.write('free', 4, 'latin1');
    await fh.write(free, 0, 8, moovEnd);
    await fh.write(whole, moovEnd, whole.length - moovEnd, moovEnd + GAP);
  } finally {
    await fh.close();
  }
  const st = await stat(big);
  assert.ok(st.size > 2 * 1024 ** 3, `the file is ${st.size} bytes`);

  const srv = await startServer(t, parseConfigText(`rtmp { server { listen 127.0.0.1:0; application vod { play ${dir}; } } }`, 'big.conf'));
  const client = await RtmpClient.connect(`${srv.url}/vod`);
  t.after(() => client.destroy());
  let video = 0;
  client.onMedia = (m) => {
    if (m.type === MessageType.Video && m.payload[1] === 1) video++;
  };
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  t.after(() => clearInterval(timer));
  const id = await client.play('mp4:big.mp4');
  await client.waitStatus(id, ['NetStream.Play.Stop'], 20_000);
  clearInterval(timer);
  assert.equal(video, 100, 'every video frame, read from past 2 GiB');
  // the whole test process (server, client, test runner) stays under the bound
  assert.ok(peak < 150 * 1024 * 1024, `peak RSS ${Math.round(peak / 1024 / 1024)} MB`);
  t.diagnostic(`peak RSS ${Math.round(peak / 1024 / 1024)} MB while playing a ${(st.size / 1024 ** 3).toFixed(2)} GiB MP4`);
});
