import { ErrorCode, serverError } from '../core/errors.js';

/**
 * The PROXY protocol header (HAProxy, versions 1 and 2) that a load balancer
 * puts in front of the RTMP bytes when `listen ... proxy_protocol` is set:
 * it carries the real client address.
 */

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** v1 lines are at most 107 bytes including CRLF */
const V1_MAX = 107;
const V2_HEADER = 16;

const V2Command = { Local: 0x0, Proxy: 0x1 } as const;
const V2Family = { Unspec: 0x0, Inet: 0x1, Inet6: 0x2, Unix: 0x3 } as const;

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export interface ProxyStep {
  readonly done: boolean;
  /** the client's address, when the header named one (not for LOCAL / UNKNOWN) */
  readonly source: ProxyAddress | undefined;
  /** bytes after the header (the RTMP handshake) */
  readonly rest: Buffer;
}

export class ProxyProtocolParser {
  private buf: Buffer = Buffer.alloc(0);

  push(data: Buffer): ProxyStep {
    // a copy, also of the first read: the caller may reuse its read buffer (the server's shared one)
    this.buf = Buffer.concat([this.buf, data]);
    const b = this.buf;
    const need = Math.min(b.length, V2_SIGNATURE.length);
    if (b.subarray(0, need).equals(V2_SIGNATURE.subarray(0, need))) {
      return b.length < V2_SIGNATURE.length ? pending() : this.v2();
    }
    const n1 = Math.min(b.length, V1_PREFIX.length);
    if (!b.subarray(0, n1).equals(V1_PREFIX.subarray(0, n1))) {
      throw serverError(ErrorCode.ProxyProtocol, 'connection does not start with a PROXY protocol header');
    }
    return this.v1();
  }

  private v1(): ProxyStep {
    const b = this.buf;
    const end = b.indexOf('\r\n', 0, 'latin1');
    if (end < 0) {
      if (b.length >= V1_MAX) throw serverError(ErrorCode.ProxyProtocol, 'PROXY v1 line longer than 107 bytes');
      return pending();
    }
    if (end + 2 > V1_MAX) throw serverError(ErrorCode.ProxyProtocol, 'PROXY v1 line longer than 107 bytes');
    const parts = b.subarray(0, end).toString('latin1').split(' ');
    const rest = b.subarray(end + 2);
    if (parts[1] === 'UNKNOWN') return { done: true, source: undefined, rest };
    if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) {
      throw serverError(ErrorCode.ProxyProtocol, 'malformed PROXY v1 line');
    }
    const port = Number(parts[4]);
    const address = parts[2]!;
    const valid = parts[1] === 'TCP4' ? /^\d{1,3}(\.\d{1,3}){3}$/.test(address) : /^[0-9a-fA-F:.]+$/.test(address);
    if (!valid || !Number.isInteger(port) || port < 0 || port > 65535 || !/^\d+$/.test(parts[4]!)) {
      throw serverError(ErrorCode.ProxyProtocol, 'malformed PROXY v1 address');
    }
    return { done: true, source: { address, port }, rest };
  }

  private v2(): ProxyStep {
    const b = this.buf;
    if (b.length < V2_HEADER) return pending();
    const verCmd = b[12]!;
    if (verCmd >> 4 !== 2) throw serverError(ErrorCode.ProxyProtocol, `PROXY v2 version ${verCmd >> 4}`);
    const len = b.readUInt16BE(14);
    if (b.length < V2_HEADER + len) return pending();
    const body = b.subarray(V2_HEADER, V2_HEADER + len);
    const rest = b.subarray(V2_HEADER + len);
    const command = verCmd & 0x0f;
    if (command === V2Command.Local) return { done: true, source: undefined, rest };
    if (command !== V2Command.Proxy) throw serverError(ErrorCode.ProxyProtocol, `PROXY v2 command ${command}`);
    const family = b[13]! >> 4;
    if (family === V2Family.Inet) {
      if (body.length < 12) throw serverError(ErrorCode.ProxyProtocol, 'PROXY v2 IPv4 block too short');
      return { done: true, source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) }, rest };
    }
    if (family === V2Family.Inet6) {
      if (body.length < 36) throw serverError(ErrorCode.ProxyProtocol, 'PROXY v2 IPv6 block too short');
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
      return { done: true, source: { address: groups.join(':'), port: body.readUInt16BE(32) }, rest };
    }
    if (family === V2Family.Unspec || family === V2Family.Unix) return { done: true, source: undefined, rest };
    throw serverError(ErrorCode.ProxyProtocol, `PROXY v2 address family ${family}`);
  }
}

function pending(): ProxyStep {
  return { done: false, source: undefined, rest: Buffer.alloc(0) };
}
