/**
 * A minimal HTTP-FLV (or WebSocket-less) player for the load tool: one GET on
 * a plain socket, the response head checked, then the FLV byte stream cut
 * into tags as they arrive. Same surface as the RTMP client the load tool
 * uses (onMedia, onClose, bytesReceived, destroy, close), so a worker can
 * host either. Independent of the server's code (only node:net).
 */
import net from 'node:net';

export interface FlvMessage {
  type: number;
  timestamp: number;
  payload: Buffer;
}

const FLV_HEADER = 13;
const TAG_HEADER = 11;
const PREV_SIZE = 4;
/** bytes of each tag body kept for onMedia (the keyframe flag is in the first) */
const KEEP = 64;
const EMPTY = Buffer.alloc(0);

export class FlvHttpClient {
  onMedia: (m: FlvMessage, length: number) => void = () => undefined;
  onClose: (err: Error | undefined) => void = () => undefined;
  bytesReceived = 0;
  closed = false;
  private buf: Buffer = EMPTY;
  private headDone = false;
  /** bytes of the FLV file header still to skip */
  private skipHeader = FLV_HEADER;
  private readonly head = Buffer.alloc(TAG_HEADER);
  private headLen = 0;
  private size = 0;
  /** bytes of the current tag's body and PreviousTagSize still to come */
  private remaining = 0;
  private readonly keep = Buffer.alloc(KEEP);
  private kept = 0;
  private readonly socket: net.Socket;

  private onHead: (err?: Error) => void = () => undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
  }

  /** Bytes from the socket (a view of the shared read buffer: copied where kept). */
  private received(d: Buffer): boolean {
    this.bytesReceived += d.length;
    if (!this.headDone) {
      this.buf = Buffer.concat([this.buf, d]);
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return true;
      const head = this.buf.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.[01] 200/.test(head)) {
        this.destroy(new Error(`HTTP-FLV: ${head.split('\r\n')[0] ?? 'no status line'}`));
        return false;
      }
      this.headDone = true;
      this.buf = this.buf.subarray(end + 4);
      this.onHead();
    } else this.buf = d;
    this.parse();
    return true;
  }

  /** Connects and sends the GET; resolves when the response head (200) is in. */
  static play(url: string, timeoutMs: number): Promise<FlvHttpClient> {
    const u = new URL(url);
    // one read buffer per client, reused for every read (as the RTMP client's readBufferSize): nothing is kept from it
    const holder: { c?: FlvHttpClient } = {};
    const socket = net.connect({
      host: u.hostname,
      port: Number(u.port || 80),
      onread: { buffer: Buffer.allocUnsafe(64 * 1024), callback: (n: number, buf: Uint8Array) => holder.c?.received(Buffer.from(buf.buffer, buf.byteOffset, n)) !== false },
    });
    socket.setNoDelay(true);
    const c = new FlvHttpClient(socket);
    holder.c = c;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => c.destroy(new Error(`no HTTP-FLV response within ${timeoutMs} ms`)), timeoutMs);
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err !== undefined) reject(err);
        else resolve(c);
      };
      c.onHead = (err) => settle(err);
      socket.once('connect', () => socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: rtmp-load\r\n\r\n`));
      socket.on('error', (e) => c.destroy(e));
      socket.on('close', () => {
        const was = c.closed;
        c.closed = true;
        settle(new Error('HTTP-FLV: closed before the response'));
        if (!was) c.onClose(undefined);
      });
      const origDestroy = c.destroy.bind(c);
      c.destroy = (err?: Error) => {
        settle(err ?? new Error('destroyed'));
        origDestroy(err);
      };
    });
  }

  /**
   * The FLV byte stream, incrementally and without copying payloads (the
   * load tool must stay cheaper than the server): the 13-byte file header is
   * skipped, each 11-byte tag header collected, the first KEEP bytes of each
   * body kept (keyframe flag), the rest of the body and its PreviousTagSize
   * skipped. A tag is reported when its last byte arrived.
   */
  private parse(): void {
    const b = this.buf;
    this.buf = EMPTY;
    let off = 0;
    const n = b.length;
    while (off < n) {
      if (this.skipHeader > 0) {
        const k = Math.min(this.skipHeader, n - off);
        if (this.skipHeader === FLV_HEADER && k >= 3 && (b[off] !== 0x46 || b[off + 1] !== 0x4c || b[off + 2] !== 0x56)) {
          this.destroy(new Error('HTTP-FLV: not an FLV stream'));
          return;
        }
        this.skipHeader -= k;
        off += k;
      } else if (this.headLen < TAG_HEADER) {
        const k = Math.min(TAG_HEADER - this.headLen, n - off);
        b.copy(this.head, this.headLen, off, off + k);
        this.headLen += k;
        off += k;
        if (this.headLen === TAG_HEADER) {
          const h = this.head;
          this.size = (h[1]! << 16) | (h[2]! << 8) | h[3]!;
          this.remaining = this.size + PREV_SIZE;
          this.kept = 0;
        }
      } else {
        const k = Math.min(this.remaining, n - off);
        const want = Math.min(KEEP, this.size) - this.kept;
        if (want > 0) {
          const c = Math.min(want, k);
          b.copy(this.keep, this.kept, off, off + c);
          this.kept += c;
        }
        this.remaining -= k;
        off += k;
        if (this.remaining === 0) {
          const h = this.head;
          this.headLen = 0;
          const timestamp = ((h[7]! << 24) | (h[4]! << 16) | (h[5]! << 8) | h[6]!) >>> 0;
          this.onMedia({ type: h[0]! & 0x1f, timestamp, payload: this.keep.subarray(0, this.kept) }, this.size);
        }
      }
    }
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClose(err);
  }

  async close(): Promise<void> {
    this.destroy();
    await Promise.resolve();
  }
}
