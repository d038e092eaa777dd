/*
 * The direct-write path's contract: a descriptor is written only while Node.js
 * has surely not closed it.
 *
 * SocketOutput and WriteGroup write to a socket's file descriptor behind
 * Node.js's back. Node.js closes that descriptor on its own, without telling
 * anyone synchronously: after the peer's FIN (allowHalfOpen false: 'end', then
 * end(), the shutdown, 'finish', destroy()), on a read or write error, on a
 * timeout's destroy(), whenever anyone calls socket.destroy(). The descriptor is
 * closed inside destroy() (Socket._destroy closes the handle and sets
 * socket._handle to null at once; a TLS socket closes it in a microtask), but
 * 'close' is emitted only later, after the event loop's check phase, where the
 * live streams are flushed. In that gap the kernel gives the number to the next
 * file opened (an accepted socket, a file of the thread pool, a resolver's
 * socket), and a write to the number would hand it media.
 *
 * So, before every system call on the descriptor (write(), writeList(), and in
 * WriteGroup.end() for every slot, just before the one native call), the output
 * confirms that its socket still has the handle it took the descriptor from and
 * is still writable (not destroyed, errored nor ended). Every close of the
 * descriptor by Node.js follows destroy() (destroyed, hence not writable) and
 * drops the handle, and nothing that runs between the check and the call can
 * destroy the socket (what does run - another slot's writev(2), a stream write -
 * touches only its own socket), so the number is still the socket's. An output
 * whose socket failed the check closes quietly (its queued bytes are dropped;
 * 'close' follows). The check costs a property read and the socket's
 * `writable` getter per write (about 10 ns), no allocation; the native writer
 * stays one call per group.
 *
 * A system call's error other than EAGAIN (EPIPE, ECONNRESET, EBADF...) is the
 * connection's end: the output closes and destroys the socket with
 * ERR_RTMP_WRITE_FAILED. Only sockets are written: the native writer uses
 * send(2), which fails on anything else (ENOTSOCK), and descriptorOf() takes the
 * number from the socket's own handle. A socket made around a dup(2)'ed
 * descriptor (src/rtmp/socket-input.ts) owns its copy in the same way: its
 * output takes the copy from that socket's handle, never the accepted socket's.
 */
import assert from 'node:assert/strict';
import { writeSync, writevSync } from 'node:fs';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { ErrorCode, serverError } from '../core/errors.js';
import type { NativeWriter } from '../core/native.js';
import { emptyArray } from '../core/queue.js';

export interface SocketOutputOptions {
  /**
   * Write straight to the socket's file descriptor while nothing is queued in
   * the Node.js stream (on by default where the socket has one). Off: every
   * write goes through socket.write().
   */
  readonly direct?: boolean;
  /** writes made while this group is open leave when it closes (see WriteGroup) */
  readonly group?: WriteGroup;
  /**
   * Let the group's native writer make this output's writes (on by default;
   * it does only where the group has one). Off: fs.writeSync()/writevSync().
   */
  readonly native?: boolean;
  /**
   * Cap on what waits for the peer: queuedBytes() plus QUEUED_BUFFER_COST for
   * every buffer waiting (a peer that never reads our small replies costs far
   * more memory than their bytes). When a write queues past it, the output
   * drops everything and closes, and onOverflow is called once, on the next
   * tick (never inside the writer's call). Default: no cap.
   */
  readonly maxQueuedBytes?: number;
  readonly onOverflow?: (queuedBytes: number) => void;
}

/**
 * What one queued buffer costs beyond its bytes, as the output cap counts it:
 * the Buffer object and its backing store's header, its slot in our queue, and
 * Node.js's write request when it sits in the socket's stream. A client that
 * sends pings and never reads makes 18-byte replies; counted by bytes alone,
 * 16 MiB of them would hold over 100 MiB.
 */
export const QUEUED_BUFFER_COST = 128;

/**
 * One write(2) / writev(2) on a non-blocking descriptor: the bytes the kernel
 * took, 0 for EAGAIN (its buffer is full), or -errno for an error (as the native
 * writer reports them).
 */
function tryWrite(fd: number, buf: Buffer): number {
  try {
    return writeSync(fd, buf);
  } catch (e) {
    return writeError(e);
  }
}

/** what a reused slot holds once its buffer left (so that the slot pins no buffer) */
const EMPTY = Buffer.alloc(0);
/** the longest gather list kept for reuse */
const MAX_KEPT_LIST = 16;
/**
 * Gather lists for writev(2), by length, reused: a player that gets several
 * buffers in one round (audio and video of one read) would otherwise cost an
 * array per player per round. A list is taken out while in use (a nested use
 * gets a new one) and given back with its slots emptied. writeList() does not
 * keep the list it is given.
 */
const keptLists: (Buffer[] | undefined)[] = [];

function takeList(n: number): Buffer[] {
  const kept = keptLists[n];
  if (kept === undefined) return new Array<Buffer>(n).fill(EMPTY);
  keptLists[n] = undefined;
  return kept;
}

function giveList(list: Buffer[]): void {
  const n = list.length;
  if (n > MAX_KEPT_LIST) return;
  for (let i = 0; i < n; i++) list[i] = EMPTY;
  keptLists[n] = list;
}

function tryWritev(fd: number, list: Buffer[]): number {
  try {
    return writevSync(fd, list);
  } catch (e) {
    return writeError(e);
  }
}

/** fs's error as a write's result: 0 for EAGAIN, else -errno (Node.js's errno is already negative on POSIX). */
function writeError(e: unknown): number {
  const { code, errno } = e as { code?: unknown; errno?: unknown };
  if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 0;
  return typeof errno === 'number' && Number.isInteger(errno) && errno < 0 ? errno : -osConstants.errno.EIO;
}

/** "EPIPE" for -32. */
export function errnoName(result: number): string {
  try {
    return getSystemErrorName(result);
  } catch {
    return `errno ${-result}`;
  }
}

/** What a socket handle exposes on POSIX systems (undocumented, checked at run time). */
interface HandleWithFd {
  readonly fd?: unknown;
}

/** net.Socket's handle (undocumented): null once destroy() closed it. */
interface SocketInternals {
  readonly _handle?: HandleWithFd | null;
}

/**
 * Direct writes made while the group is open (between begin() and end()) wait
 * in flat arrays (descriptor, buffer) and leave together when it closes: the
 * fan-out first walks every player's objects without a system call in
 * between, then makes one write(2) per player from two arrays, touching none
 * of them again. Each system call costs far more when the CPU's caches and TLB
 * were just emptied by the previous one, so keeping the two phases apart saves
 * more than it looks. A player written to twice in one group gets one writev(2).
 *
 * With the native writer (src/core/native.ts) the single-buffer slots' writes
 * are made in one call into C, without Node's per-call cost around each
 * write(2); without it, with fs.writeSync(), one call per slot.
 * A slot's descriptor is written only if its output's socket is confirmed just
 * before (SocketOutput.confirm(), the contract at the top of this file): a
 * socket Node.js destroyed after the slot was added cancels it.
 */
export class WriteGroup {
  private depth = 0;
  /** bumped each time the group closes, so outputs know a slot of theirs is stale */
  private round = 1;
  private count = 0;
  private fds = new Int32Array(256);
  /** the slot's buffer: an index into `distinct` */
  private idx = new Int32Array(256);
  /** what the native writer reports per slot */
  private written = new Int32Array(256);
  /** the round's buffers, each once (most players get the same buffer) */
  private readonly distinct: Buffer[] = [];
  private last: Buffer | undefined;
  /** the output of a slot: consulted only for a short write or a slot with several buffers */
  private readonly outputs: (SocketOutput | undefined)[] = [];
  /** slots holding more than one buffer, or whose output writes from JavaScript (written first, with writev) */
  private multi = new Int32Array(16);
  private multiCount = 0;
  private readonly native: NativeWriter | undefined;

  constructor(options: { readonly native?: NativeWriter } = {}) {
    this.native = options.native;
  }

  get open(): boolean {
    return this.depth > 0;
  }

  begin(): void {
    this.depth++;
  }

  end(): void {
    if (this.depth === 0 || --this.depth > 0) return;
    const n = this.count;
    if (n === 0) return;
    const { fds, idx, distinct, outputs } = this;
    // the contract (top of this file): each slot's socket is confirmed just
    // before the writes; an output whose socket Node.js closed cancels its slot
    for (let i = 0; i < n; i++) {
      if (fds[i]! >= 0 && !outputs[i]!.confirm()) assert(fds[i]! < 0, 'a closed output left its write-group slot');
    }
    this.count = 0;
    this.round++;
    // slots holding several buffers are written first, one writev() each, and then skipped
    const multi = this.multi;
    const m = this.multiCount;
    this.multiCount = 0;
    for (let j = 0; j < m; j++) {
      const i = multi[j]!;
      const out = outputs[i];
      if (out !== undefined && fds[i]! >= 0) {
        fds[i] = -1;
        out.writeGathered(distinct[idx[i]!]!);
      }
    }
    const written = this.written;
    try {
      // the writes: one native call, or one fs.writeSync() per slot; what the kernel took lands in `written`
      if (this.native !== undefined) this.native.writeSlots(fds, idx, distinct, n, written);
      else for (let i = 0; i < n; i++) written[i] = fds[i]! < 0 ? -1 : tryWrite(fds[i]!, distinct[idx[i]!]!);
      for (let i = 0; i < n; i++) {
        const out = outputs[i];
        outputs[i] = undefined;
        if (fds[i]! < 0) continue;
        const buf = distinct[idx[i]!]!;
        const w = written[i]!;
        if (w < 0) out!.groupWriteFailed(buf, w);
        else if (w < buf.length) out!.shortWrite(buf, w);
      }
    } finally {
      // the round's buffers are not kept past it (a throw here is a bug, but must not pin them)
      emptyArray(distinct);
      this.last = undefined;
    }
  }

  /** A slot for this output's first buffer of the round; returns its index. */
  add(out: SocketOutput, fd: number, buf: Buffer): number {
    const i = this.count++;
    if (i === this.fds.length) this.grow(i * 2);
    this.fds[i] = fd;
    if (buf !== this.last) {
      this.last = buf;
      this.distinct.push(buf);
    }
    this.idx[i] = this.distinct.length - 1;
    this.outputs[i] = out;
    return i;
  }

  private grow(size: number): void {
    const fds = new Int32Array(size);
    fds.set(this.fds);
    this.fds = fds;
    const idx = new Int32Array(size);
    idx.set(this.idx);
    this.idx = idx;
    this.written = new Int32Array(size);
  }

  /** The slot's output writes it itself, with its other buffers if any (writeGathered). */
  markMulti(slot: number): void {
    if (this.multiCount === this.multi.length) {
      const multi = new Int32Array(this.multi.length * 2);
      multi.set(this.multi);
      this.multi = multi;
    }
    this.multi[this.multiCount++] = slot;
  }

  /** The output ended or closed: its slot is skipped. */
  cancel(slot: number): Buffer | undefined {
    if (slot >= this.count || this.fds[slot]! < 0) return undefined;
    this.fds[slot] = -1;
    return this.distinct[this.idx[slot]!];
  }

  get currentRound(): number {
    return this.round;
  }

  /** the group's native writer (its outputs use its sendList for their gather writes) */
  get nativeWriter(): NativeWriter | undefined {
    return this.native;
  }
}

/**
 * The only way out of a server connection: every message, control or media,
 * goes through it, in order. The socket's Node.js stream is the queue of a slow
 * peer; while that queue is empty, writes go straight to the file descriptor
 * with one synchronous write(2)/writev(2), without the stream's per-write
 * bookkeeping (write requests, callbacks, ticks), which costs more CPU than the
 * system call itself when one message fans out to hundreds of players.
 *
 * What the kernel does not take at once (EAGAIN or a partial write) is handed to
 * socket.write(), and every later write follows it there until the stream has
 * drained, so the bytes stay in order. An error other than EAGAIN destroys the
 * socket with ERR_RTMP_WRITE_FAILED (the socket's 'error').
 *
 * cork()/uncork() nest: between them writes wait in a list and leave in one
 * system call when the outermost uncork() comes.
 *
 * The descriptor is used only while the output is open and its socket is
 * confirmed to hold it (see the contract at the top of this file): close it
 * with destroy() or end(); when Node.js closes the socket itself, the next write
 * sees it and the output closes without touching the descriptor.
 */
export class SocketOutput {
  /** -1: no descriptor (Windows, a non-TCP stream) or direct writes off */
  private readonly fd: number;
  /** the socket's handle the descriptor was taken from: the descriptor is the socket's while the socket still has it */
  private readonly handle: HandleWithFd | null | undefined;
  private readonly group: WriteGroup | undefined;
  /** false: the group's slot of this output is written from JavaScript */
  private readonly native: boolean;
  /** the native writer's gather write when this output uses the native writer (else fs.writevSync) */
  private readonly sendList: NativeWriter['sendList'];
  private corks = 0;
  /** corked buffers: pending[0..pendingCount); the array and its spare are reused (no allocation per cork) */
  private pending: Buffer[] = [];
  private pendingSpare: Buffer[] = [];
  private pendingCount = 0;
  private pendingBytes = 0;
  /**
   * The kernel refused bytes, which were handed to the socket's stream: until
   * the stream has written them (its write callback), new writes wait in the
   * backlog and then leave together in one writev(2). A slow player costs one
   * stream write per episode, not one per message.
   */
  private streamed = false;
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  private readonly onStreamFlushed = (err?: Error | null): void => this.streamFlushed(err);
  private closed = false;
  /** this output's slot in the group, valid while groupRound is the group's round */
  private groupRound = 0;
  private groupSlot = 0;
  /** buffers after the first one in the group slot: groupMore[0..groupMoreCount), the array reused */
  private readonly groupMore: Buffer[] = [];
  private groupMoreCount = 0;
  /** bytes written straight to the descriptor (or waiting in the group) */
  private directBytes = 0;
  /** the connection's outgoing chunk size (media is encoded for it) */
  chunkSize = 128;
  /** direct writes the kernel did not take whole (the rest went to the stream) */
  shortWrites = 0;
  private readonly maxQueued: number;
  /** socket.write() calls whose bytes may still sit in the socket's stream (for the cap's per-buffer cost) */
  private streamWrites = 0;
  private readonly onOverflow: ((queuedBytes: number) => void) | undefined;

  constructor(
    readonly socket: Socket,
    options: SocketOutputOptions = {},
  ) {
    this.fd = options.direct === false ? -1 : descriptorOf(socket);
    this.handle = (socket as unknown as SocketInternals)._handle;
    this.group = options.group;
    this.native = options.native !== false;
    this.sendList = this.native ? options.group?.nativeWriter?.sendList : undefined;
    // 0: no cap (an integer, not Infinity: a double field read in unoptimized code allocates a number)
    this.maxQueued = options.maxQueuedBytes ?? 0;
    this.onOverflow = options.onOverflow;
    socket.once('close', () => this.markClosed());
  }

  /** True while writes may go straight to the descriptor. */
  get direct(): boolean {
    return this.fd >= 0;
  }

  /** Bytes accepted and not yet handed to the kernel (corked, or queued in the stream). */
  queuedBytes(): number {
    const queued = this.pendingBytes + this.backlogBytes;
    return this.streamed || this.fd < 0 ? queued + this.socket.writableLength : queued;
  }

  /** Bytes handed to the kernel so far (and queued in the stream). */
  get bytesWritten(): number {
    return this.socket.bytesWritten + this.directBytes;
  }

  write(buf: Buffer): void {
    if (this.closed) return;
    if (this.corks > 0) {
      this.pending[this.pendingCount++] = buf;
      this.pendingBytes += buf.length;
      if (this.overCap()) this.overflow();
      return;
    }
    if (this.fd < 0) {
      this.socket.write(buf);
      this.streamWrites++;
      if (this.overCap()) this.overflow();
      return;
    }
    if (this.streamed) {
      this.backlog.push(buf);
      this.backlogBytes += buf.length;
      if (this.overCap()) this.overflow();
      return;
    }
    const g = this.group;
    if (g !== undefined && g.open) {
      this.directBytes += buf.length;
      if (this.groupRound === g.currentRound) {
        if (this.groupMoreCount === 0 && this.native) g.markMulti(this.groupSlot);
        this.groupMore[this.groupMoreCount++] = buf;
      } else {
        this.groupRound = g.currentRound;
        this.groupSlot = g.add(this, this.fd, buf);
        if (!this.native) g.markMulti(this.groupSlot);
      }
      return;
    }
    // grouped writes are confirmed in WriteGroup.end(), just before their system call
    if (!this.confirm()) return;
    const n = tryWrite(this.fd, buf);
    if (n < 0) {
      this.writeFailed(n);
      return;
    }
    this.directBytes += n;
    if (n < buf.length) this.toStream([n > 0 ? buf.subarray(n) : buf]);
  }

  /**
   * True while the descriptor is surely the socket's: the output is open and
   * the socket still has the handle the descriptor came from and is writable
   * (not destroyed, errored nor ended). Otherwise Node.js closed the socket or
   * is closing it: the output closes quietly (its slot in an open group is
   * cancelled, its queued bytes dropped) and false is returned.
   */
  confirm(): boolean {
    if (this.closed) return false;
    const socket = this.socket;
    if ((socket as unknown as SocketInternals)._handle === this.handle && socket.writable) return true;
    this.markClosed();
    return false;
  }

  cork(): void {
    this.corks++;
  }

  uncork(): void {
    if (this.corks === 0 || --this.corks > 0) return;
    const n = this.pendingCount;
    if (n === 0) return;
    // the other array takes any cork while these are written
    const list = this.pending;
    this.pending = this.pendingSpare;
    this.pendingSpare = list;
    this.pendingCount = 0;
    this.pendingBytes = 0;
    if (n === 1 || (this.group?.open ?? false)) {
      for (let i = 0; i < n; i++) {
        const buf = list[i]!;
        list[i] = EMPTY;
        this.write(buf);
      }
    } else {
      const exact = list.slice(0, n);
      for (let i = 0; i < n; i++) list[i] = EMPTY;
      this.writeList(exact);
    }
  }

  /** Flushes what is corked or grouped, then ends the socket (FIN after the queued bytes). */
  end(): void {
    if (this.closed) return;
    this.corks = Math.min(this.corks, 1);
    this.uncork();
    this.leaveGroup(true);
    // a backlog waiting for the stream goes after what the stream holds, then the FIN
    const backlog = this.backlog;
    this.backlog = [];
    this.backlogBytes = 0;
    this.closed = true;
    for (let i = 0; i < backlog.length; i++) this.socket.write(backlog[i]!);
    this.socket.end();
  }

  /**
   * Past the cap: what waits (bytes, and QUEUED_BUFFER_COST per buffer) exceeds
   * maxQueuedBytes. Checked where bytes queue: counters only, the stream's
   * length only while the stream holds bytes (streamed) or without a descriptor.
   */
  private overCap(): boolean {
    if (this.maxQueued === 0) return false;
    let cost = this.pendingBytes + this.backlogBytes + (this.pendingCount + this.backlog.length) * QUEUED_BUFFER_COST;
    if (this.streamed || this.fd < 0) {
      const inStream = this.socket.writableLength;
      if (inStream === 0) this.streamWrites = 0;
      cost += inStream + this.streamWrites * QUEUED_BUFFER_COST;
    }
    return cost > this.maxQueued;
  }

  /**
   * The peer let more than the cap wait: drop it all, write nothing more, and
   * tell the owner on the next tick (the caller may be in the middle of a fan-out).
   */
  private overflow(): void {
    if (this.closed) return;
    const queued = this.queuedBytes();
    this.markClosed();
    const cb = this.onOverflow;
    if (cb !== undefined) process.nextTick(cb, queued);
    else this.socket.destroy();
  }

  /** Closes at once: what is not written yet is dropped. */
  destroy(): void {
    this.markClosed();
    this.socket.destroy();
  }

  /** The group's slot for this output held several buffers: one writev() for all. */
  writeGathered(first: Buffer): void {
    const list = this.takeGroupBuffers(first);
    if (!this.closed) this.writeList(list);
    giveList(list);
  }

  /** The group's write of buf failed with -errno `result`. */
  groupWriteFailed(buf: Buffer, result: number): void {
    this.directBytes -= buf.length;
    this.writeFailed(result);
  }

  /** The group's write() took only `written` bytes of buf. */
  shortWrite(buf: Buffer, written: number): void {
    this.directBytes -= buf.length - written;
    if (!this.closed) this.toStream([written > 0 ? buf.subarray(written) : buf]);
  }

  /** Writes the list's buffers in order; keeps no reference to `list` itself (callers reuse it). */
  private writeList(list: Buffer[]): void {
    if (this.closed) return;
    if (this.fd < 0) {
      this.socket.cork();
      for (let i = 0; i < list.length; i++) this.socket.write(list[i]!);
      this.socket.uncork();
      this.streamWrites += list.length;
      if (this.overCap()) this.overflow();
      return;
    }
    if (!this.confirm()) return;
    if (this.streamed) {
      for (let i = 0; i < list.length; i++) {
        this.backlog.push(list[i]!);
        this.backlogBytes += list[i]!.length;
      }
      if (this.overCap()) this.overflow();
      return;
    }
    if (list.length === 0) return;
    const sendList = this.sendList;
    let n = sendList !== undefined ? sendList(this.fd, list, list.length) : tryWritev(this.fd, list);
    if (n < 0) {
      this.writeFailed(n);
      return;
    }
    this.directBytes += n;
    let i = 0;
    while (i < list.length && n >= list[i]!.length) n -= list[i++]!.length;
    if (i === list.length) return;
    const rest = list.slice(i);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
    this.toStream(rest);
  }

  /**
   * Hands what the kernel refused to the socket's stream (which waits for the
   * socket to be writable); later writes wait in the backlog until it is done.
   */
  private toStream(rest: Buffer[]): void {
    this.shortWrites++;
    this.streamed = true;
    const last = rest.length - 1;
    if (last > 0) this.socket.cork();
    for (let i = 0; i < last; i++) this.socket.write(rest[i]!);
    this.socket.write(rest[last]!, this.onStreamFlushed);
    if (last > 0) this.socket.uncork();
    this.streamWrites += rest.length;
    if (this.overCap()) this.overflow();
  }

  /** The stream wrote what it was given: the backlog leaves in one writev(2) (or goes to the stream again). */
  private streamFlushed(err?: Error | null): void {
    this.streamed = false;
    this.streamWrites = 0;
    if (err != null || this.closed) return;
    const list = this.backlog;
    if (list.length === 0) return;
    this.backlog = [];
    this.backlogBytes = 0;
    if (list.length === 1) this.write(list[0]!);
    else this.writeList(list);
  }

  /** Takes this output out of an open group: its buffers are written now (flush) or dropped. */
  private leaveGroup(flush: boolean): void {
    const g = this.group;
    if (g === undefined || this.groupRound !== g.currentRound) return;
    const first = g.cancel(this.groupSlot);
    if (first === undefined) {
      this.groupRound = 0;
      this.clearGroupMore();
      return;
    }
    const list = this.takeGroupBuffers(first);
    if (flush) this.writeList(list);
    giveList(list);
  }

  private clearGroupMore(): void {
    for (let i = 0; i < this.groupMoreCount; i++) this.groupMore[i] = EMPTY;
    this.groupMoreCount = 0;
  }

  /** This output's buffers of the group round, no longer counted as written (a list from takeList: give it back). */
  private takeGroupBuffers(first: Buffer): Buffer[] {
    const more = this.groupMoreCount;
    const list = takeList(1 + more);
    list[0] = first;
    let bytes = first.length;
    for (let i = 0; i < more; i++) {
      const b = this.groupMore[i]!;
      list[1 + i] = b;
      bytes += b.length;
    }
    this.clearGroupMore();
    this.groupRound = 0;
    this.directBytes -= bytes;
    return list;
  }

  /** A system call on the descriptor failed (not EAGAIN): the connection is lost. */
  private writeFailed(result: number): void {
    if (this.closed) return;
    this.markClosed();
    this.socket.destroy(serverError(ErrorCode.WriteFailed, `write to the peer failed: ${errnoName(result)}`));
  }

  private markClosed(): void {
    if (this.closed) return;
    this.leaveGroup(false);
    this.closed = true;
    for (let i = 0; i < this.pendingCount; i++) this.pending[i] = EMPTY;
    this.pendingCount = 0;
    this.pendingBytes = 0;
    this.backlog = [];
    this.backlogBytes = 0;
  }
}

/** The socket's file descriptor (POSIX), or -1 where it has none (Windows, a stream that is no TCP socket). */
export function descriptorOf(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : -1;
}
