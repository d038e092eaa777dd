import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import net from 'node:net';
import { descriptorOf } from './output.js';

/**
 * One read buffer for every connection of a server.
 *
 * Node.js reads an accepted socket into a new 64 KiB allocation per read, copies
 * what arrived into another one of the exact size, wraps it in a Buffer and
 * pushes it through the Readable stream machinery to a 'data' event. A publisher
 * makes about one read per message (~77 a second at 2.6 Mbit/s), so with
 * hundreds of publishers that is two mallocs and a copy per message, the
 * ArrayBuffers for the collector to trace and sweep, and the stream's
 * bookkeeping (with 200 publishers, ~10 % of the server's CPU:
 * bench/RESULTS.md). Node's `onread` option (a buffer the socket reads into,
 * and a callback instead of 'data') avoids all of it, but Node offers it only
 * for a net.Socket it constructs itself, not for the ones a net.Server accepts.
 * So adopt() makes a net.Socket with `onread` around a second descriptor of the
 * accepted socket (dup(2), from the native addon) and closes the accepted one:
 * the connection lives on in the copy, unchanged.
 *
 * Reads are synchronous on the one event loop, so every adopted socket can read
 * into the same buffer: what the callback gets is valid only until it returns.
 * The connection copies what it keeps past the call (its chunk decoder's
 * `copyPayloads`, the PROXY header parser); the handshake answers C1 within the
 * call that brings it. *
 * Descriptors (the direct-write contract, top of src/rtmp/output.ts): the copy
 * belongs to the new socket alone, whose handle closes it when Node.js destroys
 * that socket (after the peer's FIN, an error, destroy()), exactly as it closes
 * an accepted socket's; the accepted socket's own number is closed here, at
 * once, and may be reused by the next file opened. So the connection's
 * SocketOutput must be made on the returned socket (it takes the copy from that
 * socket's handle and checks the handle before each write), never on the
 * accepted one; adopt() asserts that the returned socket's handle holds the copy.
 */
export class SharedSocketReader {
  readonly buffer: Buffer;

  constructor(
    private readonly dupFd: (fd: number) => number,
    size = 64 * 1024,
  ) {
    if (!Number.isInteger(size) || size < 1024) throw new RangeError(`shared read buffer size must be an integer of at least 1024, got ${size}`);
    this.buffer = Buffer.allocUnsafe(size);
  }

  /**
   * The accepted socket must not have read yet (a server with pauseOnConnect).
   * Returns the socket to use from now on, whose data goes to onData as the
   * shared buffer and the length read into it, and destroys the accepted one; or undefined, leaving
   * the accepted socket as it was, when it has no descriptor or dup(2) failed
   * (EMFILE...): the caller then reads it the usual way. `reason` says why.
   */
  adopt(accepted: net.Socket, onData: (buffer: Buffer, length: number) => void): { socket: net.Socket } | { socket: undefined; reason: string } {
    const fd = descriptorOf(accepted);
    if (fd < 0) return { socket: undefined, reason: 'no file descriptor' };
    let copy: number;
    try {
      copy = this.dupFd(fd);
    } catch (e) {
      return { socket: undefined, reason: e instanceof Error ? e.message : String(e) };
    }
    const buffer = this.buffer;
    // net.connect(options) hands its options, `onread` among them, to this
    // constructor, which is where Node.js sets the socket up to read into the
    // buffer; the type declarations list `onread` only for connect()
    const options: net.SocketConstructorOpts & { onread: net.OnReadOpts } = {
      fd: copy,
      readable: true,
      writable: true,
      onread: {
        buffer,
        callback: (n: number): boolean => {
          // the shared buffer itself and the read's length: no view allocated per read
          onData(buffer, n);
          return true;
        },
      },
    };
    let socket: net.Socket;
    try {
      socket = new net.Socket(options);
    } catch (e) {
      closeSync(copy);
      return { socket: undefined, reason: e instanceof Error ? e.message : String(e) };
    }
    if (descriptorOf(socket) !== copy) {
      // Node.js made a socket that does not hold the copy (it never does): the copy would leak or be closed twice
      socket.destroy();
      assert.fail(`adopt(): the socket made around descriptor ${copy} holds ${descriptorOf(socket)}`);
    }
    accepted.destroy();
    return { socket };
  }
}
