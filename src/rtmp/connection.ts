import type { Socket } from 'node:net';
import { ErrorCode, ServerError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { Queue } from '../core/queue.js';
import { ChunkDecoder, encodeMessage, splitAggregate } from './chunk.js';
import { decodeCommand } from './commands.js';
import { parseControl, userControlMessage, ackMessage } from './control.js';
import { ServerHandshake } from './handshake.js';
import { ProxyProtocolParser } from './proxy-protocol.js';
import { MessageType, type RtmpMessage } from './messages.js';
import { SocketOutput, errnoName, type WriteGroup } from './output.js';
import { BACKLOG_MESSAGE_COST, DEFAULT_MESSAGE_BURST, DEFAULT_MESSAGE_RATE, type ConnectInfo, type ConnectionHandler, type ConnectionOptions, type RedirectRole } from './session-types.js';
import { isPublishCommand, isStreamData, logText } from './client-input.js';
import { NetStreams, toServerError, type CommandHost, type NetStream } from './netstreams.js';

// the connection's contract with the application layer, and the output of a playing NetStream, for importers of this module
export * from './session-types.js';
export { logText } from './client-input.js';
export { PlayerOutput, type PlayerConnection } from './player-output.js';

/**
 * One server-side RTMP connection, the transport: bytes in (receive), the
 * PROXY header, the handshake, the chunk stream, protocol control and acks,
 * the message rate limit, the backlog behind a pending command, output
 * corking, timeouts and pings (tick), closing (fail/close/shutdown), and media
 * to the publishing NetStreams. The NetConnection/NetStream commands and the
 * NetStream table are src/rtmp/netstreams.ts (NetStreams); playback goes
 * through PlayerOutput.
 */
export class RtmpConnection implements CommandHost {
  /** the client's address: the socket's peer, or what a PROXY protocol header said */
  remote: string;
  remoteAddress: string;
  log: Logger;
  app: string | undefined = undefined;
  connectInfo: ConnectInfo | undefined = undefined;
  readonly connectedAt = Date.now();
  closed = false;
  /** every byte to the peer goes through it, in order */
  readonly output: SocketOutput;

  /** dropped once the handshake is done: its buffers are not kept per connection */
  private handshake: ServerHandshake | undefined = new ServerHandshake();
  private proxy: ProxyProtocolParser | undefined;
  private readonly decoder: ChunkDecoder;
  /** the command layer: NetConnection/NetStream commands, the NetStream table */
  private readonly commands: NetStreams;
  /** the command layer's NetStream table, read directly on the media path (one lookup per message) */
  private readonly streams: ReadonlyMap<number, NetStream>;
  private peerAckWindow = 0;
  private lastAckSent = 0;
  private lastInput = Date.now();
  private readonly messageRate: number;
  private readonly messageBurst: number;
  private messageTokens: number;
  private tokensAt = Date.now();
  private pingSentAt = 0;
  private busy = false;
  private readonly backlog = new Queue<RtmpMessage>();
  private backlogBytes = 0;
  /** NetStreams with a publish waiting in the backlog: their media may wait too */
  private readonly queuedPublish = new Set<number>();

  constructor(
    /** unique within the server (the server counts connections) */
    readonly id: string,
    readonly socket: Socket,
    private readonly handler: ConnectionHandler,
    readonly options: ConnectionOptions,
    logger: Logger,
    /** the server's write group: media fanned out in one turn leaves together */
    group?: WriteGroup,
  ) {
    this.output = new SocketOutput(socket, {
      direct: options.directWrite !== false,
      group,
      native: options.nativeWrite !== false,
      maxQueuedBytes: options.maxOutputBytes,
      onOverflow: (queued) => this.fail(serverError(ErrorCode.OutputOverflow, `${queued} bytes queued for a peer that does not read (limit ${options.maxOutputBytes})`)),
    });
    this.messageRate = options.messageRate ?? DEFAULT_MESSAGE_RATE;
    this.messageBurst = options.messageBurst ?? DEFAULT_MESSAGE_BURST;
    this.messageTokens = this.messageBurst;
    this.remoteAddress = socket.remoteAddress ?? '?';
    this.remote = `${this.remoteAddress}:${socket.remotePort ?? 0}`;
    this.log = logger.child({ conn: this.id, remote: this.remote });
    this.commands = new NetStreams(this, {
      connect: (info) => handler.connect(this, info),
      publish: (info) => handler.publish(this, info),
      play: (info, output) => handler.play(this, info, output),
      streamLength: (name) => handler.streamLength?.(this, name),
    });
    this.streams = this.commands.streams;
    const sharedInput = options.sharedInput === true;
    this.decoder = new ChunkDecoder(
      {
        maxMessageSize: options.maxMessageSize,
        copyPayloads: sharedInput,
        arena: true,
        maxChunkStreams: options.maxStreams,
        onMedia: (type, streamId, timestamp, payload) => this.onMediaMessage(type, streamId, timestamp, payload),
      },
      (m) => this.onMessage(m),
    );
    if (options.proxyProtocol === true) this.proxy = new ProxyProtocolParser();
    socket.setNoDelay(options.noDelay !== false);
    if (!sharedInput) socket.on('data', (d: Buffer) => this.receive(d));
    // a ServerError here is the output's (ERR_RTMP_WRITE_FAILED: a write to the peer failed): its code is kept
    socket.on('error', (e) => this.fail(e instanceof ServerError ? e : serverError(ErrorCode.ClientClosed, `socket error: ${e.message}`, e), 'debug'));
    socket.on('close', () => this.cleanup(undefined));
    this.log.debug('accepted');
  }

  /** What this connection publishes and plays right now (for stats and control). */
  activeStreams(): { streamId: number; name: string; role: 'publisher' | 'player'; dropped?: number }[] {
    return this.commands.activeStreams();
  }

  /** bytes received from the peer (counted here: with the shared reader, Node.js's socket reads nothing itself) */
  get bytesIn(): number {
    return this.received;
  }

  /**
   * The shared reader's end of stream (src/rtmp/socket-input.ts): the peer
   * closed its side. As Node.js does for a socket it reads (allowHalfOpen
   * off): what is queued goes, then the socket closes.
   */
  peerEnded(): void {
    if (!this.closed) {
      this.log.debug('peer closed the connection');
      this.close();
    }
    // both sides done (ours ended here or by an earlier close()): the socket closes once what was queued has gone
    if (this.socket.writableFinished) this.socket.destroy();
    else this.socket.once('finish', () => this.socket.destroy());
  }

  /**
   * The shared reader's read failed with -errno (ECONNRESET...): the socket
   * closes at once, as Node.js does on a read error, also when the connection
   * was already closing (its queued bytes cannot reach a peer that reset it).
   */
  readFailed(errno: number): void {
    if (this.closed) this.output.destroy();
    else this.fail(serverError(ErrorCode.ClientClosed, `socket error: ${errnoName(errno)}`), 'debug');
  }

  get bytesOut(): number {
    return this.output.bytesWritten;
  }

  /** Sends one message, chunked at the current output chunk size. */
  send(m: RtmpMessage): void {
    this.output.write(encodeMessage(m, this.output.chunkSize));
  }

  /** Ends the connection with a coded reason (logged once). */
  fail(err: ServerError, level: 'warn' | 'info' | 'debug' = 'warn'): void {
    if (this.closed) return;
    this.log[level]({ code: err.code, err: logText(err.message) }, 'connection closed on error');
    this.cleanup(err);
    this.output.destroy();
  }

  /** Politely closes: the peer sees the socket end. */
  close(): void {
    if (this.closed) return;
    this.cleanup(undefined);
    this.output.end();
    setTimeout(() => this.output.destroy(), 2000).unref();
  }

  /**
   * Server shutdown: tells the peer its streams end (Play.Stop + StreamEOF for
   * players, Unpublish.Success for publishers), then closes.
   */
  shutdown(): void {
    if (this.closed) return;
    this.commands.shutdownStreams();
    this.close();
  }

  /**
   * Timeouts and pings. The owner calls it periodically (the server runs one
   * timer for all connections rather than one per connection).
   */
  tick(now = Date.now()): void {
    if (this.closed) return;
    if (this.handshake !== undefined) {
      if (now - this.connectedAt > this.options.handshakeTimeout) {
        this.fail(serverError(ErrorCode.HandshakeTimeout, `handshake not finished within ${this.options.handshakeTimeout} ms`));
      }
      return;
    }
    // output counts as traffic only while it moves: a player that stopped reading
    // keeps its bytes queued, the drop policy stops new writes, and it goes idle
    const written = this.output.bytesWritten;
    if (written !== this.lastWritten) {
      this.lastWritten = written;
      this.lastOutput = now;
    }
    const { pingInterval, pingTimeout, idleTimeout } = this.options;
    const silent = now - this.lastInput;
    // ping early enough that a live but quiet peer (a player waiting for its publisher) answers before the idle timeout
    const pingAfter = idleTimeout > 0 ? Math.min(pingInterval, idleTimeout / 2) : pingInterval;
    if (pingInterval > 0 && silent >= pingAfter) {
      if (this.pingSentAt <= this.lastInput) {
        this.pingSentAt = now;
        this.send(userControlMessage({ type: 'pingRequest', timestamp: (now - this.connectedAt) >>> 0 }));
      } else if (now - this.pingSentAt >= pingTimeout) {
        this.fail(serverError(ErrorCode.ConnectionTimeout, `no answer to ping within ${pingTimeout} ms`));
        return;
      }
    }
    const idle = now - Math.max(this.lastInput, this.lastOutput);
    if (idleTimeout > 0 && idle >= idleTimeout) {
      const waiting = this.output.queuedBytes();
      this.fail(serverError(ErrorCode.ConnectionTimeout, waiting > 0 ? `peer read nothing for ${idle} ms (${waiting} bytes waiting)` : `no traffic for ${idle} ms`));
    }
  }

  private lastWritten = 0;
  private lastOutput = Date.now();
  /** bytes received (bytesIn) */
  private received = 0;

  /**
   * What the peer sent (the socket's 'data', or the owner's shared reads with
   * `sharedInput`): the bytes `data[start..end)`.
   */
  receive(data: Buffer, start = 0, end = data.length): void {
    if (this.closed) return;
    this.received += end - start;
    const now = Date.now();
    this.lastInput = now;
    // the message budget refills with time (a token bucket), once per read
    this.messageTokens = Math.min(this.messageBurst, this.messageTokens + ((now - this.tokensAt) * this.messageRate) / 1000);
    this.tokensAt = now;
    // what this read makes us send (handshake, command replies, acks) leaves in one writev(2)
    this.output.cork();
    try {
      if (this.proxy !== undefined) {
        const p = this.proxy.push(start === 0 && end === data.length ? data : data.subarray(start, end));
        if (!p.done) return;
        this.proxy = undefined;
        const trusted = this.options.trustedProxy;
        if (p.source !== undefined && trusted !== undefined && !trusted(this.remoteAddress)) {
          this.log.warn({ code: ErrorCode.ProxyUntrusted, claimed: p.source.address }, 'PROXY protocol header from a peer outside set_real_ip_from: its address is ignored');
        } else if (p.source !== undefined) {
          const via = this.remote;
          this.remoteAddress = p.source.address;
          this.remote = `${p.source.address}:${p.source.port}`;
          this.log = this.log.child({ remote: this.remote, via });
        }
        if (p.rest.length === 0) return;
        data = p.rest;
        start = 0;
        end = data.length;
      }
      if (this.handshake !== undefined) {
        const step = this.handshake.push(start === 0 && end === data.length ? data : data.subarray(start, end));
        for (const b of step.send) this.output.write(b);
        if (!step.done) return;
        this.log.debug({ digest: this.handshake.digest }, 'handshake done');
        this.handshake = undefined;
        if (step.rest.length === 0) return;
        data = step.rest;
        start = 0;
        end = data.length;
      }
      const pubs = this.commands.publishing;
      for (let i = 0; i < pubs.length; i++) pubs[i]!.beginBatch();
      try {
        this.decoder.push(data, end, start);
      } finally {
        for (let i = 0; i < pubs.length; i++) pubs[i]!.endBatch();
      }
      this.maybeAck();
    } catch (e) {
      this.fail(toServerError(e));
    } finally {
      this.output.uncork();
    }
  }

  private maybeAck(): void {
    if (this.peerAckWindow <= 0) return;
    const received = this.decoder.bytesReceived;
    if (received - this.lastAckSent >= this.peerAckWindow) {
      this.lastAckSent = received;
      this.send(ackMessage(received >>> 0));
    }
  }

  /** Every message and every aggregate's sub-message comes through here: one path, one order. */
  private onMessage(m: RtmpMessage): void {
    this.spendToken();
    if (m.type === MessageType.Aggregate) {
      // sub-messages queue behind a pending command like any message (splitAggregate refuses nested aggregates)
      for (const sub of splitAggregate(m)) this.onMessage(sub);
      return;
    }
    if (this.busy) {
      // media and data for a NetStream that is not (about to be) publishing would be dropped later: drop it now
      if (isStreamData(m.type) && !this.mayPublish(m.streamId)) return;
      this.backlogBytes += m.payload.length + BACKLOG_MESSAGE_COST;
      if (this.backlogBytes > this.options.maxBacklogBytes) {
        throw serverError(
          ErrorCode.BacklogOverflow,
          `more than ${this.options.maxBacklogBytes} bytes (${this.backlog.length} messages) sent while a command was pending`,
        );
      }
      this.backlog.push(m);
      if ((m.type === MessageType.CommandAmf0 || m.type === MessageType.CommandAmf3) && isPublishCommand(m)) this.queuedPublish.add(m.streamId);
      return;
    }
    this.dispatch(m);
  }

  /**
   * An audio or video message, straight from the chunk decoder (no message
   * object): the same rules as onMessage (the rate limit, the backlog while a
   * command is pending, dropped unless its NetStream publishes).
   */
  private onMediaMessage(type: number, streamId: number, timestamp: number, payload: Buffer): void {
    if (this.busy) {
      // the backlog keeps messages: this one becomes one, on onMessage's one path
      this.onMessage({ csid: 0, type, streamId, timestamp, payload });
      return;
    }
    this.spendToken();
    this.routeMedia(type, streamId, timestamp, payload);
  }

  /** One message of the rate limit's budget (a token bucket refilled once per read). */
  private spendToken(): void {
    if (--this.messageTokens < 0) {
      throw serverError(ErrorCode.MessageFlood, `more than ${this.messageRate} messages a second (${this.messageBurst} at once)`);
    }
  }

  /** Audio or video to its NetStream's publish handle; dropped when that NetStream does not publish. */
  private routeMedia(type: number, streamId: number, timestamp: number, payload: Buffer): void {
    const s = this.streams.get(streamId);
    if (s?.state !== 'publishing') return;
    s.handle.media(type, timestamp, payload);
  }

  /** The NetStream publishes, waits for its publish to be accepted, or has a publish in the backlog. */
  private mayPublish(streamId: number): boolean {
    const s = this.streams.get(streamId);
    return s?.state === 'publishing' || (s?.state === 'pending' && s.role === 'publish') || this.queuedPublish.has(streamId);
  }

  private dispatch(m: RtmpMessage): void {
    switch (m.type) {
      case MessageType.Audio:
      case MessageType.Video:
        this.onMedia(m);
        return;
      case MessageType.DataAmf0:
      case MessageType.DataAmf3:
        this.onDataMessage(m);
        return;
      case MessageType.CommandAmf0:
      case MessageType.CommandAmf3: {
        const work = this.commands.onCommand(decodeCommand(m));
        if (work !== undefined) this.hold(work);
        return;
      }
      case MessageType.Aggregate:
        // onMessage splits aggregates before they get here; kept on the one path all the same
        this.onMessage(m);
        return;
      case MessageType.SetChunkSize:
      case MessageType.Abort:
      case MessageType.Acknowledgement:
      case MessageType.UserControl:
      case MessageType.WindowAckSize:
      case MessageType.SetPeerBandwidth:
        this.onControl(m);
        return;
      case MessageType.SharedObjectAmf0:
      case MessageType.SharedObjectAmf3:
        this.log.debug({ type: m.type }, 'shared object message ignored');
        return;
      default:
        this.log.debug({ type: m.type, length: m.payload.length }, 'unknown message type ignored');
    }
  }

  private onControl(m: RtmpMessage): void {
    const c = parseControl(m);
    switch (c.kind) {
      case 'setChunkSize':
        this.log.debug({ size: c.size }, 'peer chunk size');
        return;
      case 'abort':
      case 'ack':
        return;
      case 'windowAckSize':
        this.peerAckWindow = c.size;
        return;
      case 'setPeerBandwidth':
        return;
      case 'userControl': {
        const ev = c.event;
        if (ev.type === 'pingRequest') this.send(userControlMessage({ type: 'pingResponse', timestamp: ev.timestamp }));
        return;
      }
      default: {
        const never: never = c;
        throw new TypeError(`unhandled control ${JSON.stringify(never)}`);
      }
    }
  }

  private onMedia(m: RtmpMessage): void {
    this.routeMedia(m.type, m.streamId, m.timestamp, m.payload);
  }

  private onDataMessage(m: RtmpMessage): void {
    const s = this.streams.get(m.streamId);
    if (s?.state !== 'publishing') return;
    // unwrapped (@setDataFrame), bounded and given `meta` by the stream service's ingest; an oversized
    // or reference-expanding message throws (ERR_RTMP_MESSAGE_TOO_LARGE / ERR_AMF_TOO_LARGE): the publisher is cut off
    s.handle.data(m.type, m.timestamp, m.payload);
  }


  /** Runs an async step with the message queue held, then drains the backlog. */
  private hold(work: Promise<void>): void {
    this.busy = true;
    work
      .catch((e: unknown) => this.fail(toServerError(e)))
      .finally(() => {
        this.busy = false;
        this.drain();
      });
  }

  private drain(): void {
    while (!this.busy && !this.closed) {
      const m = this.backlog.shift();
      if (m === undefined) {
        this.queuedPublish.clear();
        return;
      }
      this.backlogBytes -= m.payload.length + BACKLOG_MESSAGE_COST;
      try {
        this.dispatch(m);
      } catch (e) {
        this.fail(toServerError(e));
        return;
      }
    }
  }

  /**
   * The control API's redirect (nginx-rtmp's redirect/publisher|subscriber|client):
   * each NetStream that publishes or plays `name` (any name when undefined) in the
   * role asked is switched to `newName` as if the client had sent that publish or
   * play on it (`newName?args` gives the new arguments, as nginx-rtmp reads it): the
   * handler runs the application chain again (access, on_play / on_publish …); the
   * old publish or play ends without a status message (a NetStream.Play.Stop makes
   * players such as ffmpeg stop reading), and the new one answers as usual
   * (Publish.Start; Play.Reset and Play.Start, then metadata, codec headers and the
   * cached GOP of the new stream). It runs in order with the client's own messages.
   * Returns the number of NetStreams switched.
   */
  redirect(role: RedirectRole, name: string | undefined, newName: string): number {
    if (this.closed) return 0;
    let n = 0;
    for (const { streamId, message: m, publish } of this.commands.redirects(role, name, newName)) {
      n++;
      if (this.busy) {
        // behind the pending command, like a message from the client (counted, but never refused for the bound)
        this.backlog.push(m);
        this.backlogBytes += m.payload.length + BACKLOG_MESSAGE_COST;
        if (publish) this.queuedPublish.add(streamId);
      } else {
        try {
          this.dispatch(m);
        } catch (e) {
          this.fail(toServerError(e));
          return n;
        }
      }
    }
    return n;
  }

  private cleanup(err: ServerError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.backlog.clear();
    this.backlogBytes = 0;
    this.queuedPublish.clear();
    this.commands.closeAll();
    this.log.info(
      { streams: [...this.commands.streamNames].map(logText), bytesIn: this.bytesIn, bytesOut: this.bytesOut, seconds: Math.round((Date.now() - this.connectedAt) / 100) / 10, code: err?.code },
      'close',
    );
    this.handler.closed(this, err);
  }
}
