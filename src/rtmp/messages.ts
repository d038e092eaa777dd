/** RTMP message type ids (RTMP 1.0 spec, section 5.4 and 7.1). */
export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  SharedObjectAmf3: 16,
  CommandAmf3: 17,
  DataAmf0: 18,
  SharedObjectAmf0: 19,
  CommandAmf0: 20,
  Aggregate: 22,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** User Control event types (RTMP 1.0 spec, section 7.1.7). */
export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  StreamDry: 2,
  SetBufferLength: 3,
  StreamIsRecorded: 4,
  PingRequest: 6,
  PingResponse: 7,
} as const;
export type UserControlEvent = (typeof UserControlEvent)[keyof typeof UserControlEvent];

/** Set Peer Bandwidth limit types. */
export const BandwidthLimit = { Hard: 0, Soft: 1, Dynamic: 2 } as const;

/** Well-known chunk stream ids used by this server when sending. */
export const ChunkStreamId = {
  Protocol: 2,
  Command: 3,
  Data: 5,
  Audio: 6,
  Video: 7,
} as const;

/** The smallest and largest chunk stream id (3-byte basic header). */
export const MIN_CSID = 2;
export const MAX_CSID = 65599;
/** Chunk size limits: the spec's default, and the largest value the 31-bit field allows. */
export const DEFAULT_CHUNK_SIZE = 128;
export const MAX_CHUNK_SIZE = 0x7fffffff;
/** Message length is a 24-bit field. */
export const MAX_MESSAGE_LENGTH = 0xffffff;
/** Timestamps at or above this value use the extended timestamp field. */
export const EXTENDED_TIMESTAMP = 0xffffff;

/** One whole RTMP message as it comes off (or goes onto) the chunk stream. */
export interface RtmpMessage {
  /** chunk stream id it travelled on */
  csid: number;
  /** message type id (MessageType for the known ones) */
  type: number;
  /** message stream id */
  streamId: number;
  /** absolute timestamp in milliseconds, 32-bit, wraps */
  timestamp: number;
  payload: Buffer;
}
