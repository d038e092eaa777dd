/**
 * What an RTMP connection and the application layer behind it agree on: the
 * connection's options (limits, timeouts, the write paths), what a client asked
 * for (connect, publish, play), the handles the application gives back, and the
 * playback behaviour of an application. Types and constants only: the
 * connection is src/rtmp/connection.ts, a playing NetStream's output
 * src/rtmp/player-output.ts.
 */
import type { ServerError } from '../core/errors.js';
import type { AmfObject, AmfValue } from './amf-types.js';
import type { RtmpConnection } from './connection.js';
import type { PlayerOutput } from './player-output.js';

export interface ConnectionOptions {
  /** outgoing chunk size announced after connect */
  readonly chunkSize: number;
  readonly windowAckSize: number;
  readonly peerBandwidth: number;
  /** largest message a peer may announce */
  readonly maxMessageSize: number;
  readonly handshakeTimeout: number;
  /** no data at all from the peer for this long (ms) closes the connection */
  readonly idleTimeout: number;
  /** send a ping after this much silence from the peer (ms, 0 = never) */
  readonly pingInterval: number;
  /** close when a ping got no traffic back within this (ms) */
  readonly pingTimeout: number;
  /** NetStreams per connection, and also chunk streams (distinct chunk stream ids) per connection */
  readonly maxStreams: number;
  /**
   * commands and messages queued while an asynchronous command (e.g. a webhook)
   * runs: each costs its payload plus BACKLOG_MESSAGE_COST
   */
  readonly maxBacklogBytes: number;
  /**
   * Messages a peer may send per second, sustained (a token bucket holding
   * `messageBurst`): every message costs the server work whatever its size,
   * and a flood of tiny ones (pings, empty messages, unknown commands) would
   * otherwise hold the event loop for seconds. Past it: ERR_RTMP_MESSAGE_FLOOD.
   */
  readonly messageRate?: number;
  readonly messageBurst?: number;
  /**
   * Bytes queued for a peer that does not read (corked, waiting, in the socket's
   * stream) above which the connection fails with ERR_RTMP_OUTPUT_OVERFLOW.
   * Must sit well above the players' drop threshold (they drop frames first).
   */
  readonly maxOutputBytes?: number;
  /** a PROXY protocol (v1/v2) header precedes the handshake: it names the real client */
  readonly proxyProtocol?: boolean;
  /**
   * `set_real_ip_from`: whether the TCP peer may name the client in its PROXY
   * header. From a peer it rejects, the header is read but its address is
   * ignored (one warning). Absent: every peer is believed.
   */
  readonly trustedProxy?: (peerAddress: string) => boolean;
  /** write straight to the socket's descriptor while its stream queue is empty (default on) */
  readonly directWrite?: boolean;
  /** let the server's native writer make the direct writes (default on; used only where it loaded) */
  readonly nativeWrite?: boolean;
  /** TCP_NODELAY (default on); off lets Nagle merge small writes */
  readonly noDelay?: boolean;
  /**
   * The owner hands the socket's data to receive() as views of a read buffer it
   * reuses (src/rtmp/socket-input.ts) instead of the connection listening for
   * 'data': whatever is kept past the call is copied.
   */
  readonly sharedInput?: boolean;
}

/**
 * A publisher of 60 fps video with 48 kHz AAC sends about 110 messages a
 * second per stream; a connection may carry several streams. 10 000 a second
 * (30 000 at once) is far above any real client and far below a flood.
 */
export const DEFAULT_MESSAGE_RATE = 10_000;
export const DEFAULT_MESSAGE_BURST = 30_000;

export const DEFAULT_CONNECTION_OPTIONS: ConnectionOptions = {
  chunkSize: 4096,
  windowAckSize: 5_000_000,
  peerBandwidth: 5_000_000,
  maxMessageSize: 1024 * 1024,
  handshakeTimeout: 10_000,
  idleTimeout: 60_000,
  pingInterval: 60_000,
  pingTimeout: 30_000,
  maxStreams: 32,
  maxBacklogBytes: 8 * 1024 * 1024,
  maxOutputBytes: 16 * 1024 * 1024,
  messageRate: DEFAULT_MESSAGE_RATE,
  messageBurst: DEFAULT_MESSAGE_BURST,
};

/**
 * Longest client string accepted (connect's app, tcUrl, flashVer, swfUrl,
 * pageUrl; stream names with their query in publish, play, FCPublish...), in
 * UTF-16 code units. Longer ones fail the connection with
 * ERR_RTMP_STRING_TOO_LONG before any processing. Generous for query-string
 * tokens; nginx-rtmp keeps 256 bytes of a name or URL.
 */
export const MAX_CLIENT_STRING = 4096;

/** What a message queued while a command is pending costs beyond its payload (its objects): empty messages are not free. */
export const BACKLOG_MESSAGE_COST = 256;

export interface ConnectInfo {
  readonly app: string;
  /** the query string that came with the application name (app?key=value) */
  readonly query: string;
  readonly tcUrl: string;
  readonly flashVer: string;
  readonly swfUrl: string;
  readonly pageUrl: string;
  readonly objectEncoding: number;
  readonly object: AmfObject;
  /** extra arguments after the command object */
  readonly args: readonly AmfValue[];
}

export type PublishType = 'live' | 'record' | 'append';

/** which NetStreams a control API redirect switches */
export type RedirectRole = 'publisher' | 'subscriber' | 'client';

export interface PublishInfo {
  readonly streamId: number;
  readonly name: string;
  readonly query: string;
  readonly type: PublishType;
}

export interface PlayInfo {
  readonly streamId: number;
  readonly name: string;
  readonly query: string;
  readonly start: number;
  readonly duration: number;
  readonly reset: boolean;
}

/** What the application layer returns for an accepted publish. */
export interface PublishHandle {
  /** audio (8) or video (9) with an absolute timestamp */
  media(kind: number, timestamp: number, payload: Buffer): void;
  /** script data as received: AMF0 (18) or AMF3 (15); throws a ServerError for data the server refuses (oversized) */
  data(type: number, timestamp: number, payload: Buffer): void;
  beginBatch(): void;
  endBatch(): void;
  /** the publisher stopped (FCUnpublish, deleteStream, closeStream, disconnect) */
  close(): void;
}

/** What the application layer returns for an accepted play. */
export interface PlayHandle {
  /** resume after a pause: the player must restart on a keyframe */
  resume(): void;
  close(): void;
  /** a recorded stream (VOD): seek to the keyframe at or before `ms`, returning where it landed */
  seek?(ms: number): number;
  /** a recorded stream (VOD): stop sending, or go on */
  pause?(paused: boolean): void;
}

/**
 * The application layer behind a connection (server.ts implements it). Each
 * method may refuse by throwing (a ServerError's code picks the status sent).
 */
export interface ConnectionHandler {
  connect(conn: RtmpConnection, info: ConnectInfo): Promise<void> | void;
  publish(conn: RtmpConnection, info: PublishInfo): Promise<PublishHandle> | PublishHandle;
  play(conn: RtmpConnection, info: PlayInfo, output: PlayerOutput): Promise<PlayHandle> | PlayHandle;
  /** getStreamLength: a recorded stream's length in ms (undefined: not a recorded stream; answered 0) */
  streamLength?(conn: RtmpConnection, name: string): Promise<number | undefined>;
  closed(conn: RtmpConnection, error: ServerError | undefined): void;
}

/** Per-application playback behaviour (nginx-rtmp live directives). */
export interface PlayBehaviour {
  /** publish_notify: NetStream.Play.PublishNotify when a publisher arrives */
  readonly publishNotify: boolean;
  /** play_restart: NetStream.Play.Start / Play.Stop each time the publisher starts / stops */
  readonly playRestart: boolean;
  /** idle_streams off: players are disconnected when the publisher leaves */
  readonly closeOnUnpublish: boolean;
  /** interleave: audio and video on one chunk stream */
  readonly interleave: boolean;
}
