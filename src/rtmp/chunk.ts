/**
 * The RTMP chunk stream (RTMP 1.0 spec, section 5.3): a decoder that turns the
 * bytes after the handshake into whole messages, and an encoder that turns one
 * message into its chunks.
 *
 * Decoder design (hot path):
 * - One tight loop over each pushed buffer. Header bytes split across two pushes
 *   are carried over in a small buffer (at most HeaderSize.Max - 1 bytes); chunk
 *   bodies split across pushes are simply resumed.
 * - A message that fits in one chunk and lies entirely inside one pushed buffer
 *   is delivered as a `subarray()` view of that buffer (zero copy). The caller
 *   must therefore not reuse or mutate buffers after pushing them (socket
 *   buffers are never reused by Node.js, so this holds for `socket.on('data')`).
 * - A multi-chunk message is allocated once, at its announced length, when its
 *   first chunk body starts; chunk bodies are copied into it.
 * - No allocation per chunk: per chunk-stream state lives in one mutable object
 *   per csid, created on its first type 0 header.
 *
 * Extended timestamps on type 3 chunks: the spec (2012 edition) says a type 3
 * chunk carries the 4-byte extended timestamp whenever the latest type 0/1/2
 * header of that chunk stream did. Flash/FMS, ffmpeg and librtmp write it; some
 * other encoders do not. Like SRS, the decoder peeks at the next 4 bytes of a
 * type 3 chunk whose chunk stream uses extended timestamps and consumes them only
 * if they equal the expected value: the extended field of the latest type 0/1/2
 * header (the delta, or the absolute timestamp for type 0) or the message's
 * absolute timestamp. Otherwise they are left as chunk data. A payload whose
 * first 4 bytes happen to equal that value is misread (probability 2^-32 per
 * chunk for random data; only after 4.6 hours of timestamps). When fewer than
 * 4 bytes are buffered the decoder decides as soon as the buffered bytes stop
 * matching, and waits for more bytes only while they still match.
 */
import assert from 'node:assert/strict';
import { ByteReader, ByteWriter } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import {
  DEFAULT_CHUNK_SIZE,
  EXTENDED_TIMESTAMP,
  MAX_CHUNK_SIZE,
  MAX_CSID,
  MAX_MESSAGE_LENGTH,
  MIN_CSID,
  MessageType,
  type RtmpMessage,
} from './messages.js';
import { PayloadArena, headroomOf } from '../core/payload-arena.js';

/** The 2-bit `fmt` field of the chunk basic header (section 5.3.1.2). */
export const ChunkFormat = {
  /** timestamp, length, type id, stream id */
  Type0: 0,
  /** timestamp delta, length, type id (same stream id) */
  Type1: 1,
  /** timestamp delta only */
  Type2: 2,
  /** no message header */
  Type3: 3,
} as const;

/** Chunk basic header layout (section 5.3.1.1). */
const BasicHeader = {
  FmtShift: 6,
  CsidMask: 0x3f,
  /** csid field 0: one more byte follows, csid = 64 + byte */
  TwoByteMarker: 0,
  /** csid field 1: two more bytes follow, csid = 64 + byte1 + 256 * byte2 */
  ThreeByteMarker: 1,
  /** added to the extra byte(s) of the 2- and 3-byte forms */
  CsidOffset: 64,
  /** the smallest csid that needs the 3-byte form */
  ThreeByteMin: 320,
} as const;

/** Byte sizes of chunk header parts. */
const HeaderSize = {
  Type0: 11,
  Type1: 7,
  Type2: 3,
  Type3: 0,
  ExtendedTimestamp: 4,
  /** the longest chunk header: 3-byte basic + type 0 + extended timestamp */
  Max: 18,
} as const;

/** Set Chunk Size payload: a 31-bit value whose top bit must be zero (section 5.4.1). */
const SetChunkSizeField = { ReservedBit: 0x80000000 } as const;
/** FLV-like tag inside an Aggregate message. */
const AggregateTag = { HeaderSize: 11, BackPointerSize: 4 } as const;

/**
 * Default cap on the chunk size a peer may set. Any chunk size at or above the
 * 24-bit maximum message length already means "one chunk per message", so
 * 16 MiB loses nothing; larger values are treated as hostile. The chunk size
 * never drives allocation (messages are allocated at their announced length).
 */
export const DEFAULT_MAX_INBOUND_CHUNK_SIZE = 16 * 1024 * 1024;

export interface ChunkDecoderOptions {
  /** A header announcing a longer message fails with ERR_RTMP_MESSAGE_TOO_LARGE, before any allocation. */
  maxMessageSize: number;
  /**
   * A peer Set Chunk Size above this (or 0, or with the top bit set) fails with
   * ERR_RTMP_CHUNK_SIZE. Default DEFAULT_MAX_INBOUND_CHUNK_SIZE (16 MiB).
   */
  maxChunkSize?: number;
  /**
   * Cap on the bytes allocated for partially received messages across all chunk
   * streams at once (a peer could otherwise start a max-size message on each of
   * 65598 chunk streams). Exceeding it fails with ERR_RTMP_MESSAGE_TOO_LARGE.
   * Default 4 * maxMessageSize.
   */
  maxPendingBytes?: number;
  /**
   * Keep at most this many bytes of each audio/video message that spans several
   * chunks (the rest of its body is skipped, not copied); onMessage still gets
   * the full length. For load tools that only look at headers. Default: all.
   */
  keepMediaBytes?: number;
  /**
   * Most chunk streams (distinct chunk stream ids) a peer may use; the first
   * header on one more fails with ERR_RTMP_CHUNK_STREAM_LIMIT. Each keeps a
   * small state object for the connection's life. Default: no limit (all 65598).
   */
  maxChunkStreams?: number;
  /**
   * Every message gets a payload of its own, also one that arrived whole in
   * one push (by default a view of the pushed buffer). For input read into a
   * buffer that is reused for the next read (the server's shared read buffer).
   */
  copyPayloads?: boolean;
  /**
   * Audio and video payloads the decoder allocates (copied out of a reused
   * buffer, or reassembled from several chunks) come from a PayloadArena
   * (src/core/payload-arena.ts): slabs instead of one allocation each, with
   * headroom for the RTMP encoder to write a chunk header in front. For a
   * publisher's connection.
   */
  arena?: boolean;
  /**
   * Audio and video messages go here instead of onMessage, as their fields: no
   * message object per frame (a publisher's connection: one call from the
   * decoder to the publishing stream's handle). Set Chunk Size, Abort and every
   * other type still go to onMessage.
   */
  onMedia?: (type: number, streamId: number, timestamp: number, payload: Buffer) => void;
}

/** Per chunk stream state: the previous header and the message being reassembled. */
class ChunkStreamState {
  /** absolute timestamp of the current (or latest) message */
  timestamp = 0;
  /** the timestamp field of the latest type 0/1/2 header (a delta; the absolute value for type 0) */
  delta = 0;
  length = 0;
  type = 0;
  streamId = 0;
  /** the latest type 0/1/2 header used the extended timestamp field */
  extended = false;
  /** the message being reassembled (null between messages) */
  payload: Buffer | null = null;
  received = 0;

  constructor(readonly csid: number) {}
}

function messageHeaderSize(fmt: number): number {
  switch (fmt) {
    case ChunkFormat.Type0:
      return HeaderSize.Type0;
    case ChunkFormat.Type1:
      return HeaderSize.Type1;
    case ChunkFormat.Type2:
      return HeaderSize.Type2;
    default:
      return HeaderSize.Type3;
  }
}

/** True if the `n` bytes at the reader's position are a prefix of `value` (big-endian). Does not move the reader. */
function isPrefixOf(r: ByteReader, n: number, value: number): boolean {
  const save = r.pos;
  let match = true;
  for (let i = 0; i < n && match; i++) {
    match = r.u8() === ((value >>> (24 - 8 * i)) & 0xff);
  }
  r.pos = save;
  return match;
}

/** Chunk stream ids below this (the one-byte basic header's, where every encoder puts its streams) are looked up in an array. */
const FAST_CSIDS = 64;

export class ChunkDecoder {
  private readonly streams = new Map<number, ChunkStreamState>();
  /** streams by csid for csid < FAST_CSIDS (the same objects as in `streams`) */
  private readonly fast: (ChunkStreamState | undefined)[] = new Array<ChunkStreamState | undefined>(FAST_CSIDS).fill(undefined);
  private readonly maxMessageSize: number;
  private readonly maxChunkSize: number;
  private readonly maxPendingBytes: number;
  private readonly maxChunkStreams: number;
  private inChunkSize: number = DEFAULT_CHUNK_SIZE;
  private totalBytes = 0;
  /** bytes allocated for partially received messages */
  private pendingBytes = 0;
  /** the start of a chunk header that was cut off at the end of the previous push */
  private carry: Buffer | null = null;
  /** the chunk stream whose chunk body is being read (null: expecting a header) */
  private cur: ChunkStreamState | null = null;
  /** bytes of the current chunk body still to read */
  private bodyLeft = 0;
  private failure: unknown = undefined;
  private failed = false;

  constructor(
    opts: ChunkDecoderOptions,
    /** `length` is the message's full length (payload.length unless keepMediaBytes cut it) */
    private readonly onMessage: (m: RtmpMessage, length: number) => void,
  ) {
    const maxChunkSize = opts.maxChunkSize ?? DEFAULT_MAX_INBOUND_CHUNK_SIZE;
    if (!Number.isInteger(opts.maxMessageSize) || opts.maxMessageSize < 0) {
      throw new RangeError(`maxMessageSize must be a non-negative integer, got ${opts.maxMessageSize}`);
    }
    if (!Number.isInteger(maxChunkSize) || maxChunkSize < 1 || maxChunkSize > MAX_CHUNK_SIZE) {
      throw new RangeError(`maxChunkSize must be an integer in 1..${MAX_CHUNK_SIZE}, got ${maxChunkSize}`);
    }
    this.maxMessageSize = opts.maxMessageSize;
    this.maxChunkSize = maxChunkSize;
    this.maxPendingBytes = opts.maxPendingBytes ?? 4 * opts.maxMessageSize;
    this.maxChunkStreams = opts.maxChunkStreams ?? Infinity;
    this.keepMediaBytes = opts.keepMediaBytes ?? Infinity;
    this.copyPayloads = opts.copyPayloads === true;
    this.arena = opts.arena === true ? new PayloadArena() : undefined;
    this.onMedia = opts.onMedia;
  }

  private readonly onMedia: ChunkDecoderOptions['onMedia'];

  private readonly keepMediaBytes: number;
  private readonly copyPayloads: boolean;
  private readonly arena: PayloadArena | undefined;

  /** A new payload of `length` bytes for a message of this type: from the arena for audio/video when there is one. */
  private allocPayload(type: number, length: number): Buffer {
    const arena = this.arena;
    if (arena !== undefined && (type === MessageType.Audio || type === MessageType.Video)) return arena.alloc(length);
    return Buffer.allocUnsafe(length);
  }

  /** Current inbound chunk size (128 until the peer sends Set Chunk Size). */
  get chunkSize(): number {
    return this.inChunkSize;
  }

  /** Total bytes pushed so far (not wrapped; send `>>> 0` in Acknowledgement). */
  get bytesReceived(): number {
    return this.totalBytes;
  }

  /**
   * Parse everything available, calling onMessage for each completed message;
   * partial headers and bodies are kept for the next push. Set Chunk Size and
   * Abort are applied by the decoder as soon as they complete (before the next
   * chunk is read) and are still passed to onMessage. Throws a ServerError on a
   * protocol violation; after any throw (including one from onMessage) the
   * decoder is dead and every later push throws ERR_RTMP_PROTOCOL. Only the
   * bytes `data[start..end)` are read (a reused read buffer is passed whole,
   * without a view made per read).
   */
  push(data: Buffer, end = data.length, start = 0): void {
    if (this.failed) {
      throw serverError(ErrorCode.ProtocolViolation, 'chunk decoder already failed', this.failure);
    }
    // the message is made only when the rule is broken (a template argument would be built on every push)
    if (!(Number.isInteger(end) && Number.isInteger(start) && start >= 0 && start <= end && end <= data.length)) {
      assert.fail(`push(): ${start}..${end} is not within the buffer's ${data.length} bytes`);
    }
    const length = end - start;
    this.totalBytes += length;
    try {
      const carry = this.carry;
      if (carry !== null) {
        // Complete the cut-off header from a small joined buffer. Every header that
        // starts inside `carry` ends within HeaderSize.Max bytes of data, so the join
        // never needs more; parsing stops at the first chunk boundary past `carry`.
        this.carry = null;
        const take = Math.min(length, HeaderSize.Max);
        const joined = Buffer.allocUnsafe(carry.length + take);
        carry.copy(joined, 0);
        data.copy(joined, carry.length, start, start + take);
        const r = new ByteReader(joined);
        this.process(r, carry.length);
        start += r.pos - carry.length;
      }
      if (start < end) this.process(new ByteReader(data, start, end), end);
    } catch (e) {
      this.failed = true;
      this.failure = e;
      throw e;
    }
  }

  /** The main loop: headers and bodies until the buffer ends or a chunk boundary at/after stopAt. */
  private process(r: ByteReader, stopAt: number): void {
    const buf = r.buf;
    const end = r.end;
    for (;;) {
      let s = this.cur;
      if (s === null) {
        if (r.pos >= stopAt || r.pos >= end) return;
        s = this.readHeader(r);
        if (s === null) {
          this.carry = Buffer.from(r.rest()); // a copy: at most HeaderSize.Max - 1 bytes
          return;
        }
      }
      let left = this.bodyLeft;
      let payload = s.payload;
      if (payload === null) {
        // checked on both paths below so that the outcome never depends on how the input was split
        if (this.pendingBytes + s.length > this.maxPendingBytes) {
          throw serverError(
            ErrorCode.MessageTooLarge,
            `partial messages would hold ${this.pendingBytes + s.length} bytes (limit ${this.maxPendingBytes})`,
          );
        }
        if (left === s.length && end - r.pos >= left) {
          // the whole message is in this chunk and in this buffer: zero copy, unless the buffer is
          // reused; then copied straight out of it (one Buffer per message, no view in between)
          this.cur = null;
          let body: Buffer;
          if (this.copyPayloads) {
            body = this.allocPayload(s.type, left);
            buf.copy(body, 0, r.pos, r.pos + left);
            r.pos += left;
          } else {
            body = r.bytes(left);
          }
          this.deliver(s, body);
          continue;
        }
        const media = s.type === MessageType.Audio || s.type === MessageType.Video;
        payload = media && this.keepMediaBytes < s.length ? Buffer.allocUnsafe(this.keepMediaBytes) : this.allocPayload(s.type, s.length);
        s.payload = payload;
        this.pendingBytes += s.length;
      }
      const avail = end - r.pos;
      const n = left < avail ? left : avail;
      const copy = Math.min(n, payload.length - s.received);
      if (copy > 0) buf.copy(payload, s.received, r.pos, r.pos + copy);
      r.pos += n;
      s.received += n;
      left -= n;
      this.bodyLeft = left;
      if (left > 0) return; // the buffer ended inside this chunk body
      this.cur = null;
      if (s.received === s.length) {
        s.payload = null;
        s.received = 0;
        this.pendingBytes -= s.length;
        this.deliver(s, payload);
      }
    }
  }

  /**
   * Reads one chunk header and commits it to its chunk stream state; returns that
   * state, or null (reader rewound, nothing changed) if the header is incomplete.
   */
  private readHeader(r: ByteReader): ChunkStreamState | null {
    const start = r.pos;
    const b0 = r.u8();
    const fmt = b0 >>> BasicHeader.FmtShift;
    let csid = b0 & BasicHeader.CsidMask;
    if (csid === BasicHeader.TwoByteMarker) {
      if (r.remaining < 1) return this.rewind(r, start);
      csid = BasicHeader.CsidOffset + r.u8();
    } else if (csid === BasicHeader.ThreeByteMarker) {
      if (r.remaining < 2) return this.rewind(r, start);
      const lo = r.u8();
      csid = BasicHeader.CsidOffset + lo + (r.u8() << 8);
    }
    const known = csid < FAST_CSIDS ? this.fast[csid] : this.streams.get(csid);
    if (known === undefined && fmt !== ChunkFormat.Type0) {
      throw serverError(ErrorCode.ChunkNoPreviousHeader, `type ${fmt} chunk on chunk stream ${csid} with no previous header`);
    }
    if (r.remaining < messageHeaderSize(fmt)) return this.rewind(r, start);

    let field = 0;
    let length = -1;
    let type = 0;
    let streamId = 0;
    switch (fmt) {
      case ChunkFormat.Type0:
        field = r.u24();
        length = r.u24();
        type = r.u8();
        streamId = r.u32le();
        break;
      case ChunkFormat.Type1:
        field = r.u24();
        length = r.u24();
        type = r.u8();
        break;
      case ChunkFormat.Type2:
        field = r.u24();
        break;
      default:
        break;
    }

    let extended = false;
    if (fmt !== ChunkFormat.Type3) {
      extended = field === EXTENDED_TIMESTAMP;
      if (extended) {
        if (r.remaining < HeaderSize.ExtendedTimestamp) return this.rewind(r, start);
        field = r.u32();
      }
    } else if (known !== undefined && known.extended) {
      // Type 3 on an extended-timestamp chunk stream: maybe a repeated extended field (see top).
      const absolute = known.payload !== null ? known.timestamp : (known.timestamp + known.delta) >>> 0;
      const avail = r.remaining;
      if (avail >= HeaderSize.ExtendedTimestamp) {
        const save = r.pos;
        const v = r.u32();
        if (v !== known.delta && v !== absolute) r.pos = save;
      } else if (isPrefixOf(r, avail, known.delta) || isPrefixOf(r, avail, absolute)) {
        return this.rewind(r, start);
      }
    }

    if (length > this.maxMessageSize) {
      throw serverError(
        ErrorCode.MessageTooLarge,
        `message of ${length} bytes on chunk stream ${csid} exceeds the limit of ${this.maxMessageSize}`,
      );
    }

    let s = known;
    if (s === undefined) {
      if (this.streams.size >= this.maxChunkStreams) {
        throw serverError(ErrorCode.ChunkStreamLimit, `chunk stream ${csid} is one more than the ${this.maxChunkStreams} allowed`);
      }
      s = new ChunkStreamState(csid);
      this.streams.set(csid, s);
      if (csid < FAST_CSIDS) this.fast[csid] = s;
    }
    if (s.payload !== null) {
      // A header in the middle of a message: only its length is checked; the
      // message keeps the timestamp, type and stream id of its first chunk.
      if (length >= 0 && length !== s.length) {
        throw serverError(
          ErrorCode.MessageLengthChanged,
          `chunk stream ${csid}: message length changed from ${s.length} to ${length} mid-message`,
        );
      }
    } else {
      switch (fmt) {
        case ChunkFormat.Type0:
          s.timestamp = field;
          s.delta = field;
          s.length = length;
          s.type = type;
          s.streamId = streamId;
          s.extended = extended;
          break;
        case ChunkFormat.Type1:
          s.timestamp = (s.timestamp + field) >>> 0;
          s.delta = field;
          s.length = length;
          s.type = type;
          s.extended = extended;
          break;
        case ChunkFormat.Type2:
          s.timestamp = (s.timestamp + field) >>> 0;
          s.delta = field;
          s.extended = extended;
          break;
        default:
          s.timestamp = (s.timestamp + s.delta) >>> 0;
          break;
      }
    }
    this.cur = s;
    const left = s.length - s.received;
    this.bodyLeft = left < this.inChunkSize ? left : this.inChunkSize;
    return s;
  }

  private rewind(r: ByteReader, start: number): null {
    r.pos = start;
    return null;
  }

  /** Applies Set Chunk Size / Abort, then hands the message to the callback. */
  private deliver(s: ChunkStreamState, payload: Buffer): void {
    const onMedia = this.onMedia;
    if (onMedia !== undefined && (s.type === MessageType.Audio || s.type === MessageType.Video)) {
      onMedia(s.type, s.streamId, s.timestamp, payload);
      return;
    }
    const m: RtmpMessage = { csid: s.csid, type: s.type, streamId: s.streamId, timestamp: s.timestamp, payload };
    if (m.type === MessageType.SetChunkSize) this.applySetChunkSize(payload);
    else if (m.type === MessageType.Abort) this.applyAbort(payload);
    this.onMessage(m, s.length);
  }

  private applySetChunkSize(payload: Buffer): void {
    const size = new ByteReader(payload, 0, payload.length, ErrorCode.MessageMalformed).u32();
    if ((size & SetChunkSizeField.ReservedBit) !== 0 || size === 0 || size > this.maxChunkSize) {
      throw serverError(ErrorCode.ChunkSize, `peer chunk size ${size} is not in 1..${this.maxChunkSize}`);
    }
    this.inChunkSize = size;
  }

  private applyAbort(payload: Buffer): void {
    const csid = new ByteReader(payload, 0, payload.length, ErrorCode.MessageMalformed).u32();
    const s = this.streams.get(csid);
    if (s !== undefined && s.payload !== null) {
      this.pendingBytes -= s.length;
      s.payload = null;
      s.received = 0;
    }
  }
}

function basicHeaderSize(csid: number): number {
  if (!Number.isInteger(csid) || csid < MIN_CSID || csid > MAX_CSID) {
    throw serverError(ErrorCode.ChunkStreamId, `chunk stream id ${csid} is not in ${MIN_CSID}..${MAX_CSID}`);
  }
  return csid < BasicHeader.CsidOffset ? 1 : csid < BasicHeader.ThreeByteMin ? 2 : 3;
}

function writeBasicHeader(w: ByteWriter, fmt: number, csid: number): void {
  const top = fmt << BasicHeader.FmtShift;
  if (csid < BasicHeader.CsidOffset) {
    w.u8(top | csid);
  } else if (csid < BasicHeader.ThreeByteMin) {
    w.u8(top | BasicHeader.TwoByteMarker).u8(csid - BasicHeader.CsidOffset);
  } else {
    const v = csid - BasicHeader.CsidOffset;
    w.u8(top | BasicHeader.ThreeByteMarker).u8(v & 0xff).u8(v >>> 8);
  }
}

function checkChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw serverError(ErrorCode.ChunkSize, `chunk size ${chunkSize} is not in 1..${MAX_CHUNK_SIZE}`);
  }
}

/** Exact byte size of encodeMessage's output for these parameters. */
export function encodedSize(payloadLength: number, csid: number, timestamp: number, chunkSize: number): number {
  checkChunkSize(chunkSize);
  const perChunk = basicHeaderSize(csid) + ((timestamp >>> 0) >= EXTENDED_TIMESTAMP ? HeaderSize.ExtendedTimestamp : 0);
  const chunks = payloadLength === 0 ? 1 : Math.ceil(payloadLength / chunkSize);
  return payloadLength + HeaderSize.Type0 + chunks * perChunk;
}

/**
 * One message as one buffer of chunks: a type 0 header on the first chunk and
 * type 3 headers on the rest. With a timestamp >= 0xFFFFFF the extended
 * timestamp is written after every chunk's header, including the type 3 ones
 * (as Flash/FMS, ffmpeg and librtmp do).
 */
export function encodeMessage(m: RtmpMessage, chunkSize: number): Buffer {
  const payload = m.payload;
  const len = payload.length;
  if (len > MAX_MESSAGE_LENGTH) {
    throw serverError(ErrorCode.MessageTooLarge, `message of ${len} bytes exceeds the 24-bit length field`);
  }
  if (!Number.isInteger(m.type) || m.type < 0 || m.type > 0xff) {
    throw serverError(ErrorCode.MessageMalformed, `message type ${m.type} is not a byte`);
  }
  const timestamp = m.timestamp >>> 0;
  const extended = timestamp >= EXTENDED_TIMESTAMP;
  const w = new ByteWriter(encodedSize(len, m.csid, timestamp, chunkSize));
  writeBasicHeader(w, ChunkFormat.Type0, m.csid);
  w.u24(extended ? EXTENDED_TIMESTAMP : timestamp)
    .u24(len)
    .u8(m.type)
    .u32le(m.streamId);
  if (extended) w.u32(timestamp);
  let off = len < chunkSize ? len : chunkSize;
  payload.copy(w.buf, w.pos, 0, off);
  w.pos += off;
  while (off < len) {
    writeBasicHeader(w, ChunkFormat.Type3, m.csid);
    if (extended) w.u32(timestamp);
    const n = len - off < chunkSize ? len - off : chunkSize;
    payload.copy(w.buf, w.pos, off, off + n);
    w.pos += n;
    off += n;
  }
  return w.done();
}

/**
 * The message as encodeMessage makes it, written in place when it fits one
 * chunk and its payload came from a PayloadArena (src/core/payload-arena.ts):
 * the type-0 chunk header goes into the headroom in front of the payload, and
 * the result is a view of header and payload: no allocation, no copy.
 * Undefined when that does not apply (no headroom, longer than one chunk):
 * the caller then uses encodeMessage. The caller makes sure the headroom holds
 * one encoding only (src/rtmp/player.ts, the frame's `headroomKey`): writing it
 * again with the same header is harmless, with another it would change bytes
 * an earlier view still queued for a socket shows.
 */
export function encodeInHeadroom(m: RtmpMessage, chunkSize: number): Buffer | undefined {
  const payload = m.payload;
  const len = payload.length;
  checkChunkSize(chunkSize);
  if (len > chunkSize || len > MAX_MESSAGE_LENGTH) return undefined;
  const room = headroomOf(payload);
  if (room === 0) return undefined;
  if (!Number.isInteger(m.type) || m.type < 0 || m.type > 0xff) {
    throw serverError(ErrorCode.MessageMalformed, `message type ${m.type} is not a byte`);
  }
  const timestamp = m.timestamp >>> 0;
  const extended = timestamp >= EXTENDED_TIMESTAMP;
  const size = basicHeaderSize(m.csid) + HeaderSize.Type0 + (extended ? HeaderSize.ExtendedTimestamp : 0);
  if (size > room) return undefined;
  const wire = Buffer.from(payload.buffer, payload.byteOffset - size, size + len);
  let p = writeBasicHeaderAt(wire, 0, ChunkFormat.Type0, m.csid);
  p = wire.writeUIntBE(extended ? EXTENDED_TIMESTAMP : timestamp, p, 3);
  p = wire.writeUIntBE(len, p, 3);
  p = wire.writeUInt8(m.type, p);
  p = wire.writeUInt32LE(m.streamId >>> 0, p);
  if (extended) p = wire.writeUInt32BE(timestamp, p);
  assert(p === size, 'chunk header size');
  return wire;
}

/** writeBasicHeader into a buffer at `pos`; returns the position after it. */
function writeBasicHeaderAt(buf: Buffer, pos: number, fmt: number, csid: number): number {
  const top = fmt << BasicHeader.FmtShift;
  if (csid < BasicHeader.CsidOffset) {
    buf[pos] = top | csid;
    return pos + 1;
  }
  if (csid < BasicHeader.ThreeByteMin) {
    buf[pos] = top | BasicHeader.TwoByteMarker;
    buf[pos + 1] = csid - BasicHeader.CsidOffset;
    return pos + 2;
  }
  const v = csid - BasicHeader.CsidOffset;
  buf[pos] = top | BasicHeader.ThreeByteMarker;
  buf[pos + 1] = v & 0xff;
  buf[pos + 2] = v >>> 8;
  return pos + 3;
}

/**
 * Splits an Aggregate message (type 22) into its sub-messages. Each is an
 * FLV-like tag: type (1), data size (3), timestamp (3) + timestamp high byte (1),
 * stream id (3, ignored), data, then a 4-byte back pointer (not checked).
 * Sub-timestamps are rebased on the aggregate's: m.timestamp + (subTs - firstSubTs),
 * 32-bit wrapping. Sub-messages keep m.csid and m.streamId; payloads are views.
 * A truncated tag or a nested aggregate fails with ERR_RTMP_AGGREGATE_MALFORMED.
 */
export function splitAggregate(m: RtmpMessage): RtmpMessage[] {
  if (m.type !== MessageType.Aggregate) {
    throw serverError(ErrorCode.AggregateMalformed, `message type ${m.type} is not an aggregate`);
  }
  const r = new ByteReader(m.payload, 0, m.payload.length, ErrorCode.AggregateMalformed);
  const out: RtmpMessage[] = [];
  let first = 0;
  while (r.remaining > 0) {
    r.require(AggregateTag.HeaderSize);
    const type = r.u8();
    const size = r.u24();
    const low = r.u24();
    const ts = ((r.u8() << 24) | low) >>> 0;
    r.skip(3); // stream id: the aggregate's is used
    if (type === MessageType.Aggregate) {
      throw serverError(ErrorCode.AggregateMalformed, 'nested aggregate message');
    }
    if (out.length === 0) first = ts;
    const payload = r.bytes(size);
    r.skip(AggregateTag.BackPointerSize);
    out.push({ csid: m.csid, type, streamId: m.streamId, timestamp: (m.timestamp + ts - first) >>> 0, payload });
  }
  return out;
}
