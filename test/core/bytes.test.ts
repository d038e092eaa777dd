import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ByteReader, ByteWriter } from '../../src/core/bytes.js';
import { ErrorCode, isServerError, serverError, describeError } from '../../src/core/errors.js';

test('ByteReader reads big-endian fields and views', () => {
  const b = Buffer.from([1, 0x02, 0x03, 0x04, 0x05, 0x06, 0xff, 0xff, 0xfe, 0x78, 0x56, 0x34, 0x12, 9, 9]);
  const r = new ByteReader(b);
  assert.equal(r.u8(), 1);
  assert.equal(r.u16(), 0x0203);
  assert.equal(r.u24(), 0x040506);
  assert.equal(r.i24(), -2);
  assert.equal(r.u32le(), 0x12345678);
  const v = r.bytes(2);
  assert.equal(v.buffer, b.buffer, 'bytes() is a view');
  assert.equal(r.remaining, 0);
});

test('ByteReader never reads past the end: a coded error, not a RangeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 16 }), fc.array(fc.constantFrom('u8', 'u16', 'u24', 'u32', 'u32le', 'f64', 'i16'), { maxLength: 10 }), (bytes, ops) => {
      const r = new ByteReader(Buffer.from(bytes));
      try {
        for (const op of ops) (r[op as 'u8'] as () => number).call(r);
      } catch (e) {
        assert.ok(isServerError(e, ErrorCode.BufferTruncated), String(e));
      }
      assert.ok(r.pos <= bytes.length);
    }),
  );
  const custom = new ByteReader(Buffer.alloc(1), 0, 1, ErrorCode.AmfTruncated);
  assert.throws(() => custom.u16(), (e: unknown) => isServerError(e, ErrorCode.AmfTruncated));
  assert.throws(() => new ByteReader(Buffer.alloc(4)).bytes(-1), (e: unknown) => isServerError(e, ErrorCode.BufferTruncated));
});

test('ByteWriter writes exactly its size and asserts on overflow/underfill', () => {
  const w = new ByteWriter(12).u8(1).u16(0x0203).u24(0x040506).u32(0x0708090a).u16(0xffff);
  assert.deepEqual([...w.done()], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xff, 0xff]);
  assert.throws(() => new ByteWriter(1).u16(1), RangeError);
  assert.throws(() => new ByteWriter(2).u8(1).done(), RangeError);
  const f = new ByteWriter(8).f64(Math.PI).done();
  assert.equal(new ByteReader(f).f64(), Math.PI);
});

test('errors carry stable codes and causes', () => {
  const cause = new Error('inner');
  const e = serverError(ErrorCode.ChunkSize, 'bad size', cause);
  assert.equal(e.code, 'ERR_RTMP_CHUNK_SIZE');
  assert.equal(e.cause, cause);
  assert.deepEqual(describeError(e), { code: 'ERR_RTMP_CHUNK_SIZE', message: 'bad size' });
  assert.deepEqual(describeError('x'), { code: 'ERR_INTERNAL', message: 'x' });
  const codes = Object.values(ErrorCode);
  assert.equal(new Set(codes).size, codes.length, 'codes are unique');
  for (const c of codes) assert.match(c, /^ERR_[A-Z0-9_]+$/);
});
