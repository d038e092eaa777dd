import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { FrameKind, type MediaFrame } from '../../src/live/frame.js';
import { FlvTagType, encodeFlvHeader, encodeFlvTag } from '../../src/media/flv.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { VodIndexCache, openVodFile, type VodMedia } from '../../src/vod/media-file.js';
import { SharedFiles } from '../../src/vod/shared-file.js';
import { startServer } from '../helpers/server.js';
import { makeVodFile } from '../helpers/vod-media.js';

async function readAll(m: VodMedia, step = Infinity): Promise<MediaFrame[]> {
  const all: MediaFrame[] = [];
  for (let until = step; ; until += step) {
    const f = await m.read(until, 256 * 1024);
    if (f.length === 0) return all;
    all.push(...f);
  }
}

function same(a: readonly MediaFrame[], b: readonly MediaFrame[]): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i]!.kind, b[i]!.kind);
    assert.equal(a[i]!.timestamp, b[i]!.timestamp);
    assert.ok(a[i]!.payload.equals(b[i]!.payload), `frame ${i} differs`);
  }
}

describe('VOD: plays of one file share its descriptor and frames', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vod-shared-'));
    await Promise.all([makeVodFile(path.join(dir, 'a.mp4'), 'mp4', { bframes: true }), makeVodFile(path.join(dir, 'c.flv'), 'flv')]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const name of ['a.mp4', 'c.flv']) {
    it(`${name}: two plays, one descriptor, the same frame objects; the last close closes the file`, async () => {
      const reference = await openVodFile(path.join(dir, name), new VodIndexCache());
      const want = await readAll(reference);
      await reference.close();
      assert.ok(want.filter((f) => f.kind === FrameKind.Video).length >= 100);

      const cache = new VodIndexCache();
      const a = await openVodFile(path.join(dir, name), cache);
      const b = await openVodFile(path.join(dir, name), cache);
      assert.equal(cache.files.openFiles, 1, 'one descriptor for both plays');
      a.seek(0);
      b.seek(0);
      // a runs ahead by 200 ms steps, b follows: b reads nothing itself
      const fa = await readAll(a, 200);
      const fb = await readAll(b, 300);
      same(fa, want);
      same(fb, want);
      for (let i = 0; i < fa.length; i++) assert.equal(fa[i], fb[i], `frame ${i}: one object for both plays`);
      assert.ok(cache.files.cachedBytes > 0);
      await a.close();
      await a.close(); // twice: no second release
      assert.equal(cache.files.openFiles, 1, 'b still has it');
      b.seek(1000);
      assert.ok((await b.read(1500, 1 << 20)).length > 0, 'b reads on after a left');
      await b.close();
      assert.equal(cache.files.openFiles, 0);
      assert.equal(cache.files.cachedBytes, 0, 'the cache went with the file');
    });

    it(`${name}: a small cache budget holds its bound and plays stay whole`, async () => {
      const budget = 8 * 1024;
      const cache = new VodIndexCache(32, new SharedFiles(budget, budget));
      const a = await openVodFile(path.join(dir, name), cache);
      const b = await openVodFile(path.join(dir, name), cache);
      const reference = await openVodFile(path.join(dir, name), new VodIndexCache());
      const want = await readAll(reference);
      await reference.close();
      const largest = Math.max(...want.map((f) => f.payload.length));
      a.seek(0);
      b.seek(0);
      const fa: MediaFrame[] = [];
      const fb: MediaFrame[] = [];
      // b a second behind a: past the budget, b reads again what a read
      for (let t = 100; ; t += 100) {
        const x = await a.read(t, 1 << 20);
        const y = t > 1000 ? await b.read(t - 1000, 1 << 20) : [];
        assert.ok(cache.files.cachedBytes <= budget + largest, `cache ${cache.files.cachedBytes} bytes`);
        fa.push(...x);
        fb.push(...y);
        if (x.length === 0 && y.length === 0 && t > 1000) break;
      }
      same(fa, want);
      same(fb, want);
      await Promise.all([a.close(), b.close()]);
    });
  }

  it('FLV tags larger than a read window (64 KiB), script tags between frames: every frame, whole', async () => {
    const video = (key: boolean, n: number, fill: number): Buffer => {
      const b = Buffer.alloc(n, fill);
      b[0] = key ? 0x17 : 0x27;
      b[1] = 1;
      return b;
    };
    const frames = [
      { type: FlvTagType.Video, timestamp: 0, data: Buffer.from([0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1e, 0xff]) },
      { type: FlvTagType.Video, timestamp: 0, data: video(true, 200_000, 1) },
      { type: FlvTagType.Script, timestamp: 10, data: Buffer.from([2, 0, 3, 0x61, 0x62, 0x63]) },
      { type: FlvTagType.Video, timestamp: 40, data: video(false, 1000, 2) },
      { type: FlvTagType.Video, timestamp: 80, data: video(false, 70_000, 3) },
      { type: FlvTagType.Video, timestamp: 120, data: video(true, 300_000, 4) },
    ];
    const file = path.join(dir, 'big-tags.flv');
    await writeFile(file, Buffer.concat([encodeFlvHeader({ audio: false, video: true }), ...frames.map((f) => encodeFlvTag(f))]));
    const cache = new VodIndexCache();
    const a = await openVodFile(file, cache);
    const b = await openVodFile(file, cache);
    try {
      a.seek(0);
      b.seek(0);
      const want = frames.filter((f) => f.type !== FlvTagType.Script);
      for (const m of [a, b]) {
        const got = await readAll(m, 30);
        assert.equal(got.length, want.length);
        for (let i = 0; i < got.length; i++) {
          assert.equal(got[i]!.timestamp, want[i]!.timestamp);
          assert.ok(got[i]!.payload.equals(want[i]!.data), `frame ${i}`);
        }
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a file replaced under a play (another size or mtime) is another file', async () => {
    const file = path.join(dir, 'r.flv');
    await copyFile(path.join(dir, 'c.flv'), file);
    const cache = new VodIndexCache();
    const a = await openVodFile(file, cache);
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    const b = await openVodFile(file, cache);
    assert.equal(cache.files.openFiles, 2);
    await Promise.all([a.close(), b.close()]);
    assert.equal(cache.files.openFiles, 0);
  });

  it('six players of one file at once through RTMP each get every frame, byte for byte', { timeout: 60_000 }, async (t) => {
    const srv = await startServer(t, parseConfigText(`rtmp { server { listen 127.0.0.1:0; application vod { play ${dir}; } } }`, 'shared.conf'));
    const reference = await openVodFile(path.join(dir, 'c.flv'), new VodIndexCache());
    const want = (await readAll(reference)).filter((f) => f.kind === FrameKind.Video && f.payload[1] === 1);
    await reference.close();
    const plays = Array.from({ length: 6 }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * 150));
      const c = await RtmpClient.connect(`${srv.url}/vod`);
      t.after(() => c.destroy());
      const got: Buffer[] = [];
      c.onMedia = (m) => {
        if (m.type === MessageType.Video && m.payload[1] === 1) got.push(Buffer.from(m.payload));
      };
      const id = await c.play('c');
      await c.waitStatus(id, ['NetStream.Play.Stop'], 30_000);
      return got;
    });
    for (const got of await Promise.all(plays)) {
      assert.equal(got.length, want.length);
      for (let i = 0; i < got.length; i++) assert.ok(got[i]!.equals(want[i]!.payload), `video frame ${i}`);
    }
  });
});
