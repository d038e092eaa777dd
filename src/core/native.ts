import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The native fan-out writer (native/fanout.c, built by npm's install script
 * into build/Release). One call makes every write of a write group: for slot
 * i < n with fds[i] >= 0 it sends bufs[idx[i]] to fds[i] with one non-blocking
 * send(2) and stores in written[i] the bytes the kernel took, 0 for EAGAIN, or
 * -errno for an error (EPIPE, ECONNRESET, EBADF; ENOTSOCK for a descriptor that
 * is not a socket, which is never written: no write(2) fallback). A slot with
 * fds[i] < 0 gets -1 (told from -EPERM by its descriptor).
 *
 * Contract: every fds[i] >= 0 must name a socket the caller still owns when
 * writeSlots() is called. The native loop cannot tell a descriptor number that
 * Node.js closed and the kernel gave to another file from the player's socket;
 * WriteGroup (src/rtmp/output.ts) checks each slot's socket right before the call.
 */
export interface NativeWriter {
  writeSlots(fds: Int32Array, idx: Int32Array, bufs: readonly Buffer[], n: number, written: Int32Array): void;
  /**
   * One non-blocking sendmsg(2) of bufs[0..n) to fd (a gather list, at most
   * IOV_MAX of them): the bytes the kernel took, 0 for EAGAIN, -errno for an
   * error, as writeSlots reports them; the same contract on fd. Replaces
   * fs.writevSync() for a player given several buffers at once. Absent in test
   * doubles and in an addon built before it.
   */
  sendList?(fd: number, bufs: readonly Buffer[], n: number): number;
  /**
   * glibc's malloc_trim(0): the C heap's free pages go back to the system
   * (free() gives back only the top of the heap). True when memory was
   * released; undefined where the C library is not glibc. Absent in test doubles.
   */
  trimHeap?(): boolean | undefined;
  /**
   * dup(2) with close-on-exec: a second descriptor for the same socket (the
   * server's shared read buffer, see src/rtmp/socket-input.ts). Throws on
   * failure (EMFILE...). Absent in test doubles and in an addon built before it.
   */
  dupFd?(fd: number): number;
  /**
   * Batched reads (native/reader.c; contract there and in src/rtmp/socket-input.ts,
   * NativeSocketReader): a poller reads every watched descriptor that is ready
   * with one recv(2) into `buffer` and hands the batch to `onBatch` once per
   * turn of the event loop (entries of three int32 in `meta`: token, result,
   * offset). Absent in test doubles and in an addon built before them.
   */
  createPoller?(buffer: Buffer, meta: Int32Array, onBatch: (count: number) => void): NativePoller;
  pollerWatch?(poller: NativePoller, fd: number, token: number): void;
  pollerUnwatch?(poller: NativePoller, token: number): void;
  /**
   * The poller's read window in ms (0..1000, 0 = none, the start): reads wait
   * at most this long so that one wake-up of the loop takes the arrivals of
   * the whole window (native/reader.c; the policy: ReadWindow in
   * src/rtmp/socket-input.ts). Absent in an addon built before it.
   */
  pollerSetWindow?(poller: NativePoller, ms: number): void;
  pollerClose?(poller: NativePoller): void;
  /**
   * A whole file as ONE thread-pool job (native/files.c): open(tmpPath,
   * O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644), writev(2) of every buffer,
   * close(2), rename(tmpPath, finalPath); then, on the main thread, done(0, 0),
   * or done(-errno, step) with the NativeFileStep that failed (tmpPath was
   * unlinked). Contract: until done is called the caller neither changes `bufs`
   * (the job holds it, which keeps the buffers alive) nor writes into its
   * buffers (another thread reads them). Throws a TypeError for wrong arguments
   * (a path with a NUL byte). Absent in test doubles and in an addon built before it.
   */
  writeFileAtomic?(tmpPath: string, finalPath: string, bufs: readonly Buffer[], done: (err: number, step: number) => void): void;
  /**
   * Positioned writes to several open files as ONE thread-pool job
   * (native/files.c): entry i pwritev(2)s the next counts[i] buffers of bufs
   * to fds[i] at positions[i]; then, on the main thread, results[i] is 0 or
   * -errno and done() is called. Contract: until done, the arrays and buffers
   * are not changed and every fds[i] stays open (src/record/disk.ts keeps
   * each file from closing meanwhile). Throws a TypeError for wrong
   * arguments (nothing queued). Absent in test doubles and in an addon built before it.
   */
  writeAt?(fds: Int32Array, positions: Float64Array, counts: Int32Array, bufs: readonly Buffer[], results: Int32Array, done: () => void): void;
}

/** Which system call of native writeFileAtomic failed (its `step`; native/files.c's STEP_*). */
export const NativeFileStep = { none: 0, open: 1, write: 2, close: 3, rename: 4 } as const;
export type NativeFileStep = (typeof NativeFileStep)[keyof typeof NativeFileStep];

/** A poller made by createPoller (an opaque native handle). */
export interface NativePoller {
  readonly __nativePoller: unique symbol;
}

export type NativeWriterLoad = { readonly writer: NativeWriter; readonly path: string } | { readonly writer: undefined; readonly reason: string };

/** A descriptor number no process has (above any RLIMIT_NOFILE): writeSlots() must report EBADF for it. */
const PROBE_FD = 0x7fffffff;

/** Where the install script puts the addon (the same from src/core and dist/core). */
export const NATIVE_WRITER_PATH = fileURLToPath(new URL('../../build/Release/rtmp_fanout.node', import.meta.url));

/** Loads the addon; says why when it cannot (not built, wrong Node.js ABI, Windows). */
export function loadNativeWriter(path: string = NATIVE_WRITER_PATH): NativeWriterLoad {
  let mod: unknown;
  try {
    mod = createRequire(import.meta.url)(path);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const reason = code === 'MODULE_NOT_FOUND' ? `${path} not built (npm install builds it when a C compiler is present)` : e instanceof Error ? e.message : String(e);
    return { writer: undefined, reason };
  }
  const fn = typeof mod === 'object' && mod !== null ? (mod as { writeSlots?: unknown }).writeSlots : undefined;
  if (typeof fn !== 'function') return { writer: undefined, reason: `${path} has no writeSlots()` };
  // an addon built before errors were reported (issue 13) returns 0 for a bad
  // descriptor and write(2)s to descriptors that are not sockets: not used
  const probe = new Int32Array(1);
  try {
    (fn as NativeWriter['writeSlots'])(Int32Array.of(PROBE_FD), Int32Array.of(0), [Buffer.alloc(0)], 1, probe);
  } catch (e) {
    return { writer: undefined, reason: `${path}: writeSlots() failed its probe: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (probe[0]! >= 0) return { writer: undefined, reason: `${path} is an older build that does not report write errors (rebuild it: npm rebuild)` };
  return { writer: mod as NativeWriter, path };
}
