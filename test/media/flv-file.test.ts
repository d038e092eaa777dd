import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { encodeFlvTag, FlvTagType, readFlvFile } from '../../src/media/flv.js';
import {
  emptyMetadata,
  encodeFlvFileStart,
  encodeMetadataTag,
  firstMediaTagOffset,
  FLV_FILE_HEADER_SIZE,
  metadataTagLength,
  readFlvTail,
  thinIndex,
  writeFlvTagHeader,
} from '../../src/media/flv-file.js';
import { decodeAmf0 } from '../../src/rtmp/amf0.js';
import { AmfEcmaArray, type AmfObject } from '../../src/rtmp/amf-types.js';

function metaOf(tagData: Buffer): AmfObject {
  const values = decodeAmf0(tagData);
  assert.equal(values[0], 'onMetaData');
  const arr = values[1];
  assert.ok(arr instanceof AmfEcmaArray);
  return arr.value;
}

test('a new file: header, reserved metadata of the announced size, readable by the FLV reader', () => {
  const meta = { ...emptyMetadata(), width: 320, height: 240, hasVideo: true, hasAudio: true, videocodecid: 7, audiocodecid: 10 };
  const start = encodeFlvFileStart(meta, 16);
  assert.equal(start.length, firstMediaTagOffset(16));
  assert.equal(start.length, FLV_FILE_HEADER_SIZE + metadataTagLength(16));
  const file = readFlvFile(Buffer.concat([start, encodeFlvTag({ type: FlvTagType.Video, timestamp: 0, data: Buffer.from([0x17, 1, 0, 0, 0, 9]) })]));
  assert.equal(file.truncatedAt, undefined);
  assert.equal(file.tags.length, 2);
  assert.ok(file.header.audio && file.header.video);
  const m = metaOf(file.tags[0]!.data);
  assert.equal(m['width'], 320);
  assert.equal(m['videocodecid'], 7);
  assert.deepEqual(m['keyframes'], { times: [], filepositions: [] });
});

test('the metadata tag keeps its size whatever the index holds; a longer index is thinned evenly', () => {
  const cap = 10;
  const size = metadataTagLength(cap);
  for (const n of [0, 1, 9, 10, 11, 1000]) {
    const times = Array.from({ length: n }, (_, i) => i * 2);
    const filepositions = Array.from({ length: n }, (_, i) => 1000 + i * 500);
    const tag = encodeMetadataTag({ ...emptyMetadata(), duration: n * 2 }, { times, filepositions }, cap);
    assert.equal(tag.length, size, `entries ${n}`);
    const parsed = readFlvFile(Buffer.concat([encodeFlvFileStart(emptyMetadata(), cap).subarray(0, FLV_FILE_HEADER_SIZE), tag]));
    const m = metaOf(parsed.tags[0]!.data);
    const kf = m['keyframes'] as { times: number[]; filepositions: number[] };
    assert.equal(kf.times.length, Math.min(n, cap));
    if (n > 0) assert.equal(kf.times[0], 0);
    assert.equal(m['duration'], n * 2);
  }
  const thin = thinIndex({ times: [0, 1, 2, 3, 4, 5, 6, 7], filepositions: [0, 1, 2, 3, 4, 5, 6, 7] }, 4);
  assert.deepEqual(thin.times, [0, 2, 4, 6]);
  assert.throws(() => metadataTagLength(-1), RangeError);
  assert.throws(() => metadataTagLength(1e9), RangeError);
});

test('tag headers: timestamps above 24 bits use the extended byte; oversized data is refused', () => {
  const b = Buffer.alloc(11);
  writeFlvTagHeader(b, 0, FlvTagType.Audio, 5, 0x12345678);
  assert.deepEqual([...b], [8, 0, 0, 5, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]);
  assert.throws(() => writeFlvTagHeader(b, 0, 8, 0x1000000, 0), (e) => isServerError(e, ErrorCode.FlvMalformed));
});

test('readFlvTail: the last tag of a file; bad, truncated and random tails are refused', () => {
  const start = encodeFlvFileStart(emptyMetadata(), 2);
  assert.equal(readFlvTail(start.subarray(0, FLV_FILE_HEADER_SIZE), FLV_FILE_HEADER_SIZE), undefined);
  const last = encodeFlvTag({ type: FlvTagType.Audio, timestamp: 0x1234567, data: Buffer.from([0xaf, 1, 2, 3]) });
  const file = Buffer.concat([start, last]);
  const t = readFlvTail(file.subarray(file.length - 100), file.length);
  assert.deepEqual(t, { offset: start.length, type: 8, dataSize: 4, timestamp: 0x1234567 });
  const bad = (tail: Buffer, size: number): void => assert.throws(() => readFlvTail(tail, size), (e) => isServerError(e, ErrorCode.FlvMalformed));
  bad(Buffer.alloc(2), 100);
  bad(file.subarray(file.length - 8), file.length); // points before the tail
  const broken = Buffer.from(file);
  broken.writeUInt32BE(9999, broken.length - 4);
  bad(broken, broken.length);
  bad(file, 5);
  for (let i = 0; i < 300; i++) {
    const r = randomBytes(1 + (i % 64));
    try {
      readFlvTail(r, r.length + 13);
    } catch (e) {
      assert.ok(isServerError(e, ErrorCode.FlvMalformed), String(e));
    }
  }
});
