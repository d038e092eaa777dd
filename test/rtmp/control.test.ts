import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  abortMessage,
  ackMessage,
  parseControl,
  setChunkSizeMessage,
  setPeerBandwidthMessage,
  userControlMessage,
  windowAckSizeMessage,
  type ControlMessage,
  type UserControlMessage,
} from '../../src/rtmp/control.js';
import { ChunkDecoder, encodeMessage } from '../../src/rtmp/chunk.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { BandwidthLimit, MessageType, type RtmpMessage } from '../../src/rtmp/messages.js';

const msg = (type: number, payload: number[]): RtmpMessage => ({ csid: 2, type, streamId: 0, timestamp: 0, payload: Buffer.from(payload) });

function expectCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isServerError(e), `expected ServerError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** Wire vectors: message type, payload bytes, parsed value. */
const VECTORS: [number, number[], ControlMessage][] = [
  [1, [0, 0, 0x10, 0], { kind: 'setChunkSize', size: 4096 }],
  [2, [0, 0, 0, 7], { kind: 'abort', csid: 7 }],
  [3, [0xff, 0xff, 0xff, 0xff], { kind: 'ack', sequence: 0xffffffff }],
  [5, [0, 0x26, 0x25, 0xa0], { kind: 'windowAckSize', size: 2500000 }],
  [6, [0, 0x26, 0x25, 0xa0, 2], { kind: 'setPeerBandwidth', size: 2500000, limit: BandwidthLimit.Dynamic }],
  [4, [0, 0, 0, 0, 0, 1], { kind: 'userControl', event: { type: 'streamBegin', streamId: 1 } }],
  [4, [0, 1, 0, 0, 0, 1], { kind: 'userControl', event: { type: 'streamEof', streamId: 1 } }],
  [4, [0, 2, 0, 0, 0, 1], { kind: 'userControl', event: { type: 'streamDry', streamId: 1 } }],
  [4, [0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8], { kind: 'userControl', event: { type: 'setBufferLength', streamId: 1, ms: 3000 } }],
  [4, [0, 4, 0, 0, 0, 1], { kind: 'userControl', event: { type: 'streamIsRecorded', streamId: 1 } }],
  [4, [0, 6, 0x12, 0x34, 0x56, 0x78], { kind: 'userControl', event: { type: 'pingRequest', timestamp: 0x12345678 } }],
  [4, [0, 7, 0x12, 0x34, 0x56, 0x78], { kind: 'userControl', event: { type: 'pingResponse', timestamp: 0x12345678 } }],
  [4, [0, 31, 0, 0, 0, 1], { kind: 'userControl', event: { type: 'unknown', eventType: 31, data: Buffer.from([0, 0, 0, 1]) } }],
];

function build(c: ControlMessage): RtmpMessage {
  switch (c.kind) {
    case 'setChunkSize':
      return setChunkSizeMessage(c.size);
    case 'abort':
      return abortMessage(c.csid);
    case 'ack':
      return ackMessage(c.sequence);
    case 'windowAckSize':
      return windowAckSizeMessage(c.size);
    case 'setPeerBandwidth':
      return setPeerBandwidthMessage(c.size, c.limit);
    case 'userControl':
      return userControlMessage(c.event);
    default: {
      const never: never = c;
      throw new Error(String(never));
    }
  }
}

void describe('parseControl', () => {
  for (const [type, payload, expected] of VECTORS) {
    void it(`parses type ${type} ${JSON.stringify(payload)}`, () => {
      assert.deepEqual(parseControl(msg(type, payload)), expected);
    });
  }

  void it('ignores trailing bytes', () => {
    assert.deepEqual(parseControl(msg(5, [0, 0, 1, 0, 9, 9])), { kind: 'windowAckSize', size: 256 });
  });

  void it('every truncated payload is malformed', () => {
    for (const [type, payload, expected] of VECTORS) {
      const min = expected.kind === 'userControl' && expected.event.type === 'unknown' ? 2 : payload.length;
      for (let n = 0; n < min; n++) {
        expectCode(() => parseControl(msg(type, payload.slice(0, n))), ErrorCode.MessageMalformed);
      }
    }
  });

  void it('a message that is not a protocol control message is malformed', () => {
    for (const type of [0, 7, 8, 9, 20, 22, 255]) expectCode(() => parseControl(msg(type, [0, 0, 0, 0, 0, 0])), ErrorCode.MessageMalformed);
  });

  void it('random payloads: a value or ERR_RTMP_MESSAGE_MALFORMED', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3, 4, 5, 6), fc.uint8Array({ maxLength: 12 }), (type, data) => {
        try {
          parseControl(msg(type, [...data]));
        } catch (e) {
          assert.ok(isServerError(e, ErrorCode.MessageMalformed), String(e));
        }
      }),
    );
  });
});

void describe('control builders', () => {
  for (const [type, payload, expected] of VECTORS) {
    void it(`builds ${JSON.stringify(payload)} for ${expected.kind}`, () => {
      const m = build(expected);
      assert.equal(m.type, type);
      assert.equal(m.csid, 2);
      assert.equal(m.streamId, 0);
      assert.equal(m.timestamp, 0);
      assert.deepEqual([...m.payload], payload);
    });
  }

  void it('ack sequence numbers wrap at 2^32', () => {
    assert.deepEqual(parseControl(ackMessage(2 ** 32 + 5)), { kind: 'ack', sequence: 5 });
  });

  void it('setChunkSizeMessage rejects sizes outside 1..0x7fffffff', () => {
    for (const bad of [0, -1, 0x80000000, 1.5, Number.NaN]) expectCode(() => setChunkSizeMessage(bad), ErrorCode.ChunkSize);
    assert.deepEqual([...setChunkSizeMessage(0x7fffffff).payload], [0x7f, 0xff, 0xff, 0xff]);
  });

  void it('round trip through the chunk stream (fast-check)', () => {
    const NOPROTO = { noNullPrototype: true } as const;
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const eventArb: fc.Arbitrary<UserControlMessage> = fc.oneof(
      fc.record({ type: fc.constantFrom('streamBegin' as const, 'streamEof' as const, 'streamDry' as const, 'streamIsRecorded' as const), streamId: u32 }, NOPROTO),
      fc.record({ type: fc.constant('setBufferLength' as const), streamId: u32, ms: u32 }, NOPROTO),
      fc.record({ type: fc.constantFrom('pingRequest' as const, 'pingResponse' as const), timestamp: u32 }, NOPROTO),
      fc.record({
        type: fc.constant('unknown' as const),
        eventType: fc.integer({ min: 8, max: 0xffff }),
        data: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
      }, NOPROTO),
    );
    const controlArb: fc.Arbitrary<ControlMessage> = fc.oneof(
      fc.record({ kind: fc.constant('setChunkSize' as const), size: fc.integer({ min: 1, max: 0xffffff }) }, NOPROTO),
      fc.record({ kind: fc.constant('abort' as const), csid: fc.integer({ min: 2, max: 65599 }) }, NOPROTO),
      fc.record({ kind: fc.constant('ack' as const), sequence: u32 }, NOPROTO),
      fc.record({ kind: fc.constant('windowAckSize' as const), size: u32 }, NOPROTO),
      fc.record({ kind: fc.constant('setPeerBandwidth' as const), size: u32, limit: fc.constantFrom(0, 1, 2) }, NOPROTO),
      fc.record({ kind: fc.constant('userControl' as const), event: eventArb }, NOPROTO),
    );
    fc.assert(
      fc.property(controlArb, (c) => {
        const out: RtmpMessage[] = [];
        new ChunkDecoder({ maxMessageSize: 1024 }, (m) => out.push(m)).push(encodeMessage(build(c), 128));
        assert.equal(out.length, 1);
        assert.deepEqual(parseControl(out[0]!), c);
        assert.equal(out[0]!.type === MessageType.UserControl, c.kind === 'userControl');
      }),
      { numRuns: 500 },
    );
  });
});
