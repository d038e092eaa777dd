import type http from 'node:http';
import type { Socket } from 'node:net';
import type { SessionInfo } from '../app/chain.js';
import type { Application, PlayingStream, StreamService } from '../app/service.js';
import { EncodingKey, encodeShared, type OutputFormat } from '../core/encoding.js';
import { ErrorCode, describeError, isServerError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { closedConnectionBytes, droppedFrames } from '../core/metrics.js';
import { normalizeAddress } from '../core/address.js';
import type { MediaFrame } from '../live/frame.js';
import { FlvTagFormat, flvTag } from '../live/formats.js';
import { LiveReader, type FrameSink } from '../live/reader.js';
import { encodeFlvHeader } from '../media/flv.js';
import { SocketOutput, type WriteGroup } from '../rtmp/output.js';
import { ClientFrameReader, WsClose, WsOpcode, checkUpgrade, closeFrame, encodeFrame, frameHeaderSize, upgradeResponse, writeFrameHeader } from './websocket.js';

/**
 * HTTP-FLV and WebSocket-FLV players (issue 16): `GET /APP/NAME.flv` under a
 * `flv_live on` location plays the live stream as FLV (the URL shape of SRS
 * and Node-Media-Server), close-delimited; the same request with a WebSocket
 * upgrade gets it in binary frames. Each player is a live reader of the
 * stream core (src/live/reader.ts) like an RTMP player: same queue bound, a
 * slow one drops to the next keyframe. Bytes are the shared FLV tag encodings
 * (one Buffer per frame for every HTTP-FLV player; one per frame for every
 * WebSocket player), written through the RTMP players' socket output and
 * write group: one system call per player per flush. Every play goes through
 * the stream service with a SessionInfo of protocol 'http': access rules,
 * on_connect, on_play and on_play_done apply.
 */

/** What the HTTP front end needs from the server to play live streams (the server provides it). */
export interface LivePlayDeps {
  readonly service: StreamService;
  /** the application of this name (the first rtmp server block that has one) */
  findApp(name: string): Application | undefined;
  /** a session starts / stops using the application's chain (false: closed by a reload) */
  claim(app: Application): boolean;
  release(app: Application): void;
  /** the stream when it is published now (404 otherwise) */
  published(app: string, name: string): { readonly hasAudio: boolean; readonly hasVideo: boolean } | undefined;
  /** the RTMP players' write group: media of one fan-out leaves in one system call per player */
  readonly writeGroup?: WriteGroup;
}

export type FlvProtocol = 'http-flv' | 'ws-flv';

/** What the stat page and /metrics show of one player. */
export interface FlvPlayerInfo {
  readonly id: string;
  readonly protocol: FlvProtocol;
  readonly remoteAddress: string;
  readonly app: string;
  readonly name: string;
  readonly pageUrl: string;
  readonly connectedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly dropped: number;
}

/** The FLV tag of a frame in one WebSocket binary frame: shared by every WebSocket-FLV player. */
export const WsFlvTagFormat: OutputFormat<MediaFrame> = {
  key: EncodingKey.WsFlvTag,
  encode: (f: MediaFrame): Buffer => {
    const tag = flvTag(f);
    const out = Buffer.allocUnsafe(frameHeaderSize(tag.length) + tag.length);
    tag.copy(out, writeFrameHeader(out, 0, WsOpcode.Binary, tag.length));
    return out;
  },
};

const FLV_CONTENT_TYPE = 'video/x-flv';
/** what waits for a player beyond its reader's drop bound before the socket is closed (as RTMP's maxOutputBytes) */
const MIN_OUTPUT_CAP = 16 * 1024 * 1024;
const PATH_SUFFIX = '.flv';

/** APP and NAME of `/…/APP/NAME.flv`; undefined when the path is not of that shape. */
export function flvTarget(path: string): { app: string; name: string } | undefined {
  if (!path.endsWith(PATH_SUFFIX)) return undefined;
  const parts = path.split('/');
  const file = parts[parts.length - 1] ?? '';
  const app = parts[parts.length - 2] ?? '';
  const name = file.slice(0, -PATH_SUFFIX.length);
  if (app === '' || name === '') return undefined;
  return { app, name };
}

/** Why a play was refused, as an HTTP status. */
function statusFor(e: unknown): number {
  if (isServerError(e, ErrorCode.AppNotFound) || isServerError(e, ErrorCode.StreamNameInvalid)) return 404;
  if (isServerError(e, ErrorCode.Refused)) return 403;
  return 500;
}

const REASON: Readonly<Record<number, string>> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** A whole small response written to a raw socket (an upgrade that is refused). */
export function rawResponse(status: number): Buffer {
  const body = `${status} ${REASON[status] ?? ''}\n`;
  return Buffer.from(`HTTP/1.1 ${status} ${REASON[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'latin1');
}

interface Player extends FlvPlayerInfo {
  readonly output: SocketOutput;
  readonly reader: LiveReader;
  /** ends the player (the control API's drop) */
  readonly stop: (reason: string) => void;
}

/** One player's sink: the shared tag encodings to its socket output. */
class FlvSink implements FrameSink {
  constructor(
    private readonly output: SocketOutput,
    private readonly format: OutputFormat<MediaFrame>,
    private readonly onStop: () => void,
  ) {}

  queuedBytes(): number {
    return this.output.queuedBytes();
  }

  write(frame: MediaFrame): void {
    this.output.write(encodeShared(frame, this.format));
  }

  cork(): void {
    this.output.cork();
  }

  uncork(): void {
    this.output.uncork();
  }

  onStreamStart(): void {
    // the stream's headers come as frames
  }

  onStreamStop(): void {
    this.onStop();
  }
}

export class FlvPlayers {
  private readonly players = new Set<Player>();
  private count = 0;

  constructor(
    private readonly deps: LivePlayDeps,
    private readonly log: Logger,
  ) {}

  /** Players now. */
  list(): readonly FlvPlayerInfo[] {
    return [...this.players];
  }

  /** Ends a player by id (the control API's drop); true if there was one. */
  drop(id: string, reason: string): boolean {
    for (const p of this.players) {
      if (p.id === id) {
        p.stop(reason);
        return true;
      }
    }
    return false;
  }

  /** A GET or HEAD of a `flv_live` location (the caller checked the method and access rules). */
  async serveHttp(path: string, rawQuery: string, headers: readonly (readonly [string, string])[], req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const found = this.resolve(path);
    if (found === undefined) return sendStatus(res, 404, req.method === 'HEAD');
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'Content-Type': FLV_CONTENT_TYPE, 'Cache-Control': 'no-cache', ...Object.fromEntries(headers) });
      res.end();
      return;
    }
    const head = Buffer.from(
      `HTTP/1.1 200 OK\r\nContent-Type: ${FLV_CONTENT_TYPE}\r\nCache-Control: no-cache\r\nConnection: close\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`,
      'latin1',
    );
    const flvHeader = encodeFlvHeader({ audio: found.stream.hasAudio, video: found.stream.hasVideo });
    await this.play('http-flv', found.app, found.name, rawQuery, req, req.socket, Buffer.concat([head, flvHeader]), FlvTagFormat, (status) => sendStatus(res, status, false), undefined);
  }

  /** A WebSocket upgrade of a `flv_live` location (the caller checked the access rules). */
  async serveWebSocket(path: string, rawQuery: string, headers: readonly (readonly [string, string])[], req: http.IncomingMessage, socket: Socket, early: Buffer): Promise<void> {
    const refuse = (status: number): void => {
      if (socket.writable) socket.end(rawResponse(status));
      else socket.destroy();
    };
    const check = checkUpgrade(req.method, req.headers);
    if (!check.ok) {
      this.log.debug({ reason: check.reason }, 'websocket: bad upgrade request');
      return refuse(400);
    }
    const found = this.resolve(path);
    if (found === undefined) return refuse(404);
    const flvHeader = encodeFrame(WsOpcode.Binary, encodeFlvHeader({ audio: found.stream.hasAudio, video: found.stream.hasVideo }));
    const first = Buffer.concat([upgradeResponse(check.key, headers), flvHeader]);
    await this.play('ws-flv', found.app, found.name, rawQuery, req, socket, first, WsFlvTagFormat, refuse, early);
  }

  private resolve(path: string): { app: Application; name: string; stream: { hasAudio: boolean; hasVideo: boolean } } | undefined {
    const t = flvTarget(path);
    if (t === undefined) return undefined;
    const app = this.deps.findApp(t.app);
    if (app === undefined) return undefined;
    const stream = this.deps.published(t.app, t.name);
    if (stream === undefined) return undefined;
    return { app, name: t.name, stream };
  }

  private async play(
    protocol: FlvProtocol,
    app: Application,
    name: string,
    rawQuery: string,
    req: http.IncomingMessage,
    socket: Socket,
    first: Buffer,
    format: OutputFormat<MediaFrame>,
    refuse: (status: number) => void,
    early: Buffer | undefined,
  ): Promise<void> {
    const { service } = this.deps;
    if (!this.deps.claim(app)) return refuse(404);
    const id = `${protocol === 'http-flv' ? 'flv' : 'ws'}-${(++this.count).toString(36)}`;
    const remoteAddress = normalizeAddress(socket.remoteAddress ?? '').address;
    const log = this.log.child({ conn: id, protocol, app: app.config.name, stream: name });
    const host = typeof req.headers.host === 'string' ? req.headers.host : 'localhost';
    const referer = typeof req.headers.referer === 'string' ? req.headers.referer : '';
    let ended = false;
    const slot: { player?: Player } = {};
    let playing: PlayingStream | undefined;
    socket.setNoDelay(true);
    const readerLimits = app.readerLimits;
    const output = new SocketOutput(socket, {
      // bytes of an earlier response on this connection still in Node's stream go first
      direct: socket.writableLength === 0,
      ...(this.deps.writeGroup !== undefined ? { group: this.deps.writeGroup } : {}),
      maxQueuedBytes: Math.max(MIN_OUTPUT_CAP, 4 * readerLimits.maxQueuedBytes),
      onOverflow: (queued) => {
        log.warn({ code: ErrorCode.OutputOverflow, queued }, `${protocol}: player does not read: closed`);
        socket.destroy();
      },
    });
    const endPlayer = (): void => {
      if (ended) return;
      ended = true;
      if (protocol === 'ws-flv') output.write(closeFrame(WsClose.Normal));
      output.end();
    };
    const stop = (reason: string): void => {
      log.info({ reason }, `${protocol}: player stopped`);
      socket.destroy();
    };
    const session: SessionInfo = {
      id,
      protocol: 'http',
      remoteAddress,
      app: app.config.name,
      query: rawQuery,
      tcUrl: `${protocol === 'ws-flv' ? 'ws' : 'http'}://${host}/${app.config.name}`,
      flashVer: '',
      swfUrl: '',
      pageUrl: referer,
      log,
      stop,
    };
    const live = app.config.live;
    const reader = new LiveReader(new FlvSink(output, format, endPlayer), { ...readerLimits, waitKey: live.waitKey, waitVideo: live.waitVideo }, (r) =>
      log.warn({ dropped: r.dropped, episodes: r.dropEpisodes, queued: output.queuedBytes() }, 'slow player: dropping to the next keyframe'),
    );
    let connected = false;
    let disconnected = false;
    let gone = false;
    /** the connect chain's end: once, whether the client left before or after the chain finished */
    const disconnect = (): void => {
      if (!connected || disconnected) return;
      disconnected = true;
      service.disconnect(app, session);
    };
    const cleanup = (): void => {
      if (gone) return;
      gone = true;
      if (slot.player !== undefined) this.players.delete(slot.player);
      playing?.close();
      if (reader.dropped > 0) {
        droppedFrames.inc({ protocol, app: app.config.name }, reader.dropped);
        log.info({ dropped: reader.dropped, episodes: reader.dropEpisodes }, 'player dropped frames');
      }
      closedConnectionBytes.inc({ protocol, direction: 'out' }, output.bytesWritten);
      closedConnectionBytes.inc({ protocol, direction: 'in' }, socket.bytesRead);
      disconnect();
      this.deps.release(app);
      log.debug({}, `${protocol}: player left`);
    };
    socket.once('close', cleanup);
    socket.on('error', (e) => log.debug({ err: e.message }, `${protocol}: socket error`));
    if (protocol === 'ws-flv') this.readClientFrames(socket, output, early, log, () => endPlayer());
    let accepted = false;
    try {
      await service.connect(app, session);
      connected = true;
      playing = await service.play(app, session, { name, query: rawQuery, start: -2, duration: -1 }, reader, () => {
        accepted = true;
        // the socket leaves Node's HTTP timers: a player that stops reading is bounded by its queue (drop, then the cap)
        socket.setTimeout(0);
        output.cork();
        output.write(first);
      });
    } catch (e) {
      if (accepted) output.uncork();
      const err = describeError(e);
      log.info({ code: err.code, err: err.message }, `${protocol}: play refused`);
      if (!gone && !accepted) refuse(statusFor(e));
      else socket.destroy();
      if (!gone) {
        socket.off('close', cleanup);
        cleanup();
      } else disconnect();
      return;
    }
    output.uncork();
    if (gone) {
      // the client left while the chain decided
      playing.close();
      disconnect();
      return;
    }
    const player: Player = {
      id,
      protocol,
      remoteAddress,
      app: app.config.name,
      name: playing.name,
      pageUrl: referer,
      connectedAt: Date.now(),
      output,
      reader,
      stop,
      get bytesOut(): number {
        return output.bytesWritten;
      },
      get bytesIn(): number {
        return socket.bytesRead;
      },
      get dropped(): number {
        return reader.dropped;
      },
    };
    slot.player = player;
    this.players.add(player);
    log.info({ remote: remoteAddress }, `${protocol}: playing`);
    if (!playing.stream.active) endPlayer();
  }

  /** The client's WebSocket frames: ping → pong, close → close, anything bad → close with its code. */
  private readClientFrames(socket: Socket, output: SocketOutput, early: Buffer | undefined, log: Logger, end: () => void): void {
    const frames = new ClientFrameReader();
    const onData = (chunk: Buffer): void => {
      for (const ev of frames.push(chunk)) {
        switch (ev.type) {
          case 'ping':
            output.write(encodeFrame(WsOpcode.Pong, ev.payload));
            break;
          case 'close':
            end();
            break;
          case 'error':
            log.info({ reason: ev.reason }, 'websocket: bad client frame: closing');
            output.write(closeFrame(ev.code));
            output.end();
            break;
          default: {
            const never: never = ev;
            throw new Error(`unknown event ${String(never)}`);
          }
        }
      }
    };
    if (early !== undefined && early.length > 0) onData(early);
    socket.on('data', onData);
  }
}


function sendStatus(res: http.ServerResponse, status: number, head: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${status} ${REASON[status] ?? ''}\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
  res.end(head ? undefined : body);
}
