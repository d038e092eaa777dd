import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import net from 'node:net';
import type { NativePoller, NativeWriter } from '../core/native.js';
import { descriptorOf, type WriteGroup } from './output.js';

/** Where an adopted socket's input goes. */
export interface SocketInputHandler {
  /** bytes read, `buffer[start..end)`: valid only during the call (the buffer is reused) */
  data(buffer: Buffer, start: number, end: number): void;
  /** the peer closed its side (NativeSocketReader only: a socket read by Node.js says so with its own events) */
  end(): void;
  /** a read failed with -errno (NativeSocketReader only, as end()) */
  error(errno: number): void;
}

export type Adopted = { readonly socket: net.Socket } | { readonly socket: undefined; readonly reason: string };

/** How the server reads its connections: a socket it adopts is read through `handler` from a later turn of the event loop. */
export interface SocketInput {
  adopt(accepted: net.Socket, handler: SocketInputHandler): Adopted;
  /** After the server's last connection: frees what the reader holds. */
  close(): void;
}

/** A second descriptor of the accepted socket (dup(2)), or why there is none (no descriptor, EMFILE...). */
function duplicate(accepted: net.Socket, dupFd: (fd: number) => number): { copy: number; reason?: undefined } | { copy?: undefined; reason: string } {
  const fd = descriptorOf(accepted);
  if (fd < 0) return { reason: 'no file descriptor' };
  try {
    return { copy: dupFd(fd) };
  } catch (e) {
    return { reason: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * The best reader the native addon allows: NativeSocketReader (batched reads,
 * one call into JavaScript per turn), else SharedSocketReader (Node.js's
 * `onread` into one buffer), else none (each socket read the usual way).
 */
export function createSocketInput(native: NativeWriter | undefined, group: WriteGroup | undefined, readWindowMs = 0): SocketInput | undefined {
  const dupFd = native?.dupFd?.bind(native);
  if (native === undefined || dupFd === undefined) return undefined;
  if (native.createPoller !== undefined && native.pollerWatch !== undefined && native.pollerUnwatch !== undefined && native.pollerClose !== undefined) {
    const setWindow = native.pollerSetWindow;
    return new NativeSocketReader(native as PollerNative, dupFd, group, setWindow !== undefined && readWindowMs > 0 ? new ReadWindow(readWindowMs) : undefined);
  }
  return new SharedSocketReader(dupFd);
}

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
export class SharedSocketReader implements SocketInput {
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
  adopt(accepted: net.Socket, handler: SocketInputHandler): Adopted {
    const dup = duplicate(accepted, this.dupFd);
    if (dup.reason !== undefined) return { socket: undefined, reason: dup.reason };
    const copy = dup.copy;
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
          handler.data(buffer, 0, n);
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

  close(): void {
    // nothing held beyond the buffer
  }
}

/** What ReadWindow decides from (defaults in READ_WINDOW). */
export interface ReadWindowOptions {
  /** the window when it is on, ms (read_window) */
  readonly ms: number;
  /** on when the read rate would put at least this many reads in a window; off below half of it */
  readonly minReads?: number;
  /** how often the rate is measured, ms */
  readonly periodMs?: number;
}

export const READ_WINDOW = {
  /** read_window's default, ms */
  Ms: 4,
  /** reads a window must gather on average for it to be on (off below half) */
  MinReads: 8,
  /** the rate is measured over this long */
  PeriodMs: 250,
  /** the longest window native/reader.c accepts */
  MaxMs: 1000,
} as const;

/**
 * When the poller's read window is on (the window itself: native/reader.c).
 *
 * A window costs latency: a read waits up to `ms` for the arrivals the same
 * wake-up of the loop will take. It pays only when many connections send at
 * once: each wake-up of the process (the scheduler's switch, libuv's poll, the
 * entry into JavaScript, the write group's flush) then serves a window's worth
 * of reads instead of the few that arrived while the last batch ran
 * (bench/RESULTS.md, 2026-12-08: ~10 % of the server's CPU at 50 publishers).
 * So the window is on only while the reads come fast enough to put at least
 * `minReads` in each window (at 4 ms and 8 reads: 2 000 reads a second, ~27
 * publishers at 1 Mbit/s), and off again below half of that: one publisher and
 * its players, or a few, never wait for it.
 */
export class ReadWindow {
  readonly ms: number;
  private readonly minReads: number;
  private readonly periodMs: number;
  private on = false;
  private reads = 0;
  private periodStart: number | undefined = undefined;

  constructor(o: ReadWindowOptions | number) {
    const opts = typeof o === 'number' ? { ms: o } : o;
    if (!Number.isInteger(opts.ms) || opts.ms < 1 || opts.ms > READ_WINDOW.MaxMs) throw new RangeError(`read window must be an integer of 1..${READ_WINDOW.MaxMs} ms, got ${opts.ms}`);
    this.ms = opts.ms;
    this.minReads = opts.minReads ?? READ_WINDOW.MinReads;
    this.periodMs = opts.periodMs ?? READ_WINDOW.PeriodMs;
  }

  /** Whether the window is on now. */
  get active(): boolean {
    return this.on;
  }

  /**
   * Counts a batch of `reads` delivered at `now` (ms). Once a period has
   * passed, decides from the period's rate: returns the window to set (ms, 0
   * for off) when that changes, else undefined.
   */
  batch(reads: number, now: number): number | undefined {
    if (this.periodStart === undefined) this.periodStart = now;
    this.reads += reads;
    const elapsed = now - this.periodStart;
    if (elapsed < this.periodMs) return undefined;
    // reads a window of this length would have gathered at the period's rate
    const perWindow = (this.reads * this.ms) / elapsed;
    this.reads = 0;
    this.periodStart = now;
    const on = this.on ? perWindow >= this.minReads / 2 : perWindow >= this.minReads;
    if (on === this.on) return undefined;
    this.on = on;
    return on ? this.ms : 0;
  }
}

type PollerNative = Pick<Required<NativeWriter>, 'createPoller' | 'pollerWatch' | 'pollerUnwatch' | 'pollerClose'> & Pick<NativeWriter, 'pollerSetWindow'>;

/** Bytes a batch can hold: sixteen full reads (native/reader.c reads at most 64 KiB at a time). */
const BATCH_BYTES = 1024 * 1024;
/** Reads a batch can hold (three int32 each: token, result, offset). */
const BATCH_READS = 1024;
const ENTRY_INTS = 3;

/**
 * Batched reads: one call into JavaScript per turn of the event loop for every
 * connection that had something to read (native/reader.c).
 *
 * Node.js enters JavaScript once per read (the stream handle's onread, the
 * socket's bookkeeping, a callback, a microtask checkpoint). A publisher makes
 * about one read per message, so with hundreds of publishers that entry costs
 * more than the message's processing. The native poller watches a dup(2) of
 * each adopted socket (in an epoll set of its own, watched on Node's own
 * loop), makes one recv(2) per ready socket into the next free part of one
 * batch buffer, and calls deliver() with the batch in the loop's check phase,
 * right after the poll phase that made the reads (or at once when the buffer
 * is full). The batch's writes (command replies, media fanned out to players)
 * wait in the server's write group and leave together when the batch ends.
 * Under load (ReadWindow) the poller also lets reads wait up to read_window
 * ms, so that one wake-up takes the window's arrivals of every connection.
 *
 * The contract (asserted here and in native/reader.c):
 * - The poller owns its copy of the descriptor: nothing else reads or closes it,
 *   so its number cannot be given to another file while it is watched. Node.js
 *   keeps the accepted socket, never reading it (accepted paused, never
 *   resumed), and writes and closes it as usual. The TCP connection lives until
 *   both descriptors are closed: the copy closes on the socket's 'close'.
 * - The peer's end of stream and read errors come to the handler (end(),
 *   error()); Node.js does not see them (it does not read).
 * - A connection's entries of a batch go to its handler in order; after
 *   release (its socket closed) none reach it, not even those of the batch
 *   being delivered (the poller forgets them on unwatch).
 * - What data() gets is valid only until it returns.
 */
export class NativeSocketReader implements SocketInput {
  private readonly buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private readonly meta = new Int32Array(BATCH_READS * ENTRY_INTS);
  private readonly poller: NativePoller;
  /** handlers by token; undefined where free */
  private readonly handlers: (SocketInputHandler | undefined)[] = [];
  private readonly freeTokens: number[] = [];
  private closed = false;

  constructor(
    private readonly native: PollerNative,
    private readonly dupFd: (fd: number) => number,
    /** the server's write group: a batch's writes leave together */
    private readonly group?: WriteGroup,
    /** the read window's policy (none: every read is delivered in the turn that made it) */
    private readonly window?: ReadWindow,
  ) {
    assert(window === undefined || native.pollerSetWindow !== undefined, 'a read window needs the addon\'s pollerSetWindow');
    this.poller = native.createPoller(this.buffer, this.meta, (count) => this.deliver(count));
  }

  /** Whether reads wait for the window now (ReadWindow). */
  get windowActive(): boolean {
    return this.window?.active === true;
  }

  /** The accepted socket must not have read yet (a server with pauseOnConnect); it stays paused for good. */
  adopt(accepted: net.Socket, handler: SocketInputHandler): Adopted {
    assert(!this.closed, 'adopt() after close()');
    const dup = duplicate(accepted, this.dupFd);
    if (dup.reason !== undefined) return { socket: undefined, reason: dup.reason };
    const copy = dup.copy;
    const token = this.freeTokens.pop() ?? this.handlers.length;
    try {
      this.native.pollerWatch(this.poller, copy, token);
    } catch (e) {
      closeSync(copy);
      if (token < this.handlers.length) this.freeTokens.push(token);
      return { socket: undefined, reason: e instanceof Error ? e.message : String(e) };
    }
    this.handlers[token] = handler;
    accepted.once('close', () => this.release(token));
    return { socket: accepted };
  }

  private release(token: number): void {
    if (this.closed) return;
    if (this.handlers[token] === undefined) assert.fail(`release(): token ${token} is not in use`);
    this.native.pollerUnwatch(this.poller, token);
    this.handlers[token] = undefined;
    this.freeTokens.push(token);
  }

  /** One batch of reads, in the order they were made. */
  private deliver(count: number): void {
    const { meta, buffer, handlers, group, window } = this;
    if (window !== undefined) {
      const set = window.batch(count, Date.now());
      if (set !== undefined) this.native.pollerSetWindow!(this.poller, set);
    }
    group?.begin();
    try {
      for (let i = 0; i < count; i++) {
        const e = i * ENTRY_INTS;
        const token = meta[e]!;
        if (token < 0) continue; // its socket closed meanwhile
        const handler = handlers[token];
        if (handler === undefined) continue;
        const result = meta[e + 1]!;
        if (result > 0) {
          const start = meta[e + 2]!;
          handler.data(buffer, start, start + result);
        } else if (result === 0) handler.end();
        else handler.error(result);
      }
    } finally {
      group?.end();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.pollerClose(this.poller);
    this.handlers.length = 0;
    this.freeTokens.length = 0;
  }
}
