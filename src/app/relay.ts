/**
 * Relays (nginx-rtmp's `push` / `pull`): this server as an RTMP client of
 * another one.
 *
 * push — every stream published in the application is re-published to each
 * `push` target (restreaming to YouTube, Twitch, a backup origin...). The relay
 * is one more reader of the local stream, with the same bounded queue as a
 * player: a slow or stalled remote drops frames up to the next keyframe and
 * never slows the local stream. Media leaves in the shared chunk encoding of
 * the players (`wireFor`), so a push costs no extra encoding when its chunk
 * size and message stream id match the players'. Metadata, codec headers and
 * the cached GOP come with the reader's replay on attach. A failed or dropped
 * connection is retried after `push_reconnect`, doubling up to a cap, for as
 * long as the local stream lives; the local stream never notices.
 *
 * pull — a player asking for a stream that nobody publishes here starts one
 * pull from the first matching `pull` target: the remote stream is played and
 * published locally under the player's name, shared by every later player.
 * The local publish happens with the first remote media message (and ends on
 * the remote's UnpublishNotify / StreamEOF), so waiting players see a normal
 * stream start. When the last player has gone (and nobody else reads) the
 * pull stops after a short linger. `static` pulls start with the module and
 * reconnect until close(). A pull that cannot connect is retried after
 * `pull_reconnect`, doubling up to the same cap, while players wait (static:
 * always), rotating through the matching targets.
 *
 * Parameters, as nginx-rtmp reads them (see RelayTarget):
 * - `name=` binds the relay to one local stream (push: only that stream is
 *   pushed; pull: only that name is pulled; static pull: the local name).
 * - the remote stream name is `playPath=` / the URL path after the app, else
 *   the local stream name.
 * - the remote app is `app=` / the URL's first path segment, else the local app.
 * - `tcUrl=`, `pageUrl=`, `swfUrl=`, `flashVer=` go into the connect command;
 *   `live=1` plays with start -1, else `start=` (default -2).
 *
 * session_relay: off (default) — a push ends when its stream's publish ends;
 * a player's hold on a pull ends with its play. on — both last until the
 * session (connection) that started them closes: a push survives an
 * unpublish/republish on the same connection, and a player that stops playing
 * keeps the pull alive until it disconnects.
 *
 * Bounds: an application runs at most `maxPulls` (32) pulls at once, and
 * a connection whose play needs a new pull may hold at most
 * `maxSessionPulls` (4) pulls; beyond either the play is refused. A play
 * refused after this module let it through (by a later module or the live
 * step) releases its hold at once (the chain calls playDone with `refused`,
 * also under session_relay); a pull nobody else holds then stops after the
 * usual linger, so a client retrying a play refused by `idle_streams off`
 * finds the stream the pull has meanwhile published.
 *
 * A pulled stream is published through the stream service like a local
 * publisher (src/app/service.ts): the whole chain applies to it, with the
 * upstream as its session (protocol 'relay', the upstream's address for
 * allow/deny, on_publish and on_publish_done, exec, push, `meta`,
 * drop_idle_publisher); media that arrives while the chain decides waits
 * (4 MiB at most). Loops: pushing a stream back to the same
 * app/name of the same server is refused by the hub (the name is busy) and
 * only costs a retry every few seconds; longer cycles through other names or
 * servers are the operator's to avoid (nginx-rtmp has the same rule).
 */
import type { AmfObject } from '../rtmp/amf-types.js';
import { encodeAmf0 } from '../rtmp/amf0.js';
import { encodeMessage } from '../rtmp/chunk.js';
import { RtmpClient } from '../rtmp/client.js';
import { StatusCode, commandMessage } from '../rtmp/commands.js';
import { ChunkStreamId, MessageType, type RtmpMessage } from '../rtmp/messages.js';
import { wireFor } from '../rtmp/player.js';
import type { ApplicationConfig, RelayTarget } from '../config/types.js';
import { ErrorCode, describeError, isServerError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import type { LiveHub } from '../live/hub.js';
import { DEFAULT_READER_LIMITS, LiveReader, type FrameSink, type ReaderLimits } from '../live/reader.js';
import type { LiveStream, StreamOptions } from '../live/stream.js';
import { streamOptionsFor } from './stream-options.js';
import type { AppModule, ModuleDeps, PlayContext, PublishContext, PublishingStream, SessionInfo, StreamPublisher } from './chain.js';

/** Tuning knobs; the defaults are what the server runs with. */
export interface RelayOptions {
  /** how long a pull stays up after its last player left (ms, default 5000) */
  readonly pullLinger?: number;
  /** the longest wait between two reconnection attempts (ms, default 30000) */
  readonly reconnectCap?: number;
  /** give up one connection attempt after this (ms, default 10000) */
  readonly connectTimeout?: number;
  /** chunk size of relay connections (default 4096, the default `chunk_size`, so pushes share the players' encoding) */
  readonly chunkSize?: number;
  /** a push's output queue bound (default: the live reader's default) */
  readonly readerLimits?: ReaderLimits;
  /** pulls (not static) one application runs at once, lingering ones included (default 32) */
  readonly maxPulls?: number;
  /** distinct pulls one connection may hold when its play needs a new one (default 4) */
  readonly maxSessionPulls?: number;
}

const DEFAULT_PULL_LINGER = 5000;
const DEFAULT_RECONNECT_CAP = 30_000;
const DEFAULT_CONNECT_TIMEOUT = 10_000;
const DEFAULT_RELAY_CHUNK_SIZE = 4096;
/**
 * A `pull` without `name=` opens one upstream connection per distinct name a
 * client plays: without a bound, a client playing many names makes this
 * server open as many connections to the origin. A play that would need a
 * new pull beyond either bound is refused (ERR_ACCESS_REFUSED).
 */
export const DEFAULT_MAX_PULLS = 32;
export const DEFAULT_MAX_SESSION_PULLS = 4;
/** a push_reconnect of 0 would spin: never retry faster than this */
const MIN_RECONNECT = 100;
const RELAY_FLASHVER = 'FMLE/3.0 (compatible; rtmp-server relay)';
/** upstream media kept while the application's chain decides on the pulled stream's local publish (a webhook) */
const PULL_WAITING_BYTES = 4 * 1024 * 1024;

/** Where one relay connects, resolved from a target and the local names. */
export interface RemoteEndpoint {
  /** rtmp://host:port/app: what RtmpClient.connect takes */
  readonly connectUrl: string;
  readonly host: string;
  readonly port: number;
  readonly app: string;
  /** the remote stream name (publish / play argument, may carry ?args) */
  readonly stream: string;
  /** tcUrl, pageUrl, swfUrl, flashVer for the connect command */
  readonly connectProperties: AmfObject;
  /** rtmp://host:port/app/stream, for logs */
  readonly label: string;
}

/** Resolves a push/pull target for one local stream, as nginx-rtmp does. */
export function resolveRelayTarget(target: RelayTarget, localApp: string, localName: string): RemoteEndpoint {
  const m = /^rtmp:\/\/(\[[^\]]+\]|[^/:?]+)(?::(\d+))?(?:\/|$)/i.exec(target.url);
  if (m === null) throw serverError(ErrorCode.ConfigBadValue, `relay URL without a host: ${target.url}`);
  const hostText = m[1]!;
  const host = hostText.replace(/^\[|\]$/g, '');
  const port = m[2] !== undefined ? Number(m[2]) : 1935;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw serverError(ErrorCode.ConfigBadValue, `relay URL with a bad port: ${target.url}`);
  const app = target.app !== undefined && target.app !== '' ? target.app : localApp;
  const stream = target.playPath !== undefined && target.playPath !== '' ? target.playPath : localName;
  const connectProperties: AmfObject = { flashVer: RELAY_FLASHVER };
  const p = target.params;
  if (p['tcUrl'] !== undefined) connectProperties['tcUrl'] = p['tcUrl'];
  if (p['pageUrl'] !== undefined) connectProperties['pageUrl'] = p['pageUrl'];
  if (p['swfUrl'] !== undefined) connectProperties['swfUrl'] = p['swfUrl'];
  if (p['flashVer'] !== undefined) connectProperties['flashVer'] = p['flashVer'];
  const base = `rtmp://${hostText}:${port}/${app}`;
  return { connectUrl: base, host, port, app, stream, connectProperties, label: `${base}/${stream}` };
}

/** Delay before reconnection attempt `failures` (0-based): base, doubling, capped. */
export function relayBackoff(base: number, failures: number, cap: number): number {
  const b = Math.max(base, MIN_RECONNECT);
  return Math.min(b * 2 ** Math.min(failures, 16), Math.max(cap, b));
}

/** What every relay of one application shares. */
interface RelayEnv {
  readonly hub: LiveHub;
  /** the stream service: a pulled stream is published through it, so the whole chain applies to it */
  readonly publisher: () => StreamPublisher | undefined;
  readonly app: ApplicationConfig;
  readonly streamOptions: StreamOptions;
  /** push_reconnect */
  readonly reconnectBase: number;
  /** pull_reconnect */
  readonly pullReconnectBase: number;
  readonly reconnectCap: number;
  readonly connectTimeout: number;
  readonly chunkSize: number;
  readonly readerLimits: ReaderLimits;
  readonly pullLinger: number;
  readonly maxPulls: number;
  readonly maxSessionPulls: number;
}

function isOnMetaData(payload: Buffer): boolean {
  // AMF0 string marker, u16 length 10, "onMetaData"
  return payload.length >= 13 && payload[0] === 0x02 && payload.readUInt16BE(1) === 10 && payload.toString('latin1', 3, 13) === 'onMetaData';
}

/** Script data for a remote publish: metadata goes as @setDataFrame("onMetaData", ...), as encoders send it. */
function dataWire(frame: MediaFrame, chunkSize: number, streamId: number): Buffer {
  const payload = isOnMetaData(frame.payload) ? Buffer.concat([encodeAmf0(['@setDataFrame']), frame.payload]) : frame.payload;
  return encodeMessage({ csid: ChunkStreamId.Data, type: MessageType.DataAmf0, streamId, timestamp: frame.timestamp, payload }, chunkSize);
}

function timer(ms: number, f: () => void): NodeJS.Timeout {
  const t = setTimeout(f, ms);
  t.unref();
  return t;
}

/** One local stream pushed to one target. */
class PushRelay {
  /** the session whose publish started it (session_relay) */
  owner: string;
  /** times it got to publishing on the remote */
  connections = 0;
  private client: RtmpClient | undefined = undefined;
  private remoteStreamId = 0;
  private reader: LiveReader | undefined = undefined;
  private stream: LiveStream | undefined = undefined;
  private retry: NodeJS.Timeout | undefined = undefined;
  private failures = 0;
  private closed = false;

  constructor(
    readonly name: string,
    readonly endpoint: RemoteEndpoint,
    owner: string,
    private readonly env: RelayEnv,
    private readonly log: Logger,
  ) {
    this.owner = owner;
  }

  start(): void {
    void this.attempt();
  }

  private async attempt(): Promise<void> {
    this.retry = undefined;
    if (this.closed) return;
    let client: RtmpClient | undefined;
    try {
      client = await RtmpClient.connect(this.endpoint.connectUrl, {
        chunkSize: this.env.chunkSize,
        timeout: this.env.connectTimeout,
        connectProperties: this.endpoint.connectProperties,
      });
      if (this.closed) {
        client.destroy();
        return;
      }
      const c = client;
      this.client = c;
      c.onClose = (err) => this.lost(c, err);
      const streamId = await c.publish(this.endpoint.stream, 'live');
      if (this.closed || this.client !== c) return;
      this.attach(c, streamId);
    } catch (e) {
      if (this.closed) return;
      if (client !== undefined) {
        client.onClose = () => {};
        client.destroy();
      }
      this.client = undefined;
      const delay = this.schedule();
      const d = describeError(e);
      const hint = d.code === ErrorCode.ClientRejected && /BadName|busy/i.test(d.message) ? ' (the remote stream is busy: another publisher, or a relay loop)' : '';
      this.log.warn({ url: this.endpoint.label, code: d.code, err: d.message, retryInMs: delay }, `push relay failed${hint}; retrying`);
    }
  }

  /** Publishing on the remote: attach a bounded reader whose sink writes to the relay socket. */
  private attach(c: RtmpClient, streamId: number): void {
    const socket = c.socket;
    const { chunkSize } = this.env;
    this.remoteStreamId = streamId;
    const sink: FrameSink = {
      queuedBytes: () => socket.writableLength,
      // runs inside the local publisher's hot path: never throw into it
      write: (f) => {
        if (socket.destroyed || !socket.writable) return;
        try {
          socket.write(f.kind === FrameKind.Data ? dataWire(f, chunkSize, streamId) : wireFor(f, chunkSize, streamId));
        } catch (e) {
          c.destroy(e instanceof Error ? e : new Error(String(e)));
        }
      },
      cork: () => socket.cork(),
      uncork: () => socket.uncork(),
      onStreamStart: () => {},
      onStreamStop: () => {},
    };
    const reader = new LiveReader(sink, this.env.readerLimits, (r) =>
      this.log.warn({ url: this.endpoint.label, dropped: r.dropped, episodes: r.dropEpisodes, queued: socket.writableLength }, 'slow push target: dropping to the next keyframe'),
    );
    this.failures = 0;
    this.connections++;
    this.reader = reader;
    this.stream = this.env.hub.subscribe(this.env.app.name, this.name, reader, this.env.streamOptions);
    this.log.info({ url: this.endpoint.label, streamId }, 'push relay publishing');
  }

  private detach(): void {
    const { reader, stream } = this;
    this.reader = undefined;
    this.stream = undefined;
    if (reader === undefined || stream === undefined) return;
    this.env.hub.unsubscribe(stream, reader);
    if (reader.dropped > 0) this.log.info({ url: this.endpoint.label, dropped: reader.dropped, episodes: reader.dropEpisodes }, 'push relay dropped frames');
  }

  /** The remote connection closed while publishing: retry (connection failures during setup are handled by attempt()). */
  private lost(c: RtmpClient, err: Error | undefined): void {
    if (this.closed || this.client !== c || this.reader === undefined) return;
    this.detach();
    this.client = undefined;
    const delay = this.schedule();
    const d = describeError(err ?? serverError(ErrorCode.ClientClosed, 'connection closed by the remote'));
    this.log.warn({ url: this.endpoint.label, code: d.code, err: d.message, retryInMs: delay }, 'push relay connection lost; reconnecting');
  }

  private schedule(): number {
    const delay = relayBackoff(this.env.reconnectBase, this.failures++, this.env.reconnectCap);
    this.retry = timer(delay, () => void this.attempt());
    return delay;
  }

  /** Ends the relay: unpublishes politely on the remote and closes. Never rejects. */
  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    const publishing = this.reader !== undefined;
    this.detach();
    const c = this.client;
    this.client = undefined;
    if (c === undefined) return;
    c.onClose = () => {};
    if (publishing) {
      c.send(commandMessage(0, 'FCUnpublish', 0, null, this.endpoint.stream));
      c.send(commandMessage(0, 'deleteStream', 0, null, this.remoteStreamId));
    }
    this.log.info({ url: this.endpoint.label, reason }, 'push relay closed');
    try {
      await c.close();
    } catch {
      c.destroy();
    }
  }
}

/** One local stream fed from a remote play, shared by its players. */
class PullRelay {
  /** sessions holding the pull, with how many plays each */
  private readonly holders = new Map<string, number>();
  private client: RtmpClient | undefined = undefined;
  private playing = false;
  private stream: LiveStream | undefined = undefined;
  /** the accepted local publish (through the stream service) */
  private publishing: PublishingStream | undefined = undefined;
  /** the local publish is being decided by the application's chain (webhooks...) */
  private deciding = false;
  /** media of the upstream that arrived while the chain decided, delivered once it accepted */
  private waiting: RtmpMessage[] = [];
  private waitingBytes = 0;
  private retry: NodeJS.Timeout | undefined = undefined;
  private linger: NodeJS.Timeout | undefined = undefined;
  private failures = 0;
  /** script data dropped for its size (the first one is logged) */
  private oversizedData = 0;
  private tries = 0;
  private closed = false;
  private readonly pub: { readonly id: string; readonly remote: string };
  /** times it got to playing on a remote */
  connections = 0;

  constructor(
    readonly name: string,
    private readonly targets: readonly RelayTarget[],
    readonly isStatic: boolean,
    private readonly env: RelayEnv,
    private readonly log: Logger,
    private readonly onEnd: (p: PullRelay) => void,
    id: string,
  ) {
    this.pub = { id, remote: targets[0]?.url ?? '' };
  }

  start(): void {
    void this.attempt();
  }

  hold(session: string): void {
    this.holders.set(session, (this.holders.get(session) ?? 0) + 1);
    if (this.linger !== undefined) clearTimeout(this.linger);
    this.linger = undefined;
  }

  heldBy(session: string): boolean {
    return this.holders.has(session);
  }

  release(session: string, all = false): void {
    const n = this.holders.get(session);
    if (n === undefined) return;
    if (all || n <= 1) this.holders.delete(session);
    else this.holders.set(session, n - 1);
    this.maybeLinger();
  }

  private maybeLinger(): void {
    if (this.isStatic || this.closed || this.holders.size > 0 || this.linger !== undefined) return;
    this.linger = timer(this.env.pullLinger, () => {
      this.linger = undefined;
      if (this.closed || this.holders.size > 0) return;
      // readers that came without a play (HTTP-FLV, other modules) keep it too
      if ((this.env.hub.get(this.env.app.name, this.name)?.readers.size ?? 0) > 0) {
        this.maybeLinger();
        return;
      }
      this.log.info({ stream: this.name }, 'pull relay: no players left');
      this.stop();
    });
  }

  private async attempt(): Promise<void> {
    this.retry = undefined;
    if (this.closed) return;
    const local = this.env.hub.get(this.env.app.name, this.name);
    if (local?.publisher !== undefined && local.publisher.id !== this.pub.id) {
      // somebody publishes this name here: nothing to pull, look again later
      this.schedule();
      return;
    }
    const target = this.targets[this.tries++ % this.targets.length]!;
    let ep: RemoteEndpoint;
    try {
      ep = resolveRelayTarget(target, this.env.app.name, this.name);
    } catch (e) {
      this.log.error({ url: target.url, ...describeError(e) }, 'pull relay: bad target');
      this.schedule();
      return;
    }
    let client: RtmpClient | undefined;
    try {
      client = await RtmpClient.connect(ep.connectUrl, { chunkSize: this.env.chunkSize, timeout: this.env.connectTimeout, connectProperties: ep.connectProperties });
      if (this.closed) {
        client.destroy();
        return;
      }
      const c = client;
      this.client = c;
      c.onClose = (err) => this.lost(c, ep, err);
      c.onMedia = (m) => this.onMedia(c, m);
      c.onStatus = (info) => {
        const code = info['code'];
        if (code === StatusCode.PlayUnpublishNotify || code === StatusCode.PlayStop) this.remoteStopped(c);
      };
      c.onUserControl = (type) => {
        if (type === 'streamEof') this.remoteStopped(c);
      };
      // the frames of one socket read leave in one write per player
      let batched: LiveStream | undefined;
      c.socket.prependListener('data', () => {
        batched = this.client === c ? this.stream : undefined;
        batched?.beginBatch();
      });
      c.socket.on('data', () => {
        batched?.endBatch();
        batched = undefined;
      });
      const start = target.live === true ? -1 : Number(target.params['start'] ?? -2);
      await c.play(ep.stream, Number.isFinite(start) ? start : -2);
      if (this.closed || this.client !== c) return;
      this.playing = true;
      this.failures = 0;
      this.connections++;
      this.log.info({ url: ep.label, stream: this.name }, 'pull relay playing');
    } catch (e) {
      if (this.closed) return;
      if (client !== undefined) {
        client.onClose = () => {};
        client.destroy();
      }
      if (this.client === client) this.client = undefined;
      this.unpublishLocal();
      const delay = this.schedule();
      this.log.warn({ url: ep.label, stream: this.name, ...describeError(e), retryInMs: delay }, 'pull relay failed; retrying');
    }
  }

  private onMedia(c: RtmpClient, m: RtmpMessage): void {
    if (this.client !== c || this.closed) return;
    const p = this.publishing;
    if (p !== undefined) {
      this.deliver(p, m);
      return;
    }
    // the first media message publishes the stream locally; what comes while the chain decides waits (bounded)
    if (this.waitingBytes + m.payload.length <= PULL_WAITING_BYTES) {
      this.waiting.push(m);
      this.waitingBytes += m.payload.length;
    }
    // audio or video starts it: script data alone (|RtmpSampleAccess of an idle remote stream) does not
    const media = m.type === MessageType.Audio || m.type === MessageType.Video;
    if (media && !this.deciding) void this.publishLocal(c);
  }

  /** One upstream message into the local publish's ingest (the same normaliser as a local publisher's). */
  private deliver(p: PublishingStream, m: RtmpMessage): void {
    try {
      if (m.type === MessageType.Audio) p.media(FrameKind.Audio, m.timestamp, m.payload);
      else if (m.type === MessageType.Video) p.media(FrameKind.Video, m.timestamp, m.payload);
      else if (m.type === MessageType.DataAmf0 || m.type === MessageType.DataAmf3) p.data(m.type, m.timestamp, m.payload);
    } catch (e) {
      const d = describeError(e);
      // oversized script data is logged once per relay (a hostile upstream could send it in every message)
      if ((d.code === ErrorCode.MessageTooLarge || d.code === ErrorCode.AmfTooLarge) && this.oversizedData++ === 0) {
        this.log.warn({ stream: this.name, type: m.type, ...d }, 'pull relay: oversized script data dropped (logged once)');
      } else {
        this.log.debug({ stream: this.name, type: m.type, ...d }, 'pull relay: message skipped');
      }
    }
  }

  /**
   * Publishes the pulled stream through the stream service, like a local
   * publisher: access, notify (on_publish), exec, push and the live step with
   * `meta` and drop_idle_publisher all apply. The session is the upstream.
   */
  private async publishLocal(c: RtmpClient): Promise<void> {
    const service = this.env.publisher();
    this.deciding = true;
    const session: SessionInfo = {
      id: this.pub.id,
      protocol: 'relay',
      remoteAddress: c.socket.remoteAddress ?? c.url.host,
      app: this.env.app.name,
      query: '',
      tcUrl: c.url.tcUrl,
      flashVer: RELAY_FLASHVER,
      swfUrl: '',
      pageUrl: '',
      log: this.log,
      stop: (reason: string) => this.stopped(reason),
    };
    try {
      if (service === undefined) throw serverError(ErrorCode.Refused, 'no stream service to publish with');
      const p = await service.publish(session, { name: this.name, query: '', type: 'live' });
      if (this.closed || this.client !== c) {
        p.close();
        return;
      }
      this.publishing = p;
      this.stream = p.stream;
      this.log.info({ stream: this.name, url: this.pub.remote }, 'pull relay: stream published');
      const waiting = this.waiting;
      this.waiting = [];
      this.waitingBytes = 0;
      p.beginBatch();
      try {
        for (const m of waiting) this.deliver(p, m);
      } finally {
        p.endBatch();
      }
    } catch (e) {
      // refused by the chain, or a local publisher took the name (it wins): the pull waits and looks again later
      this.waiting = [];
      this.waitingBytes = 0;
      if (this.closed || this.client !== c) return;
      const d = describeError(e);
      this.client = undefined;
      this.playing = false;
      c.onClose = () => {};
      c.destroy();
      const delay = this.schedule();
      this.log.warn({ stream: this.name, code: d.code, err: d.message, retryInMs: delay }, `pull relay: cannot publish locally${isServerError(e, ErrorCode.StreamBusy) ? ' (a local publisher has it)' : ''}`);
    } finally {
      this.deciding = false;
    }
  }

  private unpublishLocal(): void {
    const p = this.publishing;
    this.publishing = undefined;
    this.stream = undefined;
    this.waiting = [];
    this.waitingBytes = 0;
    p?.close();
  }

  private remoteStopped(c: RtmpClient): void {
    if (this.client !== c || this.publishing === undefined) return;
    this.log.info({ stream: this.name }, 'pull relay: remote stream stopped');
    this.unpublishLocal();
  }

  private lost(c: RtmpClient, ep: RemoteEndpoint, err: Error | undefined): void {
    if (this.closed || this.client !== c || !this.playing) return;
    this.client = undefined;
    this.playing = false;
    this.unpublishLocal();
    const delay = this.schedule();
    const d = describeError(err ?? serverError(ErrorCode.ClientClosed, 'connection closed by the remote'));
    this.log.warn({ url: ep.label, stream: this.name, code: d.code, err: d.message, retryInMs: delay }, 'pull relay connection lost; reconnecting');
  }

  private schedule(): number {
    if (this.retry !== undefined) clearTimeout(this.retry);
    const delay = relayBackoff(this.env.pullReconnectBase, this.failures++, this.env.reconnectCap);
    this.retry = timer(delay, () => void this.attempt());
    return delay;
  }

  /** The hub asked the publisher to stop (control API, drop_idle_publisher). */
  private stopped(reason: string): void {
    this.log.info({ stream: this.name, reason }, 'pull relay stopped');
    if (!this.isStatic) {
      this.stop();
      return;
    }
    // a static pull comes back
    const c = this.client;
    this.client = undefined;
    this.playing = false;
    if (c !== undefined) {
      c.onClose = () => {};
      c.destroy();
    }
    this.unpublishLocal();
    this.schedule();
  }

  /** Ends the pull for good. */
  stop(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    if (this.linger !== undefined) clearTimeout(this.linger);
    this.retry = this.linger = undefined;
    this.unpublishLocal();
    const c = this.client;
    this.client = undefined;
    if (c !== undefined) {
      c.onClose = () => {};
      c.destroy();
    }
    this.onEnd(this);
  }
}

/** The relay step of one application's chain. */
class RelayModule implements AppModule {
  readonly name = 'relay';
  private readonly pushes = new Map<string, PushRelay>();
  private readonly pulls = new Map<string, PullRelay>();
  private readonly plays = new WeakMap<PlayContext, PullRelay>();
  private readonly publishes = new WeakMap<PublishContext, string>();
  private readonly log: Logger;
  private readonly env: RelayEnv;
  private pullCount = 0;
  private closed = false;

  constructor(
    private readonly app: ApplicationConfig,
    deps: ModuleDeps,
    options: RelayOptions,
  ) {
    this.log = deps.logger.child({ module: 'relay' });
    this.env = {
      hub: deps.hub,
      publisher: deps.publisher ?? (() => undefined),
      app,
      streamOptions: streamOptionsFor(app),
      reconnectBase: app.relay.pushReconnect,
      pullReconnectBase: app.relay.pullReconnect ?? app.relay.pushReconnect,
      reconnectCap: options.reconnectCap ?? DEFAULT_RECONNECT_CAP,
      connectTimeout: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
      chunkSize: options.chunkSize ?? DEFAULT_RELAY_CHUNK_SIZE,
      readerLimits: options.readerLimits ?? DEFAULT_READER_LIMITS,
      pullLinger: options.pullLinger ?? DEFAULT_PULL_LINGER,
      maxPulls: options.maxPulls ?? DEFAULT_MAX_PULLS,
      maxSessionPulls: options.maxSessionPulls ?? DEFAULT_MAX_SESSION_PULLS,
    };
    for (const t of app.relay.pull) {
      if (!t.isStatic || t.name === undefined || this.pulls.has(t.name)) continue;
      this.newPull(t.name, [t], true).start();
    }
  }

  private newPull(name: string, targets: readonly RelayTarget[], isStatic: boolean): PullRelay {
    const id = `relay-pull-${this.app.name}-${(++this.pullCount).toString(36)}`;
    const p = new PullRelay(name, targets, isStatic, this.env, this.log, (ended) => {
      if (this.pulls.get(ended.name) === ended) this.pulls.delete(ended.name);
    }, id);
    this.pulls.set(name, p);
    this.log.info({ stream: name, url: targets[0]?.url, static: isStatic }, 'pull relay created');
    return p;
  }

  async play(ctx: PlayContext, next: () => Promise<void>): Promise<void> {
    const name = ctx.name;
    let pull = this.pulls.get(name);
    if (pull === undefined && !this.closed) {
      // notify_relay_redirect: on_play redirected to a remote URL; pull it under the local (hashed) name
      const redirected = ctx.relayUrl !== undefined ? [targetFromUrl(ctx.relayUrl)] : undefined;
      const targets = redirected ?? this.app.relay.pull.filter((t) => !t.isStatic && (t.name === undefined || t.name === name));
      const local = this.env.hub.get(this.app.name, name);
      if (targets.length > 0 && local?.publisher === undefined) {
        this.checkPullBounds(ctx.session.id, name);
        pull = this.newPull(name, targets, false);
        pull.start();
      }
    }
    if (pull === undefined) return next();
    pull.hold(ctx.session.id);
    this.plays.set(ctx, pull);
    // a refusal further on comes back as playDone(ctx, true) from the chain
    await next();
  }

  /** Throws Refused when a new pull for this session would exceed maxPulls / maxSessionPulls. */
  private checkPullBounds(session: string, name: string): void {
    let running = 0;
    let held = 0;
    for (const p of this.pulls.values()) {
      if (p.isStatic) continue;
      running++;
      if (p.heldBy(session)) held++;
    }
    if (running >= this.env.maxPulls) {
      throw serverError(ErrorCode.Refused, `play ${name} refused: the application runs its maximum of ${this.env.maxPulls} pulls`);
    }
    if (held >= this.env.maxSessionPulls) {
      throw serverError(ErrorCode.Refused, `play ${name} refused: the connection holds its maximum of ${this.env.maxSessionPulls} pulls`);
    }
  }

  playDone(ctx: PlayContext, refused = false): void {
    // session_relay keeps an ended play's hold until the session closes; a refused play never held anything
    if (this.app.relay.sessionRelay && !refused) return;
    const pull = this.plays.get(ctx);
    this.plays.delete(ctx);
    pull?.release(ctx.session.id);
  }

  published(ctx: PublishContext, stream: LiveStream): void {
    if (this.closed) return;
    this.publishes.set(ctx, stream.name);
    // notify_relay_redirect: on_publish redirected to a remote URL; push there as well
    const targets = ctx.relayUrl !== undefined ? [...this.app.relay.push, targetFromUrl(ctx.relayUrl)] : this.app.relay.push;
    targets.forEach((t, i) => {
      if (t.name !== undefined && t.name !== stream.name) return;
      const key = `${stream.name}\u0000${i}`;
      const existing = this.pushes.get(key);
      if (existing !== undefined) {
        // session_relay: the push outlived an unpublish; it follows the new publisher
        existing.owner = ctx.session.id;
        return;
      }
      let ep: RemoteEndpoint;
      try {
        ep = resolveRelayTarget(t, this.app.name, stream.name);
      } catch (e) {
        this.log.error({ url: t.url, ...describeError(e) }, 'push relay: bad target');
        return;
      }
      const p = new PushRelay(stream.name, ep, ctx.session.id, this.env, this.log.child({ stream: stream.name }));
      this.pushes.set(key, p);
      this.log.info({ stream: stream.name, url: ep.label }, 'push relay created');
      p.start();
    });
  }

  publishDone(ctx: PublishContext): void {
    const name = this.publishes.get(ctx);
    this.publishes.delete(ctx);
    if (name === undefined || this.app.relay.sessionRelay) return;
    void this.closePushes((p) => p.name === name, 'publish ended');
  }

  disconnect(session: SessionInfo): void {
    for (const p of [...this.pulls.values()]) p.release(session.id, true);
    if (this.app.relay.sessionRelay) void this.closePushes((p) => p.owner === session.id, 'session closed');
  }

  private closePushes(which: (p: PushRelay) => boolean, reason: string): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, p] of [...this.pushes]) {
      if (!which(p)) continue;
      this.pushes.delete(key);
      closing.push(p.close(reason));
    }
    return Promise.all(closing).then(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of [...this.pulls.values()]) p.stop();
    this.pulls.clear();
    await this.closePushes(() => true, 'server stopping');
  }
}

/** A relay target for a whole rtmp://host[:port]/app/name[?args] URL (a notify redirect). */
export function targetFromUrl(url: string): RelayTarget {
  const m = /^rtmp:\/\/[^/]+\/([^/?]+)\/(.+)$/i.exec(url);
  return { url, app: m?.[1], name: undefined, playPath: m?.[2], live: undefined, isStatic: false, params: {} };
}

/** The relay module of an application, or undefined when it has no push or pull (nor relayed redirects). */
export function relayModule(app: ApplicationConfig, deps: ModuleDeps, options: RelayOptions = {}): AppModule | undefined {
  if (app.relay.push.length === 0 && app.relay.pull.length === 0 && !app.notify.relayRedirect) return undefined;
  return new RelayModule(app, deps, options);
}
