/**
 * Protocol control messages (RTMP 1.0 spec, section 5.4: types 1, 2, 3, 5, 6)
 * and User Control messages (section 7.1.7: type 4): parsing and building.
 */
import { ByteReader, ByteWriter } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { ChunkStreamId, MAX_CHUNK_SIZE, MessageType, UserControlEvent, type RtmpMessage } from './messages.js';

export type UserControlMessage =
  | { type: 'streamBegin' | 'streamEof' | 'streamDry' | 'streamIsRecorded'; streamId: number }
  | { type: 'setBufferLength'; streamId: number; ms: number }
  | { type: 'pingRequest' | 'pingResponse'; timestamp: number }
  | { type: 'unknown'; eventType: number; data: Buffer };

export type ControlMessage =
  | { kind: 'setChunkSize'; size: number }
  | { kind: 'abort'; csid: number }
  | { kind: 'ack'; sequence: number }
  | { kind: 'windowAckSize'; size: number }
  | { kind: 'setPeerBandwidth'; size: number; limit: number }
  | { kind: 'userControl'; event: UserControlMessage };

/** Payload sizes of the fixed-size control messages. */
const PayloadSize = {
  U32: 4,
  SetPeerBandwidth: 5,
  /** event type (2) + stream id or timestamp (4) */
  UserControlShort: 6,
  /** event type (2) + stream id (4) + buffer length (4) */
  SetBufferLength: 10,
  UserControlEventType: 2,
} as const;

/** Set Chunk Size: the top bit of the 32-bit field is reserved (must be 0). */
const MIN_CHUNK_SIZE = 1;

/**
 * Parses a protocol control (types 1, 2, 3, 5, 6) or User Control (type 4)
 * message. Values are returned as on the wire (Set Chunk Size is not range
 * checked here: the chunk decoder does that). Trailing bytes are ignored. A short
 * payload, or any other message type, fails with ERR_RTMP_MESSAGE_MALFORMED.
 * An unknown User Control event keeps its data as a view.
 */
export function parseControl(m: RtmpMessage): ControlMessage {
  const r = new ByteReader(m.payload, 0, m.payload.length, ErrorCode.MessageMalformed);
  switch (m.type) {
    case MessageType.SetChunkSize:
      return { kind: 'setChunkSize', size: r.u32() };
    case MessageType.Abort:
      return { kind: 'abort', csid: r.u32() };
    case MessageType.Acknowledgement:
      return { kind: 'ack', sequence: r.u32() };
    case MessageType.WindowAckSize:
      return { kind: 'windowAckSize', size: r.u32() };
    case MessageType.SetPeerBandwidth: {
      const size = r.u32();
      return { kind: 'setPeerBandwidth', size, limit: r.u8() };
    }
    case MessageType.UserControl:
      return { kind: 'userControl', event: parseUserControl(r) };
    default:
      throw serverError(ErrorCode.MessageMalformed, `message type ${m.type} is not a control message`);
  }
}

function parseUserControl(r: ByteReader): UserControlMessage {
  const eventType = r.u16();
  switch (eventType) {
    case UserControlEvent.StreamBegin:
      return { type: 'streamBegin', streamId: r.u32() };
    case UserControlEvent.StreamEof:
      return { type: 'streamEof', streamId: r.u32() };
    case UserControlEvent.StreamDry:
      return { type: 'streamDry', streamId: r.u32() };
    case UserControlEvent.StreamIsRecorded:
      return { type: 'streamIsRecorded', streamId: r.u32() };
    case UserControlEvent.SetBufferLength: {
      const streamId = r.u32();
      return { type: 'setBufferLength', streamId, ms: r.u32() };
    }
    case UserControlEvent.PingRequest:
      return { type: 'pingRequest', timestamp: r.u32() };
    case UserControlEvent.PingResponse:
      return { type: 'pingResponse', timestamp: r.u32() };
    default:
      return { type: 'unknown', eventType, data: r.rest() };
  }
}

function protocolMessage(type: number, payload: Buffer): RtmpMessage {
  return { csid: ChunkStreamId.Protocol, type, streamId: 0, timestamp: 0, payload };
}

function u32Message(type: number, value: number): RtmpMessage {
  return protocolMessage(type, new ByteWriter(PayloadSize.U32).u32(value).done());
}

/** Set Chunk Size (type 1); size must be in 1..0x7fffffff (ERR_RTMP_CHUNK_SIZE otherwise). */
export function setChunkSizeMessage(size: number): RtmpMessage {
  if (!Number.isInteger(size) || size < MIN_CHUNK_SIZE || size > MAX_CHUNK_SIZE) {
    throw serverError(ErrorCode.ChunkSize, `chunk size ${size} is not in ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}`);
  }
  return u32Message(MessageType.SetChunkSize, size);
}

/** Abort (type 2) for a chunk stream id. */
export function abortMessage(csid: number): RtmpMessage {
  return u32Message(MessageType.Abort, csid);
}

/** Acknowledgement (type 3); the sequence number wraps at 2^32 (`>>> 0`). */
export function ackMessage(sequence: number): RtmpMessage {
  return u32Message(MessageType.Acknowledgement, sequence);
}

/** Window Acknowledgement Size (type 5). */
export function windowAckSizeMessage(size: number): RtmpMessage {
  return u32Message(MessageType.WindowAckSize, size);
}

/** Set Peer Bandwidth (type 6); limit is a BandwidthLimit value (a byte). */
export function setPeerBandwidthMessage(size: number, limit: number): RtmpMessage {
  return protocolMessage(
    MessageType.SetPeerBandwidth,
    new ByteWriter(PayloadSize.SetPeerBandwidth).u32(size).u8(limit).done(),
  );
}

function userControlSize(ev: UserControlMessage): number {
  switch (ev.type) {
    case 'streamBegin':
    case 'streamEof':
    case 'streamDry':
    case 'streamIsRecorded':
    case 'pingRequest':
    case 'pingResponse':
      return PayloadSize.UserControlShort;
    case 'setBufferLength':
      return PayloadSize.SetBufferLength;
    case 'unknown':
      return PayloadSize.UserControlEventType + ev.data.length;
    default: {
      const never: never = ev;
      throw new TypeError(`unknown user control message ${JSON.stringify(never)}`);
    }
  }
}

/** User Control (type 4). */
export function userControlMessage(ev: UserControlMessage): RtmpMessage {
  const w = new ByteWriter(userControlSize(ev));
  switch (ev.type) {
    case 'streamBegin':
      w.u16(UserControlEvent.StreamBegin).u32(ev.streamId);
      break;
    case 'streamEof':
      w.u16(UserControlEvent.StreamEof).u32(ev.streamId);
      break;
    case 'streamDry':
      w.u16(UserControlEvent.StreamDry).u32(ev.streamId);
      break;
    case 'streamIsRecorded':
      w.u16(UserControlEvent.StreamIsRecorded).u32(ev.streamId);
      break;
    case 'setBufferLength':
      w.u16(UserControlEvent.SetBufferLength).u32(ev.streamId).u32(ev.ms);
      break;
    case 'pingRequest':
      w.u16(UserControlEvent.PingRequest).u32(ev.timestamp);
      break;
    case 'pingResponse':
      w.u16(UserControlEvent.PingResponse).u32(ev.timestamp);
      break;
    case 'unknown':
      w.u16(ev.eventType).bytes(ev.data);
      break;
    default: {
      const never: never = ev;
      throw new TypeError(`unknown user control message ${JSON.stringify(never)}`);
    }
  }
  return protocolMessage(MessageType.UserControl, w.done());
}
