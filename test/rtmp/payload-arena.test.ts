import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkDecoder, encodeInHeadroom, encodeMessage } from '../../src/rtmp/chunk.js';
import { PAYLOAD_HEADROOM, PayloadArena, headroomOf } from '../../src/core/payload-arena.js';
import { MessageType, type RtmpMessage } from '../../src/rtmp/messages.js';
import { RtmpFormat, wireFor } from '../../src/rtmp/player.js';
import { encodeShared, releaseEncodings } from '../../src/core/encoding.js';
import { FrameKind, MediaFrame } from '../../src/live/frame.js';
import { LiveStream } from '../../src/live/stream.js';
import { isServerError } from '../../src/core/errors.js';

const MB = 1024 * 1024;

function arenaPayload(arena: PayloadArena, bytes: Buffer): Buffer {
  const p = arena.alloc(bytes.length);
  bytes.copy(p);
  return p;
}

/** Feeds `wire` through a decoder reading from one reused buffer (as the server's shared read buffer), `step` bytes per read. */
function decodeShared(wire: Buffer, step: number, arena: boolean): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  const d = new ChunkDecoder({ maxMessageSize: MB, copyPayloads: true, arena }, (m) => out.push(m));
  const shared = Buffer.alloc(64 * 1024);
  for (let at = 0; at < wire.length; at += step) {
    const n = Math.min(step, wire.length - at);
    wire.copy(shared, 0, at, at + n);
    d.push(shared, n);
    shared.fill(0xee); // the next read overwrites it: no payload may still point into it
  }
  return out;
}

describe('PayloadArena', () => {
  it('gives each payload its own bytes and PAYLOAD_HEADROOM bytes in front that no other payload uses', () => {
    const arena = new PayloadArena();
    const ps: Buffer[] = [];
    for (let i = 0; i < 200; i++) ps.push(arenaPayload(arena, Buffer.alloc((i * 37) % 5000, i & 0xff)));
    ps.push(arenaPayload(arena, Buffer.alloc(40000, 0xab))); // dedicated memory
    for (const p of ps) assert.equal(headroomOf(p), PAYLOAD_HEADROOM);
    // [start - headroom, end) of payloads in one ArrayBuffer never overlap
    const spans = ps.map((p) => ({ buf: p.buffer, from: p.byteOffset - PAYLOAD_HEADROOM, to: p.byteOffset + p.length }));
    for (let i = 0; i < spans.length; i++) {
      for (let j = i + 1; j < spans.length; j++) {
        const a = spans[i]!;
        const b = spans[j]!;
        if (a.buf !== b.buf) continue;
        assert.ok(a.to <= b.from || b.to <= a.from, `payloads ${i} and ${j} overlap`);
      }
    }
    ps.forEach((p, i) => assert.ok(p.every((v) => v === (i === 200 ? 0xab : i & 0xff)), `payload ${i} intact`));
  });

  it('starts with a small slab and doubles it up to 64 KiB: a connection that sends a few media messages holds little', () => {
    const arena = new PayloadArena();
    const sizes = new Set<number>();
    for (let i = 0; i < 100; i++) sizes.add(arena.alloc(1000).buffer.byteLength);
    assert.deepEqual([...sizes], [4096, 8192, 16384, 32768, 65536]);
    assert.equal(new PayloadArena().alloc(12000).buffer.byteLength, 16384, 'a first payload larger than the first slab gets a slab that holds it');
  });

  it('says 0 for memory that is not an arena\'s (pooled, own, views of a reused buffer)', () => {
    assert.equal(headroomOf(Buffer.allocUnsafe(100)), 0);
    assert.equal(headroomOf(Buffer.allocUnsafeSlow(10000).subarray(100)), 0);
    assert.equal(headroomOf(Buffer.alloc(64).subarray(20)), 0);
    assert.equal(headroomOf(Buffer.from('abc')), 0);
  });
});

describe('ChunkDecoder with arena', () => {
  const audio = Buffer.alloc(300, 0x11);
  audio[0] = 0xaf;
  const video = Buffer.alloc(9000, 0x22); // several 4096-byte chunks
  video[0] = 0x27;
  const wire = Buffer.concat([
    encodeMessage({ csid: 3, type: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: Buffer.from([0, 0, 0x10, 0]) }, 128),
    encodeMessage({ csid: 6, type: MessageType.Audio, streamId: 1, timestamp: 10, payload: audio }, 4096),
    encodeMessage({ csid: 7, type: MessageType.Video, streamId: 1, timestamp: 20, payload: video }, 4096),
    encodeMessage({ csid: 3, type: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload: Buffer.from([2, 0, 1, 0x61]) }, 4096),
  ]);

  for (const step of [wire.length, 1000, 7, 1]) {
    it(`audio and video payloads come from the arena, other messages do not, whole and intact (reads of ${step} bytes)`, () => {
      const ms = decodeShared(wire, step, true);
      assert.deepEqual(
        ms.map((m) => m.type),
        [MessageType.SetChunkSize, MessageType.Audio, MessageType.Video, MessageType.CommandAmf0],
      );
      assert.deepEqual(ms[1]!.payload, audio);
      assert.deepEqual(ms[2]!.payload, video);
      assert.deepEqual(ms[3]!.payload, Buffer.from([2, 0, 1, 0x61]));
      assert.equal(headroomOf(ms[1]!.payload), PAYLOAD_HEADROOM);
      assert.equal(headroomOf(ms[2]!.payload), PAYLOAD_HEADROOM);
      assert.equal(headroomOf(ms[3]!.payload), 0);
      assert.equal(headroomOf(ms[0]!.payload), 0);
    });
  }

  it('without the option nothing comes from an arena', () => {
    for (const m of decodeShared(wire, 1000, false)) assert.equal(headroomOf(m.payload), 0);
  });

  it('an aborted message leaves nothing behind: the next one on its chunk stream is whole', () => {
    const head = encodeMessage({ csid: 7, type: MessageType.Video, streamId: 1, timestamp: 0, payload: video }, 4096).subarray(0, 12 + 4096); // the first chunk
    const abort = encodeMessage({ csid: 2, type: MessageType.Abort, streamId: 0, timestamp: 0, payload: Buffer.from([0, 0, 0, 7]) }, 4096);
    const ms = decodeShared(Buffer.concat([wire.subarray(0, 16), head, abort, wire.subarray(16)]), 333, true);
    const v = ms.filter((m) => m.type === MessageType.Video);
    assert.equal(v.length, 1);
    assert.deepEqual(v[0]!.payload, video);
  });

  it('random bytes fail as before (a coded error), never a crash or an overlong payload', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 3000 }), (junk) => {
        const d = new ChunkDecoder({ maxMessageSize: 64 * 1024, copyPayloads: true, arena: true, maxChunkStreams: 8 }, (m, length) => {
          assert.equal(m.payload.length, length);
        });
        try {
          d.push(Buffer.from(junk));
        } catch (e) {
          assert.ok(isServerError(e), String(e));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('encodeInHeadroom', () => {
  it('makes exactly encodeMessage\'s bytes, as a view of the payload\'s memory (no copy)', () => {
    const arena = new PayloadArena();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4096 }),
        fc.constantFrom(2, 3, 6, 7, 63),
        fc.oneof(fc.integer({ min: 0, max: 0xffffff }), fc.integer({ min: 0xfffff0, max: 0xffffffff })),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.constantFrom(MessageType.Audio, MessageType.Video, MessageType.DataAmf0),
        (len, csid, timestamp, streamId, type) => {
          const payload = arenaPayload(arena, Buffer.alloc(len, len & 0xff));
          const m: RtmpMessage = { csid, type, streamId, timestamp, payload };
          const wire = encodeInHeadroom(m, 4096);
          assert.ok(wire !== undefined);
          assert.deepEqual(wire, encodeMessage(m, 4096));
          assert.equal(wire.buffer, payload.buffer);
          assert.equal(wire.byteOffset + wire.length, payload.byteOffset + payload.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('does not apply to a message longer than one chunk, a payload without headroom, or a header longer than the headroom', () => {
    const arena = new PayloadArena();
    const long = arenaPayload(arena, Buffer.alloc(5000, 1));
    assert.equal(encodeInHeadroom({ csid: 6, type: 8, streamId: 1, timestamp: 0, payload: long }, 4096), undefined);
    assert.equal(encodeInHeadroom({ csid: 6, type: 8, streamId: 1, timestamp: 0, payload: Buffer.alloc(100) }, 4096), undefined);
    // a 2-byte basic header (csid 64) + 11 + extended timestamp: 17 bytes > 16
    const p = arenaPayload(arena, Buffer.alloc(100, 2));
    assert.equal(encodeInHeadroom({ csid: 64, type: 8, streamId: 1, timestamp: 0xffffff, payload: p }, 4096), undefined);
    assert.ok(encodeInHeadroom({ csid: 64, type: 8, streamId: 1, timestamp: 5, payload: p }, 4096) !== undefined);
    assert.throws(() => encodeInHeadroom({ csid: 6, type: 8, streamId: 1, timestamp: 0, payload: p }, 0), (e) => isServerError(e));
  });
});

describe('the RTMP format and the headroom', () => {
  function frame(kind: FrameKind, size: number, ts: number): MediaFrame {
    const bytes = Buffer.alloc(size, 0x5a);
    bytes[0] = kind === FrameKind.Video ? 0x27 : 0xaf;
    bytes[1] = 1;
    return new MediaFrame(kind, ts, arenaPayload(new PayloadArena(), bytes), 0);
  }

  it('the first key writes in place; another key gets a copy and never changes the first one\'s bytes, also after the encodings were let go', () => {
    const f = frame(FrameKind.Video, 1000, 1234);
    const a = wireFor(f, 4096, 1);
    assert.equal(a.buffer, f.payload.buffer, 'in place');
    const aBytes = Buffer.from(a);
    const b = encodeShared(f, new RtmpFormat(4096, 2, false));
    assert.notEqual(b.buffer, f.payload.buffer, 'another stream id: a copy');
    assert.deepEqual(b, encodeMessage({ csid: 7, type: 9, streamId: 2, timestamp: 1234, payload: f.payload }, 4096));
    releaseEncodings(f);
    const c = wireFor(f, 4096, 1, true); // interleave: another key, after the release
    assert.notEqual(c.buffer, f.payload.buffer);
    assert.deepEqual(a, aBytes, 'the first encoding (maybe still queued for a socket) is unchanged');
    const again = wireFor(f, 4096, 1);
    assert.equal(again.buffer, f.payload.buffer, 'the owner key writes in place again');
    assert.deepEqual(again, aBytes);
  });

  it('a message longer than the output chunk size is copied into its chunks as before', () => {
    const f = frame(FrameKind.Video, 5000, 40);
    const w = wireFor(f, 4096, 1);
    assert.notEqual(w.buffer, f.payload.buffer);
    assert.deepEqual(w, encodeMessage({ csid: 7, type: 9, streamId: 1, timestamp: 40, payload: f.payload }, 4096));
  });

  it('a codec header the stream keeps for its session gets its own bytes (it pins no arena slab)', () => {
    const s = new LiveStream('live', 'x');
    s.attachPublisher({ id: 'p', remote: 'r', stop: () => {} });
    const arena = new PayloadArena();
    const avcHeader = arenaPayload(arena, Buffer.from([0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff]));
    const h = s.pushMedia(FrameKind.Video, 0, avcHeader);
    assert.equal(headroomOf(h.payload), 0);
    assert.deepEqual(h.payload, avcHeader);
    const key = s.pushMedia(FrameKind.Video, 33, arenaPayload(arena, Buffer.from([0x17, 1, 0, 0, 0, 9, 9])));
    assert.equal(headroomOf(key.payload), PAYLOAD_HEADROOM, 'media frames keep their arena payload');
  });
});
