/**
 * Every error the server raises on purpose is a ServerError with a stable `code`.
 * Codes are part of the public surface (logs, tests, hooks): never rename one.
 */
export const ErrorCode = {
  // byte readers
  BufferTruncated: 'ERR_BUFFER_TRUNCATED',
  // handshake
  HandshakeVersion: 'ERR_RTMP_HANDSHAKE_VERSION',
  HandshakeTimeout: 'ERR_RTMP_HANDSHAKE_TIMEOUT',
  // chunk stream
  ChunkSize: 'ERR_RTMP_CHUNK_SIZE',
  ChunkStreamId: 'ERR_RTMP_CHUNK_STREAM_ID',
  ChunkNoPreviousHeader: 'ERR_RTMP_CHUNK_NO_PREVIOUS_HEADER',
  MessageTooLarge: 'ERR_RTMP_MESSAGE_TOO_LARGE',
  MessageLengthChanged: 'ERR_RTMP_MESSAGE_LENGTH_CHANGED',
  // messages and commands
  MessageMalformed: 'ERR_RTMP_MESSAGE_MALFORMED',
  CommandMalformed: 'ERR_RTMP_COMMAND_MALFORMED',
  AggregateMalformed: 'ERR_RTMP_AGGREGATE_MALFORMED',
  // AMF
  AmfTruncated: 'ERR_AMF_TRUNCATED',
  AmfUnknownMarker: 'ERR_AMF_UNKNOWN_MARKER',
  AmfBadReference: 'ERR_AMF_BAD_REFERENCE',
  AmfTooDeep: 'ERR_AMF_TOO_DEEP',
  AmfTooLarge: 'ERR_AMF_TOO_LARGE',
  AmfUnsupported: 'ERR_AMF_UNSUPPORTED',
  // connection / session
  ConnectionTimeout: 'ERR_RTMP_TIMEOUT',
  ConnectionLimit: 'ERR_RTMP_CONNECTION_LIMIT',
  ProtocolViolation: 'ERR_RTMP_PROTOCOL',
  ProxyProtocol: 'ERR_PROXY_PROTOCOL',
  AppNotFound: 'ERR_RTMP_APP_NOT_FOUND',
  StreamBusy: 'ERR_LIVE_STREAM_BUSY',
  StreamNameInvalid: 'ERR_STREAM_NAME_INVALID',
  Refused: 'ERR_ACCESS_REFUSED',
  // client
  ClientClosed: 'ERR_RTMP_CLIENT_CLOSED',
  ClientRejected: 'ERR_RTMP_CLIENT_REJECTED',
  // media
  FlvMalformed: 'ERR_FLV_MALFORMED',
  CodecConfigMalformed: 'ERR_CODEC_CONFIG_MALFORMED',
  // configuration
  ConfigSyntax: 'ERR_CONFIG_SYNTAX',
  ConfigUnknownDirective: 'ERR_CONFIG_UNKNOWN_DIRECTIVE',
  ConfigBadContext: 'ERR_CONFIG_BAD_CONTEXT',
  ConfigBadValue: 'ERR_CONFIG_BAD_VALUE',
  ConfigUnsupported: 'ERR_CONFIG_UNSUPPORTED',
  ConfigInclude: 'ERR_CONFIG_INCLUDE',
  // command line
  Usage: 'ERR_USAGE',
  // built-in HTTP server
  HttpListen: 'ERR_HTTP_LISTEN',
  // issue 13: life
  /** a reload the running server cannot apply (no rtmp listen left, a listen it cannot rebind): the old configuration keeps running */
  ConfigReload: 'ERR_CONFIG_RELOAD',
  // issue 13: conn
  /** a client string (app, tcUrl, stream name...) longer than the server accepts */
  StringTooLong: 'ERR_RTMP_STRING_TOO_LONG',
  /** messages queued while a command (webhook) was pending exceeded the backlog budget */
  BacklogOverflow: 'ERR_RTMP_BACKLOG_OVERFLOW',
  /** output to a peer that does not read exceeded the per-connection cap */
  OutputOverflow: 'ERR_RTMP_OUTPUT_OVERFLOW',
  /** more chunk streams than max_streams */
  ChunkStreamLimit: 'ERR_RTMP_CHUNK_STREAM_LIMIT',
  /** publish/play on a NetStream whose previous publish/play is still pending */
  StreamPending: 'ERR_RTMP_STREAM_PENDING',
  /** more messages a second than a real client sends (a flood of pings, empty messages, commands) */
  MessageFlood: 'ERR_RTMP_MESSAGE_FLOOD',
  // issue 13: http
  /** an http request refused: http allow/deny, a disabled rtmp_control section or a cross-site control request */
  HttpForbidden: 'ERR_HTTP_FORBIDDEN',
  /** an http connection refused: the http block's max_connections is reached */
  HttpConnectionLimit: 'ERR_HTTP_CONNECTION_LIMIT',
  /** a PROXY protocol header from a peer outside set_real_ip_from: its address is ignored */
  ProxyUntrusted: 'ERR_PROXY_UNTRUSTED',
  // issue 13: fd
  /** a write to the peer's socket failed (EPIPE, ECONNRESET, EBADF...): the connection is lost */
  WriteFailed: 'ERR_RTMP_WRITE_FAILED',
  // outputs: recording, VOD, HLS, DASH, HTTP-FLV (issues 15, 16)
  /** a file name made from a stream name (or a configured pattern) would leave its configured directory */
  OutputPathUnsafe: 'ERR_OUTPUT_PATH_UNSAFE',
  /** an output file could not be written (ENOSPC, EROFS, EACCES...): that writer ends, the live stream goes on */
  OutputWriteFailed: 'ERR_OUTPUT_WRITE_FAILED',
  // VOD (issue 15): play of FLV/MP4 files
  /** an MP4 file's boxes are truncated, oversized or inconsistent */
  Mp4Malformed: 'ERR_MP4_MALFORMED',
  /** no `play` location has the file (NetStream.Play.StreamNotFound) */
  VodNotFound: 'ERR_VOD_NOT_FOUND',
  /** a VOD file could not be read, or is truncated or corrupt: that play ends */
  VodReadFailed: 'ERR_VOD_READ_FAILED',
  /** an http:// play location answered with an error or could not be reached */
  VodFetchFailed: 'ERR_VOD_FETCH_FAILED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ServerError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServerError';
    this.code = code;
  }
}

/** The one way to make a coded error. */
export function serverError(code: ErrorCode, message: string, cause?: unknown): ServerError {
  return cause === undefined ? new ServerError(code, message) : new ServerError(code, message, { cause });
}

export function isServerError(e: unknown, code?: ErrorCode): e is ServerError {
  return e instanceof ServerError && (code === undefined || e.code === code);
}

/** A short, loggable description of anything thrown. */
export function describeError(e: unknown): { code: string; message: string } {
  if (e instanceof ServerError) return { code: e.code, message: e.message };
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : 'ERR_INTERNAL', message: e.message };
  }
  return { code: 'ERR_INTERNAL', message: String(e) };
}
