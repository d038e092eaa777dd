import { EncodingKey, encodeShared, type OutputFormat } from '../core/encoding.js';
import { encodeFlvTag } from '../media/flv.js';
import type { MediaFrame } from './frame.js';

/**
 * Output formats of the live core that are not RTMP (RTMP's is
 * src/rtmp/player.ts `RtmpFormat`). Each encodes a frame once; every reader of
 * the format gets the same Buffer (`encodeShared`).
 */

/**
 * An FLV tag: the 11-byte tag header (type, size, the stream's timestamp,
 * stream id 0), the frame's payload as the tag body, and the 4-byte
 * PreviousTagSize: what HTTP-FLV and FLV recording write after their file
 * header. Timestamps are the stream's (not rebased per reader) so that the
 * bytes can be shared; a reader that wants its file to start at 0 makes its
 * own format with another key.
 */
export const FlvTagFormat: OutputFormat<MediaFrame> = {
  key: EncodingKey.FlvTag,
  encode: (f: MediaFrame): Buffer => encodeFlvTag({ type: f.kind, timestamp: f.timestamp, data: f.payload }),
};

/** The frame as an FLV tag (shared by every FLV reader). */
export function flvTag(frame: MediaFrame): Buffer {
  return encodeShared(frame, FlvTagFormat);
}
