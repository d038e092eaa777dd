import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { encodeFlvHeader, encodeFlvTag, FlvReader, FlvTagType, flvTagSize, readFlvFile, type FlvTag } from '../../src/media/flv.js';

const isFlvMalformed = (e: unknown): boolean => isServerError(e, ErrorCode.FlvMalformed);

interface SimpleTag {
  type: number;
  timestamp: number;
  data: Buffer;
}

function makeFile(tags: SimpleTag[], opts = { audio: true, video: true }): Buffer {
  return Buffer.concat([encodeFlvHeader(opts), ...tags.map((t) => encodeFlvTag(t))]);
}

const sampleTags: SimpleTag[] = [
  { type: FlvTagType.Script, timestamp: 0, data: Buffer.from('onMetaData-ish') },
  { type: FlvTagType.Video, timestamp: 0, data: Buffer.from([0x17, 0x00, 0x00, 0x00, 0x00, 1, 2, 3]) },
  { type: FlvTagType.Audio, timestamp: 23, data: Buffer.from([0xaf, 0x00, 0x12, 0x10]) },
  { type: FlvTagType.Video, timestamp: 40, data: Buffer.alloc(0) },
  { type: FlvTagType.Audio, timestamp: 0x12345678, data: Buffer.from([0xaf, 0x01, 9, 9, 9]) },
];

function plain(tags: (FlvTag | SimpleTag)[]): SimpleTag[] {
  return tags.map((t) => ({ type: t.type, timestamp: t.timestamp, data: Buffer.from(t.data) }));
}

test('encodeFlvHeader: signature, version, flags, DataOffset 9, PreviousTagSize0', () => {
  assert.deepEqual(encodeFlvHeader({ audio: true, video: true }), Buffer.from([0x46, 0x4c, 0x56, 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]));
  assert.equal(encodeFlvHeader({ audio: true, video: false })[4], 0x04);
  assert.equal(encodeFlvHeader({ audio: false, video: true })[4], 0x01);
});

test('encodeFlvTag: 11-byte header, data, PreviousTagSize; extended timestamp byte', () => {
  const data = Buffer.from([1, 2, 3]);
  const tag = encodeFlvTag({ type: FlvTagType.Video, timestamp: 0x01020304, data });
  assert.equal(tag.length, flvTagSize(3));
  assert.equal(flvTagSize(3), 11 + 3 + 4);
  assert.deepEqual(tag, Buffer.from([9, 0, 0, 3, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, 1, 2, 3, 0, 0, 0, 14]));
  // timestamps wrap modulo 2^32
  const wrapped = encodeFlvTag({ type: FlvTagType.Audio, timestamp: 2 ** 32 + 5, data });
  assert.equal(readFlvFile(Buffer.concat([encodeFlvHeader({ audio: true, video: false }), wrapped])).tags[0]!.timestamp, 5);
  assert.throws(() => encodeFlvTag({ type: 9, timestamp: 0, data: Buffer.alloc(0x1000000) }), isFlvMalformed);
});

test('FlvReader reads back what the encoders wrote, as views into the input', () => {
  const file = makeFile(sampleTags);
  const r = new FlvReader();
  const tags = r.push(file);
  r.end();
  assert.deepEqual(r.header, { audio: true, video: true });
  assert.deepEqual(plain(tags), sampleTags);
  assert.equal(tags[1]!.data.buffer, file.buffer, 'data is a view, not a copy');
  assert.equal(tags[0]!.streamId, 0);
});

test('FlvReader accepts the input split at every offset (two pieces) and byte by byte', () => {
  const file = makeFile(sampleTags);
  for (let cut = 0; cut <= file.length; cut++) {
    const r = new FlvReader();
    const tags = [...r.push(file.subarray(0, cut)), ...r.push(file.subarray(cut))];
    r.end();
    assert.deepEqual(plain(tags), sampleTags, `cut at ${cut}`);
  }
  const r = new FlvReader();
  const tags: FlvTag[] = [];
  for (let i = 0; i < file.length; i++) tags.push(...r.push(file.subarray(i, i + 1)));
  r.end();
  assert.deepEqual(plain(tags), sampleTags);
});

test('FlvReader: random tags, random chunking', () => {
  const tagArb = fc.record({
    type: fc.constantFrom(FlvTagType.Audio, FlvTagType.Video, FlvTagType.Script),
    timestamp: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    data: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  });
  fc.assert(
    fc.property(fc.array(tagArb, { maxLength: 10 }), fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1 }), (tags, sizes) => {
      const file = makeFile(tags);
      const r = new FlvReader();
      const got: FlvTag[] = [];
      let pos = 0;
      for (let i = 0; pos < file.length; i++) {
        const n = sizes[i % sizes.length]!;
        got.push(...r.push(file.subarray(pos, pos + n)));
        pos += n;
      }
      r.end();
      assert.deepEqual(plain(got), plain(tags));
    }),
  );
});

test('FlvReader rejects a bad signature, a bad version and a bad DataOffset', () => {
  const good = makeFile(sampleTags);
  const badSig = Buffer.from(good);
  badSig[0] = 0x47;
  assert.throws(() => new FlvReader().push(badSig), isFlvMalformed);
  const badVersion = Buffer.from(good);
  badVersion[3] = 2;
  assert.throws(() => new FlvReader().push(badVersion), isFlvMalformed);
  const badOffset = Buffer.from(good);
  badOffset.writeUInt32BE(5, 5);
  assert.throws(() => new FlvReader().push(badOffset), isFlvMalformed);
  const hugeOffset = Buffer.from(good);
  hugeOffset.writeUInt32BE(0xffffffff, 5);
  assert.throws(() => new FlvReader().push(hugeOffset), isFlvMalformed);
  assert.throws(() => readFlvFile(badSig), isFlvMalformed);
  assert.throws(() => readFlvFile(good.subarray(0, 8)), isFlvMalformed);
});

test('FlvReader skips header padding when DataOffset > 9', () => {
  const header = encodeFlvHeader({ audio: false, video: true });
  const padded = Buffer.concat([header.subarray(0, 9), Buffer.from([0xee, 0xee, 0xee]), header.subarray(9), encodeFlvTag(sampleTags[1]!)]);
  padded.writeUInt32BE(12, 5);
  const r = new FlvReader();
  assert.deepEqual(plain(r.push(padded)), [sampleTags[1]]);
  r.end();
  assert.deepEqual(plain(readFlvFile(padded).tags), [sampleTags[1]]);
});

test('FlvReader checks every PreviousTagSize (PreviousTagSize0 must be 0)', () => {
  const file = makeFile(sampleTags);
  // PreviousTagSize0
  const bad0 = Buffer.from(file);
  bad0.writeUInt32BE(11, 9);
  assert.throws(() => new FlvReader().push(bad0), isFlvMalformed);
  // the first tag's trailing size
  const firstEnd = 13 + flvTagSize(sampleTags[0]!.data.length);
  const bad1 = Buffer.from(file);
  bad1.writeUInt32BE(bad1.readUInt32BE(firstEnd - 4) + 1, firstEnd - 4);
  assert.throws(() => new FlvReader().push(bad1), isFlvMalformed);
  // and the last tag's
  const badLast = Buffer.from(file);
  badLast.writeUInt32BE(0, badLast.length - 4);
  assert.throws(() => new FlvReader().push(badLast), isFlvMalformed);
});

test('FlvReader enforces maxTagDataSize (oversized DataSize)', () => {
  const file = makeFile([{ type: FlvTagType.Video, timestamp: 0, data: Buffer.alloc(1000) }]);
  assert.throws(() => new FlvReader({ maxTagDataSize: 999 }).push(file), isFlvMalformed);
  assert.equal(new FlvReader({ maxTagDataSize: 1000 }).push(file).length, 1);
  // a header claiming 16 MiB - 1 with a small limit fails at the header, before any data arrives
  const claim = Buffer.concat([encodeFlvHeader({ audio: false, video: true }), Buffer.from([9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0])]);
  assert.throws(() => new FlvReader({ maxTagDataSize: 1024 }).push(claim), isFlvMalformed);
});

test('FlvReader.end() throws on a partial header or tag, not on a clean end or on no input', () => {
  const file = makeFile(sampleTags);
  new FlvReader().end();
  const boundaries = new Set<number>([13]);
  let pos = 13;
  for (const t of sampleTags) boundaries.add((pos += flvTagSize(t.data.length)));
  for (let cut = 1; cut <= file.length; cut++) {
    const r = new FlvReader();
    r.push(file.subarray(0, cut));
    if (boundaries.has(cut)) r.end();
    else assert.throws(() => r.end(), isFlvMalformed, `cut at ${cut}`);
  }
});

test('readFlvFile returns the full tags of a file truncated at every offset, and where it stopped', () => {
  const file = makeFile(sampleTags);
  const ends = [13];
  for (const t of sampleTags) ends.push(ends[ends.length - 1]! + flvTagSize(t.data.length));
  for (let cut = 9; cut <= file.length; cut++) {
    const res = readFlvFile(file.subarray(0, cut));
    const complete = ends.filter((e) => e <= cut).length - 1; // tags ending at or before the cut
    assert.deepEqual(plain(res.tags), sampleTags.slice(0, Math.max(0, complete)), `cut at ${cut}`);
    if (ends.includes(cut)) assert.equal(res.truncatedAt, undefined, `cut at ${cut}`);
    else assert.equal(res.truncatedAt, cut < 13 ? 9 : ends[complete], `cut at ${cut}`);
  }
});

test('readFlvFile stops at a PreviousTagSize mismatch and reports the bad tag offset', () => {
  const file = makeFile(sampleTags);
  const secondStart = 13 + flvTagSize(sampleTags[0]!.data.length);
  const secondEnd = secondStart + flvTagSize(sampleTags[1]!.data.length);
  const bad = Buffer.from(file);
  bad.writeUInt32BE(1, secondEnd - 4);
  const res = readFlvFile(bad);
  assert.equal(res.tags.length, 1);
  assert.equal(res.truncatedAt, secondStart);
});

test('random bytes: FlvReader and readFlvFile throw only FlvMalformed', () => {
  const header = encodeFlvHeader({ audio: true, video: true });
  fc.assert(
    fc.property(fc.boolean(), fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 50 }), (withHeader, bytes, step) => {
      const input = withHeader ? Buffer.concat([header, Buffer.from(bytes)]) : Buffer.from(bytes);
      try {
        const r = new FlvReader({ maxTagDataSize: 100 });
        for (let i = 0; i < input.length; i += step) r.push(input.subarray(i, i + step));
        r.end();
      } catch (e) {
        assert.ok(isFlvMalformed(e), String(e));
      }
      try {
        readFlvFile(input);
      } catch (e) {
        assert.ok(isFlvMalformed(e), String(e));
      }
    }),
  );
});
