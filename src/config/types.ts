import type { RecordConfig } from './record.js';
import type { VodSettings } from './vod.js';
import type { HttpDelivery } from './http-delivery.js';

/**
 * The typed, frozen configuration the server runs from. Produced by the config
 * loader (nginx-rtmp syntax) or by `defaultConfig()`. Durations are in
 * milliseconds, sizes in bytes.
 */

import type { DashSettings } from './dash.js';
import type { HlsSettings } from './hls.js';
import type { HttpRules } from './http-rules.js';

export interface ListenSpec {
  /** host to bind: '0.0.0.0', '::', '127.0.0.1'... */
  readonly host: string;
  readonly port: number;
  readonly proxyProtocol: boolean;
  /** `ipv6only=on` on an IPv6 listen (the loader always sets it; default false) */
  readonly ipv6Only?: boolean;
  /** TCP keepalive: `so_keepalive=` listen parameter, else the server's `so_keepalive`; undefined = OS default */
  readonly soKeepalive?: boolean;
}

export type AccessAction = 'allow' | 'deny';
export type AccessKind = 'publish' | 'play';

export interface AccessRule {
  readonly action: AccessAction;
  readonly kind: AccessKind;
  /** 'all', an address, or an address/prefix (CIDR), IPv4 or IPv6 */
  readonly address: string;
}

/** an http `allow`/`deny` line (nginx's access module): first match wins */
export interface HttpAccessRule {
  readonly action: AccessAction;
  /** 'all', an address, or an address/prefix (CIDR), IPv4 or IPv6 */
  readonly address: string;
}

/** what `rtmp_stat` shows besides the global counters: `live` the streams, `clients` the connections in them */
export type StatSection = 'live' | 'clients';

/** the sections of nginx-rtmp's control API */
export type ControlSection = 'drop' | 'record' | 'redirect';

export type MetaMode = 'on' | 'copy' | 'off';

export interface LiveSettings {
  readonly live: boolean;
  readonly meta: MetaMode;
  readonly interleave: boolean;
  readonly waitKey: boolean;
  readonly waitVideo: boolean;
  readonly publishNotify: boolean;
  readonly playRestart: boolean;
  readonly idleStreams: boolean;
  /** 0 = off */
  readonly dropIdlePublisher: number;
  /** 0 = off */
  readonly sync: number;
  /** our extension: keep the last GOP for instant start (nginx-rtmp has none). Default on. */
  readonly gopCache: boolean;
  /** our extension: hold player writes up to this many ms to send them together (0 = end of each event-loop turn) */
  readonly flushWindow: number;
}

export interface NotifySettings {
  readonly onConnect: string | undefined;
  /** `on_disconnect` (rtmp/server): called when a connection that connected to an application closes; the loader always sets it */
  readonly onDisconnect?: string | undefined;
  readonly onPlay: string | undefined;
  readonly onPublish: string | undefined;
  readonly onDone: string | undefined;
  readonly onPlayDone: string | undefined;
  readonly onPublishDone: string | undefined;
  readonly onRecordStarted: string | undefined;
  readonly onRecordDone: string | undefined;
  readonly onUpdate: string | undefined;
  readonly updateTimeout: number;
  readonly updateStrict: boolean;
  readonly relayRedirect: boolean;
  readonly method: 'GET' | 'POST';
}

export interface ExecCommand {
  /** which event starts it */
  readonly kind: 'exec' | 'exec_push' | 'exec_pull' | 'exec_static' | 'exec_publish' | 'exec_publish_done' | 'exec_play' | 'exec_play_done' | 'exec_record_started' | 'exec_record_done';
  /** program and arguments, before variable expansion ($name, $app, $addr, $args ...) */
  readonly argv: readonly string[];
}

export interface ExecSettings {
  readonly commands: readonly ExecCommand[];
  readonly killSignal: string;
  readonly respawn: boolean;
  readonly respawnTimeout: number;
  readonly options: boolean;
}

export interface RelayTarget {
  /** rtmp://host[:port]/app[/name] */
  readonly url: string;
  /** remote application: `app=`, else the first path segment of the URL (as nginx-rtmp deduces it) */
  readonly app: string | undefined;
  /** `name=`: the local stream this relay is for (push: only this stream; static pull: the local name) */
  readonly name: string | undefined;
  /** remote stream name: `playPath=`, else the rest of the URL path after the app */
  readonly playPath: string | undefined;
  readonly live: boolean | undefined;
  readonly isStatic: boolean;
  /** any other key=value given on the directive line */
  readonly params: Readonly<Record<string, string>>;
}

export interface RelaySettings {
  readonly push: readonly RelayTarget[];
  readonly pull: readonly RelayTarget[];
  readonly pushReconnect: number;
  /** `pull_reconnect` (ms): first retry delay of a pull; undefined (hand-built configs) = pushReconnect. The loader always sets it. */
  readonly pullReconnect?: number;
  readonly sessionRelay: boolean;
}

export interface ApplicationConfig {
  readonly name: string;
  readonly live: LiveSettings;
  readonly access: readonly AccessRule[];
  readonly notify: NotifySettings;
  readonly exec: ExecSettings;
  readonly relay: RelaySettings;
  /** recording (src/config/record.ts); absent = nothing recorded. The loader always sets it. */
  readonly record?: RecordConfig;
  /** HLS output (src/config/hls.ts); absent in hand-built configurations: off */
  readonly hls?: HlsSettings;
  /** DASH output (src/config/dash.ts); absent in hand-built configurations: off */
  readonly dash?: DashSettings;
  /** every directive seen for this application with its raw arguments (inherited ones included) */
  readonly directives: Readonly<Record<string, readonly (readonly string[])[]>>;
  /** `play` and its settings (VOD, src/config/vod.ts); absent: the application plays no files */
  readonly vod?: VodSettings;
}

export interface RtmpServerConfig {
  readonly listen: readonly ListenSpec[];
  /** outgoing chunk size the server announces */
  readonly chunkSize: number;
  /** idle timeout */
  readonly timeout: number;
  /** ping interval, 0 = off */
  readonly ping: number;
  readonly pingTimeout: number;
  readonly maxStreams: number;
  readonly ackWindow: number;
  /** largest message a client may announce */
  readonly maxMessage: number;
  /** direct_write: write to idle players' descriptors without the stream machinery */
  readonly directWrite: boolean;
  /** native_write: the native writer makes the fan-out's direct writes, where it was built */
  readonly nativeWrite: boolean;
  /** shared_read: connections read into one buffer of the server's (needs the native addon's dup) */
  readonly sharedRead: boolean;
  /** read_window: ms a read may wait under load so that one wake-up takes more reads, 0 = off (the first server block's setting counts) */
  readonly readWindow: number;
  /** warmup: a synthetic loopback stream at boot compiles the hot paths first (the first server block's setting counts) */
  readonly warmup: boolean;
  /** tcp_nodelay: TCP_NODELAY on RTMP connections (off: Nagle merges small writes) */
  readonly tcpNodelay: boolean;
  /** 0 = unlimited */
  readonly maxConnections: number;
  /**
   * `set_real_ip_from`: the peers whose PROXY protocol header is believed
   * ('all', addresses, CIDR networks). undefined or empty = every peer is
   * (the compatible default; the server logs a warning at start).
   */
  readonly realIpFrom?: readonly string[];
  /** per player output queue bound, in messages (nginx-rtmp semantics) */
  readonly outQueue: number;
  readonly outCork: number;
  readonly buflen: number;
  readonly applications: readonly ApplicationConfig[];
}

export interface LogSettings {
  /** 'stderr', 'stdout' or a file path */
  readonly destination: string;
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
}

export interface HttpLocation {
  /** URI prefix (`location /hls`, `location ^~ /hls`), or the exact URI when `exact` */
  readonly path: string;
  /** `location = /path` (the loader always sets it) */
  readonly exact?: boolean;
  /** `default_type` (nginx default text/plain; the loader always sets it) */
  readonly defaultType?: string;
  readonly root: string | undefined;
  readonly alias: string | undefined;
  readonly rtmpStat: boolean;
  readonly rtmpControl: boolean;
  /** what `rtmp_stat` lines name (`all` = both); undefined = both. The loader always sets it. */
  readonly statSections?: readonly StatSection[];
  /** the `rtmp_control` sections served (`all` = every one); undefined = every one. The loader always sets it. */
  readonly controlSections?: readonly ControlSection[];
  /** `allow`/`deny` in effect here (the location's own, else the server's, else the http block's); the loader always sets it */
  readonly access?: readonly HttpAccessRule[];
  readonly addHeaders: readonly (readonly [string, string])[];
  readonly types: Readonly<Record<string, string>>;
  /** add_header with `always`, expires, return, `if ($request_method …)` (http-rules.ts); the loader always sets it */
  readonly rules?: HttpRules;
  /** flv_live, metrics, rtmp_stat_stylesheet (src/config/http-delivery.ts); absent = none of them */
  readonly delivery?: HttpDelivery;
}

export interface HttpServerConfig {
  readonly listen: readonly ListenSpec[];
  readonly locations: readonly HttpLocation[];
  /** `allow`/`deny` for requests no location matches (the server's own, else the http block's); the loader always sets it */
  readonly access?: readonly HttpAccessRule[];
  /** `client_header_timeout` (ms): a request whose headers are not all in by then is closed; the loader always sets it */
  readonly headerTimeout?: number;
  /** `send_timeout` (ms): a connection neither sending nor taking data this long is closed; the loader always sets it */
  readonly sendTimeout?: number;
  /**
   * `max_connections` of the http block: open HTTP connections over every
   * listener of every http server; more are refused. 0 = unlimited. The loader
   * always sets it (the same value in every server); absent = 1024.
   */
  readonly maxConnections?: number;
}

export interface ServerConfig {
  /** where the config came from ('<embedded default>' or a path) */
  readonly source: string;
  readonly rtmp: readonly RtmpServerConfig[];
  readonly http: readonly HttpServerConfig[];
  readonly log: LogSettings;
  /** warnings produced while loading (ignored nginx directives...) */
  readonly warnings: readonly string[];
  /**
   * `exec_static` commands, whatever block declares them: one global list started
   * once at startup (nginx-rtmp keeps them in its main conf). Kill signal / respawn
   * settings are the rtmp block's. Never part of ApplicationConfig.exec.commands.
   * The loader always sets it.
   */
  readonly execStatic?: ExecSettings;
}
