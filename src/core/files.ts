import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, serverError } from './errors.js';

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
 * (`.name.<random>.tmp`), then one rename(2) replaces the file. On failure the
 * temporary file is removed and the error is thrown as ERR_OUTPUT_WRITE_FAILED
 * with the system error as `cause`.
 */
/** The most buffers given to one writev(2) (Linux IOV_MAX is 1024). */
const WRITEV_BATCH = 512;

async function writeAll(fh: FileHandle, buffers: readonly Buffer[]): Promise<void> {
  for (let i = 0; i < buffers.length; i += WRITEV_BATCH) {
    const batch = buffers.slice(i, i + WRITEV_BATCH);
    let want = 0;
    for (const b of batch) want += b.length;
    const { bytesWritten } = await fh.writev(batch);
    // a regular file takes a whole writev or fails; a short write means the disk is full
    if (bytesWritten !== want) throw new Error(`short write (${bytesWritten} of ${want} bytes): disk full?`);
  }
}

export async function writeFileAtomic(file: string, data: string | Buffer | readonly Buffer[]): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
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
    throw serverError(ErrorCode.OutputWriteFailed, `cannot write ${file}: ${e instanceof Error ? e.message : String(e)}`, e);
  } finally {
    if (!done) await unlink(tmp).catch(() => undefined);
  }
}
