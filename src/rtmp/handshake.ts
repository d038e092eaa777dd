/**
 * The RTMP handshake (version 3), server and client side, as pure state
 * machines: feed received bytes to `push()`, write out what it returns in
 * `send`. No sockets, no timers (the connection owns the handshake timeout).
 *
 * Two flavours share the same wire layout (C0/S0 = 1 version byte, C1/S1 and
 * C2/S2 = 1536 bytes each):
 *
 * - plain (RTMP 1.0 spec, section 5.2): C1 = time, zero, random; S2 echoes C1
 *   and C2 echoes S1.
 * - digest ("complex", Flash Player 9+, librtmp, ffmpeg): C1 bytes 4..7 carry a
 *   non-zero client version and 32 bytes somewhere in C1 are an HMAC-SHA256 of
 *   the other 1504 bytes, keyed with the "Genuine Adobe Flash Player 001" key.
 *   The digest position is derived from 4 bytes at a scheme-dependent base
 *   (scheme 0: base 8, scheme 1: base 772). The server answers with an S1 that
 *   carries its own digest (key "Genuine Adobe Flash Media Server 001") in the
 *   same scheme, and an S2 whose last 32 bytes sign its first 1504 bytes with
 *   a key derived from the client digest. Some clients (ffmpeg when playing,
 *   Flash Player) refuse a server that does not do this.
 *
 * A C1 that claims a version but whose digest does not validate in either
 * scheme gets the plain answer. RTMPE (versions 6, 8, 9) is refused.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ByteReader, ByteWriter } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';

/** Size of C1, S1, C2 and S2. */
export const HANDSHAKE_SIZE = 1536;

/** Values of the C0/S0 version byte. */
const RtmpVersion = {
  Plain: 3,
  /** RTMPE, Diffie-Hellman + RC4. */
  Encrypted: 6,
  /** RTMPE with the XTEA-scrambled signature. */
  EncryptedXtea: 8,
  /** RTMPE with the Blowfish-scrambled signature. */
  EncryptedBlowfish: 9,
} as const;

/** Byte layout of a 1536-byte handshake packet. */
const Packet = {
  TimeOffset: 0,
  VersionOffset: 4,
  /** First byte after the time and version fields. */
  BodyOffset: 8,
  /** Bytes of the version byte C0/S0. */
  VersionByteSize: 1,
  DigestSize: 32,
  /** Digest positions are taken modulo this (764-byte block - 4 offset bytes - 32 digest bytes). */
  DigestOffsetModulus: 728,
  /** Bytes summed to compute the digest position. */
  DigestOffsetBytes: 4,
} as const;

/** Base of the 4 offset bytes for each digest scheme. */
const DigestSchemeBase = { 0: 8, 1: 772 } as const;
export type DigestScheme = keyof typeof DigestSchemeBase;

/** Version fields written into S1 / digest C1. */
const PeerVersion = {
  /** What Flash Media Server 3 announces: 13.14.10.13. */
  Server: 0x0d0e0a0d,
  /** What ffmpeg announces: 9.0.124.2. */
  Client: 0x09007c02,
  /** Plain handshake: the "zero" field. */
  None: 0,
} as const;

/** Bytes of a signed C2/S2 that are random (the rest is the signature). */
const SIGNED_PAYLOAD_SIZE = HANDSHAKE_SIZE - Packet.DigestSize;
const C0C1_SIZE = Packet.VersionByteSize + HANDSHAKE_SIZE;

/** 32 fixed bytes appended to both genuine keys to key the C2/S2 signatures. */
const GENUINE_KEY_TAIL = Buffer.from(
  'f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae',
  'hex',
);
const PLAYER_KEY_TEXT = 'Genuine Adobe Flash Player 001';
const SERVER_KEY_TEXT = 'Genuine Adobe Flash Media Server 001';
/** Keys the client's C1 digest (30 bytes). */
const PLAYER_KEY = Buffer.from(PLAYER_KEY_TEXT, 'latin1');
/** Keys the C2 signature (62 bytes). */
const PLAYER_FULL_KEY = Buffer.concat([PLAYER_KEY, GENUINE_KEY_TAIL]);
/** Keys the server's S1 digest (36 bytes). */
const SERVER_KEY = Buffer.from(SERVER_KEY_TEXT, 'latin1');
/** Keys the S2 signature (68 bytes). */
const SERVER_FULL_KEY = Buffer.concat([SERVER_KEY, GENUINE_KEY_TAIL]);

export interface HandshakeStep {
  /** Bytes to write to the peer now, in order. */
  send: Buffer[];
  /** The handshake is complete. */
  done: boolean;
  /** Bytes received after the end of the handshake (the first chunk data); empty if none. */
  rest: Buffer;
}

export interface HandshakeOptions {
  /** Source of random bytes (must return exactly n bytes). Default: crypto.randomBytes. */
  random?: (n: number) => Buffer;
  /** Milliseconds for the time field. Default: process uptime in ms. */
  now?: () => number;
}

export interface ClientHandshakeOptions extends HandshakeOptions {
  /** Use the digest handshake (default true, like ffmpeg). */
  digest?: boolean;
  /** Digest scheme of C1 (default 0, like ffmpeg). */
  scheme?: DigestScheme;
}

// ---------------------------------------------------------------------------
// digest helpers

function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Where the 32-byte digest sits in a 1536-byte packet for a scheme. */
function digestPosition(packet: Buffer, scheme: DigestScheme): number {
  const base = DigestSchemeBase[scheme];
  const r = new ByteReader(packet, base, base + Packet.DigestOffsetBytes);
  let sum = 0;
  while (r.remaining > 0) sum += r.u8();
  return (sum % Packet.DigestOffsetModulus) + base + Packet.DigestOffsetBytes;
}

/** HMAC of the packet without its digest bytes. */
function packetDigest(packet: Buffer, pos: number, key: Buffer): Buffer {
  return hmac(key, packet.subarray(0, pos), packet.subarray(pos + Packet.DigestSize, HANDSHAKE_SIZE));
}

/** The packet's digest (a view) if it validates with the key in the given scheme. */
function validDigest(packet: Buffer, scheme: DigestScheme, key: Buffer): Buffer | undefined {
  const pos = digestPosition(packet, scheme);
  const claimed = packet.subarray(pos, pos + Packet.DigestSize);
  return timingSafeEqual(claimed, packetDigest(packet, pos, key)) ? claimed : undefined;
}

/** Tries the preferred scheme first, then the other one. */
function findDigest(
  packet: Buffer,
  key: Buffer,
  preferred: DigestScheme,
): { scheme: DigestScheme; digest: Buffer } | undefined {
  const order: readonly DigestScheme[] = preferred === 0 ? [0, 1] : [1, 0];
  for (const scheme of order) {
    const digest = validDigest(packet, scheme, key);
    if (digest !== undefined) return { scheme, digest };
  }
  return undefined;
}

/** Writes time + version + random, then the digest at its scheme position, in place. */
function writeDigestPacket(
  w: ByteWriter,
  time: number,
  version: number,
  random: Buffer,
  key: Buffer,
  scheme: DigestScheme,
): Buffer {
  const start = w.pos;
  w.u32(time).u32(version).bytes(random);
  const packet = w.buf.subarray(start, start + HANDSHAKE_SIZE);
  const pos = digestPosition(packet, scheme);
  packet.set(packetDigest(packet, pos, key), pos);
  return packet;
}

/** Writes a C2/S2 of the digest handshake: random payload + its signature keyed by the peer digest. */
function writeSignedPacket(w: ByteWriter, payload: Buffer, peerDigest: Buffer, fullKey: Buffer): void {
  w.bytes(payload).bytes(hmac(hmac(fullKey, peerDigest), payload));
}

function signatureValid(packet: Buffer, ownDigest: Buffer, fullKey: Buffer): boolean {
  const payload = packet.subarray(0, SIGNED_PAYLOAD_SIZE);
  const signature = packet.subarray(SIGNED_PAYLOAD_SIZE, HANDSHAKE_SIZE);
  return timingSafeEqual(signature, hmac(hmac(fullKey, ownDigest), payload));
}

function checkVersion(version: number, who: 'client' | 'server'): void {
  if (version === RtmpVersion.Plain) return;
  if (
    version === RtmpVersion.Encrypted ||
    version === RtmpVersion.EncryptedXtea ||
    version === RtmpVersion.EncryptedBlowfish
  ) {
    throw serverError(
      ErrorCode.HandshakeVersion,
      `${who} requested RTMPE (encrypted RTMP, version ${version}), which is not supported; use plain rtmp://`,
    );
  }
  throw serverError(
    ErrorCode.HandshakeVersion,
    `${who} sent RTMP version ${version}, only version ${RtmpVersion.Plain} is supported`,
  );
}

/** The version field of C1/S1 (zero in the plain handshake). */
function peerVersion(packet: Buffer): number {
  return new ByteReader(packet, Packet.VersionOffset).u32();
}

function defaultNow(): number {
  return performance.now();
}

function timeField(now: () => number): number {
  return Math.trunc(now()) >>> 0;
}

// ---------------------------------------------------------------------------
// buffering

/**
 * Collects exactly `size` bytes from successive pushes. Keeps a view of the
 * caller's buffer when the bytes arrive in one piece, copies otherwise; with
 * `keep` false it only counts.
 */
class Collector {
  private buf: Buffer | undefined;
  private filled = 0;

  constructor(
    readonly size: number,
    private readonly keep: boolean,
  ) {}

  get complete(): boolean {
    return this.filled === this.size;
  }

  /** At least one byte was taken. */
  get started(): boolean {
    return this.filled > 0;
  }

  /** Takes what it still needs from data[off..]; returns the number of bytes taken. */
  take(data: Buffer, off: number): number {
    const n = Math.min(this.size - this.filled, data.length - off);
    if (n <= 0) return 0;
    if (this.keep) {
      if (this.filled === 0 && n === this.size) {
        this.buf = data.subarray(off, off + n);
      } else {
        this.buf ??= Buffer.allocUnsafe(this.size);
        data.copy(this.buf, this.filled, off, off + n);
      }
    }
    this.filled += n;
    return n;
  }

  /** The collected bytes (only with `keep`, once complete). */
  bytes(): Buffer {
    if (!this.complete || this.buf === undefined) throw new RangeError('Collector: bytes not complete or not kept');
    return this.buf;
  }
}

function emptyAfter(data: Buffer): Buffer {
  return data.subarray(data.length);
}

// ---------------------------------------------------------------------------
// server

const ServerState = { ReadC0C1: 0, ReadC2: 1, Done: 2 } as const;
type ServerState = (typeof ServerState)[keyof typeof ServerState];

export class ServerHandshake {
  private state: ServerState = ServerState.ReadC0C1;
  private readonly c0c1 = new Collector(C0C1_SIZE, true);
  private readonly c2 = new Collector(HANDSHAKE_SIZE, false);
  private readonly random: (n: number) => Buffer;
  private readonly now: () => number;
  private usedDigest = false;

  constructor(opts: HandshakeOptions = {}) {
    this.random = opts.random ?? randomBytes;
    this.now = opts.now ?? defaultNow;
  }

  /** True once the digest ("complex") handshake was used. */
  get digest(): boolean {
    return this.usedDigest;
  }

  push(data: Buffer): HandshakeStep {
    if (this.state === ServerState.Done) return { send: [], done: true, rest: data };
    const send: Buffer[] = [];
    let off = 0;
    if (this.state === ServerState.ReadC0C1) {
      if (!this.c0c1.started && off < data.length) checkVersion(data[off]!, 'client');
      off += this.c0c1.take(data, off);
      if (this.c0c1.complete) {
        send.push(this.respond(this.c0c1.bytes().subarray(Packet.VersionByteSize)));
        this.state = ServerState.ReadC2;
      }
    }
    if (this.state === ServerState.ReadC2) {
      off += this.c2.take(data, off);
      if (this.c2.complete) this.state = ServerState.Done;
    }
    const done = this.state === ServerState.Done;
    return { send, done, rest: done ? data.subarray(off) : emptyAfter(data) };
  }

  /** S0 + S1 + S2 in one buffer. */
  private respond(c1: Buffer): Buffer {
    const w = new ByteWriter(Packet.VersionByteSize + 2 * HANDSHAKE_SIZE);
    w.u8(RtmpVersion.Plain);
    const time = timeField(this.now);
    const clientDigest =
      peerVersion(c1) !== PeerVersion.None ? findDigest(c1, PLAYER_KEY, 0) : undefined;
    if (clientDigest !== undefined) {
      this.usedDigest = true;
      const body = this.random(HANDSHAKE_SIZE - Packet.BodyOffset);
      writeDigestPacket(w, time, PeerVersion.Server, body, SERVER_KEY, clientDigest.scheme);
      writeSignedPacket(w, this.random(SIGNED_PAYLOAD_SIZE), clientDigest.digest, SERVER_FULL_KEY);
    } else {
      w.u32(time).u32(PeerVersion.None).bytes(this.random(HANDSHAKE_SIZE - Packet.BodyOffset));
      w.bytes(c1);
    }
    return w.done();
  }
}

// ---------------------------------------------------------------------------
// client

const ClientState = { Idle: 0, ReadS0S1: 1, ReadS2: 2, Done: 3 } as const;
type ClientState = (typeof ClientState)[keyof typeof ClientState];

export class ClientHandshake {
  private state: ClientState = ClientState.Idle;
  private readonly s0s1 = new Collector(C0C1_SIZE, true);
  private readonly s2: Collector;
  private readonly random: (n: number) => Buffer;
  private readonly now: () => number;
  private readonly useDigest: boolean;
  private readonly scheme: DigestScheme;
  /** Our C1 digest, digest mode only. */
  private ownDigest: Buffer | undefined;
  private serverValid: boolean | undefined;

  constructor(opts: ClientHandshakeOptions = {}) {
    this.random = opts.random ?? randomBytes;
    this.now = opts.now ?? defaultNow;
    this.useDigest = opts.digest ?? true;
    this.scheme = opts.scheme ?? 0;
    this.s2 = new Collector(HANDSHAKE_SIZE, this.useDigest);
  }

  /**
   * Digest mode only: whether the server proved it knows the FMS key (valid S1
   * digest and S2 signed over our C1 digest). Undefined in plain mode and
   * until S1 (then S2) arrived. The handshake completes either way.
   */
  get serverDigestValid(): boolean | undefined {
    return this.serverValid;
  }

  /** C0 + C1, to write first. */
  start(): Buffer {
    if (this.state !== ClientState.Idle) {
      throw serverError(ErrorCode.ProtocolViolation, 'ClientHandshake.start() called twice');
    }
    this.state = ClientState.ReadS0S1;
    const w = new ByteWriter(C0C1_SIZE);
    w.u8(RtmpVersion.Plain);
    const time = timeField(this.now);
    const body = this.random(HANDSHAKE_SIZE - Packet.BodyOffset);
    if (this.useDigest) {
      const c1 = writeDigestPacket(w, time, PeerVersion.Client, body, PLAYER_KEY, this.scheme);
      const pos = digestPosition(c1, this.scheme);
      // a copy: the caller owns the returned buffer
      this.ownDigest = Buffer.from(c1.subarray(pos, pos + Packet.DigestSize));
    } else {
      w.u32(time).u32(PeerVersion.None).bytes(body);
    }
    return w.done();
  }

  push(data: Buffer): HandshakeStep {
    if (this.state === ClientState.Idle) {
      throw serverError(ErrorCode.ProtocolViolation, 'ClientHandshake.push() before start()');
    }
    if (this.state === ClientState.Done) return { send: [], done: true, rest: data };
    const send: Buffer[] = [];
    let off = 0;
    if (this.state === ClientState.ReadS0S1) {
      if (!this.s0s1.started && off < data.length) checkVersion(data[off]!, 'server');
      off += this.s0s1.take(data, off);
      if (this.s0s1.complete) {
        send.push(this.answer(this.s0s1.bytes().subarray(Packet.VersionByteSize)));
        this.state = ClientState.ReadS2;
      }
    }
    if (this.state === ClientState.ReadS2) {
      off += this.s2.take(data, off);
      if (this.s2.complete) {
        if (this.serverValid === true && this.ownDigest !== undefined) {
          this.serverValid = signatureValid(this.s2.bytes(), this.ownDigest, SERVER_FULL_KEY);
        }
        this.state = ClientState.Done;
      }
    }
    const done = this.state === ClientState.Done;
    return { send, done, rest: done ? data.subarray(off) : emptyAfter(data) };
  }

  /** C2: echo of S1, or a signed packet when S1 carried a valid server digest. */
  private answer(s1: Buffer): Buffer {
    const w = new ByteWriter(HANDSHAKE_SIZE);
    if (!this.useDigest) return w.bytes(s1).done();
    const serverDigest =
      peerVersion(s1) !== PeerVersion.None
        ? findDigest(s1, SERVER_KEY, this.scheme)
        : undefined;
    this.serverValid = serverDigest !== undefined;
    if (serverDigest === undefined) return w.bytes(s1).done();
    writeSignedPacket(w, this.random(SIGNED_PAYLOAD_SIZE), serverDigest.digest, PLAYER_FULL_KEY);
    return w.done();
  }
}
