import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { parseAudioSpecificConfig } from '../../src/media/aac.js';
import { parseAvcDecoderConfig } from '../../src/media/avc.js';
import { aacAdts, avcAnnexB, crc32Mpeg2, TS_PACKET_SIZE, TsBuffer, TsMuxer, TsPid, TsStreamType } from '../../src/media/ts.js';
import { checkTs } from './ts-check.js';

const AVCC = Buffer.from([0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x04, 0x68, 0xee, 0x3c, 0x80]);
const ASC = Buffer.from([0x12, 0x10]);

/** an AVCC access unit: one NAL unit of `type` and `size` bytes */
function au(type: number, size: number): Buffer {
  const b = Buffer.alloc(4 + size, 0x55);
  b.writeUInt32BE(size, 0);
  b[4] = type;
  return b;
}

function mux(opts: { video: boolean; audio: boolean; frames: number; sizes?: (i: number) => number; pcr?: boolean }): Buffer {
  const avc = parseAvcDecoderConfig(AVCC);
  const aac = parseAudioSpecificConfig(ASC);
  const m = new TsMuxer({ ...(opts.video ? { video: TsStreamType.H264 } : {}), ...(opts.audio ? { audio: TsStreamType.Aac } : {}) });
  const out: Buffer[] = [m.tables()];
  for (let i = 0; i < opts.frames; i++) {
    const size = opts.sizes?.(i) ?? 1000;
    const dts = 63000 + i * 3600;
    if (opts.video) {
      const key = i % 25 === 0;
      out.push(m.pes({ pid: TsPid.Video, pts: dts + 7200, dts, ...(opts.pcr !== false ? { pcr: dts - 63000 } : {}), randomAccess: key, chunks: avcAnnexB(au(key ? 0x65 : 0x41, size), avc, key) }));
    }
    if (opts.audio) {
      out.push(m.pes({ pid: TsPid.Audio, pts: dts, ...(!opts.video && opts.pcr !== false ? { pcr: dts - 63000 } : {}), randomAccess: false, chunks: aacAdts(Buffer.alloc(Math.max(1, size % 1500), 0x21), aac) }));
    }
  }
  return Buffer.concat(out);
}

test('CRC-32/MPEG-2 check value', () => {
  assert.equal(crc32Mpeg2(Buffer.from('123456789')), 0x0376e6e7);
});

test('H.264 + AAC: every PES size from 1 to 600 bytes and some large ones pass the TS check', () => {
  const ts = mux({ video: true, audio: true, frames: 700, sizes: (i) => (i < 600 ? i + 1 : 5000 + i * 37) });
  const r = checkTs(ts);
  assert.deepEqual(r.errors, []);
  assert.equal(ts.length % TS_PACKET_SIZE, 0);
  assert.equal(r.streams.get(TsPid.Video), TsStreamType.H264);
  assert.equal(r.streams.get(TsPid.Audio), TsStreamType.Aac);
  assert.equal(r.pcrPid, TsPid.Video);
  assert.equal(r.startsWithKeyframe, true);
  assert.equal(r.pts.get(TsPid.Video)?.length, 700);
  assert.equal(r.pts.get(TsPid.Video)?.[3], 63000 + 3 * 3600 + 7200);
  assert.equal(r.pts.get(TsPid.Audio)?.length, 700);
});

test('audio-only: PCR on the audio PID; video-only works', () => {
  const a = checkTs(mux({ video: false, audio: true, frames: 50 }));
  assert.deepEqual(a.errors, []);
  assert.equal(a.pcrPid, TsPid.Audio);
  assert.equal(a.startsWithKeyframe, undefined);
  const v = checkTs(mux({ video: true, audio: false, frames: 50 }));
  assert.deepEqual(v.errors, []);
  assert.equal(v.streams.size, 1);
});

test('PTS/DTS above 2^32 wrap at 2^33 and stay readable', () => {
  const m = new TsMuxer({ video: TsStreamType.H264 });
  const avc = parseAvcDecoderConfig(AVCC);
  const big = 2 ** 33 - 10;
  const ts = Buffer.concat([m.tables(), m.pes({ pid: TsPid.Video, pts: big, dts: big - 5, pcr: 1, randomAccess: true, chunks: avcAnnexB(au(0x65, 100), avc, true) })]);
  const r = checkTs(ts);
  assert.deepEqual(r.errors, []);
  assert.equal(r.pts.get(TsPid.Video)?.[0], big);
});

test('the checker catches what it is meant to: a CC gap, a bad CRC, no PCR, a fragment not starting on a keyframe, a bad sync byte', () => {
  const good = mux({ video: true, audio: true, frames: 30 });
  const gap = Buffer.concat([good.subarray(0, 10 * 188), good.subarray(11 * 188)]);
  assert.ok(checkTs(gap).errors.some((e) => e.includes('continuity')));
  const crc = Buffer.from(good);
  crc[188 + 20] = crc[188 + 20]! ^ 0xff; // inside the PMT section
  assert.ok(checkTs(crc).errors.some((e) => e.includes('CRC')));
  assert.ok(checkTs(mux({ video: true, audio: false, frames: 5, pcr: false })).errors.includes('no PCR'));
  const m = new TsMuxer({ video: TsStreamType.H264 });
  const avc = parseAvcDecoderConfig(AVCC);
  const inter = Buffer.concat([m.tables(), m.pes({ pid: TsPid.Video, pts: 9000, pcr: 0, randomAccess: false, chunks: avcAnnexB(au(0x41, 50), avc, false) })]);
  assert.ok(checkTs(inter).errors.includes('the first video PES is not a keyframe'));
  const sync = Buffer.from(good);
  sync[188 * 5] = 0x48;
  assert.ok(checkTs(sync).errors.some((e) => e.includes('sync byte')));
  assert.ok(checkTs(good.subarray(0, good.length - 1)).errors.some((e) => e.includes('multiple of 188')));
});

test('Annex-B: AUD first, SPS/PPS before a keyframe without them, none before an inter frame, publisher AUDs dropped', () => {
  const avc = parseAvcDecoderConfig(AVCC);
  const key = Buffer.concat(avcAnnexB(Buffer.concat([au(0x09, 2), au(0x65, 10)]), avc, true));
  assert.deepEqual([...key.subarray(0, 6)], [0, 0, 0, 1, 0x09, 0xf0]);
  assert.deepEqual([...key.subarray(6, 11)], [0, 0, 0, 1, 0x67]);
  assert.equal(key.indexOf(Buffer.from([0, 0, 0, 1, 0x09]), 1), -1);
  assert.ok(key.includes(Buffer.from([0, 0, 0, 1, 0x68])));
  assert.ok(key.includes(Buffer.from([0, 0, 0, 1, 0x65])));
  const inter = Buffer.concat(avcAnnexB(au(0x41, 10), avc, false));
  assert.ok(!inter.includes(Buffer.from([0, 0, 0, 1, 0x67])));
  // a keyframe with its own SPS gets no second copy
  const own = Buffer.concat(avcAnnexB(Buffer.concat([au(0x67, 4), au(0x65, 10)]), avc, true));
  assert.equal(own.indexOf(Buffer.from([0, 0, 0, 1, 0x67])), own.lastIndexOf(Buffer.from([0, 0, 0, 1, 0x67])));
});

test('bad input: truncated NAL lengths and bad AAC frames throw coded errors; random bytes never throw anything else', () => {
  const avc = parseAvcDecoderConfig(AVCC);
  const aac = parseAudioSpecificConfig(ASC);
  assert.throws(() => avcAnnexB(Buffer.from([0, 0, 0, 9, 0x65, 1]), avc, true), (e) => isServerError(e, ErrorCode.FlvMalformed));
  assert.throws(() => avcAnnexB(Buffer.from([0, 0]), avc, false), (e) => isServerError(e, ErrorCode.FlvMalformed));
  assert.throws(() => aacAdts(Buffer.alloc(0), aac), (e) => isServerError(e, ErrorCode.FlvMalformed));
  assert.throws(() => aacAdts(Buffer.alloc(9000), aac), (e) => isServerError(e, ErrorCode.FlvMalformed));
  const bad = { ...aac, objectType: 42 };
  assert.throws(() => aacAdts(Buffer.alloc(10), bad), (e) => isServerError(e, ErrorCode.CodecConfigMalformed));
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  const m = new TsMuxer({ video: TsStreamType.H264 });
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(Array.from({ length: rnd() % 64 }, rnd));
    try {
      const chunks = avcAnnexB(b, avc, (i & 1) === 0);
      const ts = m.pes({ pid: TsPid.Video, pts: i, randomAccess: false, chunks });
      assert.equal(ts.length % 188, 0);
    } catch (e) {
      assert.ok(isServerError(e), String(e));
    }
  }
});

test('TsBuffer: packets written into one buffer that grows from one packet, then reset and reused, equal pes() output byte for byte', () => {
  const avc = parseAvcDecoderConfig(AVCC);
  const aac = parseAudioSpecificConfig(ASC);
  const tracks = { video: TsStreamType.H264, audio: TsStreamType.Aac };
  const one = new TsMuxer(tracks);
  const into = new TsMuxer(tracks);
  const out = new TsBuffer(1);
  for (let fragment = 0; fragment < 3; fragment++) {
    out.reset();
    const expected: Buffer[] = [one.tables()];
    into.writeTables(out);
    for (let i = 0; i < 60; i++) {
      const dts = 63000 + i * 3600;
      const key = i === 0;
      const video = avcAnnexB(au(key ? 0x65 : 0x41, 300 + ((i * 997) % 9000)), avc, key);
      const audio = aacAdts(Buffer.alloc(1 + ((i * 31) % 700), i), aac);
      expected.push(one.pes({ pid: TsPid.Video, pts: dts + 3600, dts, pcr: dts - 63000, randomAccess: key, chunks: video }));
      into.writePes(out, TsPid.Video, dts + 3600, dts, dts - 63000, key, video);
      expected.push(one.pes({ pid: TsPid.Audio, pts: dts, randomAccess: false, chunks: audio }));
      into.writePes(out, TsPid.Audio, dts, dts, -1, false, audio);
    }
    const want = Buffer.concat(expected);
    assert.equal(out.length, want.length);
    assert.ok(out.bytes.equals(want), `fragment ${fragment}: the reused buffer holds other bytes than pes() made`);
    assert.deepEqual(checkTs(out.bytes).errors, []);
  }
  assert.ok(out.capacity >= out.length);
});

test('every PES carries its elementary stream bytes exactly: random content, 1 to 20 000 bytes, several chunks, both header sizes', () => {
  // the constant-byte frames above would not notice bytes shifted or taken from the wrong chunk
  const avc = parseAvcDecoderConfig(AVCC);
  const aac = parseAudioSpecificConfig(ASC);
  const m = new TsMuxer({ video: TsStreamType.H264, audio: TsStreamType.Aac });
  const out = new TsBuffer(1);
  m.writeTables(out);
  const want = new Map<number, Buffer[]>([
    [TsPid.Video, []],
    [TsPid.Audio, []],
  ]);
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const bytes = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = rand(256);
    return b;
  };
  const sizes = [1, 2, 3, 150, 168, 169, 170, 175, 176, 177, 182, 183, 184, 185, 1000, 4096, 20_000];
  for (let i = 0; i < 200; i++) {
    const dts = 63000 + i * 3600;
    const key = i % 10 === 0;
    // an access unit of one to three NAL units of random sizes and content
    const nals: Buffer[] = [];
    for (let n = 1 + rand(3); n > 0; n--) {
      const size = i < sizes.length ? sizes[i]! : 1 + rand(9000);
      const nal = bytes(size);
      nal[0] = key && n === 1 ? 0x65 : 0x41;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(size, 0);
      nals.push(len, nal);
    }
    const video = avcAnnexB(Buffer.concat(nals), avc, key);
    const pcr = i % 3 === 0 ? dts - 63000 : -1; // with and without a PCR in the first packet
    m.writePes(out, TsPid.Video, dts + (i % 2) * 3600, dts, pcr, key, video); // PTS only, and PTS + DTS
    want.get(TsPid.Video)!.push(Buffer.concat(video));
    const audio = aacAdts(bytes(Math.min(i < sizes.length ? sizes[i]! : 1 + rand(1500), 8000)), aac);
    m.writePes(out, TsPid.Audio, dts, dts, -1, false, audio);
    want.get(TsPid.Audio)!.push(Buffer.concat(audio));
  }
  const r = checkTs(out.bytes);
  assert.deepEqual(r.errors, []);
  for (const [pid, units] of want) {
    const got = r.es.get(pid) ?? [];
    assert.equal(got.length, units.length, `PID ${pid}: PES units`);
    for (let i = 0; i < units.length; i++) assert.ok(got[i]!.equals(units[i]!), `PID ${pid}, PES ${i}: other bytes than the chunks (${got[i]!.length} / ${units[i]!.length})`);
  }
});
