import { createHash } from 'node:crypto';

/**
 * The server side of RFC 6455, as much as a WebSocket-FLV player needs: the
 * opening handshake (Sec-WebSocket-Accept), unmasked binary frames from the
 * server, and a reader of the client's frames that unmasks control frames
 * (ping → pong, close → close) and skips data frames without keeping them.
 * Written by hand: a few hundred bytes of protocol do not justify a
 * dependency, and the server's frames must be shared encodings (one buffer per
 * FLV tag for every WebSocket player).
 */

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const WsOpcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type WsOpcode = (typeof WsOpcode)[keyof typeof WsOpcode];

/** RFC 6455 7.4.1 status codes we send */
export const WsClose = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  TooBig: 1009,
} as const;

const FIN = 0x80;
const RSV_MASK = 0x70;
const OPCODE_MASK = 0x0f;
const MASK_BIT = 0x80;
const LEN_MASK = 0x7f;
const LEN_16 = 126;
const LEN_64 = 127;
/** control frames carry at most this many bytes (RFC 6455 5.5) */
export const MAX_CONTROL_PAYLOAD = 125;
/** a client data frame longer than this is refused (a player sends none; this bounds what we skip) */
export const MAX_CLIENT_FRAME = 1024 * 1024;
const KEY_BYTES = 16;

/** Sec-WebSocket-Accept for a client's Sec-WebSocket-Key. */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/** The client's key when the request is a valid WebSocket upgrade (RFC 6455 4.2.1), else why not. */
export function checkUpgrade(method: string | undefined, headers: Readonly<Record<string, string | string[] | undefined>>): { ok: true; key: string } | { ok: false; reason: string } {
  if (method !== 'GET') return { ok: false, reason: 'method is not GET' };
  const one = (name: string): string => {
    const v = headers[name];
    return (Array.isArray(v) ? v.join(',') : (v ?? '')).trim();
  };
  if (one('upgrade').toLowerCase().split(/\s*,\s*/).indexOf('websocket') < 0) return { ok: false, reason: 'Upgrade is not websocket' };
  if (!one('connection').toLowerCase().split(/\s*,\s*/).includes('upgrade')) return { ok: false, reason: 'Connection does not name upgrade' };
  if (one('sec-websocket-version') !== '13') return { ok: false, reason: 'Sec-WebSocket-Version is not 13' };
  const key = one('sec-websocket-key');
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key) || Buffer.from(key, 'base64').length !== KEY_BYTES) return { ok: false, reason: 'bad Sec-WebSocket-Key' };
  return { ok: true, key };
}

/** The 101 response for an accepted upgrade (extra header lines: `Name: value`). */
export function upgradeResponse(key: string, extra: readonly (readonly [string, string])[] = []): Buffer {
  let head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${websocketAccept(key)}\r\n`;
  for (const [k, v] of extra) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** The size of a server frame's header for a payload of `length` bytes. */
export function frameHeaderSize(length: number): number {
  return length < LEN_16 ? 2 : length <= 0xffff ? 4 : 10;
}

/** Writes an unmasked, final frame header at `offset`; returns the offset after it. */
export function writeFrameHeader(out: Buffer, offset: number, opcode: WsOpcode, length: number): number {
  out[offset] = FIN | opcode;
  if (length < LEN_16) {
    out[offset + 1] = length;
    return offset + 2;
  }
  if (length <= 0xffff) {
    out[offset + 1] = LEN_16;
    out.writeUInt16BE(length, offset + 2);
    return offset + 4;
  }
  out[offset + 1] = LEN_64;
  out.writeUInt32BE(Math.floor(length / 0x1_0000_0000), offset + 2);
  out.writeUInt32BE(length >>> 0, offset + 6);
  return offset + 10;
}

/** One whole server frame (header and payload in one buffer). */
export function encodeFrame(opcode: WsOpcode, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderSize(payload.length) + payload.length);
  payload.copy(out, writeFrameHeader(out, 0, opcode, payload.length));
  return out;
}

/** A close frame with a status code. */
export function closeFrame(code: number): Buffer {
  const p = Buffer.allocUnsafe(2);
  p.writeUInt16BE(code, 0);
  return encodeFrame(WsOpcode.Close, p);
}

/** What the client's frames asked for. */
export type ClientEvent =
  | { readonly type: 'ping'; readonly payload: Buffer }
  | { readonly type: 'close'; readonly code: number | undefined }
  | { readonly type: 'error'; readonly code: number; readonly reason: string };

/**
 * Reads the client's frames incrementally: every frame must be masked,
 * reserved bits clear, a known opcode; control frames final and at most 125
 * bytes (unmasked and reported); data frames (and pongs) at most
 * MAX_CLIENT_FRAME bytes, skipped as they arrive. After an error or a close it
 * reads nothing more.
 */
export class ClientFrameReader {
  private head = Buffer.alloc(14);
  private headLen = 0;
  /** bytes of the current data frame still to skip */
  private skip = 0;
  /** the current control frame: its opcode, mask and payload so far */
  private control: { opcode: WsOpcode; mask: Buffer; payload: Buffer; got: number } | undefined;
  private done = false;

  /** Feeds bytes from the socket; returns the events they complete, in order. */
  push(chunk: Buffer): ClientEvent[] {
    const events: ClientEvent[] = [];
    let i = 0;
    while (i < chunk.length && !this.done) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const c = this.control;
      if (c !== undefined) {
        const n = Math.min(c.payload.length - c.got, chunk.length - i);
        chunk.copy(c.payload, c.got, i, i + n);
        c.got += n;
        i += n;
        if (c.got === c.payload.length) this.finishControl(c, events);
        continue;
      }
      // the header: 2 bytes, then the extended length and the 4-byte mask
      this.head[this.headLen++] = chunk[i++]!;
      if (this.headLen < 2) continue;
      const b0 = this.head[0]!;
      const b1 = this.head[1]!;
      const len7 = b1 & LEN_MASK;
      const need = 2 + (len7 === LEN_16 ? 2 : len7 === LEN_64 ? 8 : 0) + 4;
      if (this.headLen === 2) {
        const err = this.checkFirstBytes(b0, b1);
        if (err !== undefined) {
          this.fail(events, err);
          break;
        }
      }
      if (this.headLen < need) continue;
      let length: number;
      if (len7 === LEN_16) length = this.head.readUInt16BE(2);
      else if (len7 === LEN_64) {
        const hi = this.head.readUInt32BE(2);
        length = hi > 0 ? Infinity : this.head.readUInt32BE(6);
      } else length = len7;
      const mask = Buffer.from(this.head.subarray(need - 4, need));
      this.headLen = 0;
      const opcode = (b0 & OPCODE_MASK) as WsOpcode;
      if (opcode >= WsOpcode.Close) {
        if (length > MAX_CONTROL_PAYLOAD) {
          this.fail(events, { code: WsClose.ProtocolError, reason: 'control frame over 125 bytes' });
          break;
        }
        const ctl = { opcode, mask, payload: Buffer.alloc(length), got: 0 };
        if (length === 0) this.finishControl(ctl, events);
        else this.control = ctl;
      } else if (length > MAX_CLIENT_FRAME) {
        this.fail(events, { code: WsClose.TooBig, reason: `client frame of ${length} bytes` });
        break;
      } else {
        this.skip = length;
      }
    }
    return events;
  }

  private checkFirstBytes(b0: number, b1: number): { code: number; reason: string } | undefined {
    if ((b0 & RSV_MASK) !== 0) return { code: WsClose.ProtocolError, reason: 'reserved bits set' };
    if ((b1 & MASK_BIT) === 0) return { code: WsClose.ProtocolError, reason: 'client frame not masked' };
    const opcode = b0 & OPCODE_MASK;
    switch (opcode) {
      case WsOpcode.Continuation:
      case WsOpcode.Text:
      case WsOpcode.Binary:
      case WsOpcode.Pong:
        return undefined;
      case WsOpcode.Close:
      case WsOpcode.Ping:
        return (b0 & FIN) === 0 ? { code: WsClose.ProtocolError, reason: 'fragmented control frame' } : undefined;
      default:
        return { code: WsClose.ProtocolError, reason: `unknown opcode ${opcode}` };
    }
  }

  private finishControl(c: { opcode: WsOpcode; mask: Buffer; payload: Buffer }, events: ClientEvent[]): void {
    this.control = undefined;
    const p = c.payload;
    for (let k = 0; k < p.length; k++) p[k] = p[k]! ^ c.mask[k & 3]!;
    switch (c.opcode) {
      case WsOpcode.Ping:
        events.push({ type: 'ping', payload: p });
        return;
      case WsOpcode.Close:
        if (p.length === 1) {
          this.fail(events, { code: WsClose.ProtocolError, reason: 'close frame of 1 byte' });
          return;
        }
        this.done = true;
        events.push({ type: 'close', code: p.length >= 2 ? p.readUInt16BE(0) : undefined });
        return;
      default:
        // a pong, or data: nothing to do
        return;
    }
  }

  private fail(events: ClientEvent[], err: { code: number; reason: string }): void {
    this.done = true;
    events.push({ type: 'error', code: err.code, reason: err.reason });
  }
}
