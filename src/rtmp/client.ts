import net from 'node:net';
import { ErrorCode, ServerError, serverError } from '../core/errors.js';
import { amfNumber, amfObjectOf, amfString, type AmfObject, type AmfValue } from './amf-types.js';
import { ChunkDecoder, encodeMessage, splitAggregate } from './chunk.js';
import { commandMessage, dataMessage, decodeCommand, type Command } from './commands.js';
import { ackMessage, parseControl, setChunkSizeMessage, userControlMessage, windowAckSizeMessage } from './control.js';
import { ClientHandshake } from './handshake.js';
import { ChunkStreamId, MessageType, type RtmpMessage } from './messages.js';

export interface ClientOptions {
  /** chunk size this client announces and sends with (default 4096) */
  readonly chunkSize?: number;
  /** give up connecting (TCP + handshake + connect) after this (ms, default 10 s) */
  readonly timeout?: number;
  readonly maxMessageSize?: number;
  /** extra properties for the connect command object */
  readonly connectProperties?: AmfObject;
  /** use the digest handshake (default true, like ffmpeg) */
  readonly digestHandshake?: boolean;
  /** send commands as AMF0 (type 20, default) or as AMF3 command messages (type 17), like Flash with objectEncoding 3 */
  readonly commandEncoding?: 'amf0' | 'amf3';
  /** keep only this many bytes of large audio/video messages (load tools); onMedia still gets the full length */
  readonly keepMediaBytes?: number;
  /**
   * Read into one buffer of this many bytes, reused for every read (Node's
   * `onread`), instead of a new buffer per read. Load tools with hundreds of
   * players use it: a buffer per read costs an allocation and, at Gbit/s, the
   * major collections that external memory triggers. The catch: a payload
   * handed to onMedia may be a view of that buffer, valid only until onMedia
   * returns. Copy what you keep.
   */
  readonly readBufferSize?: number;
}

export interface ParsedRtmpUrl {
  readonly host: string;
  readonly port: number;
  readonly app: string;
  /** the stream name: what follows the application in the path ('' if none) */
  readonly name: string;
  readonly tcUrl: string;
}

/** rtmp://host[:port]/app[/name]; the application is the first path segment. */
export function parseRtmpUrl(url: string): ParsedRtmpUrl {
  const m = /^rtmp:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?\/([^/?]+(?:\?[^/]*)?)(?:\/(.*))?$/.exec(url);
  if (m === null) throw serverError(ErrorCode.Usage, `not an rtmp:// URL with an application: ${url}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = m[2] !== undefined ? Number(m[2]) : 1935;
  const app = m[3]!;
  return { host, port, app, name: m[4] ?? '', tcUrl: `rtmp://${m[1]!}:${port}/${app}` };
}

const AMF3_COMMAND_PREFIX = Buffer.from([0]);

interface Pending {
  resolve(values: AmfValue[]): void;
  reject(e: Error): void;
}

/**
 * A small RTMP client: connect, publish, play. Used by the tests, the
 * benchmark and (later) relays. Media arrives through `onMedia`, statuses
 * through `onStatus`; both are plain callbacks (no per-message allocation
 * beyond the decoder's).
 */
export class RtmpClient {
  /** `length` is the message's full length (payload.length unless keepMediaBytes cut it) */
  onMedia: (m: RtmpMessage, length: number) => void = () => {};
  onStatus: (info: AmfObject, streamId: number) => void = () => {};
  onClose: (err: Error | undefined) => void = () => {};
  /** User Control events (StreamBegin, StreamEOF...) by type */
  onUserControl: (type: string, streamId: number) => void = () => {};
  closed = false;
  readonly statuses: { code: string; streamId: number }[] = [];

  private readonly decoder: ChunkDecoder;
  private nextTx = 2;
  private readonly pending = new Map<number, Pending>();
  private peerAckWindow = 0;
  private lastAck = 0;
  private readonly statusWaiters: { codes: readonly string[]; streamId: number; resolve(info: AmfObject): void; reject(e: Error): void }[] = [];
  private closeError: Error | undefined;

  private constructor(
    readonly socket: net.Socket,
    readonly url: ParsedRtmpUrl,
    private readonly chunkSize: number,
    maxMessageSize: number,
    private readonly commandEncoding: 'amf0' | 'amf3',
    keepMediaBytes: number | undefined,
  ) {
    this.decoder = new ChunkDecoder({ maxMessageSize, keepMediaBytes }, (m, length) => this.onMessage(m, length));
  }

  get bytesReceived(): number {
    return this.decoder.bytesReceived;
  }

  /** TCP connect, handshake, `connect` command; resolves once the server accepted. */
  static async connect(url: string, opts: ClientOptions = {}): Promise<RtmpClient> {
    const u = parseRtmpUrl(url);
    const timeout = opts.timeout ?? 10_000;
    let reader: ((chunk: Buffer) => void) | undefined;
    const readBufferSize = opts.readBufferSize;
    if (readBufferSize !== undefined && (!Number.isInteger(readBufferSize) || readBufferSize < 1024)) {
      throw new RangeError(`readBufferSize must be an integer of at least 1024, got ${readBufferSize}`);
    }
    const onread =
      readBufferSize === undefined
        ? undefined
        : {
            buffer: Buffer.allocUnsafe(readBufferSize),
            callback: (n: number, buf: Uint8Array): boolean => {
              reader?.(Buffer.from(buf.buffer, buf.byteOffset, n));
              return true;
            },
          };
    const socket = net.connect({ host: u.host, port: u.port, noDelay: true, ...(onread === undefined ? {} : { onread }) });
    const client = new RtmpClient(socket, u, opts.chunkSize ?? 4096, opts.maxMessageSize ?? 16 * 1024 * 1024, opts.commandEncoding ?? 'amf0', opts.keepMediaBytes);
    if (onread !== undefined) reader = (chunk) => client.reader(chunk);
    const timer = setTimeout(() => client.destroy(serverError(ErrorCode.ConnectionTimeout, `connecting to ${url} took more than ${timeout} ms`)), timeout);
    try {
      await client.handshake(opts.digestHandshake ?? true);
      client.send(setChunkSizeMessage(client.chunkSize));
      const [, info] = await client.call('connect', {
        app: u.app,
        type: 'nonprivate',
        flashVer: 'FMLE/3.0 (compatible; rtmp-server client)',
        tcUrl: u.tcUrl,
        fpad: false,
        capabilities: 15,
        audioCodecs: 4071,
        videoCodecs: 252,
        videoFunction: 1,
        objectEncoding: 0,
        ...opts.connectProperties,
      });
      const code = amfString(amfObjectOf(info ?? null)?.['code'] ?? null);
      if (code !== 'NetConnection.Connect.Success') {
        throw serverError(ErrorCode.ClientRejected, `connect refused: ${code ?? 'no code'}`);
      }
      return client;
    } catch (e) {
      client.destroy(e instanceof Error ? e : new Error(String(e)));
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private handshake(digest: boolean): Promise<void> {
    const hs = new ClientHandshake({ digest });
    return new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        try {
          const step = hs.push(d);
          for (const b of step.send) this.socket.write(b);
          if (!step.done) return;
          this.socket.off('data', onData);
          this.reader = (chunk) => this.onData(chunk);
          this.socket.on('data', this.reader);
          if (step.rest.length > 0) this.onData(step.rest);
          resolve();
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      };
      // the handshake may keep views of what it reads until it completes: with a reused read
      // buffer, which the next read overwrites, it gets copies (about 3 KiB, once)
      this.reader = (d) => onData(Buffer.from(d));
      this.socket.on('data', onData);
      this.socket.once('connect', () => this.socket.write(hs.start()));
      this.socket.on('error', (e) => {
        reject(e);
        this.destroy(e);
      });
      this.socket.on('close', () => {
        reject(this.closeError ?? serverError(ErrorCode.ClientClosed, 'connection closed'));
        this.finish();
      });
    });
  }

  /**
   * Where reads go with a reused read buffer (readBufferSize): the handshake,
   * then the chunk decoder. Without it, reads come as 'data' events.
   */
  private reader: (chunk: Buffer) => void = () => {};

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
      if (this.peerAckWindow > 0 && this.decoder.bytesReceived - this.lastAck >= this.peerAckWindow) {
        this.lastAck = this.decoder.bytesReceived;
        this.send(ackMessage(this.lastAck >>> 0));
      }
    } catch (e) {
      this.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private onMessage(m: RtmpMessage, length: number): void {
    switch (m.type) {
      case MessageType.Audio:
      case MessageType.Video:
      case MessageType.DataAmf0:
      case MessageType.DataAmf3:
        this.onMedia(m, length);
        return;
      case MessageType.CommandAmf0:
      case MessageType.CommandAmf3:
        this.onCommand(decodeCommand(m));
        return;
      case MessageType.Aggregate:
        for (const sub of splitAggregate(m)) this.onMessage(sub, sub.payload.length);
        return;
      case MessageType.UserControl:
      case MessageType.WindowAckSize:
      case MessageType.SetChunkSize:
      case MessageType.SetPeerBandwidth:
      case MessageType.Acknowledgement:
      case MessageType.Abort: {
        const c = parseControl(m);
        if (c.kind === 'windowAckSize') this.peerAckWindow = c.size;
        else if (c.kind === 'setPeerBandwidth') this.send(windowAckSizeMessage(c.size));
        else if (c.kind === 'userControl') {
          const ev = c.event;
          if (ev.type === 'pingRequest') this.send(userControlMessage({ type: 'pingResponse', timestamp: ev.timestamp }));
          else if ('streamId' in ev) this.onUserControl(ev.type, ev.streamId);
        }
        return;
      }
      default:
        return;
    }
  }

  private onCommand(c: Command): void {
    if (c.name === '_result' || c.name === '_error') {
      const p = this.pending.get(c.transactionId);
      if (p === undefined) return;
      this.pending.delete(c.transactionId);
      if (c.name === '_result') p.resolve([c.object, ...c.args]);
      else {
        const info = amfObjectOf(c.args[0] ?? null);
        p.reject(serverError(ErrorCode.ClientRejected, `${amfString(info?.['code'] ?? null) ?? '_error'}: ${amfString(info?.['description'] ?? null) ?? ''}`));
      }
      return;
    }
    if (c.name === 'onStatus') {
      const info = amfObjectOf(c.args[0] ?? null) ?? {};
      const code = amfString(info['code'] ?? null) ?? '';
      this.statuses.push({ code, streamId: c.streamId });
      this.onStatus(info, c.streamId);
      for (let i = 0; i < this.statusWaiters.length; i++) {
        const w = this.statusWaiters[i]!;
        if (w.streamId !== c.streamId) continue;
        if (w.codes.includes(code)) {
          this.statusWaiters.splice(i--, 1);
          w.resolve(info);
        } else if (amfString(info['level'] ?? null) === 'error') {
          this.statusWaiters.splice(i--, 1);
          w.reject(serverError(ErrorCode.ClientRejected, `${code}: ${amfString(info['description'] ?? null) ?? ''}`));
        }
      }
    }
  }

  send(m: RtmpMessage): void {
    if (this.closed) return;
    if (m.type === MessageType.CommandAmf0 && this.commandEncoding === 'amf3') {
      // an AMF3 command message is a 0x00 format byte followed by the AMF0 body
      m = { ...m, type: MessageType.CommandAmf3, payload: Buffer.concat([AMF3_COMMAND_PREFIX, m.payload]) };
    }
    this.socket.write(encodeMessage(m, this.chunkSize));
  }

  /** Sends a command with a transaction id and waits for its _result (or _error). */
  call(name: string, object: AmfValue, ...args: AmfValue[]): Promise<AmfValue[]> {
    const tx = name === 'connect' ? 1 : this.nextTx++;
    return new Promise<AmfValue[]>((resolve, reject) => {
      if (this.closed) {
        reject(this.closeError ?? serverError(ErrorCode.ClientClosed, 'client closed'));
        return;
      }
      this.pending.set(tx, { resolve, reject });
      this.send(commandMessage(0, name, tx, object, ...args));
    });
  }

  waitStatus(streamId: number, codes: readonly string[], timeoutMs = 10_000): Promise<AmfObject> {
    return new Promise<AmfObject>((resolve, reject) => {
      const timer = setTimeout(() => reject(serverError(ErrorCode.ConnectionTimeout, `no ${codes.join('/')} within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      this.statusWaiters.push({
        codes,
        streamId,
        resolve: (i) => {
          clearTimeout(timer);
          resolve(i);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async createStream(): Promise<number> {
    const [, id] = await this.call('createStream', null);
    const n = amfNumber(id ?? null);
    if (n === undefined) throw serverError(ErrorCode.ClientRejected, 'createStream returned no stream id');
    return n;
  }

  /** releaseStream + FCPublish + createStream + publish, like OBS; resolves on NetStream.Publish.Start. */
  async publish(name: string, type: 'live' | 'record' | 'append' = 'live'): Promise<number> {
    this.send(commandMessage(0, 'releaseStream', this.nextTx++, null, name));
    this.send(commandMessage(0, 'FCPublish', this.nextTx++, null, name));
    const id = await this.createStream();
    const started = this.waitStatus(id, ['NetStream.Publish.Start']);
    this.send(commandMessage(id, 'publish', 0, null, name, type));
    await started;
    return id;
  }

  /** createStream + play; resolves on NetStream.Play.Start. */
  async play(name: string, start = -2): Promise<number> {
    const id = await this.createStream();
    const started = this.waitStatus(id, ['NetStream.Play.Start']);
    this.send(commandMessage(id, 'play', 0, null, name, start));
    await started;
    return id;
  }

  sendMedia(streamId: number, type: number, timestamp: number, payload: Buffer): void {
    const csid = type === MessageType.Audio ? ChunkStreamId.Audio : type === MessageType.Video ? ChunkStreamId.Video : ChunkStreamId.Data;
    this.send({ csid, type, streamId, timestamp: timestamp >>> 0, payload });
  }

  /** @setDataFrame("onMetaData", meta), as encoders send it. */
  sendMetadata(streamId: number, meta: AmfObject): void {
    const m = dataMessage(streamId, ['@setDataFrame', 'onMetaData', meta]);
    this.send(m);
  }

  /** Stops publishing/playing politely (FCUnpublish + deleteStream) and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.socket.end(() => resolve());
      setTimeout(resolve, 1000).unref();
    });
    this.socket.destroy();
  }

  destroy(err?: Error): void {
    if (err !== undefined && this.closeError === undefined) this.closeError = err;
    this.socket.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    const err = this.closeError ?? (serverError(ErrorCode.ClientClosed, 'connection closed') as ServerError);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.statusWaiters.splice(0)) w.reject(err);
    this.onClose(this.closeError);
  }
}
