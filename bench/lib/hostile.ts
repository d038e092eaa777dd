/**
 * Hostile clients for the soak (bench/hostile-soak.ts): each case opens its
 * own sockets to the server on 127.0.0.1, performs one attack from issue 13,
 * closes everything it opened and says what the server did: answered, cut the
 * client off, or neither. A case never throws for what the server does; it
 * returns an outcome (a short stable phrase, counted across rounds) and notes
 * (figures). The runner bounds every case by a deadline and destroys what is
 * left of its sockets afterwards.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { encodeAmf0 } from '../../src/rtmp/amf0.js';
import type { AmfObject } from '../../src/rtmp/amf-types.js';
import { ChunkDecoder, encodeMessage } from '../../src/rtmp/chunk.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { commandMessage, decodeCommand, type Command } from '../../src/rtmp/commands.js';
import { setChunkSizeMessage, userControlMessage } from '../../src/rtmp/control.js';
import { ClientHandshake } from '../../src/rtmp/handshake.js';
import { MessageType, MAX_CSID, type RtmpMessage } from '../../src/rtmp/messages.js';
import { isVideoKeyframe } from '../../src/media/video.js';
import { TagType, type LoopMedia } from './media.js';
import { Publisher } from './publisher.js';
import { clock } from './stats.js';

// ---------------------------------------------------------------------------
// what the cases know about the server under test

export interface HostileEnv {
  readonly host: string;
  readonly rtmpPort: number;
  readonly app: string;
  /** the stream the healthy players watch (case 8 plays it too) */
  readonly healthyName: string;
  /** the media the cases' own publishers send */
  readonly media: LoopMedia;
  /** the HTTP server with rtmp_stat at /stat and rtmp_control at /control (cases 6, 9, 10) */
  readonly httpPort: number | undefined;
  /** a `listen ... proxy_protocol` port (case 10) */
  readonly proxyPort: number | undefined;
  /**
   * exec is configured as `exec_publish /bin/echo $name >>EXECDIR/exec-out/$args/exec.log` and
   * `exec_play /bin/sleep 3` (cases 11, 12); EXECDIR/escaped/ exists so that an escape lands there
   */
  readonly execDir: string | undefined;
  /** the webhook server delays on_connect for clients whose flashVer holds this, on_publish for SLOW_PUBLISH_MARK */
  readonly hooks: boolean;
  /** the server's pid (RSS, exec children); undefined when unknown */
  serverPid(): number | undefined;
}

export const SLOW_CONNECT_MARK = 'SOAK-SLOW-CONNECT';
export const SLOW_PUBLISH_MARK = 'SOAK-SLOW-PUBLISH';

export interface CaseResult {
  readonly outcome: string;
  readonly notes: string[];
}

export class CaseContext {
  readonly notes: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly publishers = new Set<Publisher>();
  private seq = 0;

  constructor(
    readonly env: HostileEnv,
    /** clock() time by which the case must be done */
    readonly deadline: number,
    readonly round: number,
  ) {}

  note(text: string): void {
    this.notes.push(text);
  }

  get appUrl(): string {
    return `rtmp://${this.env.host}:${this.env.rtmpPort}/${this.env.app}`;
  }

  /** a stream name of this case and round */
  uniq(prefix: string): string {
    return `${prefix}-${this.round}-${this.seq++}`;
  }

  left(capMs = Infinity): number {
    return Math.max(0, Math.min(capMs, this.deadline - clock()));
  }

  track(s: net.Socket): net.Socket {
    this.sockets.add(s);
    return s;
  }

  async client(opts: { flashVer?: string } = {}): Promise<RtmpClient> {
    const c = await RtmpClient.connect(this.appUrl, {
      timeout: this.left(10_000),
      ...(opts.flashVer !== undefined ? { connectProperties: { flashVer: opts.flashVer } } : {}),
    });
    this.track(c.socket);
    return c;
  }

  async publisher(name: string): Promise<Publisher> {
    const p = new Publisher({ appUrl: this.appUrl, name, media: this.env.media, connectTimeoutMs: this.left(10_000) });
    this.publishers.add(p);
    await p.start();
    return p;
  }

  rss(): number {
    const pid = this.env.serverPid();
    if (pid === undefined) return NaN;
    try {
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m === null ? NaN : Number(m[1]) / 1024;
    } catch {
      return NaN;
    }
  }

  async cleanup(): Promise<void> {
    for (const p of this.publishers) await p.stop().catch(() => undefined);
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.publishers.clear();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function mib(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(1)} MiB` : 'n/a';
}

async function until(cond: () => boolean, ms: number, step = 20): Promise<boolean> {
  const end = clock() + ms;
  while (clock() < end) {
    if (cond()) return true;
    await sleep(step);
  }
  return cond();
}

// ---------------------------------------------------------------------------
// a raw RTMP connection: our handshake and encoder, nothing else

export class RawConn {
  chunkSize = 128;
  closedAt: number | undefined;
  closeReason: string | undefined;
  readonly commands: Command[] = [];
  bytesIn = 0;
  private decoder: ChunkDecoder | undefined;
  readonly openedAt = clock();

  private constructor(readonly socket: net.Socket) {
    socket.on('error', (e) => {
      this.closeReason ??= e.message;
    });
    socket.on('close', () => {
      this.closedAt ??= clock();
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined || this.socket.destroyed;
  }

  /**
   * TCP connect (with `prefix` written first, e.g. a PROXY header) and the
   * client handshake. `read: false` pauses the socket after the handshake: the
   * client never reads again.
   */
  static async open(ctx: CaseContext, opts: { port?: number; prefix?: Buffer; read?: boolean } = {}): Promise<RawConn> {
    const socket = ctx.track(net.connect({ host: ctx.env.host, port: opts.port ?? ctx.env.rtmpPort, noDelay: true }));
    const c = new RawConn(socket);
    const hs = new ClientHandshake({ digest: false });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('handshake timed out')), ctx.left(10_000));
      const fail = (e: Error): void => {
        clearTimeout(timer);
        reject(e);
      };
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('closed during the handshake')));
      const onData = (d: Buffer): void => {
        try {
          const step = hs.push(d);
          for (const b of step.send) socket.write(b);
          if (!step.done) return;
          socket.off('data', onData);
          socket.off('error', fail);
          socket.removeAllListeners('close');
          socket.on('close', () => {
            c.closedAt ??= clock();
          });
          clearTimeout(timer);
          if (opts.read === false) socket.pause();
          else {
            c.decoder = new ChunkDecoder({ maxMessageSize: 16 * 1024 * 1024 }, (m) => c.onMessage(m));
            socket.on('data', (x: Buffer) => c.onData(x));
            if (step.rest.length > 0) c.onData(step.rest);
          }
          resolve();
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
        }
      };
      socket.on('data', onData);
      socket.once('connect', () => {
        if (opts.prefix !== undefined) socket.write(opts.prefix);
        socket.write(hs.start());
      });
    });
    return c;
  }

  private onData(d: Buffer): void {
    this.bytesIn += d.length;
    try {
      this.decoder?.push(d);
    } catch (e) {
      this.closeReason ??= `undecodable reply: ${e instanceof Error ? e.message : String(e)}`;
      this.socket.destroy();
    }
  }

  private onMessage(m: RtmpMessage): void {
    if (m.type !== MessageType.CommandAmf0) return;
    try {
      this.commands.push(decodeCommand(m));
    } catch {
      // not ours to judge here
    }
  }

  /** Writes and waits until the kernel took it (or `ms` passed: false). */
  write(buf: Buffer, ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.socket.write(buf, (err) => {
        clearTimeout(timer);
        resolve(err === undefined || err === null);
      });
    });
  }

  send(m: RtmpMessage, ms = 5000): Promise<boolean> {
    return this.write(encodeMessage(m, this.chunkSize), ms);
  }

  async setChunkSize(n: number): Promise<void> {
    await this.send(setChunkSizeMessage(n));
    this.chunkSize = n;
  }

  /** The first command answering transaction `tx` (or named `name`), within `ms`; undefined if none. */
  async reply(tx: number, ms: number, name?: string): Promise<Command | undefined> {
    const find = (): Command | undefined => this.commands.find((c) => (name !== undefined ? c.name === name : (c.name === '_result' || c.name === '_error') && c.transactionId === tx));
    await until(() => find() !== undefined || this.closed, ms);
    return find();
  }

  connectMessage(app: string, extra: AmfObject = {}): RtmpMessage {
    return commandMessage(0, 'connect', 1, { app, type: 'nonprivate', flashVer: 'FMLE/3.0 (hostile-soak)', tcUrl: `rtmp://127.0.0.1/${app}`, objectEncoding: 0, ...extra });
  }

  async waitClosed(ms: number): Promise<boolean> {
    return until(() => this.closed, ms);
  }

  describeEnd(): string {
    return this.closed ? `cut off after ${Math.round((this.closedAt ?? clock()) - this.openedAt)} ms${this.closeReason !== undefined ? ` (${this.closeReason})` : ''}` : 'still open';
  }
}

/** RTMP 1.0's message header: basic header byte for chunk format 0 on a chunk stream id below 64. */
function type0Header(csid: number, length: number, type: number, streamId: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = csid; // fmt 0
  b.writeUIntBE(0, 1, 3);
  b.writeUIntBE(length, 4, 3);
  b[7] = type;
  b.writeUInt32LE(streamId, 8);
  return b;
}

/** A type 3 basic header (fmt 3) on a chunk stream id below 64: one byte. */
function type3Byte(csid: number): number {
  return (3 << 6) | csid;
}

function u29(v: number): Buffer {
  if (v < 0x80) return Buffer.from([v]);
  if (v < 0x4000) return Buffer.from([(v >> 7) | 0x80, v & 0x7f]);
  if (v < 0x200000) return Buffer.from([(v >> 14) | 0x80, ((v >> 7) & 0x7f) | 0x80, v & 0x7f]);
  return Buffer.from([(v >> 22) | 0x80, ((v >> 15) & 0x7f) | 0x80, ((v >> 8) & 0x7f) | 0x80, v & 0xff]);
}

/** An Aggregate (type 22) body: FLV-like tags (type, size, timestamp, stream id, data, back pointer). */
function aggregateOf(parts: readonly { type: number; payload: Buffer }[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const h = Buffer.alloc(11);
    h[0] = p.type;
    h.writeUIntBE(p.payload.length, 1, 3);
    out.push(h, p.payload);
    const back = Buffer.alloc(4);
    back.writeUInt32BE(11 + p.payload.length);
    out.push(back);
  }
  return Buffer.concat(out);
}

interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly ms: number;
}

export function httpGet(port: number, urlPath: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<HttpAnswer> {
  const t0 = clock();
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, timeout: timeoutMs, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8'), ms: clock() - t0 }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Children of a process (scans /proc for their parent pid). */
export function childCount(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  let n = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[1]) === pid) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

/** <stream> blocks of rtmp_stat's XML by name: its client count and client addresses. */
function statStream(xml: string, name: string): { nclients: number; addresses: string[] } | undefined {
  for (const block of xml.split('<stream>').slice(1)) {
    const n = /<name>([^<]*)<\/name>/.exec(block);
    if (n?.[1] !== name) continue;
    const c = /<nclients>(\d+)<\/nclients>/.exec(block);
    return { nclients: c === null ? NaN : Number(c[1]), addresses: [...block.matchAll(/<address>([^<]*)<\/address>/g)].map((m) => m[1]!) };
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// the cases

export interface HostileCase {
  readonly id: number;
  readonly title: string;
  /** a case that needs a part of the configuration the soak does not have is skipped */
  readonly needs?: (env: HostileEnv) => boolean;
  run(ctx: CaseContext): Promise<string>;
}

/** 1: @setDataFrame whose AMF3 part references one string ~64000 times: ~130 KB on the wire, ~19 MB re-encoded as AMF0. */
const REF_COUNT = 64_000;
const REF_STRING_LENGTH = 300;

export function scriptBombPayload(): Buffer {
  const str = Buffer.alloc(REF_STRING_LENGTH, 0x78);
  const parts: Buffer[] = [
    Buffer.from([0x00]), // the AMF3 data message's format byte
    encodeAmf0(['@setDataFrame', 'onMetaData']),
    Buffer.from([0x11, 0x09]), // AMF0 avmplus marker, AMF3 array
    u29((REF_COUNT << 1) | 1),
    Buffer.from([0x01]), // no associative part
    Buffer.from([0x06]),
    u29((REF_STRING_LENGTH << 1) | 1),
    str,
  ];
  const ref = Buffer.alloc((REF_COUNT - 1) * 2);
  for (let i = 0; i < ref.length; i += 2) ref[i] = 0x06; // string marker, U29 0 = reference to string 0
  parts.push(ref);
  return Buffer.concat(parts);
}

const scriptBomb: HostileCase = {
  id: 1,
  title: 'AMF3 string-reference bomb in @setDataFrame, with a player',
  async run(ctx) {
    const name = ctx.uniq('bomb');
    const pub = await ctx.client();
    const id = await pub.publish(name);
    const player = await ctx.client();
    let biggest = 0;
    let dataMessages = 0;
    let armed = false;
    player.onMedia = (m, len) => {
      if (armed && (m.type === MessageType.DataAmf0 || m.type === MessageType.DataAmf3)) {
        dataMessages++;
        biggest = Math.max(biggest, len);
      }
    };
    await player.play(name);
    const payload = scriptBombPayload();
    const rss0 = ctx.rss();
    await sleep(200);
    armed = true;
    pub.send({ csid: 5, type: MessageType.DataAmf3, streamId: id, timestamp: 0, payload });
    await until(() => pub.closed || player.closed || dataMessages > 0, ctx.left(5000));
    await sleep(Math.min(ctx.left(), 1000));
    ctx.note(`sent ${payload.length} B; player got ${dataMessages} data message(s), largest ${biggest} B; RSS ${mib(rss0)} -> ${mib(ctx.rss())}`);
    if (pub.closed) return player.closed ? 'publisher and player cut off' : 'publisher cut off';
    if (player.closed) return 'PLAYER cut off, publisher kept';
    return dataMessages > 0 ? (biggest > 16 * 1024 * 1024 ? 'EXPANDED METADATA FORWARDED' : 'metadata forwarded, bounded') : 'metadata dropped, both kept';
  },
};

/** 2: connect with app 'a' + 160000 slashes + 'b' in one 160 KB message. */
const longApp: HostileCase = {
  id: 2,
  title: "connect with app = 'a' + '/' x 160000 + 'b'",
  async run(ctx) {
    const c = await RawConn.open(ctx);
    await c.setChunkSize(65536);
    const app = `a${'/'.repeat(160_000)}b`;
    const t0 = clock();
    await c.send(c.connectMessage(app), ctx.left(10_000));
    const r = await c.reply(1, ctx.left(20_000));
    const ms = Math.round(clock() - t0);
    if (r !== undefined) return `${r.name} in ${ms < 1000 ? '<1 s' : `${Math.round(ms / 1000)} s`}`;
    ctx.note(`after ${ms} ms: ${c.describeEnd()}`);
    return c.closed ? `cut off in ${ms < 1000 ? '<1 s' : `${Math.round(ms / 1000)} s`}` : 'NO ANSWER';
  },
};

/** Floods one connection with empty messages (type 3 headers) and small ones; returns whether the server cut it off meanwhile. */
async function emptyMessageFlood(ctx: CaseContext, c: RawConn, headers: number, small: number): Promise<void> {
  const piece = 64 * 1024;
  // an empty audio message on chunk stream 4, then type 3 headers: each one more empty message
  await c.write(type0Header(4, 0, MessageType.Audio, 0), 2000);
  const empties = Buffer.alloc(piece, type3Byte(4));
  for (let sent = 0; sent < headers && !c.closed && ctx.left() > 0; sent += piece) await c.write(empties, ctx.left(5000));
  // one-byte audio messages on chunk stream 5: fmt 0 once, then type 3 header + 1 byte
  await c.write(Buffer.concat([type0Header(5, 1, MessageType.Audio, 0), Buffer.from([0xaf])]), 2000);
  const smalls = Buffer.alloc(piece);
  for (let i = 0; i < piece; i += 2) {
    smalls[i] = type3Byte(5);
    smalls[i + 1] = 0xaf;
  }
  for (let sent = 0; sent < small && !c.closed && ctx.left() > 0; sent += piece / 2) await c.write(smalls, ctx.left(5000));
}

const FLOOD_EMPTY = 1024 * 1024;
const FLOOD_SMALL = 256 * 1024;

const floodWhileHookPending: HostileCase = {
  id: 3,
  title: 'flood of empty/small messages while on_connect / on_publish is pending',
  needs: (env) => env.hooks,
  async run(ctx) {
    const rss0 = ctx.rss();
    // a: connect, whose on_connect the webhook server holds
    const a = await RawConn.open(ctx);
    await a.send(a.connectMessage(ctx.env.app, { flashVer: `FMLE/3.0 (${SLOW_CONNECT_MARK})` }));
    await emptyMessageFlood(ctx, a, FLOOD_EMPTY, FLOOD_SMALL);
    const ra = await a.reply(1, ctx.left(12_000));
    const rssA = ctx.rss();
    ctx.note(`on_connect flood: ${FLOOD_EMPTY} empty + ${FLOOD_SMALL} 1-byte messages; RSS ${mib(rss0)} -> ${mib(rssA)}; connect: ${ra?.name ?? a.describeEnd()}`);
    a.socket.destroy();
    // b: publish, whose on_publish the webhook server holds
    const b = await RawConn.open(ctx);
    await b.send(b.connectMessage(ctx.env.app, { flashVer: `FMLE/3.0 (${SLOW_PUBLISH_MARK})` }));
    const rb = await b.reply(1, ctx.left(10_000));
    let outcomeB = 'b: not connected';
    if (rb?.name === '_result') {
      await b.send(commandMessage(0, 'createStream', 2, null));
      const cs = await b.reply(2, ctx.left(5000));
      const sid = typeof cs?.args[0] === 'number' ? cs.args[0] : 1;
      await b.send(commandMessage(sid, 'publish', 0, null, ctx.uniq('hookflood'), 'live'));
      await emptyMessageFlood(ctx, b, FLOOD_EMPTY, FLOOD_SMALL);
      const rssB = ctx.rss();
      await sleep(Math.min(ctx.left(), 500));
      outcomeB = b.closed ? 'b: cut off' : 'b: flood taken';
      ctx.note(`on_publish flood: RSS -> ${mib(rssB)}; ${b.describeEnd()}`);
    }
    const outcomeA = a.closedAt !== undefined && ra === undefined ? 'a: cut off' : 'a: flood taken';
    return `${outcomeA}, ${outcomeB}`;
  },
};

/** 4: a client that never reads, sending ping requests and unknown commands (each with a reply) before and after connect. */
const PINGS = 100_000;
const UNKNOWN = 50_000;

async function replyFlood(ctx: CaseContext, c: RawConn, from: number): Promise<number> {
  const ping = encodeMessage(userControlMessage({ type: 'pingRequest', timestamp: 1 }), c.chunkSize);
  const pings = Buffer.concat(Array.from({ length: 1000 }, () => ping));
  let written = 0;
  for (let i = 0; i < PINGS / 1000 && !c.closed && ctx.left() > 0; i++) if (await c.write(pings, ctx.left(3000))) written += pings.length;
  for (let i = 0; i < UNKNOWN / 500 && !c.closed && ctx.left() > 0; i++) {
    const batch = Buffer.concat(Array.from({ length: 500 }, (_, k) => encodeMessage(commandMessage(0, 'soakNoSuchCommand', from + i * 500 + k, null), c.chunkSize)));
    if (await c.write(batch, ctx.left(3000))) written += batch.length;
  }
  return written;
}

const neverReads: HostileCase = {
  id: 4,
  title: 'never-reading client: ping requests and unknown commands before and after connect',
  async run(ctx) {
    const rss0 = ctx.rss();
    const c = await RawConn.open(ctx, { read: false });
    const before = await replyFlood(ctx, c, 2);
    await c.send(c.connectMessage(ctx.env.app), 3000);
    const after = await replyFlood(ctx, c, 1_000_000);
    await sleep(Math.min(ctx.left(), 1000));
    const rss1 = ctx.rss();
    ctx.note(`wrote ${(before / 1048576).toFixed(1)} MiB before and ${(after / 1048576).toFixed(1)} MiB after connect; RSS ${mib(rss0)} -> ${mib(rss1)}; ${c.describeEnd()}`);
    return c.closed ? 'cut off' : Number.isFinite(rss1 - rss0) && rss1 - rss0 > 20 ? 'KEPT, RSS GREW > 20 MiB' : 'kept';
  },
};

/** 5: one small complete message on every chunk stream id from 3 to 65599. */
const allChunkStreams: HostileCase = {
  id: 5,
  title: 'chunk stream ids 3..65599 opened on one connection',
  async run(ctx) {
    const c = await RawConn.open(ctx);
    await c.send(c.connectMessage(ctx.env.app));
    await c.reply(1, ctx.left(5000));
    const rss0 = ctx.rss();
    const ack = Buffer.alloc(4);
    const bufs: Buffer[] = [];
    for (let csid = 3; csid <= MAX_CSID; csid++) bufs.push(encodeMessage({ csid, type: MessageType.Acknowledgement, streamId: 0, timestamp: 0, payload: ack }, c.chunkSize));
    const all = Buffer.concat(bufs);
    for (let off = 0; off < all.length && !c.closed; off += 256 * 1024) await c.write(all.subarray(off, off + 256 * 1024), ctx.left(5000));
    await sleep(Math.min(ctx.left(), 1000));
    ctx.note(`${MAX_CSID - 2} chunk streams in ${all.length} B; RSS ${mib(rss0)} -> ${mib(ctx.rss())}; ${c.describeEnd()}`);
    // max_streams (default 32) bounds the chunk streams of a connection
    return c.closed ? 'cut off' : 'ALL CHUNK STREAMS KEPT';
  },
};

/** 6: one Aggregate holding two publish commands (then one holding two plays), disconnect, then the name must be free again. */
const aggregateCommands: HostileCase = {
  id: 6,
  title: 'Aggregate with two publish / two play commands, then disconnect',
  async run(ctx) {
    const results: string[] = [];
    // two publishes
    const name = ctx.uniq('aggpub');
    const c = await ctx.client();
    const sid = await c.createStream();
    const pub = encodeAmf0(['publish', 0, null, name, 'live']);
    c.send({ csid: 8, type: MessageType.Aggregate, streamId: sid, timestamp: 0, payload: aggregateOf([{ type: MessageType.CommandAmf0, payload: pub }, { type: MessageType.CommandAmf0, payload: pub }]) });
    await sleep(Math.min(ctx.left(), 500));
    ctx.note(`two publishes: statuses ${c.statuses.map((s) => s.code).join(',') || 'none'}${c.closed ? ', cut off' : ''}`);
    c.destroy();
    await sleep(Math.min(ctx.left(), 500));
    try {
      const again = await ctx.client();
      const id2 = again.publish(name);
      const ok = await Promise.race([id2.then(() => true), sleep(ctx.left(5000)).then(() => false)]);
      results.push(ok ? 'name free again' : 'NAME STUCK (no answer)');
      again.destroy();
    } catch (e) {
      results.push('NAME STUCK (publish refused)');
      ctx.note(`publishing the name again: ${e instanceof Error ? e.message.slice(0, 100) : String(e)}`);
    }
    // two plays
    const pname = ctx.uniq('aggplay');
    const p = await ctx.client();
    const psid = await p.createStream();
    const play = encodeAmf0(['play', 0, null, pname, -2]);
    p.send({ csid: 8, type: MessageType.Aggregate, streamId: psid, timestamp: 0, payload: aggregateOf([{ type: MessageType.CommandAmf0, payload: play }, { type: MessageType.CommandAmf0, payload: play }]) });
    await sleep(Math.min(ctx.left(), 500));
    ctx.note(`two plays: statuses ${p.statuses.map((s) => s.code).join(',') || 'none'}${p.closed ? ', cut off' : ''}`);
    p.destroy();
    await sleep(Math.min(ctx.left(), 500));
    if (ctx.env.httpPort !== undefined) {
      await ctx.publisher(pname);
      await sleep(Math.min(ctx.left(), 300));
      const stat = await httpGet(ctx.env.httpPort, '/stat', {}, ctx.left(5000));
      const s = statStream(stat.body, pname);
      // the publisher is the only client left
      results.push(s === undefined ? 'play stream not in stat' : s.nclients <= 1 ? 'no player left behind' : `${s.nclients - 1} PLAYER(S) LEFT BEHIND`);
    }
    return results.join(', ');
  },
};

/** 7: play on message stream id 65537 without createStream, before the stream's publisher and normal players. */
const highStreamId: HostileCase = {
  id: 7,
  title: 'player on message stream id 65537 (no createStream), joined before normal players',
  async run(ctx) {
    const name = ctx.uniq('sid65537');
    const h = await ctx.client();
    let hostileMedia = 0;
    h.onMedia = () => hostileMedia++;
    h.send(commandMessage(65537, 'play', 0, null, name, -2));
    await sleep(Math.min(ctx.left(), 300));
    await ctx.publisher(name);
    const normal = await ctx.client();
    let video = 0;
    normal.onMedia = (m) => {
      if (m.type === TagType.Video) video++;
    };
    await normal.play(name);
    const fed = await until(() => video >= 10, ctx.left(4000));
    ctx.note(`hostile: ${h.closed ? 'cut off' : 'open'}, statuses ${h.statuses.map((s) => `${s.code}@${s.streamId}`).join(',') || 'none'}, ${hostileMedia} media; normal player ${video} video frames`);
    return `${h.closed ? 'hostile cut off' : h.statuses.length > 0 ? 'hostile served' : 'hostile ignored'}, ${fed ? 'normal player fed' : 'NORMAL PLAYER STARVED'}`;
  },
};

/** 8: 3 x 50 players of the healthy stream that send FIN right after play. */
const finAfterPlay: HostileCase = {
  id: 8,
  title: 'players that half-close (FIN) right after play, on the healthy stream',
  async run(ctx) {
    let closedByServer = 0;
    let total = 0;
    let failed = 0;
    for (let round = 0; round < 3 && ctx.left() > 2000; round++) {
      const clients = await Promise.all(
        Array.from({ length: 50 }, async () => {
          try {
            const c = await ctx.client();
            const sid = await c.createStream();
            c.send(commandMessage(sid, 'play', 0, null, ctx.env.healthyName, -2));
            c.socket.end();
            return c;
          } catch {
            failed++;
            return undefined;
          }
        }),
      );
      const live = clients.filter((c): c is RtmpClient => c !== undefined);
      total += live.length;
      await until(() => live.every((c) => c.closed), ctx.left(3000));
      closedByServer += live.filter((c) => c.closed).length;
      for (const c of live) c.destroy();
    }
    ctx.note(`${total} half-closed players, ${closedByServer} closed by the server within 3 s, ${failed} failed to connect`);
    if (total === 0) return 'NO PLAYER COULD CONNECT';
    return closedByServer === total ? 'all closed by the server' : 'HALF-OPEN PLAYERS KEPT';
  },
};

/** 9: cross-site GETs to the control API (drop a victim publisher) and to /stat. */
const crossSiteControl: HostileCase = {
  id: 9,
  title: 'cross-site GET /control/drop/publisher and /stat',
  needs: (env) => env.httpPort !== undefined,
  async run(ctx) {
    const port = ctx.env.httpPort!;
    const name = ctx.uniq('victim');
    const victim = await ctx.publisher(name);
    await sleep(200);
    const hostile = { Origin: 'http://evil.example', Referer: 'http://evil.example/page', 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' };
    const drop = await httpGet(port, `/control/drop/publisher?app=${ctx.env.app}&name=${name}`, hostile, ctx.left(5000));
    await sleep(500);
    const stat = await httpGet(port, '/stat', hostile, ctx.left(5000));
    ctx.note(`drop: ${drop.status} ${JSON.stringify(drop.body.slice(0, 40))}, victim ${victim.closed ? 'dropped' : 'kept'}; stat: ${stat.status}, ${stat.body.length} B, ACAO ${stat.headers['access-control-allow-origin'] ?? 'none'}`);
    return `${victim.closed ? 'CROSS-SITE DROP WORKED' : `drop refused (${drop.status})`}, stat ${stat.status}`;
  },
};

/** 10: a PROXY protocol v1 header claiming another address, from a peer nobody said to trust. */
const SPOOFED = '203.0.113.77';
const proxySpoof: HostileCase = {
  id: 10,
  title: 'PROXY header from an untrusted peer',
  needs: (env) => env.proxyPort !== undefined && env.httpPort !== undefined,
  async run(ctx) {
    const prefix = Buffer.from(`PROXY TCP4 ${SPOOFED} 127.0.0.1 40000 ${ctx.env.proxyPort!}\r\n`);
    let c: RawConn;
    try {
      c = await RawConn.open(ctx, { port: ctx.env.proxyPort!, prefix });
    } catch (e) {
      ctx.note(e instanceof Error ? e.message : String(e));
      return 'refused';
    }
    await c.send(c.connectMessage(ctx.env.app));
    const r = await c.reply(1, ctx.left(5000));
    if (r?.name !== '_result') return `connect ${r?.name ?? c.describeEnd()}`;
    const name = ctx.uniq('proxied');
    await c.send(commandMessage(0, 'createStream', 2, null));
    const cs = await c.reply(2, ctx.left(5000));
    const sid = typeof cs?.args[0] === 'number' ? cs.args[0] : 1;
    await c.send(commandMessage(sid, 'publish', 0, null, name, 'live'));
    await c.reply(0, ctx.left(3000), 'onStatus');
    const stat = await httpGet(ctx.env.httpPort!, '/stat', {}, ctx.left(5000));
    const s = statStream(stat.body, name);
    ctx.note(`stat addresses for ${name}: ${s?.addresses.join(',') ?? 'stream not listed'}`);
    return s?.addresses.includes(SPOOFED) === true ? 'SPOOFED ADDRESS ACCEPTED' : 'spoof not taken';
  },
};

/** 11: exec redirect escape through $args, and a stream name starting with '-'. */
const execNames: HostileCase = {
  id: 11,
  title: "exec: publish 'cam?../escaped' (redirect path) and '-name'",
  needs: (env) => env.execDir !== undefined,
  async run(ctx) {
    const escaped = path.join(ctx.env.execDir!, 'escaped', 'exec.log');
    rmSync(escaped, { force: true });
    const out: string[] = [];
    try {
      await ctx.publisher(`cam-${ctx.round}?../escaped`);
      await sleep(Math.min(ctx.left(), 800));
      out.push(existsSync(escaped) ? 'REDIRECT ESCAPED its directory' : 'publish accepted, no escape');
    } catch (e) {
      out.push("'?../' refused");
      ctx.note(`'?../': ${e instanceof Error ? e.message.slice(0, 100) : String(e)}`);
    }
    rmSync(escaped, { force: true });
    try {
      await ctx.publisher(`-soak-${ctx.round}`);
      out.push("'-name' accepted");
    } catch (e) {
      out.push("'-name' refused");
      ctx.note(`'-name': ${e instanceof Error ? e.message.slice(0, 100) : String(e)}`);
    }
    return out.join(', ');
  },
};

/** 12: 30 plays on one connection (each an exec_play child). */
const manyPlays: HostileCase = {
  id: 12,
  title: '30 plays on one connection (exec_play children)',
  async run(ctx) {
    const pid = ctx.env.serverPid();
    const children0 = childCount(pid);
    const c = await ctx.client();
    let streams = 0;
    let refused = '';
    for (let i = 0; i < 30 && !c.closed && ctx.left() > 0; i++) {
      try {
        const sid = await c.createStream();
        c.send(commandMessage(sid, 'play', 0, null, ctx.uniq('multi'), -2));
        streams++;
      } catch (e) {
        refused = e instanceof Error ? e.message.slice(0, 60) : String(e);
        break;
      }
    }
    await sleep(Math.min(ctx.left(), 800));
    const starts = c.statuses.filter((s) => s.code === 'NetStream.Play.Start').length;
    const children1 = childCount(pid);
    ctx.note(`${streams} streams created${refused !== '' ? ` (then: ${refused})` : ''}, ${starts} Play.Start; server children ${children0} -> ${children1}`);
    return `${starts} of 30 plays started${c.closed ? ', cut off' : ''}`;
  },
};

/** 13: a frame with timestamp 0xFFFFFF00 in a publisher's stream, then normal ones. */
const timestampJump: HostileCase = {
  id: 13,
  title: 'a frame at timestamp 0xFFFFFF00, then normal timestamps',
  async run(ctx) {
    const name = ctx.uniq('tsjump');
    const media = ctx.env.media;
    const pub = await ctx.client();
    const sid = await pub.publish(name);
    for (const hdr of media.headers) pub.sendMedia(sid, hdr.type, 0, hdr.data);
    const player = await ctx.client();
    let video = 0;
    let afterJump = 0;
    let jumpSeen = false;
    const seen: number[] = [];
    /** timestamps of the frames after the jump frame */
    const after = new Set<number>();
    player.onMedia = (m) => {
      if (m.type !== TagType.Video) return;
      video++;
      if (seen.length < 4) seen.push(m.timestamp);
      if (jumpSeen) {
        afterJump++;
        after.add(m.timestamp);
      } else if (m.timestamp >= 0xffff0000) jumpSeen = true;
    };
    await player.play(name);
    const key = media.tags.find((t) => t.type === TagType.Video && isVideoKeyframe(t.data));
    if (key !== undefined) pub.sendMedia(sid, TagType.Video, 0xffffff00, key.data);
    const t0 = clock();
    let i = media.tags.indexOf(key ?? media.tags[0]!);
    while (clock() - t0 < 2500 && !pub.closed && ctx.left() > 0) {
      const tag = media.tags[i % media.tags.length]!;
      const due = tag.offset - media.tags[0]!.offset;
      if (clock() - t0 < due) await sleep(due - (clock() - t0));
      pub.sendMedia(sid, tag.type, 40 + (tag.offset % 0xffffff), tag.data);
      i++;
    }
    await sleep(300);
    ctx.note(
      `player: ${video} video frames, jump ${jumpSeen ? 'seen' : 'not seen'}, ${afterJump} after it with ${after.size} distinct timestamps, first timestamps ${seen.map((t) => `0x${t.toString(16)}`).join(',')};` +
        ` publisher ${pub.closed ? 'cut off' : 'kept'}, player ${player.closed ? 'cut off' : 'kept'}`,
    );
    if (pub.closed) return 'publisher cut off';
    if (video <= 10) return 'PLAYER STALLED';
    if (jumpSeen && afterJump > 10 && after.size <= 2) return 'player fed, TIMESTAMPS FROZEN at the jump';
    return `player fed, timestamps advancing${jumpSeen ? '' : ' (jump frame not forwarded)'}`;
  },
};

export const HOSTILE_CASES: readonly HostileCase[] = [
  scriptBomb,
  longApp,
  floodWhileHookPending,
  neverReads,
  allChunkStreams,
  aggregateCommands,
  highStreamId,
  finAfterPlay,
  crossSiteControl,
  proxySpoof,
  execNames,
  manyPlays,
  timestampJump,
];

export interface CaseRun {
  readonly id: number;
  readonly round: number;
  readonly startedAt: number;
  readonly ms: number;
  readonly outcome: string;
  readonly notes: readonly string[];
}

/** Runs one case within `timeoutMs` (and the soak's end); never throws. */
export async function runCase(c: HostileCase, env: HostileEnv, round: number, timeoutMs: number, endAt: number): Promise<CaseRun> {
  const startedAt = clock();
  const ctx = new CaseContext(env, Math.min(startedAt + timeoutMs, endAt), round);
  let outcome: string;
  let timer: NodeJS.Timeout | undefined;
  try {
    outcome = await Promise.race([
      c.run(ctx),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('TIMED OUT'), Math.max(0, ctx.deadline - clock()) + 2000);
      }),
    ]);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // our connects time out only when the server does not answer (a refusal closes the socket)
    outcome = /handshake timed out|took more than|within \d+ ms/.test(msg) ? 'SERVER UNRESPONSIVE (connect timed out)' : `error: ${msg.replace(/\d+/g, 'N').slice(0, 80)}`;
    ctx.note(e instanceof Error ? e.message : String(e));
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    await ctx.cleanup();
  }
  return { id: c.id, round, startedAt, ms: clock() - startedAt, outcome, notes: ctx.notes };
}

// ---------------------------------------------------------------------------
// the webhook server: answers at once, except on_connect / on_publish of marked clients

export interface HookServer {
  readonly port: number;
  calls: number;
  delayed: number;
  close(): Promise<void>;
}

export async function startHookServer(delayMs: number): Promise<HookServer> {
  const pending = new Set<NodeJS.Timeout>();
  const hs: HookServer = {
    port: 0,
    calls: 0,
    delayed: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of pending) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      hs.calls++;
      const body = `${Buffer.concat(parts).toString('utf8')}&${req.url ?? ''}`;
      const slow = (req.url?.includes('on_connect') === true && body.includes(SLOW_CONNECT_MARK)) || (req.url?.includes('on_publish') === true && body.includes(SLOW_PUBLISH_MARK));
      const answer = (): void => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      };
      if (!slow) return answer();
      hs.delayed++;
      const t = setTimeout(() => {
        pending.delete(t);
        answer();
      }, delayMs);
      pending.add(t);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  (hs as { port: number }).port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return hs;
}
