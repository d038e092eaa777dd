import { encodeMessage } from './chunk.js';
import { ChunkStreamId, MessageType } from './messages.js';
import type { SocketOutput } from './output.js';

/**
 * The shape of a shared media message as the live hub hands it out. Declared
 * here (structurally) because rtmp sits below live and may not import it.
 */
export interface OutgoingMedia {
  readonly kind: number;
  readonly timestamp: number;
  readonly payload: Buffer;
  /** one cached wire encoding, shared by every player with the same key */
  wire: Buffer | undefined;
  wireKey: number;
}

/** Media kinds as numbers: the RTMP message types 8 (audio), 9 (video), 18 (data). */
function csidFor(kind: number, interleave: boolean): number {
  if (kind === MessageType.Video || (interleave && kind === MessageType.Audio)) return ChunkStreamId.Video;
  return kind === MessageType.Audio ? ChunkStreamId.Audio : ChunkStreamId.Data;
}

/** wireFor's cache key: chunkSize * 2^17 + interleave * 2^16 + streamId (exact: chunk sizes are below 2^31) */
const MAX_CACHED_STREAM_ID = 0xffff;
const WIRE_KEY_INTERLEAVE = 0x10000;
const WIRE_KEY_CHUNK_SIZE = 0x20000;

/**
 * Encodes a media message for one output chunk size and message stream id,
 * reusing the message's cached encoding when another player already made it.
 * Every message starts with a type-0 header (absolute timestamp), so the same
 * bytes are right for every player, whatever it received before.
 */
export function wireFor(m: OutgoingMedia, chunkSize: number, streamId: number, interleave = false): Buffer {
  // the key holds the whole (chunk size, interleave, stream id) triple: a stream id that does not fit its
  // 16 bits (a peer may pick any 32-bit NetStream id) is never cached, so it cannot collide with another
  const cacheable = streamId >= 0 && streamId <= MAX_CACHED_STREAM_ID;
  const key = cacheable ? chunkSize * WIRE_KEY_CHUNK_SIZE + (interleave ? WIRE_KEY_INTERLEAVE : 0) + streamId : -1;
  if (cacheable && m.wireKey === key && m.wire !== undefined) return m.wire;
  const wire = encodeMessage(
    { csid: csidFor(m.kind, interleave), type: m.kind, streamId, timestamp: m.timestamp, payload: m.payload },
    chunkSize,
  );
  if (cacheable && m.wire === undefined) {
    m.wire = wire;
    m.wireKey = key;
  }
  return wire;
}

/** Writes shared media to one connection's output; its queue is the player's queue. */
export class MediaWriter {
  receiveAudio = true;
  receiveVideo = true;
  paused = false;
  /** interleave: audio and video on one chunk stream */
  interleave = false;
  bytesWritten = 0;

  constructor(
    protected readonly output: SocketOutput,
    readonly streamId: number,
  ) {}

  queuedBytes(): number {
    return this.output.queuedBytes();
  }

  write(m: OutgoingMedia): void {
    if (this.paused) return;
    if (m.kind === MessageType.Audio && !this.receiveAudio) return;
    if (m.kind === MessageType.Video && !this.receiveVideo) return;
    const wire = wireFor(m, this.output.chunkSize, this.streamId, this.interleave);
    this.bytesWritten += wire.length;
    this.output.write(wire);
  }

  cork(): void {
    this.output.cork();
  }

  uncork(): void {
    this.output.uncork();
  }
}
