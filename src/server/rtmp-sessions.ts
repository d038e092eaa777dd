import type net from 'node:net';
import type { PlaybackEvents, SessionInfo } from '../app/chain.js';
import { onStatusMessage } from '../rtmp/commands.js';
import type { Application, PlayingStream, StreamService } from '../app/service.js';
import { ErrorCode, serverError, type ServerError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import { closedConnectionBytes } from '../core/metrics.js';
import type { StatSnapshot } from '../http/stat.js';
import { LiveReader } from '../live/reader.js';
import {
  RtmpConnection,
  type ConnectInfo,
  type ConnectionHandler,
  type PlayHandle,
  type PlayInfo,
  type PlayerOutput,
  type PublishHandle,
  type PublishInfo,
  type RedirectRole,
} from '../rtmp/connection.js';
import type { WriteGroup } from '../rtmp/output.js';
import type { SocketInput } from '../rtmp/socket-input.js';
import type { Applications, Listener, ServerBlock } from './applications.js';

/** A session's state as the handler sees it. */
interface Session {
  readonly conn: RtmpConnection;
  /** its listener's block when it connects (at the accept before): a reload meanwhile gives it the configuration of now */
  block: ServerBlock;
  /** undefined: the warm-up's private listener */
  readonly listener: Listener | undefined;
  /** a connection of the boot warm-up (not shown, not counted) */
  readonly internal: boolean;
  app: Application | undefined;
  info: SessionInfo | undefined;
}

export interface RtmpSessionsDeps {
  readonly apps: Applications;
  readonly service: StreamService;
  readonly writeGroup: WriteGroup;
  readonly sharedReader: SocketInput | undefined;
  readonly log: Logger;
}

/**
 * The RTMP protocol's side of the server: every accepted RTMP connection, and
 * the connection handler that turns its connect, publish and play into calls
 * of the stream service (src/app/service.ts). It knows the listeners' server
 * blocks (applications, limits), not what the chain does.
 */
export class RtmpSessions {
  private readonly sessions = new Map<RtmpConnection, Session>();
  /** connections accepted since start (ids are its base-36 count) */
  accepted = 0;
  private internalCount = 0;

  constructor(private readonly deps: RtmpSessionsDeps) {}

  /** A client of a listener's block, or of the warm-up's private one (`internal`). The listener accepted it paused. */
  accept(accepted: net.Socket, block: ServerBlock, listener: Listener | undefined, internal: boolean): void {
    const { log, sharedReader, writeGroup } = this.deps;
    const max = block.config.maxConnections;
    if (!internal && max > 0 && this.blockConnections(block.group) >= max) {
      log.warn({ remote: `${accepted.remoteAddress}:${accepted.remotePort}`, code: ErrorCode.ConnectionLimit, max }, 'connection refused: limit reached');
      accepted.destroy();
      return;
    }
    const id = internal ? `warmup-${(++this.internalCount).toString(36)}` : (++this.accepted).toString(36);
    const proxyProtocol = listener?.spec.proxyProtocol === true;
    let options = proxyProtocol ? { ...block.connectionOptions, proxyProtocol } : block.connectionOptions;
    let socket = accepted;
    if (block.config.sharedRead && sharedReader !== undefined) {
      // reads start on a later turn of the event loop, when conn (below) exists
      const adopted = sharedReader.adopt(accepted, {
        data: (buffer, start, end) => conn.receive(buffer, start, end),
        end: () => conn.peerEnded(),
        error: (errno) => conn.readFailed(errno),
      });
      if (adopted.socket !== undefined) {
        socket = adopted.socket;
        options = { ...options, sharedInput: true };
      } else {
        log.debug({ conn: id, reason: adopted.reason }, 'shared read buffer not used for this connection');
      }
    }
    const conn = new RtmpConnection(id, socket, this.handler, options, internal ? silentLogger() : log, writeGroup);
    // a socket read the usual way starts here (an adopted one is read by the shared reader)
    if (options.sharedInput !== true) accepted.resume();
    this.sessions.set(conn, { conn, block, listener, internal, app: undefined, info: undefined });
  }

  /** Timeouts and pings of every connection (the server's one housekeeping timer). */
  tick(now: number): void {
    for (const s of this.sessions.values()) s.conn.tick(now);
  }

  /** Connections, the warm-up's not counted. */
  get count(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (!s.internal) n++;
    return n;
  }

  /** Every connection, the warm-up's included. */
  get size(): number {
    return this.sessions.size;
  }

  get hasInternal(): boolean {
    for (const s of this.sessions.values()) if (s.internal) return true;
    return false;
  }

  /** Closes the warm-up's connections that are left. */
  destroyInternal(): void {
    for (const s of [...this.sessions.values()]) if (s.internal) s.conn.output.destroy();
  }

  /** Server shutdown: players hear their streams end, publishers are closed; then every connection closes. */
  shutdownAll(): void {
    for (const s of [...this.sessions.values()]) s.conn.shutdown();
  }

  destroyAll(): void {
    for (const s of [...this.sessions.values()]) s.conn.output.destroy();
  }

  /** Disconnects a connection by id (control API); true if it existed. */
  drop(id: string, reason: string): boolean {
    for (const { conn, internal } of this.sessions.values()) {
      if (conn.id === id && !internal) {
        conn.fail(serverError(ErrorCode.Refused, reason), 'info');
        return true;
      }
    }
    return false;
  }

  /** Redirects a connection's NetStreams (control API, RtmpConnection.redirect); how many were switched. */
  redirect(id: string, role: RedirectRole, name: string | undefined, newName: string): number {
    for (const { conn, internal } of this.sessions.values()) {
      if (conn.id === id && !internal) return conn.redirect(role, name, newName);
    }
    return 0;
  }

  /** The connections part of the stat page's snapshot. */
  connections(): StatSnapshot['connections'] {
    return [...this.sessions.values()]
      .filter((s) => !s.internal)
      .map(({ conn }) => ({
        id: conn.id,
        remote: conn.remote,
        remoteAddress: conn.remoteAddress,
        app: conn.app,
        flashVer: conn.connectInfo?.flashVer ?? '',
        swfUrl: conn.connectInfo?.swfUrl ?? '',
        pageUrl: conn.connectInfo?.pageUrl ?? '',
        tcUrl: conn.connectInfo?.tcUrl ?? '',
        connectedAt: conn.connectedAt,
        bytesIn: conn.bytesIn,
        bytesOut: conn.bytesOut,
        streams: conn.activeStreams(),
      }));
  }

  /** The sessions counted against a block's max_connections. */
  private blockConnections(group: object): number {
    let n = 0;
    for (const s of this.sessions.values()) if (!s.internal && s.block.group === group) n++;
    return n;
  }

  private session(conn: RtmpConnection): Session & { app: Application; info: SessionInfo } {
    const s = this.sessions.get(conn);
    if (s?.app === undefined || s.info === undefined) throw serverError(ErrorCode.ProtocolViolation, 'not connected');
    return s as Session & { app: Application; info: SessionInfo };
  }

  private readonly handler: ConnectionHandler = {
    connect: async (conn: RtmpConnection, info: ConnectInfo): Promise<void> => {
      const s = this.sessions.get(conn);
      if (s === undefined) throw serverError(ErrorCode.ProtocolViolation, 'unknown connection');
      const block = s.listener?.block ?? s.block;
      s.block = block;
      const app = block.apps.get(info.app);
      if (app === undefined) throw serverError(ErrorCode.AppNotFound, `application "${info.app}" not found`);
      // the session uses the chain from now on, so that a reload meanwhile does not close it under the hook
      if (!this.deps.apps.claim(app)) throw serverError(ErrorCode.AppNotFound, `application "${info.app}" was closed by a reload`);
      const session: SessionInfo = {
        id: conn.id,
        protocol: 'rtmp',
        remoteAddress: conn.remoteAddress,
        app: info.app,
        query: info.query,
        tcUrl: info.tcUrl,
        flashVer: info.flashVer,
        swfUrl: info.swfUrl,
        pageUrl: info.pageUrl,
        log: conn.log,
        stop: (reason: string) => conn.fail(serverError(ErrorCode.Refused, reason), 'info'),
      };
      try {
        await this.deps.service.connect(app, session);
      } catch (e) {
        this.deps.apps.release(app.chain);
        throw e;
      }
      if (this.sessions.get(conn) !== s) {
        // the client left while the chain decided: closed() found no application to release
        this.deps.service.disconnect(app, session);
        this.deps.apps.release(app.chain);
        throw serverError(ErrorCode.ClientClosed, 'the client left during connect');
      }
      s.app = app;
      s.info = session;
    },

    publish: async (conn: RtmpConnection, req: PublishInfo): Promise<PublishHandle> => {
      const { app, info } = this.session(conn);
      // record_notify: NetStream.Record.Start / Stop on the publisher's stream
      const status = (level: 'status' | 'error', code: string, description: string): void => conn.send(onStatusMessage(req.streamId, level, code, description, { details: req.name }));
      return this.deps.service.publish(app, info, { name: req.name, query: req.query, type: req.type, status });
    },

    play: async (conn: RtmpConnection, req: PlayInfo, output: PlayerOutput): Promise<PlayHandle> => {
      const { app, info } = this.session(conn);
      const live = app.config.live;
      output.configure({ publishNotify: live.publishNotify, playRestart: live.playRestart, closeOnUnpublish: !live.idleStreams, interleave: live.interleave });
      let log = conn.log.child({ stream: req.name });
      const limits = { ...app.readerLimits, waitKey: live.waitKey, waitVideo: live.waitVideo };
      const reader = new LiveReader(output, limits, (r) =>
        log.warn({ dropped: r.dropped, episodes: r.dropEpisodes, queued: output.queuedBytes() }, 'slow player: dropping to the next keyframe'),
      );
      // when the live step accepts, the status messages, metadata, codec headers and cached GOP leave in one writev(2);
      // the status names the stream as the chain left it (a webhook may have renamed it)
      let corked = false;
      const accept = (name: string): void => {
        corked = true;
        if (name !== req.name) log = conn.log.child({ stream: name });
        output.cork();
        output.begin(name, req.reset);
      };
      // a recorded stream (VOD) tells its end through these
      let playedName = req.name;
      const events: PlaybackEvents = {
        complete: (durationMs) => output.complete(playedName, durationMs),
        failed: (message) => output.failed(playedName, message),
      };
      let playing: PlayingStream;
      try {
        playing = await this.deps.service.play(app, info, { name: req.name, query: req.query, start: req.start, duration: req.duration }, reader, accept, events);
      } finally {
        if (corked) output.uncork();
      }
      playedName = playing.name;
      const playback = playing.playback;
      if (playback !== undefined) output.recorded();
      return {
        resume: () => playing.resume(),
        close: () => {
          playing.close();
          if (reader.dropped > 0) log.info({ dropped: reader.dropped, episodes: reader.dropEpisodes }, 'player dropped frames');
        },
        ...(playback !== undefined ? { seek: (ms: number) => playback.seek(ms), pause: (paused: boolean) => playback.pause(paused) } : {}),
      };
    },

    streamLength: (conn: RtmpConnection, name: string): Promise<number | undefined> => {
      const { app } = this.session(conn);
      return this.deps.service.streamLength(app, name);
    },

    closed: (conn: RtmpConnection, _error: ServerError | undefined): void => {
      const s = this.sessions.get(conn);
      this.sessions.delete(conn);
      if (s !== undefined && !s.internal) {
        closedConnectionBytes.inc({ protocol: 'rtmp', direction: 'in' }, conn.bytesIn);
        closedConnectionBytes.inc({ protocol: 'rtmp', direction: 'out' }, conn.bytesOut);
      }
      if (s?.app !== undefined && s.info !== undefined) {
        this.deps.service.disconnect(s.app, s.info);
        this.deps.apps.release(s.app.chain);
      }
    },
  };
}
