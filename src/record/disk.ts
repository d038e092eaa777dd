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
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ErrorCode, describeError, serverError } from '../core/errors.js';
import { FLV_FILE_HEADER_SIZE, readFlvTail } from '../media/flv-file.js';

/** The file operations a recorder uses (node:fs/promises; tests pass a slow or failing one). */
export interface RecordFs {
  open(path: string, flags: string): Promise<FileHandle>;
  size(path: string): Promise<number | undefined>;
}

export const NODE_RECORD_FS: RecordFs = {
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

/** A piece's file, open for writing. */
export interface OpenedFile {
  readonly fh: FileHandle;
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
      return { fh, pos: existing, shift: last === undefined ? 0 : last.timestamp + 1, ownsMetadata: false };
    }
    return { fh: await fs.open(path, 'w'), pos: 0, shift: 0, ownsMetadata: true };
  } catch (e) {
    throw serverError(ErrorCode.OutputWriteFailed, `record: cannot open ${path}: ${describeError(e).message}`, e);
  }
}

/**
 * Writes `iov` so that it ends at `end` (the piece's position after it), in
 * writev(2) calls of at most IOV_MAX buffers. Throws ERR_OUTPUT_WRITE_FAILED
 * on an error or a short write.
 */
export async function writeEndingAt(fh: FileHandle, path: string, iov: readonly Buffer[], end: number): Promise<void> {
  let pos = end;
  for (const b of iov) pos -= b.length;
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
