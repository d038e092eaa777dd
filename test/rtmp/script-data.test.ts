import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteWriter } from '../../src/core/bytes.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { decodeAmf0, encodeAmf0 } from '../../src/rtmp/amf0.js';
import { u29Size, writeU29 } from '../../src/rtmp/amf3.js';
import { ChunkStreamId, MessageType, type RtmpMessage } from '../../src/rtmp/messages.js';
import { decodeScriptData, encodeScriptData } from '../../src/rtmp/script-data.js';
import { referenceBombSetDataFrame } from '../helpers/attack-crash.js';

const MAX = 1024 * 1024;
const data = (payload: Buffer, type: number = MessageType.DataAmf0): RtmpMessage => ({ csid: ChunkStreamId.Data, type, streamId: 1, timestamp: 0, payload });
const coded = (code: string) => (e: unknown): boolean => isServerError(e) && e.code === code;

test('script data whose AMF3 references expand beyond the max message size is refused while decoding', () => {
  const bomb = referenceBombSetDataFrame(200 * 1024, 300);
  assert.throws(() => decodeScriptData(data(bomb), MAX), coded(ErrorCode.AmfTooLarge));
  // the same shape, small enough, decodes and re-encodes within the bound
  const small = referenceBombSetDataFrame(1000, 100);
  const d = decodeScriptData(data(small), MAX);
  assert.equal(d.name, '@setDataFrame');
  const out = encodeScriptData(d.values, MAX);
  assert.ok(out.length > 100_000 && out.length <= MAX);
  assert.equal(decodeAmf0(out)[0], 'onMetaData');
});

test('script data that grows when re-encoded as AMF0 (AMF3 integers become 9-byte numbers) is refused before allocating', () => {
  // AMF3 data (type 15): format byte, "onCuePoint", then an AVM+ array of 60 000 two-byte integers: 120 KB in, 540 KB out
  const max = 256 * 1024;
  const count = 60_000;
  const head = encodeAmf0(['onCuePoint']);
  const w = new ByteWriter(1 + head.length + 2 + u29Size((count << 1) | 1) + 1 + count * 2);
  w.u8(0);
  head.copy(w.buf, w.pos);
  w.pos += head.length;
  w.u8(0x11).u8(0x09);
  writeU29(w, (count << 1) | 1);
  writeU29(w, 1);
  for (let i = 0; i < count; i++) w.u8(0x04).u8(i & 0x7f);
  const payload = w.done();
  assert.ok(payload.length < max);
  const d = decodeScriptData(data(payload, MessageType.DataAmf3), max);
  assert.throws(() => encodeScriptData([d.name, ...d.values], max), coded(ErrorCode.MessageTooLarge));
  assert.ok(encodeScriptData([d.name, ...d.values], 4 * max).length > max, 'it is the size that is refused');
});
