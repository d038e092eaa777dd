/**
 * The command layer of a server-side RTMP connection: the NetConnection and
 * NetStream commands (connect, createStream, publish, play, pause, seek,
 * deleteStream …, redirect's switches) and the NetStream table they share.
 * It owns that table; the transport (src/rtmp/connection.ts: bytes, handshake,
 * chunks, acks, the rate limit, the backlog, media routing) reads it directly
 * for its media path and hands it every decoded command. What it needs of the
 * connection is CommandHost; the application's calls come bound (SessionCalls).
 */
import { ErrorCode, ServerError, describeError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { amfNumber, amfObjectOf, type AmfObject } from './amf-types.js';
import { StatusCode, commandMessage, onStatusMessage, splitStreamName, type Command } from './commands.js';
import { setChunkSizeMessage, setPeerBandwidthMessage, userControlMessage, windowAckSizeMessage } from './control.js';
import { BandwidthLimit, type RtmpMessage } from './messages.js';
import { boundedString, logText, trimSlashes } from './client-input.js';
import { PlayerOutput, type PlayerConnection } from './player-output.js';
import type { ConnectInfo, ConnectionOptions, PlayHandle, PlayInfo, PublishHandle, PublishInfo, PublishType, RedirectRole } from './session-types.js';

/** One NetStream of a connection, by stream id. */
export type NetStream =
  | { state: 'idle' }
  | { state: 'publishing'; info: PublishInfo; handle: PublishHandle }
  | { state: 'playing'; info: PlayInfo; handle: PlayHandle; output: PlayerOutput }
  | { state: 'pending'; role: 'publish' | 'play' };

/** What the command layer needs of its connection (RtmpConnection implements it). */
export interface CommandHost extends PlayerConnection {
  readonly id: string;
  readonly options: ConnectionOptions;
  /** replaced by connect (the app joins its bindings) */
  log: Logger;
  app: string | undefined;
  connectInfo: ConnectInfo | undefined;
  readonly closed: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** The application layer's calls (ConnectionHandler's), bound to the connection. */
export interface SessionCalls {
  connect(info: ConnectInfo): Promise<void> | void;
  publish(info: PublishInfo): Promise<PublishHandle> | PublishHandle;
  play(info: PlayInfo, output: PlayerOutput): Promise<PlayHandle> | PlayHandle;
  /** undefined when the handler has no streamLength */
  streamLength(name: string): Promise<number | undefined> | undefined;
}

/** A redirect's switch of one NetStream: the command to run on it as if the client had sent it. */
export interface RedirectSwitch {
  readonly streamId: number;
  readonly message: RtmpMessage;
  /** the NetStream publishes (its media may wait behind the command) */
  readonly publish: boolean;
}

export class NetStreams {
  /** the NetStream table: the connection's media path looks streams up here directly */
  readonly streams = new Map<number, NetStream>();
  /** the publish handles of the publishing NetStreams (replaced, never changed in place: the connection batches over it per read) */
  publishing: PublishHandle[] = [];
  /** names this connection published or played, for its close log line */
  readonly streamNames = new Set<string>();
  private nextStreamId = 1;

  constructor(
    private readonly host: CommandHost,
    private readonly calls: SessionCalls,
  ) {}

  /** What this connection publishes and plays right now (for stats and control). */
  activeStreams(): { streamId: number; name: string; role: 'publisher' | 'player'; dropped?: number }[] {
    const out: { streamId: number; name: string; role: 'publisher' | 'player' }[] = [];
    for (const [streamId, s] of this.streams) {
      if (s.state === 'publishing') out.push({ streamId, name: s.info.name, role: 'publisher' });
      else if (s.state === 'playing') out.push({ streamId, name: s.info.name, role: 'player' });
    }
    return out;
  }

  /**
   * One command from the client (or a redirect). Returns the async step the
   * connection must hold its message queue for (connect, publish, play,
   * getStreamLength), undefined when the command is done.
   */
  onCommand(c: Command): Promise<void> | undefined {
    const host = this.host;
    switch (c.name) {
      case 'connect':
        return this.onConnect(c);
      case 'createStream':
        this.onCreateStream(c);
        return undefined;
      case 'releaseStream':
      case 'FCSubscribe':
        if (c.transactionId !== 0) host.send(commandMessage(0, '_result', c.transactionId, null));
        return undefined;
      case 'FCPublish': {
        const name = boundedString('FCPublish name', c.args[0]);
        host.send(commandMessage(0, 'onFCPublish', 0, null, { level: 'status', code: StatusCode.PublishStart, description: name }));
        if (c.transactionId !== 0) host.send(commandMessage(0, '_result', c.transactionId, null));
        return undefined;
      }
      case 'FCUnpublish': {
        const name = boundedString('FCUnpublish name', c.args[0]);
        host.send(commandMessage(0, 'onFCUnpublish', 0, null, { level: 'status', code: StatusCode.UnpublishSuccess, description: name }));
        if (c.transactionId !== 0) host.send(commandMessage(0, '_result', c.transactionId, null));
        for (const [id, s] of this.streams) {
          if (s.state === 'publishing' && s.info.name === splitStreamName(name).name) this.stopStream(id, true);
        }
        return undefined;
      }
      case 'publish':
        return this.onPublish(c);
      case 'play':
        return this.onPlay(c);
      case 'deleteStream': {
        const id = amfNumber(c.args[0] ?? null);
        if (id !== undefined) {
          this.stopStream(id, true);
          this.streams.delete(id);
        }
        return undefined;
      }
      case 'closeStream':
        this.stopStream(c.streamId, true);
        return undefined;
      case 'pause':
        this.onPause(c);
        return undefined;
      case 'receiveAudio':
      case 'receiveVideo': {
        const s = this.streams.get(c.streamId);
        if (s?.state === 'playing') {
          const on = c.args[0] !== false;
          if (c.name === 'receiveAudio') s.output.receiveAudio = on;
          else s.output.receiveVideo = on;
        }
        return undefined;
      }
      case 'getStreamLength':
        return this.onGetStreamLength(c);
      case 'seek':
        this.onSeek(c);
        return undefined;
      case '_checkbw':
        if (c.transactionId !== 0) host.send(commandMessage(0, '_result', c.transactionId, null));
        return undefined;
      case '_result':
      case '_error':
      case 'onBWDone':
      case '_onbwcheck':
      case '_onbwdone':
        return undefined;
      default:
        host.log.debug({ command: logText(c.name) }, 'unknown command');
        if (c.transactionId !== 0) {
          host.send(commandMessage(0, '_error', c.transactionId, null, { level: 'error', code: StatusCode.CallFailed, description: `unknown command ${logText(c.name)}` }));
        }
        return undefined;
    }
  }

  private async onConnect(c: Command): Promise<void> {
    const host = this.host;
    if (host.connectInfo !== undefined) {
      throw serverError(ErrorCode.ProtocolViolation, 'connect sent twice');
    }
    const o = amfObjectOf(c.object) ?? {};
    // every string is bounded before anything looks at it
    const str = (k: string): string => boundedString(`connect ${k}`, o[k]);
    const rawApp = str('app');
    const tcUrl = str('tcUrl');
    const flashVer = str('flashVer') || str('flashver');
    const swfUrl = str('swfUrl');
    const pageUrl = str('pageUrl');
    const { name: app, query } = splitStreamName(trimSlashes(rawApp));
    const info: ConnectInfo = {
      app,
      query,
      tcUrl,
      flashVer,
      swfUrl,
      pageUrl,
      objectEncoding: amfNumber(o['objectEncoding'] ?? null) ?? 0,
      object: o,
      args: c.args,
    };
    host.log = host.log.child({ app: logText(app) });
    try {
      await this.calls.connect(info);
    } catch (e) {
      const err = toServerError(e);
      host.send(commandMessage(0, '_error', c.transactionId, null, { level: 'error', code: StatusCode.ConnectRejected, description: err.message }));
      host.log.info({ code: err.code, err: logText(err.message), flashVer: logText(info.flashVer) }, 'connect refused');
      host.close();
      return;
    }
    host.app = app;
    host.connectInfo = info;
    // the four messages of the reply leave in one writev(2)
    host.output.cork();
    try {
      this.acceptConnect(c, info, o);
    } finally {
      host.output.uncork();
    }
    host.log.info({ flashVer: logText(info.flashVer), tcUrl: logText(info.tcUrl) }, 'connect');
  }

  private acceptConnect(c: Command, info: ConnectInfo, o: AmfObject): void {
    const host = this.host;
    host.send(windowAckSizeMessage(host.options.windowAckSize));
    host.send(setPeerBandwidthMessage(host.options.peerBandwidth, BandwidthLimit.Dynamic));
    host.send(setChunkSizeMessage(host.options.chunkSize));
    host.output.chunkSize = host.options.chunkSize;
    const props: AmfObject = { fmsVer: 'FMS/3,0,1,123', capabilities: 31, mode: 1 };
    const result: AmfObject = {
      level: 'status',
      code: StatusCode.ConnectSuccess,
      description: 'Connection succeeded.',
      objectEncoding: info.objectEncoding,
    };
    // Enhanced RTMP: answer a client's codec negotiation with what we pass through
    if (o['fourCcList'] !== undefined || o['videoFourCcInfoMap'] !== undefined) {
      props['fourCcList'] = ['av01', 'vp09', 'vp08', 'hvc1', 'avc1', 'Opus', 'fLaC', 'ac-3', 'ec-3', 'mp4a', '.mp3'];
    }
    host.send(commandMessage(0, '_result', c.transactionId, props, result));
    host.send(commandMessage(0, 'onBWDone', 0, null, 8192));
  }

  private requireConnected(what: string): void {
    if (this.host.connectInfo === undefined) throw serverError(ErrorCode.ProtocolViolation, `${what} before connect`);
  }

  private onCreateStream(c: Command): void {
    this.requireConnected('createStream');
    if (this.streams.size >= this.host.options.maxStreams) {
      this.host.send(commandMessage(0, '_error', c.transactionId, null, { level: 'error', code: StatusCode.CallFailed, description: 'too many streams' }));
      return;
    }
    const id = this.nextStreamId++;
    this.streams.set(id, { state: 'idle' });
    this.host.send(commandMessage(0, '_result', c.transactionId, null, id));
  }

  private streamFor(c: Command): number {
    this.requireConnected(c.name);
    // some clients publish on a stream they never created: accept it like nginx-rtmp does
    if (!this.streams.has(c.streamId)) {
      if (this.streams.size >= this.host.options.maxStreams) throw serverError(ErrorCode.ProtocolViolation, 'too many streams');
      this.streams.set(c.streamId, { state: 'idle' });
    }
    const s = this.streams.get(c.streamId)!;
    // commands run one at a time (the connection's onMessage), so this is a peer's doing only if that rule breaks: refuse
    if (s.state === 'pending') throw serverError(ErrorCode.StreamPending, `${c.name} on stream ${c.streamId} while its ${s.role} is pending`);
    // a second publish/play on a busy NetStream replaces the first (Flash's NetStream.play(other) switches)
    if (s.state !== 'idle') this.stopStream(c.streamId, false);
    return c.streamId;
  }

  private async onPublish(c: Command): Promise<void> {
    const host = this.host;
    const raw = boundedString('publish name', c.args[0]);
    const typeArg = boundedString('publish type', c.args[1]) || 'live';
    const streamId = this.streamFor(c);
    const type: PublishType = typeArg === 'record' || typeArg === 'append' ? typeArg : 'live';
    const { name, query } = splitStreamName(raw);
    const info: PublishInfo = { streamId, name, query, type };
    this.streams.set(streamId, { state: 'pending', role: 'publish' });
    let handle: PublishHandle;
    try {
      handle = await this.calls.publish(info);
    } catch (e) {
      const err = toServerError(e);
      const code = err.code === ErrorCode.StreamBusy || err.code === ErrorCode.StreamNameInvalid ? StatusCode.PublishBadName : StatusCode.PublishDenied;
      this.refused('publish', streamId, name, err, code);
      return;
    }
    if (host.closed) {
      handle.close();
      return;
    }
    this.streams.set(streamId, { state: 'publishing', info, handle });
    this.streamNames.add(name);
    this.publishing = [...this.publishing, handle];
    host.send(userControlMessage({ type: 'streamBegin', streamId }));
    host.send(onStatusMessage(streamId, 'status', StatusCode.PublishStart, `${name} is now published.`, { details: name, clientid: host.id }));
    host.log.info({ stream: logText(name), type }, 'publish');
  }

  /** The application refused a publish or play: the NetStream goes back to idle, the client gets `code`, one log line. */
  private refused(what: 'publish' | 'play', streamId: number, name: string, err: ServerError, code: string): void {
    this.streams.set(streamId, { state: 'idle' });
    this.host.send(onStatusMessage(streamId, 'error', code, err.message, { details: name }));
    this.host.log.info({ stream: logText(name), code: err.code, err: logText(err.message) }, `${what} refused`);
  }

  private async onPlay(c: Command): Promise<void> {
    const host = this.host;
    const raw = boundedString('play name', c.args[0]);
    const streamId = this.streamFor(c);
    const { name, query } = splitStreamName(raw);
    const start = amfNumber(c.args[1] ?? null) ?? -2;
    const duration = amfNumber(c.args[2] ?? null) ?? -1;
    const reset = c.args[3] !== false;
    const info: PlayInfo = { streamId, name, query, start, duration, reset };
    this.streams.set(streamId, { state: 'pending', role: 'play' });
    // the handler calls output.begin() once the play is accepted, before media can flow
    const output = new PlayerOutput(host, streamId);
    let handle: PlayHandle;
    try {
      handle = await this.calls.play(info, output);
    } catch (e) {
      const err = toServerError(e);
      const code = err.code === ErrorCode.StreamNameInvalid || err.code === ErrorCode.VodNotFound ? StatusCode.PlayStreamNotFound : StatusCode.PlayFailed;
      this.refused('play', streamId, name, err, code);
      return;
    }
    if (host.closed) {
      handle.close();
      return;
    }
    this.streams.set(streamId, { state: 'playing', info, handle, output });
    this.streamNames.add(name);
    host.log.info({ stream: logText(name), start, duration }, 'play');
  }

  /** getStreamLength(name): a recorded stream's length in seconds (0 for a live one), as nginx-rtmp answers. */
  private async onGetStreamLength(c: Command): Promise<void> {
    const host = this.host;
    const { name } = splitStreamName(boundedString('getStreamLength name', c.args[0] ?? ''));
    let ms: number | undefined;
    try {
      ms = host.connectInfo === undefined || name === '' ? undefined : await this.calls.streamLength(name);
    } catch (e) {
      host.log.debug({ stream: logText(name), err: logText(toServerError(e).message) }, 'getStreamLength: no length');
    }
    if (c.transactionId !== 0 && !host.closed) host.send(commandMessage(0, '_result', c.transactionId, null, (ms ?? 0) / 1000));
  }

  /** seek(ms): a recorded stream goes on from the keyframe at or before it; a live one cannot seek. */
  private onSeek(c: Command): void {
    const s = this.streams.get(c.streamId);
    if (s?.state !== 'playing') return;
    const ms = amfNumber(c.args[0] ?? null);
    if (s.handle.seek === undefined || ms === undefined || !Number.isFinite(ms)) {
      this.host.send(onStatusMessage(c.streamId, 'error', StatusCode.SeekFailed, 'Seek failed: not a recorded stream.', { details: s.info.name }));
      return;
    }
    s.output.paused = false;
    const at = s.handle.seek(Math.max(0, ms));
    s.output.seeked(s.info.name, at);
    this.host.log.info({ stream: logText(s.info.name), ms, at }, 'seek');
  }

  private onPause(c: Command): void {
    const s = this.streams.get(c.streamId);
    if (s?.state !== 'playing') return;
    const pause = c.args[0] !== false;
    s.handle.pause?.(pause);
    s.output.paused = pause;
    if (pause) {
      this.host.send(onStatusMessage(c.streamId, 'status', StatusCode.PauseNotify, 'Paused.', { details: s.info.name }));
    } else {
      s.handle.resume();
      this.host.send(userControlMessage({ type: 'streamBegin', streamId: c.streamId }));
      this.host.send(onStatusMessage(c.streamId, 'status', StatusCode.UnpauseNotify, 'Unpaused.', { details: s.info.name }));
    }
  }

  /**
   * The switches of a redirect (RtmpConnection.redirect runs them, in order with
   * the client's own messages): for each NetStream that publishes or plays `name`
   * (any name when undefined) in the role asked, the publish or play of `newName`
   * on it (a play asks for a reset), with the old arguments.
   */
  redirects(role: RedirectRole, name: string | undefined, newName: string): RedirectSwitch[] {
    const out: RedirectSwitch[] = [];
    for (const [id, s] of this.streams) {
      if (s.state !== 'publishing' && s.state !== 'playing') continue;
      if ((role === 'publisher' && s.state !== 'publishing') || (role === 'subscriber' && s.state !== 'playing')) continue;
      if (name !== undefined && s.info.name !== name) continue;
      const message =
        s.state === 'publishing'
          ? commandMessage(id, 'publish', 0, null, newName, s.info.type)
          : commandMessage(id, 'play', 0, null, newName, s.info.start, s.info.duration, true);
      out.push({ streamId: id, message, publish: s.state === 'publishing' });
    }
    return out;
  }

  /**
   * Server shutdown: players get StreamEOF, then each NetStream stops with its
   * status message (Play.Stop, Unpublish.Success).
   */
  shutdownStreams(): void {
    for (const id of [...this.streams.keys()]) {
      const s = this.streams.get(id);
      if (s?.state === 'playing') this.host.send(userControlMessage({ type: 'streamEof', streamId: id }));
      this.stopStream(id, true);
    }
  }

  /** The connection closed: every NetStream stops (no status messages) and the table empties. */
  closeAll(): void {
    for (const id of [...this.streams.keys()]) this.stopStream(id, false);
    this.streams.clear();
  }

  /** Ends whatever the NetStream does; the stream id stays valid. */
  private stopStream(streamId: number, notify: boolean): void {
    const host = this.host;
    const s = this.streams.get(streamId);
    if (s === undefined) return;
    if (s.state === 'publishing') {
      this.publishing = this.publishing.filter((h) => h !== s.handle);
      s.handle.close();
      if (notify && !host.closed) {
        host.send(onStatusMessage(streamId, 'status', StatusCode.UnpublishSuccess, `${s.info.name} is now unpublished.`, { details: s.info.name }));
      }
      host.log.info({ stream: logText(s.info.name), bytesIn: host.bytesIn }, 'unpublish');
    } else if (s.state === 'playing') {
      s.handle.close();
      if (notify && !host.closed) {
        host.send(onStatusMessage(streamId, 'status', StatusCode.PlayStop, `Stopped playing ${s.info.name}.`, { details: s.info.name }));
      }
      host.log.info({ stream: logText(s.info.name), bytesOut: host.bytesOut }, 'play stop');
    }
    this.streams.set(streamId, { state: 'idle' });
  }
}

/** Any thrown value as a ServerError (not one already: ERR_RTMP_PROTOCOL with its message). */
export function toServerError(e: unknown): ServerError {
  if (e instanceof ServerError) return e;
  const d = describeError(e);
  return serverError(ErrorCode.ProtocolViolation, d.message, e);
}
