/**
 * Corpus fuzzing of the chunk decoder. test/fuzz/chunk/*.bin are valid chunk
 * streams (the bytes after the handshake): an ffmpeg-like publish session,
 * compressed and interleaved headers at chunk size 128 and 1, extended
 * timestamps with and without the repeated type 3 field, 1/2/3-byte basic
 * headers, Abort, Aggregate, every control message and zero-length messages.
 * Each must decode cleanly; 3000 random mutations of them must decode to
 * messages or fail with a ServerError carrying an ERR_RTMP_* code, with the
 * same outcome however the bytes are split across pushes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ChunkDecoder, splitAggregate } from '../../src/rtmp/chunk.js';
import { parseControl } from '../../src/rtmp/control.js';
import { ErrorCode, ServerError, isServerError } from '../../src/core/errors.js';
import { MessageType, type RtmpMessage } from '../../src/rtmp/messages.js';
import { splitAt } from '../helpers/bytes.js';

const DIR = fileURLToPath(new URL('../fuzz/chunk/', import.meta.url));
const corpus = readdirSync(DIR)
  .filter((f) => f.endsWith('.bin'))
  .sort()
  .map((name) => ({ name, data: readFileSync(DIR + name) }));

interface Outcome {
  messages: string[];
  error: string | null;
}

/** Decodes, and also runs the message-level parsers on what comes out. */
function decode(pieces: Buffer[]): Outcome {
  const messages: string[] = [];
  const d = new ChunkDecoder({ maxMessageSize: 1024 * 1024 }, (m: RtmpMessage) => {
    messages.push(`${m.csid}/${m.type}/${m.streamId}/${m.timestamp}/${m.payload.toString('hex')}`);
    exerciseParsers(m);
  });
  try {
    for (const p of pieces) d.push(p);
    return { messages, error: null };
  } catch (e) {
    assert.ok(e instanceof ServerError, `not a ServerError: ${String(e)}`);
    assert.match(e.code, /^ERR_RTMP_/);
    return { messages, error: e.code };
  }
}

function exerciseParsers(m: RtmpMessage): void {
  try {
    if (m.type === MessageType.Aggregate) splitAggregate(m);
    else if (m.type >= MessageType.SetChunkSize && m.type <= MessageType.SetPeerBandwidth) parseControl(m);
  } catch (e) {
    assert.ok(isServerError(e, ErrorCode.AggregateMalformed) || isServerError(e, ErrorCode.MessageMalformed), String(e));
  }
}

type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'insert'; at: number; data: Uint8Array }
  | { op: 'delete'; at: number; len: number }
  | { op: 'duplicate'; at: number; len: number }
  | { op: 'truncate'; at: number };

const NO_PROTO = { noNullPrototype: true } as const;
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }, NO_PROTO),
  fc.record(
    { op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff), fc.nat({ max: 255 })) },
    NO_PROTO,
  ),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 24 }) }, NO_PROTO),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }, NO_PROTO),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 300 }) }, NO_PROTO),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }, NO_PROTO),
);

function mutate(input: Buffer, m: Mutation): Buffer {
  const at = input.length === 0 ? 0 : m.at % input.length;
  switch (m.op) {
    case 'flip': {
      const out = Buffer.from(input);
      if (out.length > 0) out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'set': {
      const out = Buffer.from(input);
      if (out.length > 0) out[at] = m.value;
      return out;
    }
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.data, input.subarray(at)]);
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.len)]);
    case 'duplicate':
      return Buffer.concat([input.subarray(0, at + m.len), input.subarray(at, at + m.len), input.subarray(at + m.len)]);
    case 'truncate':
      return input.subarray(0, at);
    default: {
      const never: never = m;
      throw new Error(`unknown mutation ${JSON.stringify(never)}`);
    }
  }
}

void describe('chunk decoder corpus fuzz', () => {
  void it('has a corpus', () => {
    assert.ok(corpus.length >= 8, `only ${corpus.length} corpus files in ${DIR}`);
  });

  for (const { name, data } of corpus) {
    void it(`decodes ${name} cleanly, whole and split`, () => {
      const whole = decode([data]);
      assert.equal(whole.error, null, `${name}: ${whole.error}`);
      assert.ok(whole.messages.length > 0);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
          assert.deepEqual(decode(splitAt(data, cuts)), whole);
        }),
        { numRuns: 20 },
      );
    });
  }

  void it('3000 mutations: messages or an ERR_RTMP_* ServerError, independent of the split', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: corpus.length - 1 }),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (index, mutations, cuts) => {
          const input = mutations.reduce(mutate, corpus[index]!.data);
          const whole = decode([input]);
          assert.deepEqual(decode(splitAt(input, cuts)), whole);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
