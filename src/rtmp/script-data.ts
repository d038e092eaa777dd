import { ErrorCode, serverError } from '../core/errors.js';
import { amf0Size, decodeAmf0, decodeAmf3Command, writeAmf0 } from './amf0.js';
import type { AmfValue } from './amf-types.js';
import { ByteWriter } from '../core/bytes.js';
import type { DataMessage } from './commands.js';
import { MessageType, type RtmpMessage } from './messages.js';

/**
 * Script data (type 18 / 15) that the server re-encodes before storing and
 * forwarding it (@setDataFrame, AMF3 data) can come out much larger than it
 * went in: AMF3 references (strings, objects, traits) are written out in full,
 * AMF3 integers become 9-byte AMF0 numbers. Both steps are bounded by the
 * largest message the peer may send (`maxBytes`, the connection's max message
 * size), so that what is forwarded fits every player's limits and the 24-bit
 * RTMP length field:
 *  - the decoder's reference budget (maxExpandedBytes) is `maxBytes`: a value
 *    whose references expand beyond it fails with ERR_AMF_TOO_LARGE while
 *    decoding, before the tree exists;
 *  - the AMF0 size is computed before anything is allocated: above `maxBytes`
 *    it fails with ERR_RTMP_MESSAGE_TOO_LARGE.
 */
export function decodeScriptData(m: RtmpMessage, maxBytes: number): DataMessage {
  const limits = { maxExpandedBytes: maxBytes };
  const values = m.type === MessageType.DataAmf3 ? decodeAmf3Command(m.payload, limits) : decodeAmf0(m.payload, limits);
  const [name, ...rest] = values;
  if (typeof name !== 'string') {
    throw serverError(ErrorCode.MessageMalformed, 'data message does not start with a handler name');
  }
  return { name, values: rest };
}

/** AMF0 encoding of `values`, refused (ERR_RTMP_MESSAGE_TOO_LARGE) above `maxBytes`, before allocating. */
export function encodeScriptData(values: readonly AmfValue[], maxBytes: number): Buffer {
  let size = 0;
  for (const v of values) size += amf0Size(v);
  if (size > maxBytes) {
    throw serverError(ErrorCode.MessageTooLarge, `script data re-encoded as AMF0 would be ${size} bytes (max message size ${maxBytes})`);
  }
  const w = new ByteWriter(size);
  for (const v of values) writeAmf0(w, v);
  return w.done();
}
