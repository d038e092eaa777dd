/**
 * THE directive table: every configuration directive the reader knows, where
 * it may appear, what it takes, its default, how it inherits and whether we
 * support it. The loader (load.ts) and the generated reference (docs.ts) both
 * read this table and nothing else, so flipping a directive to supported is a
 * one-word change of its `status` here (plus the loader code that uses it).
 *
 * Semantics follow nginx-rtmp-module (contexts, argument forms, defaults and
 * merge rules were checked against its source and doc/directives.md).
 */

/** Where a directive may appear. `main` is the top level of the file. */
export type ConfigContext = 'main' | 'events' | 'rtmp' | 'server' | 'application' | 'http' | 'http_server' | 'location';

/**
 * What the block of a block directive contains: a context, `types` (MIME lines,
 * not directives), or `raw` (kept as written, read by its section's reader:
 * the http `if`, see http-rules.ts).
 */
export type BlockKind = 'events' | 'rtmp' | 'server' | 'application' | 'http' | 'http_server' | 'location' | 'types' | 'raw';

/**
 * `supported`: read and used. `unsupported`: refused with ConfigUnsupported
 * (never silently ignored). `ignored`: an nginx process-level directive that
 * means nothing here; accepted with one warning.
 */
export type DirectiveStatus = 'supported' | 'unsupported' | 'ignored';

/**
 * How a value set in an outer block reaches an inner one (rtmp → server →
 * application; http → server → location):
 * - `none`: only where written.
 * - `override`: the nearest block that sets it wins (nginx's ngx_conf_merge_*).
 * - `append`: the block's own entries, then the enclosing block's (nginx-rtmp's
 *   merge of allow/deny and exec lists: child rules first, then the parent's).
 */
export type Inheritance = 'none' | 'override' | 'append';

/**
 * How the arguments are read. Single-value types take exactly one argument:
 * - `flag` on|off; `number` plain integer; `size` 4096, 128k, 1m, 1g (bytes);
 * - `time` nginx time in milliseconds: 500ms, 30s, 5m, 1h, 1h30m; a plain number means seconds;
 * - `time_or_off` a time or `off` (= 0); `enum` one of `values` (case-insensitive);
 * - `string` any one word; `notify_url` http URL (http:// added when missing); `signal` a signal name or number.
 * Structured types are interpreted by the loader: `listen_rtmp`, `listen_http`, `access_rule`,
 * `relay`, `exec`, `header`, `error_log`, `location`, `stat_modes`, `control_modes`, `http_access_rule`
 * (`allow|deny ADDRESS|CIDR|all` of http blocks), `address` (an address, a CIDR network or `all`).
 * `words` are free-form (not interpreted); `none` takes no argument.
 */
export type ValueType =
  | 'none'
  | 'flag'
  | 'number'
  | 'size'
  | 'time'
  | 'time_or_off'
  | 'enum'
  | 'string'
  | 'notify_url'
  | 'signal'
  | 'listen_rtmp'
  | 'listen_http'
  | 'access_rule'
  | 'relay'
  | 'exec'
  | 'header'
  | 'error_log'
  | 'location'
  | 'stat_modes'
  | 'control_modes'
  | 'http_access_rule'
  | 'address'
  | 'words';

/** Reference groups, in the order of the nginx-rtmp directive reference. */
export type DirectiveGroup =
  | 'Core'
  | 'Access'
  | 'Exec'
  | 'Live'
  | 'Record'
  | 'VOD'
  | 'Relay'
  | 'Notify'
  | 'HLS'
  | 'DASH'
  | 'Access log'
  | 'Limits'
  | 'Multi-worker'
  | 'HTTP'
  | 'TLS'
  | 'nginx'
  | 'Extensions';

export const DIRECTIVE_GROUPS: readonly DirectiveGroup[] = [
  'Core',
  'Access',
  'Exec',
  'Live',
  'Record',
  'VOD',
  'Relay',
  'Notify',
  'HLS',
  'DASH',
  'Access log',
  'Limits',
  'Multi-worker',
  'HTTP',
  'TLS',
  'nginx',
  'Extensions',
];

export interface DirectiveSpec {
  readonly name: string;
  readonly group: DirectiveGroup;
  readonly contexts: readonly ConfigContext[];
  /** set for block directives: what the `{ ... }` contains */
  readonly block: BlockKind | undefined;
  readonly minArgs: number;
  /** undefined = no upper bound */
  readonly maxArgs: number | undefined;
  readonly value: ValueType;
  /** the accepted words of an `enum` */
  readonly values?: readonly string[];
  /** inclusive bounds of a `number`/`size`/`time` value (bytes, milliseconds) */
  readonly min?: number;
  readonly max?: number;
  /**
   * The default, written as configuration text: the loader parses it with the
   * same code as a configured value. undefined = not set / nothing.
   */
  readonly default: string | undefined;
  /** a default the loader computes (shown in the reference instead of `default`) */
  readonly defaultNote?: string;
  readonly inherit: Inheritance;
  readonly status: DirectiveStatus;
  readonly description: string;
}

const RSA: readonly ConfigContext[] = ['rtmp', 'server', 'application'];
const RS: readonly ConfigContext[] = ['rtmp', 'server'];
const HTTP_ALL: readonly ConfigContext[] = ['http', 'http_server', 'location'];
const HTTP_SRV: readonly ConfigContext[] = ['http', 'http_server'];
const EVERYWHERE: readonly ConfigContext[] = ['main', 'events', 'rtmp', 'server', 'application', 'http', 'http_server', 'location'];

type Extra = Partial<Pick<DirectiveSpec, 'values' | 'min' | 'max' | 'defaultNote' | 'block'>>;

function d(
  name: string,
  group: DirectiveGroup,
  contexts: readonly ConfigContext[],
  args: readonly [number, number | undefined],
  value: ValueType,
  dflt: string | undefined,
  inherit: Inheritance,
  status: DirectiveStatus,
  description: string,
  extra: Extra = {},
): DirectiveSpec {
  return {
    name,
    group,
    contexts,
    block: extra.block,
    minArgs: args[0],
    maxArgs: args[1],
    value,
    ...(extra.values !== undefined ? { values: extra.values } : {}),
    ...(extra.min !== undefined ? { min: extra.min } : {}),
    ...(extra.max !== undefined ? { max: extra.max } : {}),
    default: dflt,
    ...(extra.defaultNote !== undefined ? { defaultNote: extra.defaultNote } : {}),
    inherit,
    status,
    description,
  };
}

const ONE: readonly [number, number] = [1, 1];
const NONE: readonly [number, number] = [0, 0];
const MANY: readonly [number, undefined] = [1, undefined];
/** largest duration a Node.js timer takes (ms) */
const MAX_TIMER_MS = 2_147_483_647;

export const DIRECTIVES: readonly DirectiveSpec[] = [
  // ---------------------------------------------------------------- Core
  d('rtmp', 'Core', ['main'], NONE, 'none', undefined, 'none', 'supported', 'The block holding all RTMP settings.', { block: 'rtmp' }),
  d('server', 'Core', ['rtmp'], NONE, 'none', undefined, 'none', 'supported', 'Declares an RTMP server: its listening sockets and applications.', { block: 'server' }),
  d('listen', 'Core', ['server'], MANY, 'listen_rtmp', undefined, 'none', 'supported', 'Listening socket: `1935`, `addr:port`, `[v6]:port`, `*:port`; parameters `proxy_protocol`, `ipv6only=on|off`, `so_keepalive=on|off|idle:intvl:cnt`, `bind`.'),
  d('application', 'Core', ['server'], ONE, 'string', undefined, 'none', 'supported', 'Declares an application (the `app` of rtmp://host/app/stream); the name is literal, not a pattern.', { block: 'application' }),
  d('timeout', 'Core', RS, ONE, 'time', '60s', 'override', 'supported', 'Socket timeout: a connection idle this long is closed.', { max: MAX_TIMER_MS }),
  d('ping', 'Core', RS, ONE, 'time', '60s', 'override', 'supported', 'RTMP ping interval; 0 turns pinging off.', { max: MAX_TIMER_MS }),
  d('ping_timeout', 'Core', RS, ONE, 'time', '30s', 'override', 'supported', 'How long to wait for a ping reply before closing the connection.', { max: MAX_TIMER_MS }),
  d('max_streams', 'Core', RS, ONE, 'number', '32', 'override', 'supported', 'Maximum number of RTMP chunk streams per connection.', { min: 1, max: 65599 }),
  d('ack_window', 'Core', RS, ONE, 'number', '5000000', 'override', 'supported', 'RTMP acknowledgement window size, in bytes.', { min: 1, max: 4_294_967_295 }),
  d('chunk_size', 'Core', RS, ONE, 'number', '4096', 'override', 'supported', 'Outgoing chunk size the server announces (at least 128).', { min: 128, max: 16_777_215 }),
  d('max_message', 'Core', RS, ONE, 'size', '1m', 'override', 'supported', 'Largest message a client may send; bigger ones close the connection.', { min: 1, max: 16_777_215 }),
  d('buflen', 'Core', RS, ONE, 'time', '1000ms', 'override', 'supported', 'Default client buffer length. Accepted for compatibility; no effect here: players are fed as fast as their socket drains.', { max: MAX_TIMER_MS }),
  d('out_queue', 'Core', RS, ONE, 'size', '256', 'override', 'supported', 'Output queue bound per connection, in messages.', { min: 1 }),
  d('out_cork', 'Core', RS, ONE, 'size', undefined, 'override', 'supported', 'Messages queued before the output is flushed (corking). Accepted; no effect here: output is always batched: one write per player per publisher read.', { min: 1, defaultNote: 'out_queue / 8' }),
  d('busy', 'Core', RS, ONE, 'flag', 'off', 'override', 'unsupported', 'Cut the connection early when the client is too slow (legacy).'),
  d('play_time_fix', 'Core', RSA, ONE, 'flag', 'on', 'override', 'ignored', 'Fix up timestamps of played streams for Flash clients.'),
  d('publish_time_fix', 'Core', RSA, ONE, 'flag', 'on', 'override', 'unsupported', 'Fix up timestamps of published streams for Flash clients.'),
  d('so_keepalive', 'Core', RS, ONE, 'flag', 'off', 'override', 'supported', 'Deprecated: TCP keepalive on the server\'s sockets (prefer `listen … so_keepalive=on`).'),

  // -------------------------------------------------------------- Access
  d('allow', 'Access', RSA, [1, 2], 'access_rule', undefined, 'append', 'supported', 'Allow publish and/or play from an address, a CIDR network (IPv4/IPv6) or `all`: `allow publish 127.0.0.1;`.'),
  d('deny', 'Access', RSA, [1, 2], 'access_rule', undefined, 'append', 'supported', 'Deny publish and/or play from an address, a CIDR network or `all`: `deny play all;`.'),
  d('set_real_ip_from', 'Access', RS, ONE, 'address', undefined, 'override', 'supported', 'A peer (address, CIDR network or `all`) whose PROXY protocol header (`listen ... proxy_protocol`) is believed: the address in the header is used (access rules, logs, `addr=`) only when the TCP peer is in one of these; from another peer the header is read but its address ignored, with a warning. None at all: every peer is believed (compatible), and the server warns at start. An inner block\'s lines replace the outer ones.'),

  // ---------------------------------------------------------------- Exec
  d('exec', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command for every published stream (alias of `exec_push`); killed when publishing stops.'),
  d('exec_push', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command for every published stream; killed when publishing stops.'),
  d('exec_pull', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command when a stream is first played; killed when the last player leaves.'),
  d('exec_options', 'Exec', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Enable exec options such as `name=` filters on exec lines.'),
  d('exec_static', 'Exec', RSA, MANY, 'exec', undefined, 'none', 'supported', 'Run a command at startup, whatever block declares it (one global list, as in nginx-rtmp).'),
  d('exec_kill_signal', 'Exec', RSA, ONE, 'signal', 'kill', 'override', 'supported', 'Signal that stops exec children: a name (term, kill, usr1, …) or a number.'),
  d('respawn', 'Exec', RSA, ONE, 'flag', 'on', 'override', 'supported', 'Restart exec children that exit while still needed.'),
  d('respawn_timeout', 'Exec', RSA, ONE, 'time', '5s', 'override', 'supported', 'Delay before restarting an exec child.', { max: MAX_TIMER_MS }),
  d('exec_publish', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command (not managed) when a stream is published.'),
  d('exec_play', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command (not managed) when a stream is played.'),
  d('exec_play_done', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command (not managed) when playing stops.'),
  d('exec_publish_done', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command (not managed) when publishing stops.'),
  d('exec_record_started', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command when a recording starts.'),
  d('exec_record_done', 'Exec', RSA, MANY, 'exec', undefined, 'append', 'supported', 'Run a command when a recording is finished.'),

  // ---------------------------------------------------------------- Live
  d('live', 'Live', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Live mode: one publisher, many players.'),
  d('meta', 'Live', RSA, ONE, 'enum', 'on', 'override', 'supported', 'Metadata sent to players: `on` (rebuilt), `copy` (publisher\'s as is) or `off`.', { values: ['on', 'copy', 'off'] }),
  d('interleave', 'Live', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Send audio and video on the same chunk stream.'),
  d('wait_key', 'Live', RSA, ONE, 'flag', 'on', 'override', 'supported', 'Start each player\'s video with a key frame (nginx-rtmp\'s code default is on; its doc says off).'),
  d('wait_video', 'Live', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Hold audio back until the first video frame is sent.'),
  d('publish_notify', 'Live', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Send NetStream.Play.PublishNotify / UnpublishNotify to players.'),
  d('drop_idle_publisher', 'Live', RSA, ONE, 'time_or_off', 'off', 'override', 'supported', 'Drop a publisher that sent no audio/video for this long.', { max: MAX_TIMER_MS }),
  d('sync', 'Live', RSA, ONE, 'time_or_off', '300ms', 'override', 'supported', 'Resynchronise audio and video when they drift apart by more than this. Always in effect here: every media message carries an absolute timestamp.', { max: MAX_TIMER_MS }),
  d('play_restart', 'Live', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Send NetStream.Play.Start / Stop to players whenever the publisher starts / stops.'),
  d('idle_streams', 'Live', RSA, ONE, 'flag', 'on', 'override', 'supported', 'Let players wait on a stream nobody publishes yet (off: refuse them).'),

  // -------------------------------------------------------------- Record
  d('record', 'Record', RSA, MANY, 'words', 'off', 'override', 'supported', 'Record mode: off, all, audio, video, keyframes, manual.'),
  d('record_path', 'Record', RSA, ONE, 'string', undefined, 'override', 'supported', 'Directory for recorded files.'),
  d('record_suffix', 'Record', RSA, ONE, 'string', '.flv', 'override', 'supported', 'Recorded file name suffix (strftime format allowed); `.mp4` with `record_format mp4` when not given.'),
  d('record_unique', 'Record', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Append the current time to recorded file names.'),
  d('record_append', 'Record', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Append to an existing recording instead of overwriting it.'),
  d('record_lock', 'Record', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Accepted for compatibility: no lock is taken (Node.js has no fcntl locks; one warning at load).'),
  d('record_max_size', 'Record', RSA, ONE, 'size', undefined, 'override', 'supported', 'Maximum recorded file size.'),
  d('record_max_frames', 'Record', RSA, ONE, 'number', undefined, 'override', 'supported', 'Maximum number of video frames per recorded file.'),
  d('record_interval', 'Record', RSA, ONE, 'time_or_off', 'off', 'override', 'supported', 'Restart the recording after this interval.'),
  // refused before its block is read, so the block kind only says "a block follows"
  d('recorder', 'Record', ['application'], ONE, 'string', undefined, 'none', 'supported', 'A named recorder block inside an application.', { block: 'application' }),
  d('record_format', 'Record', RSA, ONE, 'enum', 'flv', 'override', 'supported', 'Ours: the recording\'s file format: `flv` (as nginx-rtmp) or `mp4` (fragmented MP4, one fragment per GOP, playable while written and after a crash; H.264/H.265/AAC).', { values: ['flv', 'mp4'] }),
  d('record_notify', 'Record', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Send NetStream.Record.Start / Stop to the publisher.'),

  // ----------------------------------------------------------------- VOD
  d('play', 'VOD', RSA, MANY, 'words', undefined, 'override', 'supported', 'Play FLV/MP4 files from local directories or http locations.'),
  d('play_temp_path', 'VOD', RSA, ONE, 'string', '/tmp', 'override', 'supported', 'Where remote VOD files are stored while played.'),
  d('play_local_path', 'VOD', RSA, ONE, 'string', undefined, 'override', 'supported', 'Where remote VOD files are moved once downloaded.'),

  // --------------------------------------------------------------- Relay
  d('pull', 'Relay', ['application'], MANY, 'relay', undefined, 'none', 'supported', 'Pull a stream from another server: `pull rtmp://host[:port]/app[/name] [key=value …]` (`static` pulls at startup).'),
  d('push', 'Relay', ['application'], MANY, 'relay', undefined, 'none', 'supported', 'Push published streams to another server: `push rtmp://host[:port]/app[/name] [key=value …]`.'),
  d('push_reconnect', 'Relay', RSA, ONE, 'time', '3s', 'override', 'supported', 'Delay before reconnecting a failed push.', { max: MAX_TIMER_MS }),
  d('pull_reconnect', 'Relay', RSA, ONE, 'time', '3s', 'override', 'supported', 'Delay before reconnecting a pull whose connection failed or was lost (static pulls, and pulls players wait on); doubles on each failure up to 30 s, like push_reconnect.', { max: MAX_TIMER_MS }),
  d('session_relay', 'Relay', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Close relays with the session that started them, not with the stream.'),

  // -------------------------------------------------------------- Notify
  d('on_connect', 'Notify', RS, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback on connect; a non-2xx reply refuses the connection.'),
  d('on_play', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback on play; non-2xx refuses, 3xx redirects.'),
  d('on_playlist', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'unsupported', 'HTTP callback when an HLS playlist is written (fork).'),
  d('on_publish', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback on publish; non-2xx refuses, 3xx redirects.'),
  d('on_done', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback when playing or publishing stops.'),
  d('on_play_done', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback when playing stops.'),
  d('on_publish_done', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback when publishing stops.'),
  d('on_record_started', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback when a recording starts.'),
  d('on_record_done', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback when a recording is finished.'),
  d('on_update', 'Notify', RSA, ONE, 'notify_url', undefined, 'override', 'supported', 'Periodic HTTP callback while a stream is played or published; non-2xx ends the session.'),
  d('on_disconnect', 'Notify', RS, ONE, 'notify_url', undefined, 'override', 'supported', 'HTTP callback (fire-and-forget, `call=disconnect`) when a client connection that connected to an application closes, with the connect arguments and the client\'s query.'),
  d('notify_update_timeout', 'Notify', RSA, ONE, 'time', '30s', 'override', 'supported', 'Interval of on_update callbacks.', { max: MAX_TIMER_MS }),
  d('notify_update_strict', 'Notify', RSA, ONE, 'flag', 'off', 'override', 'supported', 'End the session when an on_update call fails to connect, not only on a non-2xx reply.'),
  d('notify_relay_redirect', 'Notify', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Turn on_play/on_publish redirects to an rtmp:// URL into a pull/push relay; the local stream is named by the MD5 of the URL.'),
  d('notify_send_redirect', 'Notify', RSA, ONE, 'flag', 'off', 'override', 'unsupported', 'Send the client an RTMP redirect on a 3xx reply (fork).'),
  d('notify_method', 'Notify', RSA, ONE, 'enum', 'post', 'override', 'supported', 'HTTP method of the callbacks: get or post.', { values: ['get', 'post'] }),

  // ----------------------------------------------------------------- HLS
  d('hls', 'HLS', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Write HLS (MPEG-TS fragments and an m3u8 playlist) for every stream published in the application.'),
  d('hls_path', 'HLS', RSA, ONE, 'string', undefined, 'override', 'supported', 'Directory of the HLS playlists and fragments (created when missing); `hls on` without it writes nothing.'),
  d('hls_fragment', 'HLS', RSA, ONE, 'time', '5s', 'override', 'supported', 'Fragment length: a fragment is cut at the first keyframe after it (audio-only: at the first audio frame).', { min: 100, max: MAX_TIMER_MS }),
  d('hls_max_fragment', 'HLS', RSA, ONE, 'time', undefined, 'override', 'supported', 'Longest fragment: past it a fragment is cut even without a keyframe.', { defaultNote: '10 × hls_fragment', min: 100, max: MAX_TIMER_MS }),
  d('hls_playlist_length', 'HLS', RSA, ONE, 'time', '30s', 'override', 'supported', 'Length of the playlist window (playlist_length / fragment fragments).', { min: 100, max: MAX_TIMER_MS }),
  d('hls_sync', 'HLS', RSA, ONE, 'time', '2ms', 'override', 'supported', 'AAC timestamps closer than this to the sample count\'s are taken from the sample count (smooths publisher jitter).'),
  d('hls_continuous', 'HLS', RSA, ONE, 'flag', 'on', 'override', 'supported', 'Continue the media sequence across a publisher\'s reconnect (and a server restart, from the playlist on disk).'),
  d('hls_nested', 'HLS', RSA, ONE, 'flag', 'off', 'override', 'supported', 'One subdirectory per stream (`NAME/index.m3u8`, `NAME/ID.ts`).'),
  d('hls_base_url', 'HLS', RSA, ONE, 'string', undefined, 'override', 'supported', 'URL prefix of fragments in the playlist.'),
  d('hls_cleanup', 'HLS', RSA, ONE, 'flag', 'on', 'override', 'supported', 'Delete fragments that left the playlist, and a stream\'s files some time after it ends.'),
  d('hls_fragment_naming', 'HLS', RSA, ONE, 'enum', 'sequential', 'override', 'supported', 'Fragment names: sequential (media sequence number), timestamp (stream time, ms) or system (wall clock, ms).', { values: ['sequential', 'timestamp', 'system'] }),
  d('hls_fragment_naming_granularity', 'HLS', RSA, ONE, 'number', '0', 'override', 'supported', 'Round timestamp/system fragment names down to a multiple of this (0 = off).'),
  d('hls_fragment_slicing', 'HLS', RSA, ONE, 'enum', 'plain', 'override', 'supported', 'plain: cut after hls_fragment; aligned: cut where the stream time crosses a multiple of hls_fragment.', { values: ['plain', 'aligned'] }),
  d('hls_variant', 'HLS', ['application'], MANY, 'words', undefined, 'append', 'supported', 'A variant (`SUFFIX PARAM=VALUE...`): a stream whose name ends with SUFFIX also writes the master playlist NAME-without-suffix.m3u8 listing every variant.'),
  d('hls_type', 'HLS', RSA, ONE, 'enum', 'live', 'override', 'supported', 'Playlist type: live (a sliding window) or event (every fragment kept, EXT-X-PLAYLIST-TYPE:EVENT, no cleanup).', { values: ['live', 'event'] }),
  d('hls_allow_client_cache', 'HLS', RSA, ONE, 'flag', undefined, 'override', 'unsupported', 'Write EXT-X-ALLOW-CACHE into playlists (fork).'),
  d('hls_keys', 'HLS', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Encrypt fragments (AES-128-CBC, a random key per hls_fragments_per_key fragments).'),
  d('hls_key_path', 'HLS', RSA, ONE, 'string', undefined, 'override', 'supported', 'Directory of HLS keys.', { defaultNote: 'hls_path' }),
  d('hls_key_url', 'HLS', RSA, ONE, 'string', undefined, 'override', 'supported', 'URL prefix of HLS keys in the playlist.'),
  d('hls_fragments_per_key', 'HLS', RSA, ONE, 'number', '0', 'override', 'supported', 'Fragments encrypted with one key (0 = one key for the whole publish).'),
  d('hls_max_audio_delay', 'HLS', RSA, ONE, 'time', '300ms', 'override', 'supported', 'Audio frames are gathered into one PES for at most this long.'),
  d('hls_audio_buffer_size', 'HLS', RSA, ONE, 'size', '1m', 'override', 'supported', 'The most bytes of audio gathered into one PES.', { min: 1024 }),

  // ---------------------------------------------------------------- DASH
  d('dash', 'DASH', RSA, ONE, 'flag', 'off', 'override', 'supported', 'Write MPEG-DASH: a dynamic MPD and fragmented MP4 (see docs/dash.md).'),
  d('dash_path', 'DASH', RSA, ONE, 'string', undefined, 'override', 'supported', 'Directory of the DASH manifests and fragments.'),
  d('dash_fragment', 'DASH', RSA, ONE, 'time', '5s', 'override', 'supported', 'DASH fragment length (fragments are cut on keyframes).', { min: 100 }),
  d('dash_playlist_length', 'DASH', RSA, ONE, 'time', '30s', 'override', 'supported', 'DASH playlist length (the MPD\'s time-shift window).', { min: 100 }),
  d('dash_nested', 'DASH', RSA, ONE, 'flag', 'off', 'override', 'supported', 'One subdirectory per stream.'),
  d('dash_cleanup', 'DASH', RSA, ONE, 'flag', 'on', 'override', 'supported', 'Delete old fragments and manifests.'),
  d('dash_clock_compensation', 'DASH', RSA, ONE, 'enum', 'off', 'override', 'supported', 'Clock compensation: off, ntp, http_head, http_iso (a UTCTiming element naming `dash_clock_helper_uri`).', { values: ['off', 'ntp', 'http_head', 'http_iso'] }),
  d('dash_clock_helper_uri', 'DASH', RSA, ONE, 'string', undefined, 'override', 'supported', 'Time source URI for clock compensation.'),

  // ---------------------------------------------------------- Access log
  d('access_log', 'Access log', RSA, MANY, 'words', undefined, 'override', 'unsupported', 'RTMP access log file and format, or off.'),
  d('log_format', 'Access log', ['rtmp'], [2, undefined], 'words', undefined, 'none', 'unsupported', 'Named access log format.'),

  // -------------------------------------------------------------- Limits
  d('max_connections', 'Limits', RS, ONE, 'number', '0', 'override', 'supported', 'Maximum simultaneous connections of the server block; 0 = unlimited (nginx-rtmp: one global limit, unset = unlimited).', { min: 0 }),

  // -------------------------------------------------------- Multi-worker
  d('rtmp_auto_push', 'Multi-worker', ['main'], ONE, 'words', 'off', 'none', 'ignored', 'Relay published streams to every nginx worker; ignored: one process serves every stream, so every player already sees every publisher.'),
  d('rtmp_auto_push_reconnect', 'Multi-worker', ['main'], ONE, 'words', '100ms', 'none', 'ignored', 'Auto-push reconnect delay; ignored (one process).'),
  d('rtmp_socket_dir', 'Multi-worker', ['main'], ONE, 'words', '/tmp', 'none', 'ignored', 'Directory of the auto-push UNIX sockets; ignored (one process).'),

  // ---------------------------------------------------------------- HTTP
  d('http', 'HTTP', ['main'], NONE, 'none', undefined, 'none', 'supported', 'The HTTP block (statistics, control, static files such as HLS output).', { block: 'http' }),
  d('server', 'HTTP', ['http'], NONE, 'none', undefined, 'none', 'supported', 'Declares an HTTP server.', { block: 'http_server' }),
  d('listen', 'HTTP', ['http_server'], MANY, 'listen_http', '*:80', 'none', 'supported', 'HTTP listening socket: `8080`, `addr:port`, `[v6]:port`; `default_server`, `bind`, `reuseport`, `backlog=` … accepted; `ssl`/`http2` refused.'),
  d('location', 'HTTP', ['http_server'], [1, 2], 'location', undefined, 'none', 'supported', 'A URI prefix (`/hls`, `^~ /hls`) or exact (`= /stat`) location; regex and named locations are refused.', { block: 'location' }),
  d('root', 'HTTP', HTTP_ALL, ONE, 'string', undefined, 'override', 'supported', 'Document root: the URI is appended to it.'),
  d('alias', 'HTTP', ['location'], ONE, 'string', undefined, 'none', 'supported', 'Directory replacing the location prefix of the URI.'),
  d('add_header', 'HTTP', HTTP_ALL, [2, 3], 'header', undefined, 'override', 'supported', 'Add a response header to 2xx/3xx responses, with `always` to every response; a block with its own add_header does not inherit the outer ones (nginx).'),
  d('expires', 'HTTP', HTTP_ALL, [1, 2], 'words', undefined, 'override', 'supported', 'Cache-Control and Expires on 2xx/3xx responses: `expires 24h;`, `expires -1;` (no-cache), `epoch`, `max`, `off`, `modified TIME`. Without it, playlists and MPDs get `Cache-Control: no-cache` and media fragments a short max-age (docs/configuration.md).'),
  d('if', 'HTTP', ['http_server', 'location'], [1, undefined], 'words', undefined, 'none', 'supported', 'Only `if ($request_method = METHOD) { add_header …; return CODE; }` (and `!=`): the CORS preflight block; other conditions and directives inside are refused.', { block: 'raw' }),
  d('return', 'HTTP', ['location'], [1, 2], 'words', undefined, 'none', 'supported', 'Answer every request of the location with `return CODE [TEXT]`, `return 301|302|303|307|308 URL` or `return URL`.'),
  d('types', 'HTTP', HTTP_ALL, NONE, 'none', 'text/html html; image/gif gif; image/jpeg jpg', 'override', 'supported', 'MIME types by file extension: `types { application/vnd.apple.mpegurl m3u8; }`.', { block: 'types' }),
  d('default_type', 'HTTP', HTTP_ALL, ONE, 'string', 'text/plain', 'override', 'supported', 'MIME type of files whose extension has none.'),
  d('rtmp_stat', 'HTTP', ['location'], MANY, 'stat_modes', undefined, 'none', 'supported', 'Serve RTMP statistics (XML) at this location: `global` only the server-wide counters; `live` also the streams (their names are often the publishers\' stream keys); `clients` with `live` also the connections; `all` everything. Protect it with allow/deny.'),
  d('rtmp_stat_stylesheet', 'HTTP', ['location'], ONE, 'string', undefined, 'none', 'supported', 'XSL stylesheet reference added to the statistics XML (an `<?xml-stylesheet type="text/xsl" href="…"?>` line).'),
  d('flv_live', 'HTTP', ['location'], ONE, 'flag', 'off', 'none', 'supported', 'Ours (the SRS / Node-Media-Server URL shape): `GET /APP/NAME.flv` under this location plays the live stream as FLV over HTTP, and over a WebSocket when the request upgrades; APP and NAME are the last two path segments. See docs/http-flv.md.'),
  d('metrics', 'HTTP', ['location'], NONE, 'none', undefined, 'none', 'supported', 'Ours: serve Prometheus text (connections, streams, players per application and protocol, bytes, drops, output errors, process CPU and memory) at this location. See docs/metrics.md.'),
  d('rtmp_control', 'HTTP', ['location'], MANY, 'control_modes', undefined, 'none', 'supported', 'Serve the control API at this location: `all`, or the sections served among `drop`, `record`, `redirect` (the others answer 404). It changes state on a GET: protect it with allow/deny; requests a browser marks as coming from another site are refused (403).'),
  d('allow', 'HTTP', HTTP_ALL, ONE, 'http_access_rule', undefined, 'override', 'supported', 'Allow HTTP requests from an address, a CIDR network (IPv4/IPv6) or `all`. With deny: the first matching line decides, no match allows, a refused request gets 403; a block with its own allow/deny lines does not inherit the outer ones (nginx). `location /control { rtmp_control all; allow 127.0.0.1; deny all; }`.'),
  d('deny', 'HTTP', HTTP_ALL, ONE, 'http_access_rule', undefined, 'override', 'supported', 'Deny HTTP requests from an address, a CIDR network or `all` (see allow).'),
  d('max_connections', 'HTTP', ['http'], ONE, 'number', '1024', 'none', 'supported', 'Ours: open HTTP connections, over every listen of the http block; more are closed at once (with a 503 when possible) and logged at most once per 10 s. 0 = unlimited.', { min: 0 }),
  d('client_header_timeout', 'HTTP', HTTP_SRV, ONE, 'time', '60s', 'override', 'supported', 'A request whose headers have not all arrived this long after it began is closed (slow clients cannot hold a connection).', { min: 1, max: MAX_TIMER_MS }),
  d('send_timeout', 'HTTP', HTTP_SRV, ONE, 'time', '60s', 'override', 'supported', 'A connection on which nothing is sent or received for this long is closed (e.g. a client that stops reading a response).', { min: 1, max: MAX_TIMER_MS }),
  d('sendfile', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('tcp_nopush', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('tcp_nodelay', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('keepalive_timeout', 'HTTP', HTTP_ALL, [1, 2], 'words', undefined, 'none', 'ignored', 'nginx HTTP keep-alive tuning; ignored.'),
  d('keepalive_requests', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx HTTP keep-alive tuning; ignored.'),
  d('server_name', 'HTTP', ['http_server'], MANY, 'words', undefined, 'none', 'ignored', 'Virtual host names; ignored (one server per address).'),
  d('index', 'HTTP', HTTP_ALL, MANY, 'words', undefined, 'none', 'ignored', 'Index files; ignored.'),
  d('charset', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'Response charset; ignored.'),
  d('gzip', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'Response compression; ignored.'),
  d('client_max_body_size', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'Request body limit; ignored.'),
  d('server_tokens', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'Server header detail; ignored.'),
  d('access_log', 'HTTP', HTTP_ALL, MANY, 'words', undefined, 'none', 'ignored', 'nginx HTTP access log; ignored.'),
  d('log_format', 'HTTP', ['http'], [2, undefined], 'words', undefined, 'none', 'ignored', 'nginx HTTP log format; ignored.'),
  d('error_log', 'HTTP', HTTP_ALL, [1, 2], 'words', undefined, 'none', 'ignored', 'nginx per-block error log; ignored (use the top-level error_log).'),
  d('directio', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('directio_alignment', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('aio', 'HTTP', HTTP_ALL, [1, 2], 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('output_buffers', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('sendfile_max_chunk', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('postpone_output', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx I/O tuning; ignored.'),
  d('reset_timedout_connection', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx connection tuning; ignored.'),
  d('open_file_cache', 'HTTP', HTTP_ALL, [1, 2], 'words', undefined, 'none', 'ignored', 'nginx file descriptor cache; ignored.'),
  d('open_file_cache_valid', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx file descriptor cache; ignored.'),
  d('open_file_cache_min_uses', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx file descriptor cache; ignored.'),
  d('open_file_cache_errors', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx file descriptor cache; ignored.'),
  d('types_hash_max_size', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx hash table tuning; ignored.'),
  d('types_hash_bucket_size', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx hash table tuning; ignored.'),
  d('server_names_hash_bucket_size', 'HTTP', ['http'], ONE, 'words', undefined, 'none', 'ignored', 'nginx hash table tuning; ignored.'),
  d('server_names_hash_max_size', 'HTTP', ['http'], ONE, 'words', undefined, 'none', 'ignored', 'nginx hash table tuning; ignored.'),
  d('client_body_timeout', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'Request body timeout; ignored (no location reads a body).'),
  d('etag', 'HTTP', HTTP_ALL, ONE, 'words', undefined, 'none', 'ignored', 'nginx ETag header; ignored (files are validated by Last-Modified).'),

  // ----------------------------------------------------------------- TLS
  d('ssl_certificate', 'TLS', RS, ONE, 'string', undefined, 'override', 'unsupported', 'RTMPS certificate file (fork).'),
  d('ssl_certificate_key', 'TLS', RS, ONE, 'string', undefined, 'override', 'unsupported', 'RTMPS private key file (fork).'),
  d('ssl_protocols', 'TLS', RS, MANY, 'words', undefined, 'override', 'unsupported', 'RTMPS protocol versions (fork).'),
  d('ssl_ciphers', 'TLS', RS, ONE, 'string', undefined, 'override', 'unsupported', 'RTMPS cipher list (fork).'),
  d('ssl_handshake_timeout', 'TLS', RS, ONE, 'time', undefined, 'override', 'unsupported', 'RTMPS handshake timeout (fork).'),
  d('rtmp_relay_ssl_verify', 'TLS', RSA, ONE, 'flag', undefined, 'override', 'unsupported', 'Verify the certificate of rtmps:// relay targets (fork).'),
  d('rtmp_relay_ssl_trusted_certificate', 'TLS', RSA, ONE, 'string', undefined, 'override', 'unsupported', 'CA file for rtmps:// relay targets (fork).'),

  // --------------------------------------------------------------- nginx
  d('include', 'nginx', EVERYWHERE, ONE, 'string', undefined, 'none', 'supported', 'Insert other files here; a relative path is relative to the including file\'s directory; globs allowed (no match is fine).'),
  d('error_log', 'nginx', ['main'], [1, 2], 'error_log', 'stderr info', 'none', 'supported', 'Log destination (`stderr`, `stdout` or a file) and level (debug, info, notice, warn, error, crit, alert, emerg; default error).'),
  d('events', 'nginx', ['main'], NONE, 'none', undefined, 'none', 'ignored', 'nginx connection processing block; ignored (its directives are still checked).', { block: 'events' }),
  d('worker_connections', 'nginx', ['events'], ONE, 'words', undefined, 'none', 'ignored', 'nginx event setting; ignored.'),
  d('use', 'nginx', ['events'], ONE, 'words', undefined, 'none', 'ignored', 'nginx event setting; ignored.'),
  d('multi_accept', 'nginx', ['events'], ONE, 'words', undefined, 'none', 'ignored', 'nginx event setting; ignored.'),
  d('accept_mutex', 'nginx', ['events'], ONE, 'words', undefined, 'none', 'ignored', 'nginx event setting; ignored.'),
  d('accept_mutex_delay', 'nginx', ['events'], ONE, 'words', undefined, 'none', 'ignored', 'nginx event setting; ignored.'),
  d('worker_aio_requests', 'nginx', ['events'], ONE, 'words', undefined, 'none', 'ignored', 'nginx event setting; ignored.'),
  d('debug_connection', 'nginx', ['events'], ONE, 'words', undefined, 'none', 'ignored', 'nginx event setting; ignored.'),
  d('worker_processes', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx process setting; ignored (one Node.js process).'),
  d('worker_cpu_affinity', 'nginx', ['main'], MANY, 'words', undefined, 'none', 'ignored', 'nginx process setting; ignored.'),
  d('worker_priority', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx process setting; ignored.'),
  d('worker_rlimit_nofile', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx process setting; ignored.'),
  d('worker_rlimit_core', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx process setting; ignored.'),
  d('worker_shutdown_timeout', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx process setting; ignored.'),
  d('working_directory', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx process setting; ignored.'),
  d('pid', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx pid file; ignored.'),
  d('lock_file', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx lock file; ignored.'),
  d('user', 'nginx', ['main'], [1, 2], 'words', undefined, 'none', 'ignored', 'nginx worker user; ignored (run the server as the user you want).'),
  d('daemon', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx daemon mode; ignored (the server stays in the foreground).'),
  d('master_process', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx master process; ignored.'),
  d('load_module', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx dynamic module (e.g. the rtmp module itself); ignored.'),
  d('env', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx environment passing; ignored (exec children get the server\'s environment).'),
  d('thread_pool', 'nginx', ['main'], [1, 3], 'words', undefined, 'none', 'ignored', 'nginx thread pool; ignored.'),
  d('timer_resolution', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx timer setting; ignored.'),
  d('pcre_jit', 'nginx', ['main'], ONE, 'words', undefined, 'none', 'ignored', 'nginx regex setting; ignored.'),

  // ---------------------------------------------------------- Extensions
  d('gop_cache', 'Extensions', RSA, ONE, 'flag', 'on', 'override', 'supported', 'Ours: keep the last GOP so new players start at once with a key frame.'),
  d('tcp_nodelay', 'Extensions', RS, ONE, 'flag', 'on', 'override', 'supported', 'Ours: TCP_NODELAY on RTMP connections. On (the default) sends each message at once, for the lowest latency. Off lets the kernel merge small writes while earlier data is unacknowledged (Nagle). That saves CPU when many players lag, but a message may then wait up to a round trip.'),
  d('direct_write', 'Extensions', RS, ONE, 'flag', 'on', 'override', 'supported', 'Ours: while a player\'s socket has nothing queued, write to its descriptor directly (one write(2) per player per publisher read, without the Node.js stream\'s per-write bookkeeping); off sends every byte through the socket stream.'),
  d('native_write', 'Extensions', RS, ONE, 'flag', 'on', 'override', 'supported', 'Ours: with direct_write, the fan-out\'s writes to all players are made in one call into a small C addon (native/fanout.c, built by npm install when a compiler is present) instead of one fs.writeSync() per player; off, or when the addon is not built, the same writes are made from JavaScript.'),
  d('read_window', 'Extensions', RS, ONE, 'time_or_off', '4ms', 'override', 'supported', "Ours: while RTMP connections send fast enough that a window of this length would gather 8 reads or more (4ms: about 2 000 reads a second, ~27 publishers at 1 Mbit/s), a read waits up to this long so that one wake-up of the server takes every connection's arrivals of the window; off again below half that rate. Costs at most this much latency under such load, none below it; off never waits. Needs shared_read (the native poller); the first server block's setting counts.", { max: 1000 }),
  d('shared_read', 'Extensions', RS, ONE, 'flag', 'on', 'override', 'supported', 'Ours: every RTMP connection is read by the native addon (a second descriptor of the accepted socket, watched on Node.js\'s own event loop) into one buffer shared by the server, and the reads of a turn of the event loop are handed to JavaScript in one call, instead of a new allocation and a stream event per read; off, or when the addon is not built, each read goes through the socket\'s stream.'),
  d('warmup', 'Extensions', RS, ONE, 'flag', 'off', 'override', 'supported', 'Ours: before the first client is let in, the server plays a short synthetic stream to itself over loopback (three publishers, 20 players, about a second), so the JavaScript engine has compiled the publish, fan-out and join paths before a real crowd arrives. Clients that connect meanwhile wait and are then served. Set in the first server block. Off by default since 2026-12-07: without the runtime tricks it relied on, it measured no CPU gain at 200 + 200 players and left ~10 MiB more resident (docs/performance.md).'),
  d('flush_window', 'Extensions', RSA, ONE, 'time', '0ms', 'override', 'supported', 'Ours: hold player writes up to this long so they leave together (fewer system calls, more latency); 0 flushes at the end of each publisher read.', { max: 1000 }),
];

/** Every spec with this name (a name can mean different things in rtmp{} and http{}). */
export function directivesNamed(name: string): readonly DirectiveSpec[] {
  return DIRECTIVES.filter((s) => s.name === name);
}

/** The spec of `name` allowed in `context`, if any. */
export function findDirective(name: string, context: ConfigContext): DirectiveSpec | undefined {
  return DIRECTIVES.find((s) => s.name === name && s.contexts.includes(context));
}

/** The single spec for a name in rtmp{}/main contexts, used by the loader for defaults. */
export function directiveSpec(name: string, context: ConfigContext): DirectiveSpec {
  const spec = findDirective(name, context);
  if (spec === undefined) throw new Error(`internal: no directive "${name}" in ${context}`);
  return spec;
}

/** All directive names, without duplicates, in table order. */
export function directiveNames(): readonly string[] {
  return [...new Set(DIRECTIVES.map((s) => s.name))];
}
