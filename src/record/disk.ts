/**
 * The recorder's file operations: opening a piece's file (fresh, or
 * record_append's existing file after its last tag), the positioned
 * writev(2) of a batch, and the shared write clock that paces every
 * recorder's writes.
 *
 * It is not the recorder's life cycle or rolling (recorder.ts) and makes no
 * bytes of its own (piece.ts, mp4.ts): it writes what it is given, and turns
 * a failed open or write into ERR_OUTPUT_WRITE_FAILED.
 */
import assert from 'node:assert/strict';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ErrorCode, describeError, serverError } from '../core/errors.js';
import { errnoError } from '../core/files.js';
import { loadNativeWriter, type NativeWriter } from '../core/native.js';
import { FLV_FILE_HEADER_SIZE, readFlvTail } from '../media/flv-file.js';

/** The file operations a recorder uses (node:fs/promises; tests pass a slow or failing one). */
export interface RecordFs {
  open(path: string, flags: string): Promise<FileHandle>;
  size(path: string): Promise<number | undefined>;
  /**
   * The handles `open` gives are real files: their writes may go to the
   * native addon's batched job (BatchedWrites) instead of `fh.writev`. Test
   * doubles that wrap `writev` leave it out.
   */
  readonly nativeWrites?: boolean;
}

export const NODE_RECORD_FS: RecordFs = {
  nativeWrites: true,
  open: (p, flags) => open(p, flags, 0o644),
  size: async (p) => {
    try {
      return (await stat(p)).size;
    } catch {
      return undefined;
    }
  },
};

/**
 * A recorder writes at most this often: the frames of the window go in one
 * writev(2). What a crash (kill -9) can lose is at most this much more than
 * the write in flight.
 */
export const DEFAULT_WRITE_WINDOW_MS = 200;

/**
 * One timer per write window for every recorder of the process: the
 * recorders that wait write together when it fires, at multiples of the
 * window in wall time. Their writev(2) calls go to the thread pool in one
 * event-loop turn and their completions wake the loop together, instead of
 * one timer, one wake-up and one completion per recorder and window.
 */
export class WriteClock {
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined = undefined;
  constructor(private readonly period: number) {}

  /** Resolves at the next tick (at most one period away). */
  next(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.timer ??= setTimeout(this.tick, this.period - (Date.now() % this.period));
    });
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  };
}

const clocks = new Map<number, WriteClock>();
/** The process's clock for this write window (made at its first use). */
export function writeClock(period: number): WriteClock {
  let c = clocks.get(period);
  if (c === undefined) clocks.set(period, (c = new WriteClock(period)));
  return c;
}

/** The most buffers given to one writev(2) (Linux IOV_MAX is 1024). */
const WRITEV_MAX = 1023;
/** How much of a file's end is read to find its last tag (record_append). */
const APPEND_TAIL_BYTES = 1 << 20;

/**
 * The recorders' writes of one turn of the event loop as ONE thread-pool job
 * per device (native/files.c, writeAt), instead of one job per recorder.
 *
 * The write clock (WriteClock) makes every recorder write in the same turn:
 * with node:fs/promises that is one thread-pool request per recorder, each a
 * worker woken, a completion that may wake the loop, and a promise settled
 * through the FileHandle's bookkeeping (50 recordings: 250 a second). Here
 * the writes queued during a turn leave together at its end (setImmediate),
 * one job per device (files on one disk are written one after the other on
 * one worker; a slow disk holds up only the recordings on it), and each
 * write's promise settles from the job's results.
 *
 * Contract (native writeAt's): a descriptor stays open until its job is done.
 * Node.js does not know about these writes, so FileHandle.close() would not
 * wait for them: a file given to write() is closed only through closeFile(),
 * which waits for the writes in flight first.
 */
export class BatchedWrites {
  /** queued writes by device, until the end of the turn */
  private queued = new Map<number, QueuedWrite[]>();
  private scheduled = false;

  constructor(private readonly native: Pick<Required<NativeWriter>, 'writeAt'>) {}

  /** Writes every byte of `iov` to `file` at `pos`; rejects with ERR_OUTPUT_WRITE_FAILED. */
  write(file: OpenedFile, path: string, iov: readonly Buffer[], pos: number): Promise<void> {
    const fd = file.fh.fd;
    if (fd < 0) return Promise.reject(serverError(ErrorCode.OutputWriteFailed, `record: cannot write ${path}: the file is closed`));
    const written = new Promise<void>((resolve, reject) => {
      let list = this.queued.get(file.dev);
      if (list === undefined) this.queued.set(file.dev, (list = []));
      list.push({ fd, pos, iov, path, resolve, reject });
    });
    // closeFile() waits for this write, whatever its outcome
    const settled = written.then(noop, noop);
    const before = inFlight.get(file.fh);
    inFlight.set(file.fh, before === undefined ? settled : before.then(() => settled));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.submit);
    }
    return written;
  }

  private readonly submit = (): void => {
    this.scheduled = false;
    const groups = this.queued;
    this.queued = new Map();
    for (const list of groups.values()) this.submitGroup(list);
  };

  private submitGroup(list: readonly QueuedWrite[]): void {
    const n = list.length;
    const fds = new Int32Array(n);
    const positions = new Float64Array(n);
    const counts = new Int32Array(n);
    const results = new Int32Array(n);
    const bufs: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const w = list[i]!;
      fds[i] = w.fd;
      positions[i] = w.pos;
      counts[i] = w.iov.length;
      for (const b of w.iov) bufs.push(b);
    }
    try {
      this.native.writeAt(fds, positions, counts, bufs, results, () => {
        for (let i = 0; i < n; i++) {
          const w = list[i]!;
          const r = results[i]!;
          if (r === 0) {
            w.resolve();
          } else {
            const cause = errnoError(r, 'write', w.path);
            w.reject(serverError(ErrorCode.OutputWriteFailed, `record: cannot write ${w.path}: ${cause.message}`, cause));
          }
        }
      });
    } catch (e) {
      // wrong arguments (a bug): nothing was queued; each write fails as a write would
      for (const w of list) w.reject(serverError(ErrorCode.OutputWriteFailed, `record: cannot write ${w.path}: ${describeError(e).message}`, e));
    }
  }
}

interface QueuedWrite {
  readonly fd: number;
  readonly pos: number;
  readonly iov: readonly Buffer[];
  readonly path: string;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

function noop(): void {
  // a settled write: closeFile() waits for it, not for its outcome
}

/** Writes in flight by file (BatchedWrites), for closeFile(). */
const inFlight = new WeakMap<FileHandle, Promise<void>>();

/** Closes a piece's file once the writes in flight to it are done (BatchedWrites' contract). */
export async function closeFile(fh: FileHandle): Promise<void> {
  await inFlight.get(fh);
  inFlight.delete(fh);
  await fh.close();
}

/** The process's batched writer: undefined when the addon is not built or predates writeAt (the recorders then use fh.writev). */
let batched: { writes: BatchedWrites | undefined } | undefined;

function batchedWrites(): BatchedWrites | undefined {
  if (batched === undefined) {
    const w = loadNativeWriter().writer;
    const writeAt = w?.writeAt;
    batched = { writes: w !== undefined && writeAt !== undefined ? new BatchedWrites({ writeAt: writeAt.bind(w) }) : undefined };
  }
  return batched.writes;
}

/** A piece's file, open for writing. */
export interface OpenedFile {
  readonly fh: FileHandle;
  /** the file's device (st_dev): BatchedWrites makes one job per device */
  readonly dev: number;
  /** where its writes go: the batched native job, or undefined for fh.writev */
  readonly batch: BatchedWrites | undefined;
  /** bytes already in the file (the first write's position) */
  readonly pos: number;
  /** added to every timestamp (record_append: the file's last timestamp + 1) */
  readonly shift: number;
  /** false when appending to a file this recording did not start (its metadata is not rewritten) */
  readonly ownsMetadata: boolean;
}

/**
 * Opens `path` for a new piece: with `append` and an existing file longer
 * than an FLV header, after its last tag (read from the file's end);
 * otherwise truncated. Throws ERR_OUTPUT_WRITE_FAILED.
 */
export async function openPieceFile(fs: RecordFs, path: string, append: boolean): Promise<OpenedFile> {
  try {
    const existing = append ? await fs.size(path) : undefined;
    if (existing !== undefined && existing > FLV_FILE_HEADER_SIZE) {
      const fh = await fs.open(path, 'r+');
      const n = Math.min(existing, APPEND_TAIL_BYTES);
      const tail = Buffer.alloc(n);
      await fh.read(tail, 0, n, existing - n);
      let last;
      try {
        last = readFlvTail(tail, existing);
      } catch (e) {
        await fh.close();
        throw e;
      }
      return { ...(await writerOf(fs, fh)), pos: existing, shift: last === undefined ? 0 : last.timestamp + 1, ownsMetadata: false };
    }
    return { ...(await writerOf(fs, await fs.open(path, 'w'))), pos: 0, shift: 0, ownsMetadata: true };
  } catch (e) {
    throw serverError(ErrorCode.OutputWriteFailed, `record: cannot open ${path}: ${describeError(e).message}`, e);
  }
}

/** How a freshly opened file is written: batched when `fs` gives real files and the addon can. */
async function writerOf(fs: RecordFs, fh: FileHandle): Promise<{ fh: FileHandle; dev: number; batch: BatchedWrites | undefined }> {
  const batch = fs.nativeWrites === true ? batchedWrites() : undefined;
  if (batch === undefined) return { fh, dev: 0, batch };
  try {
    return { fh, dev: (await fh.stat()).dev, batch };
  } catch (e) {
    await fh.close().catch(noop);
    throw e;
  }
}

/**
 * Writes `iov` so that it ends at `end` (the piece's position after it): in
 * the turn's batched job (BatchedWrites) when the file has one, else in
 * writev(2) calls of at most IOV_MAX buffers. Throws ERR_OUTPUT_WRITE_FAILED
 * on an error or a short write.
 */
export async function writeEndingAt(file: OpenedFile, path: string, iov: readonly Buffer[], end: number): Promise<void> {
  let pos = end;
  for (const b of iov) pos -= b.length;
  assert(pos >= 0, `writeEndingAt: ${iov.length} buffers end before byte ${end}`);
  if (file.batch !== undefined) return file.batch.write(file, path, iov, pos);
  const fh = file.fh;
  for (let i = 0; i < iov.length; i += WRITEV_MAX) {
    const part = iov.slice(i, i + WRITEV_MAX);
    let want = 0;
    for (const b of part) want += b.length;
    let written: number;
    try {
      written = (await fh.writev(part, pos)).bytesWritten;
    } catch (e) {
      throw serverError(ErrorCode.OutputWriteFailed, `record: cannot write ${path}: ${describeError(e).message}`, e);
    }
    // a regular file takes a whole writev or fails; a short write means the disk is full
    if (written !== want) throw serverError(ErrorCode.OutputWriteFailed, `record: cannot write ${path}: short write (${written} of ${want} bytes): disk full?`);
    pos += want;
  }
}
