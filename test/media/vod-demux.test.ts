import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, before, after } from 'node:test';
import { isServerError, ErrorCode } from '../../src/core/errors.js';
import { FrameKind } from '../../src/live/frame.js';
import { FlvKeyframeIndex, parseFlvFileHeader, scanFlvTags } from '../../src/media/flv-demux.js';
import { encodeFlvHeader, encodeFlvTag } from '../../src/media/flv.js';
import { parseBoxHeader, parseMoov } from '../../src/media/mp4-demux.js';
import { VodIndexCache, openVodFile, type VodFrame, type VodMedia } from '../../src/vod/media-file.js';
import { makeVodFile } from '../helpers/vod-media.js';

const corpusDir = fileURLToPath(new URL('../fuzz/vod/', import.meta.url));

async function readAll(m: VodMedia): Promise<VodFrame[]> {
  const all: VodFrame[] = [];
  for (;;) {
    const f = await m.read(Infinity, 256 * 1024);
    if (f.length === 0) return all;
    all.push(...f);
  }
}

/** Everything a parser may throw for bad input: a coded error, never a crash. */
function codedOnly(e: unknown): boolean {
  return isServerError(e);
}

describe('VOD demuxers on ffmpeg files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vod-demux-'));
    await Promise.all([
      makeVodFile(path.join(dir, 'a.mp4'), 'mp4', { bframes: true }),
      makeVodFile(path.join(dir, 'b.mp4'), 'mp4-faststart'),
      makeVodFile(path.join(dir, 'c.flv'), 'flv'),
      makeVodFile(path.join(dir, 'd.flv'), 'flv', { keyframeIndex: true }),
    ]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const name of ['a.mp4', 'b.mp4', 'c.flv']) {
    it(`${name}: duration, headers, every frame in order, seek to the keyframe before`, async () => {
      const cache = new VodIndexCache();
      const m = await openVodFile(path.join(dir, name), cache);
      try {
        assert.ok(Math.abs(m.durationMs - 4000) < 150, `duration ${m.durationMs}`);
        assert.ok(m.hasVideo && m.hasAudio);
        assert.equal(m.headers.length, 2);
        assert.ok(m.metadata !== undefined && m.metadata.includes('onMetaData'));
        assert.equal(m.seek(0), 0);
        const frames = await readAll(m);
        // coded frames only (an FLV file also carries its codec headers and an end-of-sequence tag)
        const video = frames.filter((f) => f.kind === FrameKind.Video && f.payload[1] === 1);
        const audio = frames.filter((f) => f.kind === FrameKind.Audio && f.payload[1] === 1);
        assert.equal(video.length, 100);
        assert.ok(audio.length >= 170 && audio.length <= 175, `audio ${audio.length}`);
        assert.equal(video[0]!.payload[0]! >> 4, 1, 'the first video frame is a keyframe');
        for (let i = 1; i < frames.length; i++) assert.ok(frames[i]!.timestamp >= frames[i - 1]!.timestamp - 50, 'in time order');
        const at = m.seek(2500);
        // the keyframe of 2 s (an FLV's video may be shifted by the AAC encoder delay, 23 ms)
        assert.ok(at >= 2000 && at < 2050, `seek landed at ${at}`);
        const after = await m.read(2600, 1 << 20);
        const v0 = after.find((f) => f.kind === FrameKind.Video)!;
        assert.equal(v0.timestamp, at);
        assert.equal(v0.payload[0]! >> 4, 1);
        assert.ok(after.every((f) => f.timestamp >= 1990 && f.timestamp <= 2600));
      } finally {
        await m.close();
      }
    });
  }

  it('an FLV with a keyframe index in onMetaData is not scanned whole', async () => {
    // a broken tag after the last one (its PreviousTagSize is wrong): a scan of the whole file refuses it, the index spares the scan
    const tail = Buffer.from([9, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x17, 0, 0, 0, 0]);
    const indexed = path.join(dir, 'tail-d.flv');
    await writeFile(indexed, Buffer.concat([await readFile(path.join(dir, 'd.flv')), tail]));
    const m = await openVodFile(indexed, new VodIndexCache());
    try {
      assert.ok(Math.abs(m.durationMs - 4000) < 150);
      const at = m.seek(2500);
      assert.ok(at >= 2000 && at < 2050, `seek landed at ${at}`);
      const frames = await m.read(2600, 1 << 20);
      const v = frames.find((f) => f.kind === FrameKind.Video)!;
      assert.ok(v.payload[0]! >> 4 === 1 && v.timestamp >= 2000 && v.timestamp < 2050, `first frame ${v.timestamp}`);
    } finally {
      await m.close();
    }
    const plain = path.join(dir, 'tail-c.flv');
    await writeFile(plain, Buffer.concat([await readFile(path.join(dir, 'c.flv')), tail]));
    await assert.rejects(openVodFile(plain, new VodIndexCache()), (e: unknown) => isServerError(e, ErrorCode.VodReadFailed), 'without an index the scan finds the broken tag');
  });

  it('a truncated MP4 (moov first, mdat cut) ends with VodReadFailed', async () => {
    const whole = await readFile(path.join(dir, 'b.mp4'));
    const cut = path.join(dir, 'cut.mp4');
    await writeFile(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const m = await openVodFile(cut, new VodIndexCache());
    try {
      await assert.rejects(readAll(m), (e: unknown) => isServerError(e, ErrorCode.VodReadFailed));
    } finally {
      await m.close();
    }
  });

  it('a truncated FLV plays up to its last complete tag', async () => {
    const whole = await readFile(path.join(dir, 'c.flv'));
    const cut = path.join(dir, 'cut.flv');
    await writeFile(cut, whole.subarray(0, Math.floor(whole.length / 2) + 7));
    const m = await openVodFile(cut, new VodIndexCache());
    try {
      const frames = await readAll(m);
      assert.ok(frames.length > 50 && frames.length < 250, `${frames.length} frames`);
    } finally {
      await m.close();
    }
  });

  it('an MP4 whose moov is cut off, or garbage, is refused with a coded error', async () => {
    const whole = await readFile(path.join(dir, 'a.mp4'));
    const cut = path.join(dir, 'nomoov.mp4');
    await writeFile(cut, whole.subarray(0, whole.length - 100));
    await assert.rejects(openVodFile(cut, new VodIndexCache()), (e: unknown) => isServerError(e, ErrorCode.VodReadFailed));
    const junk = path.join(dir, 'junk.flv');
    await writeFile(junk, Buffer.from('this is not a video file at all'));
    await assert.rejects(openVodFile(junk, new VodIndexCache()), (e: unknown) => isServerError(e, ErrorCode.VodReadFailed));
  });

  it('moov bad inputs: every truncation and random bytes flipped give coded errors only', async () => {
    const whole = await readFile(path.join(dir, 'b.mp4'));
    // the moov body of the faststart file: after ftyp
    const ftyp = parseBoxHeader(whole, 0, 0, whole.length)!;
    const moovH = parseBoxHeader(whole, ftyp.size, ftyp.size, whole.length)!;
    assert.equal(moovH.type, 'moov');
    const moov = whole.subarray(ftyp.size + moovH.headerSize, ftyp.size + moovH.size);
    assert.ok(parseMoov(moov).video !== undefined);
    for (let n = 0; n < moov.length; n += 7) {
      try {
        parseMoov(moov.subarray(0, n));
      } catch (e) {
        assert.ok(codedOnly(e), `truncated at ${n}: ${String(e)}`);
      }
    }
    let seed = 12345;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(moov);
      for (let k = 0; k < 4; k++) b[rand() % b.length] = rand() & 0xff;
      try {
        parseMoov(b);
      } catch (e) {
        assert.ok(codedOnly(e), `mutation ${i}: ${String(e)}`);
      }
    }
  });
});

describe('VOD demuxers: bad input', () => {
  it('box headers: oversized and 64-bit sizes', () => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(1000, 0);
    b.write('moov', 4, 'latin1');
    assert.throws(() => parseBoxHeader(b, 0, 0, 500), (e: unknown) => isServerError(e, ErrorCode.Mp4Malformed));
    b.writeUInt32BE(1, 0);
    b.writeBigUInt64BE(2n ** 62n, 8);
    assert.throws(() => parseBoxHeader(b, 0, 0, 500), (e: unknown) => isServerError(e, ErrorCode.Mp4Malformed));
    assert.equal(parseBoxHeader(b.subarray(0, 12), 0, 0, 500), undefined);
    b.writeUInt32BE(4, 0);
    assert.throws(() => parseBoxHeader(b, 0, 0, 500), (e: unknown) => isServerError(e, ErrorCode.Mp4Malformed));
  });

  it('a stsz claiming a huge sample count in a tiny box is refused before allocating', () => {
    const box = (type: string, body: Buffer): Buffer => {
      const h = Buffer.alloc(8);
      h.writeUInt32BE(8 + body.length, 0);
      h.write(type, 4, 'latin1');
      return Buffer.concat([h, body]);
    };
    const mvhd = box('mvhd', Buffer.concat([Buffer.alloc(12), Buffer.from([0, 0, 3, 232, 0, 0, 0, 10]), Buffer.alloc(80)]));
    const mdhd = box('mdhd', Buffer.concat([Buffer.alloc(12), Buffer.from([0, 0, 3, 232, 0, 0, 0, 10]), Buffer.alloc(4)]));
    const hdlr = box('hdlr', Buffer.concat([Buffer.alloc(8), Buffer.from('soun'), Buffer.alloc(12)]));
    const esds = box('esds', Buffer.from([0, 0, 0, 0, 3, 25, 0, 1, 0, 4, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2, 0x12, 0x10]));
    const mp4a = box('mp4a', Buffer.concat([Buffer.alloc(8), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 16, 0, 0, 0, 0, 0xac, 0x44, 0, 0]), esds]));
    const stsd = box('stsd', Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), mp4a]));
    const stsz = box('stsz', Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
    const stbl = box('stbl', Buffer.concat([stsd, stsz]));
    const trak = box('trak', box('mdia', Buffer.concat([mdhd, hdlr, box('minf', stbl)])));
    assert.throws(() => parseMoov(Buffer.concat([mvhd, trak])), (e: unknown) => isServerError(e, ErrorCode.Mp4Malformed));
  });

  it('FLV file header and tags: bad signature, oversized tag, wrong PreviousTagSize, random bytes', () => {
    assert.throws(() => parseFlvFileHeader(Buffer.from('FLX\x01\x05\x00\x00\x00\x09')), (e: unknown) => isServerError(e, ErrorCode.FlvMalformed));
    assert.throws(() => parseFlvFileHeader(Buffer.from('FLV')), (e: unknown) => isServerError(e, ErrorCode.FlvMalformed));
    assert.deepEqual(parseFlvFileHeader(encodeFlvHeader({ audio: true, video: true })), { audio: true, video: true, firstTag: 13 });
    const tag = encodeFlvTag({ type: 9, timestamp: 0x01020304, data: Buffer.from([0x17, 1, 0, 0, 0, 1, 2]) });
    const seen: number[] = [];
    assert.equal(scanFlvTags(tag, 0, tag.length, 13, 100, (t) => (seen.push(t.timestamp), true)), tag.length);
    assert.deepEqual(seen, [0x01020304]);
    assert.equal(scanFlvTags(tag, 0, tag.length - 1, 13, 100, () => true), 0, 'a cut tag waits for the next window');
    assert.throws(() => scanFlvTags(tag, 0, tag.length, 13, 3, () => true), (e: unknown) => isServerError(e, ErrorCode.FlvMalformed));
    const bad = Buffer.from(tag);
    bad.writeUInt32BE(5, bad.length - 4);
    assert.throws(() => scanFlvTags(bad, 0, bad.length, 13, 100, () => true), (e: unknown) => isServerError(e, ErrorCode.FlvMalformed));
    let seed = 7;
    for (let i = 0; i < 500; i++) {
      const junk = Buffer.alloc(64);
      for (let k = 0; k < junk.length; k++) junk[k] = (seed = (seed * 48271) % 2147483647) & 0xff;
      try {
        scanFlvTags(junk, 0, junk.length, 0, 1 << 20, () => true);
      } catch (e) {
        assert.ok(codedOnly(e));
      }
    }
  });

  it('keyframe index: lookups, and onMetaData indexes that do not fit the file are refused', () => {
    const k = FlvKeyframeIndex.fromMetadata([0, 2, 4], [13, 5000, 9000], 10000)!;
    assert.deepEqual(k.before(3000), { time: 2000, offset: 5000 });
    assert.deepEqual(k.before(-5), { time: 0, offset: 13 });
    assert.deepEqual(k.before(1e9), { time: 4000, offset: 9000 });
    assert.equal(FlvKeyframeIndex.fromMetadata([0, 2], [13, 20000], 10000), undefined);
    assert.equal(FlvKeyframeIndex.fromMetadata([0, 'x'], [13, 20], 10000), undefined);
  });

  it('the fuzz corpus (test/fuzz/vod): coded errors only', async () => {
    for (const f of await readdir(corpusDir)) {
      const b = await readFile(path.join(corpusDir, f));
      try {
        if (f.startsWith('moov')) parseMoov(b);
        else scanFlvTags(b, 0, b.length, 0, 1 << 24, () => true);
      } catch (e) {
        assert.ok(codedOnly(e), `${f}: ${String(e)}`);
      }
    }
  });
});
