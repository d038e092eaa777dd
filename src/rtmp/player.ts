import { NO_ENCODING_KEY, encodeShared, keepEncoding, sharedEncoding, type EncodingSlots, type OutputFormat } from '../core/encoding.js';
import { encodeInHeadroom, encodeMessage } from './chunk.js';
import { ChunkStreamId, MessageType } from './messages.js';
import type { SocketOutput } from './output.js';

/**
 * The shape of a shared media message as the live hub hands it out. Declared
 * here (structurally) because rtmp sits below live and may not import it.
 * Its encoding slots are shared by every output (src/core/encoding.ts).
 */
export interface OutgoingMedia extends EncodingSlots {
  readonly kind: number;
  readonly timestamp: number;
  readonly payload: Buffer;
  /**
   * The key of the one RTMP encoding that may write its chunk header into the
   * payload's headroom (an arena payload, src/core/payload-arena.ts);
   * NO_ENCODING_KEY until one did. Kept when the encodings are let go: a
   * later encoding with the same key writes the same bytes there, any other
   * key copies.
   */
  headroomKey: number;
}

/** Media kinds as numbers: the RTMP message types 8 (audio), 9 (video), 18 (data). */
function csidFor(kind: number, interleave: boolean): number {
  if (kind === MessageType.Video || (interleave && kind === MessageType.Audio)) return ChunkStreamId.Video;
  return kind === MessageType.Audio ? ChunkStreamId.Audio : ChunkStreamId.Data;
}

/** The RTMP format's key: chunkSize * 2^17 + interleave * 2^16 + streamId (exact: chunk sizes are below 2^31) */
const MAX_CACHED_STREAM_ID = 0xffff;
const WIRE_KEY_INTERLEAVE = 0x10000;
const WIRE_KEY_CHUNK_SIZE = 0x20000;

/**
 * RTMP as an output format: a media message chunked for one output chunk size
 * and message stream id. Every message starts with a type-0 header (absolute
 * timestamp), so the same bytes are right for every player, whatever it
 * received before. Keys are at least 2^17 (chunk size >= 1), above the fixed
 * keys of src/core/encoding.ts.
 */
export class RtmpFormat implements OutputFormat<OutgoingMedia> {
  readonly key: number;

  constructor(
    readonly chunkSize: number,
    readonly streamId: number,
    readonly interleave: boolean,
  ) {
    this.key = rtmpEncodingKey(chunkSize, streamId, interleave);
  }

  encode(m: OutgoingMedia): Buffer {
    return encodeRtmp(m, this.chunkSize, this.streamId, this.interleave, this.key);
  }
}

/** The RTMP format's key for these parameters (NO_ENCODING_KEY: not to be shared). */
export function rtmpEncodingKey(chunkSize: number, streamId: number, interleave: boolean): number {
  // the key holds the whole (chunk size, interleave, stream id) triple: a stream id that does not fit its
  // 16 bits (a peer may pick any 32-bit NetStream id) is never cached, so it cannot collide with another
  const cacheable = streamId >= 0 && streamId <= MAX_CACHED_STREAM_ID && chunkSize >= 1;
  return cacheable ? chunkSize * WIRE_KEY_CHUNK_SIZE + (interleave ? WIRE_KEY_INTERLEAVE : 0) + streamId : NO_ENCODING_KEY;
}

/**
 * Encodes a media message for one output chunk size and message stream id,
 * reusing the message's shared encoding when another output already made it
 * (the same cache as RtmpFormat's, without a format object: for outputs such
 * as push relays that do not keep one).
 */
export function wireFor(m: OutgoingMedia, chunkSize: number, streamId: number, interleave = false): Buffer {
  const key = rtmpEncodingKey(chunkSize, streamId, interleave);
  const cached = sharedEncoding(m, key);
  if (cached !== undefined) return cached;
  const wire = encodeRtmp(m, chunkSize, streamId, interleave, key);
  keepEncoding(m, key, wire);
  return wire;
}

/**
 * The message chunked for these parameters. A message that fits one chunk and
 * whose payload has headroom is written in place (encodeInHeadroom: a view, no
 * copy) by the first cacheable key to ask; other keys get a copy.
 */
function encodeRtmp(m: OutgoingMedia, chunkSize: number, streamId: number, interleave: boolean, key: number): Buffer {
  const message = { csid: csidFor(m.kind, interleave), type: m.kind, streamId, timestamp: m.timestamp, payload: m.payload };
  const owner = m.headroomKey;
  if (key !== NO_ENCODING_KEY && (owner === key || owner === NO_ENCODING_KEY)) {
    const wire = encodeInHeadroom(message, chunkSize);
    if (wire !== undefined) {
      m.headroomKey = key;
      return wire;
    }
  }
  return encodeMessage(message, chunkSize);
}

/** Writes shared media to one connection's output; its queue is the player's queue. */
export class MediaWriter {
  receiveAudio = true;
  receiveVideo = true;
  paused = false;
  /** interleave: audio and video on one chunk stream */
  interleave = false;
  bytesWritten = 0;
  /** this output's RTMP format, rebuilt when its chunk size or interleave changes */
  private format: RtmpFormat;

  constructor(
    protected readonly output: SocketOutput,
    readonly streamId: number,
  ) {
    this.format = new RtmpFormat(output.chunkSize, streamId, this.interleave);
  }

  queuedBytes(): number {
    return this.output.queuedBytes();
  }

  write(m: OutgoingMedia): void {
    if (this.paused) return;
    if (m.kind === MessageType.Audio && !this.receiveAudio) return;
    if (m.kind === MessageType.Video && !this.receiveVideo) return;
    const output = this.output;
    let f = this.format;
    if (f.chunkSize !== output.chunkSize || f.interleave !== this.interleave) f = this.format = new RtmpFormat(output.chunkSize, this.streamId, this.interleave);
    // the shared encoding's first slot, read here: the hot path of every player
    const e = m.enc0;
    const wire = m.key0 === f.key && e !== undefined ? e : encodeShared(m, f);
    this.bytesWritten += wire.length;
    output.write(wire);
  }

  cork(): void {
    this.output.cork();
  }

  uncork(): void {
    this.output.uncork();
  }
}
