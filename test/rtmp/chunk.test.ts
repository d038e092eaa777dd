import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkDecoder, encodeMessage, encodedSize, splitAggregate, type ChunkDecoderOptions } from '../../src/rtmp/chunk.js';
import { abortMessage, setChunkSizeMessage } from '../../src/rtmp/control.js';
import { ErrorCode, ServerError, isServerError } from '../../src/core/errors.js';
import { MAX_CHUNK_SIZE, MessageType, type RtmpMessage } from '../../src/rtmp/messages.js';
import { splitAt } from '../helpers/bytes.js';

const MB = 1024 * 1024;
const OPTS: ChunkDecoderOptions = { maxMessageSize: MB };

/** Concatenates byte arrays and buffers. */
function bytes(...parts: (number[] | Buffer)[]): Buffer {
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
}
const u24 = (v: number): number[] => [(v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const u32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const u32le = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const fill = (n: number, v: number): Buffer => Buffer.alloc(n, v);

/** Basic header bytes for fmt/csid, written independently of the encoder under test. */
function basic(fmt: number, csid: number): number[] {
  if (csid < 64) return [(fmt << 6) | csid];
  if (csid < 320) return [fmt << 6, csid - 64];
  return [(fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >>> 8];
}
const type0 = (csid: number, ts: number, len: number, type: number, sid: number): number[] =>
  ts >= 0xffffff
    ? [...basic(0, csid), ...u24(0xffffff), ...u24(len), type, ...u32le(sid), ...u32(ts)]
    : [...basic(0, csid), ...u24(ts), ...u24(len), type, ...u32le(sid)];
const type1 = (csid: number, delta: number, len: number, type: number): number[] =>
  delta >= 0xffffff
    ? [...basic(1, csid), ...u24(0xffffff), ...u24(len), type, ...u32(delta)]
    : [...basic(1, csid), ...u24(delta), ...u24(len), type];
const type2 = (csid: number, delta: number): number[] =>
  delta >= 0xffffff ? [...basic(2, csid), ...u24(0xffffff), ...u32(delta)] : [...basic(2, csid), ...u24(delta)];
const type3 = (csid: number): number[] => basic(3, csid);

function decodeAll(pieces: Buffer[], opts: ChunkDecoderOptions = OPTS): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  const d = new ChunkDecoder(opts, (m) => out.push(m));
  for (const p of pieces) d.push(p);
  return out;
}

function plain(m: RtmpMessage): { csid: number; type: number; streamId: number; timestamp: number; payload: string } {
  return { csid: m.csid, type: m.type, streamId: m.streamId, timestamp: m.timestamp, payload: m.payload.toString('hex') };
}

function expectCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isServerError(e), `expected ServerError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** Deterministic pseudo-random payload bytes (xorshift), free of fast-check's edge-value bias. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

void describe('ChunkDecoder: header formats (hand-built vectors)', () => {
  void it('type 0 header: timestamp, length, type id, little-endian stream id', () => {
    const [m, ...rest] = decodeAll([bytes(type0(3, 1000, 5, 20, 1), Buffer.from('hello'))]);
    assert.equal(rest.length, 0);
    assert.deepEqual(plain(m!), { csid: 3, type: 20, streamId: 1, timestamp: 1000, payload: Buffer.from('hello').toString('hex') });
    // the raw bytes, to pin the layout
    assert.deepEqual([...bytes(type0(3, 1000, 5, 20, 0x01020304))], [3, 0, 3, 0xe8, 0, 0, 5, 20, 4, 3, 2, 1]);
  });

  void it('spec example 1: type 0, type 2, then type 3 reusing the delta', () => {
    const a = fill(32, 1);
    const msgs = decodeAll([bytes(type0(3, 1000, 32, 8, 12345), a, type2(3, 20), a, type3(3), a, type3(3), a)]);
    assert.deepEqual(msgs.map((m) => m.timestamp), [1000, 1020, 1040, 1060]);
    assert.ok(msgs.every((m) => m.type === 8 && m.streamId === 12345 && m.payload.length === 32));
  });

  void it('spec example 2: one 307-byte message in chunks of 128 (type 0 + type 3 + type 3)', () => {
    const p = noise(307, 7);
    const msgs = decodeAll([
      bytes(type0(4, 1000, 307, 9, 12346), p.subarray(0, 128), type3(4), p.subarray(128, 256), type3(4), p.subarray(256)),
    ]);
    assert.equal(msgs.length, 1);
    assert.deepEqual(msgs[0]!.payload, p);
    assert.equal(msgs[0]!.timestamp, 1000);
  });

  void it('type 1 changes length and type, keeps the stream id; type 2 keeps both', () => {
    const msgs = decodeAll([bytes(type0(5, 0, 3, 9, 7), [1, 2, 3], type1(5, 40, 2, 8), [4, 5], type2(5, 10), [6, 7])]);
    assert.deepEqual(
      msgs.map((m) => [m.timestamp, m.type, m.streamId, m.payload.toString('hex')]),
      [
        [0, 9, 7, '010203'],
        [40, 8, 7, '0405'],
        [50, 8, 7, '0607'],
      ],
    );
  });

  void it('type 3 after type 0 starts a message with the type 0 timestamp as delta (ffmpeg/SRS convention)', () => {
    const msgs = decodeAll([bytes(type0(3, 100, 1, 8, 1), [1], type3(3), [2])]);
    assert.deepEqual(msgs.map((m) => m.timestamp), [100, 200]);
  });

  void it('1, 2 and 3-byte basic headers at the csid boundaries', () => {
    for (const csid of [2, 63, 64, 65, 319, 320, 321, 65599]) {
      const msgs = decodeAll([bytes(type0(csid, 1, 1, 8, 1), [9], type2(csid, 1), [8], type3(csid), [7])]);
      assert.deepEqual(msgs.map((m) => [m.csid, m.timestamp]), [[csid, 1], [csid, 2], [csid, 3]], `csid ${csid}`);
    }
    // the 3-byte form may also carry a small csid
    const [m] = decodeAll([bytes([0x01, 0x00, 0x00], u24(0), u24(1), [8], u32le(0), [0xaa])]);
    assert.equal(m!.csid, 64);
  });

  void it('interleaved chunk streams: audio chunks between the chunks of a video message', () => {
    const v = noise(300, 3);
    const msgs = decodeAll([
      bytes(
        type0(7, 0, 300, 9, 1), v.subarray(0, 128),
        type0(6, 0, 10, 8, 1), fill(10, 0xa1),
        type3(7), v.subarray(128, 256),
        type2(6, 23), fill(10, 0xa2),
        type3(7), v.subarray(256),
      ),
    ]);
    assert.deepEqual(msgs.map((m) => [m.csid, m.timestamp, m.payload.length]), [[6, 0, 10], [6, 23, 10], [7, 0, 300]]);
    assert.deepEqual(msgs[2]!.payload, v);
  });

  void it('timestamps wrap at 2^32', () => {
    const msgs = decodeAll([bytes(type0(3, 0xfffffff0, 1, 8, 1), [1], type2(3, 0x20), [2], type3(3), [3])]);
    assert.deepEqual(msgs.map((m) => m.timestamp), [0xfffffff0, 0x10, 0x30]);
  });

  void it('a zero-length message is delivered even when its header ends the push', () => {
    const out: RtmpMessage[] = [];
    const d = new ChunkDecoder(OPTS, (m) => out.push(m));
    d.push(bytes(type0(3, 5, 0, 18, 1)));
    assert.equal(out.length, 1);
    assert.equal(out[0]!.payload.length, 0);
    d.push(bytes(type3(3)));
    assert.deepEqual(out.map((m) => m.timestamp), [5, 10]);
  });
});

void describe('ChunkDecoder: extended timestamps', () => {
  const T = 0x01000000;
  const p = Buffer.concat([fill(128, 0xaa), fill(72, 0xbb)]);

  void it('type 0 with extended timestamp, type 3 continuation repeating the 4 bytes', () => {
    const msgs = decodeAll([bytes(type0(6, T, 200, 9, 1), p.subarray(0, 128), type3(6), u32(T), p.subarray(128))]);
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]!.timestamp, T);
    assert.deepEqual(msgs[0]!.payload, p);
  });

  void it('type 3 continuation without the repeated 4 bytes', () => {
    const msgs = decodeAll([bytes(type0(6, T, 200, 9, 1), p.subarray(0, 128), type3(6), p.subarray(128))]);
    assert.equal(msgs.length, 1);
    assert.deepEqual(msgs[0]!.payload, p);
  });

  void it('exactly 0xFFFFFF uses the extended field', () => {
    const msgs = decodeAll([bytes(type0(6, 0xffffff, 200, 9, 1), p.subarray(0, 128), type3(6), u32(0xffffff), p.subarray(128))]);
    assert.equal(msgs[0]!.timestamp, 0xffffff);
    assert.deepEqual(msgs[0]!.payload, p);
  });

  void it('repeated bytes split across pushes: waits while the buffered bytes still match', () => {
    const q = noise(130, 5);
    q[128] = 0x33;
    const out: RtmpMessage[] = [];
    const d = new ChunkDecoder(OPTS, (m) => out.push(m));
    d.push(bytes(type0(6, T, 130, 9, 1), q.subarray(0, 128), type3(6), [0x01, 0x00]));
    assert.equal(out.length, 0);
    d.push(bytes([0x00, 0x00], q.subarray(128)));
    assert.equal(out.length, 1);
    assert.deepEqual(out[0]!.payload, q);
  });

  void it('not repeated, short last chunk: decided as soon as a buffered byte differs', () => {
    const q = Buffer.concat([noise(128, 9), Buffer.from([0x01, 0x00])]);
    const out: RtmpMessage[] = [];
    const d = new ChunkDecoder(OPTS, (m) => out.push(m));
    d.push(bytes(type0(6, T, 130, 9, 1), q.subarray(0, 128), type3(6), q.subarray(128)));
    assert.equal(out.length, 0, '01 00 could still be the start of the repeated 01 00 00 00');
    d.push(bytes(type0(3, 0, 1, 8, 1), [0x77])); // 0x03 differs from the expected 0x00
    assert.deepEqual(out.map((m) => [m.csid, m.payload.length]), [[6, 130], [3, 1]]);
    assert.deepEqual(out[0]!.payload, q);
    // and with a first byte that differs, no waiting at all
    const out2 = decodeAll([bytes(type0(6, T, 130, 9, 1), q.subarray(0, 128), type3(6), [0x55, 0x66])]);
    assert.equal(out2.length, 1);
  });

  void it('type 3 starting a new message after an extended type 0, with and without the 4 bytes', () => {
    const withRepeat = decodeAll([bytes(type0(6, T, 4, 9, 1), [9, 9, 9, 9], type3(6), u32(T), [8, 8, 8, 8])]);
    const without = decodeAll([bytes(type0(6, T, 4, 9, 1), [9, 9, 9, 9], type3(6), [8, 8, 8, 8])]);
    for (const msgs of [withRepeat, without]) {
      assert.deepEqual(msgs.map((m) => [m.timestamp, m.payload.toString('hex')]), [[T, '09090909'], [2 * T, '08080808']]);
    }
  });

  void it('extended timestamp delta on type 1 and type 2, reused by type 3', () => {
    const D = 0x01000000;
    const msgs = decodeAll([
      bytes(type0(3, 100, 1, 8, 1), [1], type1(3, D, 1, 8), [2], type3(3), u32(D), [3], type2(3, 5), [4], type3(3), [5]),
    ]);
    assert.deepEqual(msgs.map((m) => m.timestamp), [100, 100 + D, 100 + 2 * D, 105 + 2 * D, 110 + 2 * D]);
  });

  void it('accepts the absolute timestamp repeated on continuation chunks of a type 1 message', () => {
    const D = 0x01000000;
    const q = noise(200, 4);
    const msgs = decodeAll([bytes(type0(3, 100, 1, 8, 1), [1], type1(3, D, 200, 9), q.subarray(0, 128), type3(3), u32(D + 100), q.subarray(128))]);
    assert.deepEqual(msgs[1]!.payload, q);
  });
});

void describe('ChunkDecoder: protocol control handled inline', () => {
  void it('Set Chunk Size takes effect for the bytes right after it in the same push', () => {
    const v = noise(3000, 11);
    const stream = Buffer.concat([
      encodeMessage(setChunkSizeMessage(4096), 128),
      encodeMessage({ csid: 7, type: 9, streamId: 1, timestamp: 40, payload: v }, 4096),
    ]);
    const out: RtmpMessage[] = [];
    const d = new ChunkDecoder(OPTS, (m) => out.push(m));
    d.push(stream);
    assert.equal(d.chunkSize, 4096);
    assert.deepEqual(out.map((m) => m.type), [MessageType.SetChunkSize, MessageType.Video]);
    assert.deepEqual(out[1]!.payload, v);
    assert.equal(d.bytesReceived, stream.length);
  });

  void it('Set Chunk Size on any csid with any stream id is applied', () => {
    const d = new ChunkDecoder(OPTS, () => undefined);
    d.push(bytes(type0(9, 0, 4, 1, 5), u32(300)));
    assert.equal(d.chunkSize, 300);
  });

  for (const [name, size, opts] of [
    ['0', 0, OPTS],
    ['0x80000000 (top bit set)', 0x80000000, OPTS],
    ['0xFFFFFFFF', 0xffffffff, OPTS],
    ['above the default 16 MiB cap', 16 * MB + 1, OPTS],
    ['above a configured cap', 65537, { maxMessageSize: MB, maxChunkSize: 65536 }],
  ] as const) {
    void it(`rejects an absurd chunk size: ${name}`, () => {
      const d = new ChunkDecoder(opts, () => undefined);
      expectCode(() => d.push(bytes(type0(2, 0, 4, 1, 0), u32(size))), ErrorCode.ChunkSize);
      expectCode(() => d.push(bytes(type0(3, 0, 0, 8, 1))), ErrorCode.ProtocolViolation); // dead afterwards
    });
  }

  void it('accepts the 31-bit maximum when configured to', () => {
    const d = new ChunkDecoder({ maxMessageSize: MB, maxChunkSize: MAX_CHUNK_SIZE }, () => undefined);
    d.push(bytes(type0(2, 0, 4, 1, 0), u32(MAX_CHUNK_SIZE)));
    assert.equal(d.chunkSize, MAX_CHUNK_SIZE);
  });

  void it('a short Set Chunk Size or Abort payload is malformed', () => {
    expectCode(() => decodeAll([bytes(type0(2, 0, 2, 1, 0), [0, 1])]), ErrorCode.MessageMalformed);
    expectCode(() => decodeAll([bytes(type0(2, 0, 3, 2, 0), [0, 0, 7])]), ErrorCode.MessageMalformed);
  });

  void it('Abort drops the partial message of that csid and is still delivered', () => {
    const v = noise(300, 1);
    const msgs = decodeAll([
      bytes(type0(7, 0, 300, 9, 1), v.subarray(0, 128)),
      encodeMessage(abortMessage(7), 128),
      bytes(type0(7, 33, 5, 9, 1), [1, 2, 3, 4, 5]),
    ]);
    assert.deepEqual(msgs.map((m) => [m.csid, m.type, m.payload.length]), [[2, MessageType.Abort, 4], [7, 9, 5]]);
    // without the abort, the same bytes are a length change mid-message
    expectCode(() => decodeAll([bytes(type0(7, 0, 300, 9, 1), v.subarray(0, 128), type0(7, 33, 5, 9, 1), [1, 2, 3, 4, 5])]), ErrorCode.MessageLengthChanged);
  });

  void it('Abort of an idle or unknown csid is harmless', () => {
    const msgs = decodeAll([encodeMessage(abortMessage(40), 128), encodeMessage(abortMessage(2), 128)]);
    assert.equal(msgs.length, 2);
  });
});

void describe('ChunkDecoder: bad input', () => {
  void it('a 16 MB message with maxMessageSize 1 MB fails at the header, before any body byte', () => {
    const d = new ChunkDecoder({ maxMessageSize: MB }, () => assert.fail('no message expected'));
    expectCode(() => d.push(bytes(type0(6, 0, 0xffffff, 9, 1))), ErrorCode.MessageTooLarge);
    const d1 = new ChunkDecoder({ maxMessageSize: MB }, () => undefined);
    d1.push(bytes(type0(6, 0, 1, 9, 1), [0]));
    expectCode(() => d1.push(bytes(type1(6, 0, MB + 1, 9))), ErrorCode.MessageTooLarge);
  });

  void it('many concurrent partial messages exceed maxPendingBytes', () => {
    const d = new ChunkDecoder({ maxMessageSize: 1000, maxPendingBytes: 4000 }, () => undefined);
    for (let csid = 3; csid < 7; csid++) d.push(bytes(type0(csid, 0, 1000, 9, 1), fill(128, 0)));
    expectCode(() => d.push(bytes(type0(7, 0, 1000, 9, 1), fill(128, 0))), ErrorCode.MessageTooLarge);
  });

  void it('completed messages release their pending bytes', () => {
    const d = new ChunkDecoder({ maxMessageSize: 1000, maxPendingBytes: 1000 }, () => undefined);
    for (let i = 0; i < 10; i++) d.push(encodeMessage({ csid: 3 + i, type: 9, streamId: 1, timestamp: 0, payload: fill(1000, i) }, 128));
  });

  for (const fmt of [1, 2, 3]) {
    void it(`type ${fmt} first on a new csid`, () => {
      expectCode(() => decodeAll([bytes(basic(fmt, 5), fill(11, 0))]), ErrorCode.ChunkNoPreviousHeader);
      expectCode(() => decodeAll([bytes(type0(4, 0, 1, 8, 1), [0], basic(fmt, 5), fill(11, 0))]), ErrorCode.ChunkNoPreviousHeader);
    });
  }

  void it('type 1 changing the length mid-message; type 1 keeping it is accepted', () => {
    const v = noise(300, 2);
    expectCode(() => decodeAll([bytes(type0(7, 0, 300, 9, 1), v.subarray(0, 128), type1(7, 0, 200, 9), v.subarray(128))]), ErrorCode.MessageLengthChanged);
    const msgs = decodeAll([bytes(type0(7, 0, 300, 9, 1), v.subarray(0, 128), type1(7, 0, 300, 9), v.subarray(128, 256), type2(7, 0), v.subarray(256))]);
    assert.deepEqual(msgs[0]!.payload, v);
  });

  void it('throws nothing but ServerError with an ERR_RTMP_ code on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 6 }), (data, cuts) => {
        try {
          decodeAll(splitAt(Buffer.from(data), cuts), { maxMessageSize: 64 * 1024 });
        } catch (e) {
          assert.ok(e instanceof ServerError, String(e));
          assert.match(e.code, /^ERR_RTMP_/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  void it('every truncation of a valid stream decodes a prefix of its messages without throwing', () => {
    const msgs: RtmpMessage[] = [
      { csid: 3, type: 20, streamId: 0, timestamp: 0, payload: noise(300, 1) },
      { csid: 6, type: 8, streamId: 1, timestamp: 0xfffffe, payload: noise(5, 2) },
      { csid: 320, type: 9, streamId: 1, timestamp: 0x1000000, payload: noise(260, 3) },
      { csid: 64, type: 9, streamId: 1, timestamp: 7, payload: Buffer.alloc(0) },
    ];
    const stream = Buffer.concat(msgs.map((m) => encodeMessage(m, 128)));
    for (let n = 0; n <= stream.length; n++) {
      const got = decodeAll([stream.subarray(0, n)]).map(plain);
      assert.deepEqual(got, msgs.slice(0, got.length).map(plain));
      if (n === stream.length) assert.equal(got.length, msgs.length);
    }
  });
});

void describe('ChunkDecoder: delivery and performance properties', () => {
  void it('single-chunk messages fully inside one push are zero-copy views', () => {
    const input = bytes(type0(3, 0, 5, 8, 1), [1, 2, 3, 4, 5], type0(4, 0, 3, 8, 1), [6, 7, 8]);
    const msgs = decodeAll([input]);
    assert.equal(msgs.length, 2);
    assert.equal(msgs[0]!.payload.buffer, input.buffer);
    assert.equal(msgs[0]!.payload.byteOffset, input.byteOffset + 12);
    assert.equal(msgs[1]!.payload.byteOffset, input.byteOffset + 29);
  });

  void it('byte-by-byte delivery decodes the same messages', () => {
    const stream = bytes(
      encodeMessage(setChunkSizeMessage(100), 128),
      type0(6, 0xfffff0, 250, 9, 1), fill(100, 1), type0(320, 1, 2, 8, 1), [5, 6], type3(6), fill(100, 2), type3(6), fill(50, 3),
      type2(320, 0x1000000), [7, 8], type3(320), u32(0x1000000), [9, 10],
    );
    const whole = decodeAll([stream]).map(plain);
    const oneByOne = decodeAll([...stream].map((b) => Buffer.from([b]))).map(plain);
    assert.equal(whole.length, 5);
    assert.deepEqual(oneByOne, whole);
    assert.deepEqual(whole.map((m) => m.timestamp), [0, 1, 0xfffff0, 0x1000001, 0x2000001]);
  });

  void it('bytesReceived counts every pushed byte', () => {
    const d = new ChunkDecoder(OPTS, () => undefined);
    d.push(Buffer.from([3, 0]));
    d.push(Buffer.from([0, 0, 0, 0]));
    assert.equal(d.bytesReceived, 6);
    assert.equal(d.chunkSize, 128);
  });
});

const csidArb = fc.oneof(fc.constantFrom(2, 3, 63, 64, 65, 319, 320, 321, 65598, 65599), fc.integer({ min: 2, max: 65599 }));
const timestampArb = fc.oneof(
  fc.constantFrom(0, 1, 0xfffffe, 0xffffff, 0x1000000, 0xfffffffe, 0xffffffff),
  fc.integer({ min: 0xfffff0, max: 0x1000010 }),
  fc.integer({ min: 0, max: 0xffffffff }),
);
const messageArb = fc.record({
  csid: csidArb,
  type: fc.integer({ min: 3, max: 255 }), // 1 and 2 change decoder state: tested separately
  streamId: fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff })),
  timestamp: timestampArb,
  payload: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 3000 }).map((n) => new Uint8Array(n).fill(n & 0xff))),
});

void describe('encodeMessage / ChunkDecoder round trip (fast-check)', () => {
  void it('random messages, csids, timestamps, chunk sizes 1..70000, random split points', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 8 }),
        fc.oneof(fc.constantFrom(1, 2, 127, 128, 129, 4096, 65536, 70000), fc.integer({ min: 1, max: 70000 })),
        fc.array(fc.nat(), { maxLength: 10 }),
        (raw, chunkSize, cuts) => {
          const msgs: RtmpMessage[] = raw.map((r) => ({ ...r, payload: Buffer.from(r.payload) }));
          const parts = [encodeMessage(setChunkSizeMessage(chunkSize), 128)];
          for (const m of msgs) {
            const enc = encodeMessage(m, chunkSize);
            assert.equal(enc.length, encodedSize(m.payload.length, m.csid, m.timestamp, chunkSize));
            parts.push(enc);
          }
          const got = decodeAll(splitAt(Buffer.concat(parts), cuts));
          assert.equal(got[0]!.type, MessageType.SetChunkSize);
          assert.deepEqual(got.slice(1).map(plain), msgs.map(plain));
        },
      ),
      { numRuns: 400 },
    );
  });
});

/**
 * A reference chunker written from the spec, independent of encodeMessage: it
 * compresses headers (type 1/2/3 whenever allowed), optionally omits the
 * extended timestamp on type 3 chunks, and interleaves chunk streams.
 */
interface RefState { ts: number; delta: number; len: number; type: number; sid: number; ext: boolean }
interface Peek { at: number; values: number[] }
function referenceChunks(msgs: RtmpMessage[], chunkSize: number, repeatExt: (i: number) => boolean, forceType0: (i: number) => boolean): Map<number, { chunks: Buffer[]; peeks: (number[] | null)[] }> {
  const state = new Map<number, RefState>();
  const queues = new Map<number, { chunks: Buffer[]; peeks: (number[] | null)[] }>();
  let counter = 0;
  for (const [i, m] of msgs.entries()) {
    const prev = state.get(m.csid);
    const len = m.payload.length;
    let head: number[];
    let ext: boolean;
    let delta: number;
    let peek: number[] | null = null;
    const dts = prev ? (m.timestamp - prev.ts) >>> 0 : 0;
    if (!prev || prev.sid !== m.streamId || m.timestamp < prev.ts || forceType0(i)) {
      head = type0(m.csid, m.timestamp, len, m.type, m.streamId);
      ext = m.timestamp >= 0xffffff;
      delta = m.timestamp;
    } else if (prev.len !== len || prev.type !== m.type) {
      head = type1(m.csid, dts, len, m.type);
      ext = dts >= 0xffffff;
      delta = dts;
    } else if (dts !== prev.delta) {
      head = type2(m.csid, dts);
      ext = dts >= 0xffffff;
      delta = dts;
    } else {
      ext = prev.ext;
      delta = prev.delta;
      const rep = ext && repeatExt(counter++);
      head = rep ? [...type3(m.csid), ...u32(delta)] : type3(m.csid);
      if (ext && !rep) peek = [delta, m.timestamp];
    }
    state.set(m.csid, { ts: m.timestamp, delta, len, type: m.type, sid: m.streamId, ext });
    let q = queues.get(m.csid);
    if (!q) queues.set(m.csid, (q = { chunks: [], peeks: [] }));
    let off = Math.min(len, chunkSize);
    q.chunks.push(bytes(head, m.payload.subarray(0, off)));
    q.peeks.push(peek === null ? null : [head.length, ...peek]);
    while (off < len) {
      const n = Math.min(chunkSize, len - off);
      const rep = ext && repeatExt(counter++);
      const h = rep ? [...type3(m.csid), ...u32(delta)] : type3(m.csid);
      q.chunks.push(bytes(h, m.payload.subarray(off, off + n)));
      q.peeks.push(ext && !rep ? [h.length, delta, m.timestamp] : null);
      off += n;
    }
  }
  return queues;
}

/** Would the decoder's peek misread the bytes at `at` (a type 3 chunk without the repeated field)? */
function ambiguous(stream: Buffer, p: Peek): boolean {
  const avail = Math.min(4, stream.length - p.at);
  return p.values.some((v) => {
    for (let i = 0; i < avail; i++) if (stream[p.at + i] !== ((v >>> (24 - 8 * i)) & 0xff)) return false;
    return true;
  });
}

void describe('interleaved chunk streams with compressed headers (fast-check)', () => {
  const specArb = fc.record({
    lane: fc.nat({ max: 2 }),
    type: fc.constantFrom(8, 9, 18),
    len: fc.constantFrom(0, 1, 3, 4, 5, 100, 128, 129, 300, 1000),
    dts: fc.constantFrom(0, 20, 33, 0xfffffe, 0xffffff, 0x1000000, 0xffffffff),
    sid: fc.constantFrom(1, 1, 1, 2),
    seed: fc.integer(),
  });
  void it('decodes what the reference chunker produced, at any split', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.constantFrom(2, 3, 6, 63, 64, 319, 320, 65599), { minLength: 3, maxLength: 3 }),
        fc.array(fc.constantFrom(0, 1000, 0xfffff0, 0xfffffe, 0xffffff, 0x1000000, 0xfffffff0), { minLength: 3, maxLength: 3 }),
        fc.array(specArb, { minLength: 1, maxLength: 25 }),
        fc.constantFrom(1, 7, 64, 128, 129, 1000, 4096),
        fc.constantFrom('always', 'never', 'mixed'),
        fc.array(fc.nat({ max: 2 }), { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.integer(),
        (csids, bases, specs, chunkSize, repeatMode, order, cuts, seed) => {
          const ts: number[] = [...bases];
          const msgs: RtmpMessage[] = specs.map((s) => {
            const t = ts[s.lane]!;
            ts[s.lane] = (t + s.dts) >>> 0;
            return { csid: csids[s.lane]!, type: s.type, streamId: s.sid, timestamp: t, payload: noise(s.len, s.seed) };
          });
          const rnd = noise(1024, seed);
          const repeatExt = (i: number): boolean => repeatMode === 'always' || (repeatMode === 'mixed' && (rnd[i % 1024]! & 1) === 1);
          const queues = referenceChunks(msgs, chunkSize, repeatExt, (i) => (rnd[(i * 7) % 1024]! & 7) === 0);
          // interleave the per-csid chunk queues, keeping each queue's order
          const lanes = [...queues.values()];
          const pos = lanes.map(() => 0);
          const parts: Buffer[] = [encodeMessage(setChunkSizeMessage(chunkSize), 128)];
          let at = parts[0]!.length;
          const peeks: Peek[] = [];
          let k = 0;
          for (;;) {
            const live = lanes.map((_, i) => i).filter((i) => pos[i]! < lanes[i]!.chunks.length);
            if (live.length === 0) break;
            const li = live[(order[k++ % Math.max(order.length, 1)] ?? 0) % live.length]!;
            const c = lanes[li]!.chunks[pos[li]!]!;
            const pk = lanes[li]!.peeks[pos[li]!];
            if (pk) peeks.push({ at: at + pk[0]!, values: pk.slice(1) });
            parts.push(c);
            at += c.length;
            pos[li]!++;
          }
          const stream = Buffer.concat(parts);
          fc.pre(!peeks.some((p) => ambiguous(stream, p))); // the documented limit of the heuristic
          const got = decodeAll(splitAt(stream, cuts)).slice(1);
          for (const csid of csids) {
            assert.deepEqual(
              got.filter((m) => m.csid === csid).map(plain),
              msgs.filter((m) => m.csid === csid).map(plain),
              `csid ${csid}`,
            );
          }
          assert.equal(got.length, msgs.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});

void describe('encodeMessage', () => {
  void it('writes a type 0 header then type 3 headers, one buffer of the computed size', () => {
    const p = noise(300, 1);
    const enc = encodeMessage({ csid: 4, type: 9, streamId: 12346, timestamp: 1000, payload: p }, 128);
    assert.deepEqual(enc, bytes(type0(4, 1000, 300, 9, 12346), p.subarray(0, 128), type3(4), p.subarray(128, 256), type3(4), p.subarray(256)));
    assert.equal(enc.length, encodedSize(300, 4, 1000, 128));
  });

  void it('repeats the extended timestamp on every type 3 chunk', () => {
    const p = noise(200, 1);
    const enc = encodeMessage({ csid: 6, type: 9, streamId: 1, timestamp: 0x12345678, payload: p }, 100);
    assert.deepEqual(enc, bytes(type0(6, 0x12345678, 200, 9, 1), p.subarray(0, 100), type3(6), u32(0x12345678), p.subarray(100)));
  });

  void it('basic header forms at csid 63/64/319/320/65599', () => {
    const head = (csid: number): number[] => [...encodeMessage({ csid, type: 8, streamId: 0, timestamp: 0, payload: Buffer.alloc(0) }, 128).subarray(0, 3)];
    assert.deepEqual(head(63).slice(0, 1), [63]);
    assert.deepEqual(head(64).slice(0, 2), [0, 0]);
    assert.deepEqual(head(319).slice(0, 2), [0, 255]);
    assert.deepEqual(head(320), [1, 0, 1]);
    assert.deepEqual(head(65599), [1, 255, 255]);
  });

  void it('a payload of exactly one chunk has no continuation header', () => {
    const enc = encodeMessage({ csid: 3, type: 8, streamId: 1, timestamp: 0, payload: fill(128, 1) }, 128);
    assert.equal(enc.length, 12 + 128);
  });

  void it('rejects bad arguments with coded errors', () => {
    const m = (csid: number): RtmpMessage => ({ csid, type: 8, streamId: 0, timestamp: 0, payload: Buffer.alloc(1) });
    expectCode(() => encodeMessage(m(1), 128), ErrorCode.ChunkStreamId);
    expectCode(() => encodeMessage(m(65600), 128), ErrorCode.ChunkStreamId);
    expectCode(() => encodeMessage(m(3), 0), ErrorCode.ChunkSize);
    expectCode(() => encodeMessage(m(3), 0x80000000), ErrorCode.ChunkSize);
    expectCode(() => encodeMessage({ ...m(3), type: 256 }, 128), ErrorCode.MessageMalformed);
    expectCode(() => encodeMessage({ ...m(3), payload: Buffer.alloc(0x1000000) }, 128), ErrorCode.MessageTooLarge);
  });
});

void describe('splitAggregate', () => {
  const tag = (type: number, ts: number, data: number[]): number[] => [
    type, ...u24(data.length), ...u24(ts & 0xffffff), ts >>> 24, 0, 0, 0, ...data, ...u32(11 + data.length),
  ];
  const agg = (payload: number[], timestamp = 5000): RtmpMessage => ({ csid: 7, type: MessageType.Aggregate, streamId: 3, timestamp, payload: Buffer.from(payload) });

  void it('splits into views with rebased timestamps', () => {
    const m = agg([...tag(9, 0x01000010, [1, 2, 3]), ...tag(8, 0x01000030, [4]), ...tag(9, 0x01000008, [])]);
    const subs = splitAggregate(m);
    assert.deepEqual(subs.map(plain), [
      { csid: 7, type: 9, streamId: 3, timestamp: 5000, payload: '010203' },
      { csid: 7, type: 8, streamId: 3, timestamp: 5032, payload: '04' },
      { csid: 7, type: 9, streamId: 3, timestamp: 4992, payload: '' },
    ]);
    assert.equal(subs[0]!.payload.buffer, m.payload.buffer);
  });

  void it('wraps rebased timestamps at 2^32', () => {
    const subs = splitAggregate(agg([...tag(9, 100, [1]), ...tag(9, 200, [2])], 0xffffffc0));
    assert.deepEqual(subs.map((s) => s.timestamp), [0xffffffc0, 0x24]);
  });

  void it('empty aggregate → no messages', () => {
    assert.deepEqual(splitAggregate(agg([])), []);
  });

  void it('truncated, oversized, nested or wrong-type input is malformed', () => {
    const good = tag(9, 0, [1, 2, 3]);
    for (let n = 1; n < good.length; n++) expectCode(() => splitAggregate(agg(good.slice(0, n))), ErrorCode.AggregateMalformed);
    const big = [...good];
    big[3] = 200; // data size larger than the payload
    expectCode(() => splitAggregate(agg(big)), ErrorCode.AggregateMalformed);
    expectCode(() => splitAggregate(agg(tag(22, 0, []))), ErrorCode.AggregateMalformed);
    expectCode(() => splitAggregate({ ...agg(good), type: 9 }), ErrorCode.AggregateMalformed);
  });

  void it('random payloads: sub-messages or AggregateMalformed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
        try {
          const subs = splitAggregate(agg([...data]));
          assert.ok(subs.reduce((n, s) => n + s.payload.length + 15, 0) === data.length);
        } catch (e) {
          assert.ok(isServerError(e, ErrorCode.AggregateMalformed), String(e));
        }
      }),
    );
  });
});

it('keepMediaBytes keeps the head of multi-chunk audio/video messages, reports the full length, and leaves commands whole', () => {
  const video: RtmpMessage = { csid: 6, type: MessageType.Video, streamId: 1, timestamp: 40, payload: Buffer.alloc(1000, 7) };
  video.payload[0] = 0x17;
  const command: RtmpMessage = { csid: 3, type: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload: Buffer.alloc(500, 2) };
  const wire = Buffer.concat([encodeMessage(video, 128), encodeMessage(command, 128)]);
  for (const step of [1, 7, 200, wire.length]) {
    const got: [RtmpMessage, number][] = [];
    const d = new ChunkDecoder({ maxMessageSize: 1 << 20, keepMediaBytes: 64 }, (m, length) => got.push([m, length]));
    for (let i = 0; i < wire.length; i += step) d.push(wire.subarray(i, i + step));
    assert.equal(got.length, 2);
    const [v, vlen] = got[0]!;
    assert.equal(vlen, 1000);
    assert.equal(v.payload.length, 64);
    assert.deepEqual(v.payload, video.payload.subarray(0, 64));
    const [c, clen] = got[1]!;
    assert.equal(clen, 500);
    assert.deepEqual(c.payload, command.payload, 'commands are never cut');
  }
});

describe('ChunkDecoder copyPayloads (input read into a reused buffer)', () => {
  /** Two whole one-chunk messages in one buffer, the second spanning a later push: every path of the decoder. */
  function decodeThenOverwrite(copyPayloads: boolean): RtmpMessage[] {
    const got: RtmpMessage[] = [];
    const d = new ChunkDecoder({ ...OPTS, copyPayloads }, (m) => got.push(m));
    const a = encodeMessage({ csid: 4, type: MessageType.Audio, streamId: 1, timestamp: 10, payload: fill(100, 0xa1) }, 128);
    const b = encodeMessage({ csid: 6, type: MessageType.Video, streamId: 1, timestamp: 20, payload: fill(300, 0xb2) }, 128);
    const wire = bytes(a, b);
    // one read buffer, reused: each push is a view of it, overwritten by the next read
    const reused = Buffer.alloc(wire.length);
    const cut = a.length + 50;
    wire.copy(reused, 0, 0, cut);
    d.push(reused.subarray(0, cut));
    reused.fill(0xee);
    wire.copy(reused, 0, cut);
    d.push(reused.subarray(0, wire.length - cut));
    reused.fill(0xff);
    return got;
  }

  it('copies a message that arrived whole in one push, so the next read cannot change it', () => {
    const got = decodeThenOverwrite(true);
    assert.equal(got.length, 2);
    assert.deepEqual(got[0]!.payload, fill(100, 0xa1));
    assert.deepEqual(got[1]!.payload, fill(300, 0xb2));
  });

  it('without it the whole message is a view of the pushed buffer (the zero-copy default the option exists for)', () => {
    const got = decodeThenOverwrite(false);
    assert.equal(got.length, 2);
    assert.deepEqual(got[0]!.payload, fill(100, 0xff), 'the view saw the later reads');
    assert.deepEqual(got[1]!.payload, fill(300, 0xb2), 'a message cut across pushes is always reassembled into its own buffer');
  });
});

describe('ChunkDecoder.push(buffer, length): a reused read buffer', () => {
  it('reads only the first `length` bytes; what lies beyond them (an older read) is never parsed', () => {
    const got: RtmpMessage[] = [];
    const d = new ChunkDecoder({ maxMessageSize: MB, copyPayloads: true }, (m) => got.push(m));
    const first = bytes(type0(4, 10, 5, MessageType.Audio, 1), [0xaf, 1, 1, 2, 3]);
    // the shared buffer: this read's bytes, then a complete message left over from an earlier, longer read
    const stale = bytes(type0(6, 20, 3, MessageType.Video, 1), [0x17, 1, 9]);
    const shared = bytes(first, stale);
    d.push(shared, first.length);
    assert.equal(got.length, 1, 'one message: the bytes past `length` were not read');
    assert.deepEqual([got[0]!.type, got[0]!.timestamp, [...got[0]!.payload]], [MessageType.Audio, 10, [0xaf, 1, 1, 2, 3]]);
    assert.equal(d.bytesReceived, first.length);
    // the payload is a copy: overwriting the shared buffer (the next read) leaves it intact
    shared.fill(0);
    assert.deepEqual([...got[0]!.payload], [0xaf, 1, 1, 2, 3]);
    // a header cut at `length` is completed by the next read, again from the start of the buffer
    const next = bytes(type1(4, 23, 2, MessageType.Audio), [0xaf, 7]);
    const reused = bytes(next.subarray(0, 3), fill(40, 0x55));
    d.push(reused, 3);
    assert.equal(got.length, 1);
    const rest = bytes(next.subarray(3), fill(40, 0x55));
    d.push(rest, next.length - 3);
    assert.equal(got.length, 2);
    assert.deepEqual([got[1]!.timestamp, [...got[1]!.payload]], [33, [0xaf, 7]]);
  });
});

describe('ChunkDecoder onMedia', () => {
  it('audio and video go to onMedia as their fields, every other type to onMessage, in the order they complete; on chunk streams of every basic header size', () => {
    const got: string[] = [];
    const d = new ChunkDecoder(
      {
        ...OPTS,
        onMedia: (type, streamId, timestamp, payload) => got.push(`media ${type} s${streamId} t${timestamp} ${payload.toString('latin1')}`),
      },
      (m) => got.push(`message ${m.type} c${m.csid} ${m.payload.toString('latin1')}`),
    );
    const msgs: RtmpMessage[] = [
      { csid: 6, type: MessageType.Video, streamId: 1, timestamp: 40, payload: Buffer.from('v1') },
      { csid: 3, type: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload: Buffer.from('cmd') },
      { csid: 4, type: MessageType.Audio, streamId: 1, timestamp: 41, payload: Buffer.from('a1') },
      { csid: 100, type: MessageType.Video, streamId: 2, timestamp: 42, payload: Buffer.from('v2') },
      { csid: 400, type: MessageType.DataAmf0, streamId: 1, timestamp: 43, payload: Buffer.from('meta') },
      { csid: 6, type: MessageType.Video, streamId: 1, timestamp: 80, payload: fill(300, 0x61) },
    ];
    d.push(Buffer.concat(msgs.map((m) => encodeMessage(m, 128))));
    assert.deepEqual(got, [
      'media 9 s1 t40 v1',
      'message 20 c3 cmd',
      'media 8 s1 t41 a1',
      'media 9 s2 t42 v2',
      'message 18 c400 meta',
      `media 9 s1 t80 ${'a'.repeat(300)}`,
    ]);
  });
});
