import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { ErrorCode, serverError } from './errors.js';
import { loadNativeWriter, NativeFileStep, type NativeWriter } from './native.js';

/**
 * Files written by outputs (recordings, HLS/DASH playlists and fragments):
 * where they may go, and how a reader never sees half of one.
 *
 * Contract of `outputPath`: every segment is untrusted (it may come from a
 * stream name, an application name, a strftime pattern); the result is always
 * inside `root` (resolved), or the call throws ERR_OUTPUT_PATH_UNSAFE. A
 * segment may not be empty, `.` or `..`, contain `/`, `\`, NUL or another
 * control character, or be longer than 255 bytes in UTF-8 (a file system's
 * name limit). Unicode is kept as is: look-alike characters are not path
 * syntax to the kernel, only bytes.
 */

/** The longest file name most file systems take (bytes). */
export const MAX_FILE_NAME_BYTES = 255;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws ERR_OUTPUT_PATH_UNSAFE unless `segment` is one safe file or directory name. */
export function checkPathSegment(segment: string): string {
  if (segment === '' || segment === '.' || segment === '..' || segment.includes('/') || segment.includes('\\') || CONTROL.test(segment) || Buffer.byteLength(segment, 'utf8') > MAX_FILE_NAME_BYTES) {
    throw serverError(ErrorCode.OutputPathUnsafe, `unsafe file name ${JSON.stringify(segment.slice(0, 64))}`);
  }
  return segment;
}

/** `root/seg1/seg2/...`, each segment checked, the result asserted inside `root`. */
export function outputPath(root: string, ...segments: string[]): string {
  for (const s of segments) checkPathSegment(s);
  const base = path.resolve(root);
  const full = path.resolve(base, ...segments);
  if (full !== base && !full.startsWith(base + path.sep)) {
    throw serverError(ErrorCode.OutputPathUnsafe, `path leaves ${base}`);
  }
  return full;
}

/**
 * Writes a whole file so that a reader sees the old version or the new one,
 * never a part: the data goes to a temporary name in the same directory
 * (`.name.<random><counter>.tmp`), then one rename(2) replaces the file. On
 * failure the temporary file is removed and the error is thrown as
 * ERR_OUTPUT_WRITE_FAILED (`cannot write <file>: <message>`) with the system
 * error as `cause` (an Error like Node's: `code` ENOSPC/EROFS/EACCES/...,
 * `errno`, `syscall`, `path`; the message holds the code).
 *
 * With the native addon (native/files.c) the four system calls are ONE
 * thread-pool job; else node:fs/promises makes them (four round trips).
 * Contract: the caller does not write into the buffers of `data` until the
 * promise settles (a thread-pool thread reads them); the array itself is copied.
 */
export function writeFileAtomic(file: string, data: string | Buffer | readonly Buffer[]): Promise<void> {
  return writeFileAtomicWith(nativeFileWriter(), file, data);
}

/**
 * writeFileAtomic through `native` when it has the method, else through
 * node:fs/promises (tests give undefined to check that path).
 */
export function writeFileAtomicWith(native: NativeWriter | undefined, file: string, data: string | Buffer | readonly Buffer[]): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${TMP_PREFIX}${(tmpCounter++).toString(36)}.tmp`);
  const write = native?.writeFileAtomic;
  if (write === undefined) return writeWithFs(file, tmp, data);
  const bufs = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : Buffer.isBuffer(data) ? [data] : data.slice();
  return new Promise<void>((resolve, reject) => {
    try {
      write.call(native, tmp, file, bufs, (err, step) => {
        if (err === 0) resolve();
        else reject(writeFailed(file, systemError(err, step, tmp, file)));
      });
    } catch (e) {
      // a wrong argument (a path holding a NUL byte): nothing was queued
      reject(writeFailed(file, e));
    }
  });
}

/** A random part made once per process, and a counter: unique names within a directory without a random draw per file. */
const TMP_PREFIX = randomBytes(4).toString('hex');
let tmpCounter = 0;

/** The addon's writer, loaded on first use (undefined: not built, or built before writeFileAtomic). */
let loadedWriter: { writer: NativeWriter | undefined } | undefined;

function nativeFileWriter(): NativeWriter | undefined {
  if (loadedWriter === undefined) {
    const writer = loadNativeWriter().writer;
    loadedWriter = { writer: writer?.writeFileAtomic !== undefined ? writer : undefined };
  }
  return loadedWriter.writer;
}

function writeFailed(file: string, e: unknown): Error {
  return serverError(ErrorCode.OutputWriteFailed, `cannot write ${file}: ${e instanceof Error ? e.message : String(e)}`, e);
}

const STEP_SYSCALL: Record<NativeFileStep, string> = {
  [NativeFileStep.none]: 'writeFileAtomic',
  [NativeFileStep.open]: 'open',
  [NativeFileStep.write]: 'write',
  [NativeFileStep.close]: 'close',
  [NativeFileStep.rename]: 'rename',
};

/** The native job's failure as Node's system errors are made (`ENOSPC: no space left on device, write '<tmp>'`). */
function systemError(errno: number, step: number, tmp: string, file: string): NodeJS.ErrnoException {
  const syscall = STEP_SYSCALL[step as NativeFileStep] ?? `step ${step}`;
  const e = errnoError(errno, syscall, tmp, step === NativeFileStep.rename ? `'${tmp}' -> '${file}'` : undefined);
  if (step === NativeFileStep.rename) (e as NodeJS.ErrnoException & { dest?: string }).dest = file;
  return e;
}

/**
 * A native call's -errno as Node.js makes its system errors: `code` (ENOSPC...),
 * `errno`, `syscall`, `path`, and the message `ENOSPC: no space left on device,
 * write '<path>'` (`where` replaces the quoted path).
 */
export function errnoError(errno: number, syscall: string, file: string, where = `'${file}'`): NodeJS.ErrnoException {
  let code = `E${-errno}`;
  let text = `error ${errno}`;
  try {
    code = getSystemErrorName(errno);
    text = getSystemErrorMap().get(errno)?.[1] ?? text;
  } catch {
    // not an errno this platform knows: the number stays in the message
  }
  const e: NodeJS.ErrnoException = new Error(`${code}: ${text}, ${syscall} ${where}`);
  e.errno = errno;
  e.code = code;
  e.syscall = syscall;
  e.path = file;
  return e;
}

/** The most buffers given to one writev(2) (Linux IOV_MAX is 1024). */
const WRITEV_BATCH = 512;

/** Every byte of `buffers`, WRITEV_BATCH at a time, again after a short write (the next one reports ENOSPC). */
async function writeAll(fh: FileHandle, buffers: readonly Buffer[]): Promise<void> {
  for (let i = 0; i < buffers.length; i += WRITEV_BATCH) {
    let rest = buffers.slice(i, i + WRITEV_BATCH);
    let want = 0;
    for (const b of rest) want += b.length;
    while (want > 0) {
      const { bytesWritten } = await fh.writev(rest);
      if (bytesWritten <= 0) throw new Error(`short write (0 of ${want} bytes)`);
      want -= bytesWritten;
      let skip = bytesWritten;
      let k = 0;
      while (k < rest.length && skip >= rest[k]!.length) skip -= rest[k++]!.length;
      rest = rest.slice(k);
      if (skip > 0) rest[0] = rest[0]!.subarray(skip);
    }
  }
}

/** The same four steps through node:fs/promises. */
async function writeWithFs(file: string, tmp: string, data: string | Buffer | readonly Buffer[]): Promise<void> {
  let done = false;
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      if (typeof data === 'string' || Buffer.isBuffer(data)) await fh.writeFile(data);
      else await writeAll(fh, data);
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    done = true;
  } catch (e) {
    throw writeFailed(file, e);
  } finally {
    if (!done) await unlink(tmp).catch(() => undefined);
  }
}
