import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { VodSettings } from '../config/vod.js';
import { ErrorCode, describeError, serverError } from '../core/errors.js';
import { checkPathSegment, outputPath } from '../core/files.js';
import type { Logger } from '../core/log.js';

/**
 * Where a VOD play's file is: nginx-rtmp's play entries, tried in order.
 * A stream name is untrusted: it becomes a relative file name whose every
 * segment is checked (`outputPath`: no `..`, no absolute path, no NUL or
 * control character), so no name opens a file outside a configured directory.
 */

/** nginx-rtmp's name forms: a `flv:` or `mp4:` prefix picks the format; a name without the format's suffix gets it. */
const FORMATS = [
  { prefix: 'flv:', suffix: '.flv' },
  { prefix: 'mp4:', suffix: '.mp4' },
] as const;
/** Suffixes that are MP4 files already (a name ending so keeps it). */
const MP4_SUFFIXES = ['.mp4', '.m4v', '.m4a', '.mov', '.f4v', '.3gp'];
/** A remote file's download gives up after this long without data. */
const HTTP_IDLE_TIMEOUT = 30_000;
/** Redirects followed for one remote file. */
const MAX_REDIRECTS = 3;

/** The relative file name (segments) a play name stands for; throws OutputPathUnsafe for a name that is not one. */
export function vodFileSegments(name: string): string[] {
  let n = name;
  let suffix: string = FORMATS[0].suffix;
  const byPrefix = FORMATS.find((f) => n.startsWith(f.prefix));
  if (byPrefix !== undefined) {
    n = n.slice(byPrefix.prefix.length);
    suffix = byPrefix.suffix;
  }
  const segments = n.split('/');
  // every segment as the client sent it is checked (no `..`, `.`, empty, NUL...), then the result stays in the root
  for (const s of segments) checkPathSegment(s);
  const last = segments.length - 1;
  const lower = segments[last]!.toLowerCase();
  if (!lower.endsWith('.flv') && !MP4_SUFFIXES.some((s) => lower.endsWith(s))) segments[last] += suffix;
  outputPath('/vod', ...segments);
  return segments;
}

/** A located file: `temp` files are the play's own download, deleted when the play ends. */
export interface VodLocation {
  readonly path: string;
  readonly temp: boolean;
}

function isRemote(location: string): boolean {
  return location.startsWith('http://');
}

/**
 * Finds the file of a play: each `play` location in order, a local directory
 * by stat, an http:// location by downloading the file into play_temp_path
 * (then moved to play_local_path when that is set). Undefined: no location
 * has it. `remote` false: local directories only.
 */
export async function locateVodFile(settings: VodSettings, name: string, log: Logger, remote = true): Promise<VodLocation | undefined> {
  const segments = vodFileSegments(name);
  for (const location of settings.locations) {
    if (isRemote(location)) {
      if (!remote) continue;
      const got = await fetchRemote(settings, location, segments, log);
      if (got !== undefined) return got;
      continue;
    }
    const file = outputPath(location, ...segments);
    try {
      const st = await stat(file);
      if (st.isFile()) return { path: file, temp: false };
    } catch {
      // not here: the next location
    }
  }
  return undefined;
}

/** Downloads location/segments into play_temp_path; undefined when the server has no such file (or cannot be reached: logged). */
async function fetchRemote(settings: VodSettings, location: string, segments: readonly string[], log: Logger): Promise<VodLocation | undefined> {
  const url = `${location.replace(/\/+$/, '')}/${segments.map(encodeURIComponent).join('/')}`;
  const temp = path.join(settings.tempPath, `rtmp-vod-${randomBytes(8).toString('hex')}${path.extname(segments[segments.length - 1] ?? '')}`);
  try {
    const found = await download(url, temp, MAX_REDIRECTS);
    if (!found) return undefined;
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    const d = describeError(e);
    log.warn({ url, code: ErrorCode.VodFetchFailed, err: d.message }, 'vod: remote file not fetched');
    return undefined;
  }
  if (settings.localPath === undefined) return { path: temp, temp: true };
  // kept: moved to play_local_path (nginx-rtmp's cache: list that directory before the URL in `play`)
  try {
    const local = outputPath(settings.localPath, ...segments);
    await mkdir(path.dirname(local), { recursive: true });
    await rename(temp, local);
    return { path: local, temp: false };
  } catch (e) {
    log.warn({ code: ErrorCode.OutputWriteFailed, err: describeError(e).message }, 'vod: could not move the downloaded file to play_local_path: playing it from play_temp_path');
    return { path: temp, temp: true };
  }
}

/** GET url into file; false for a 404 (or another 4xx); throws for other failures. */
function download(url: string, file: string, redirects: number): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const req = http.get(url, (res) => {
      const status = res.statusCode ?? 0;
      const loc = res.headers.location;
      if (status >= 300 && status < 400 && loc !== undefined && redirects > 0) {
        res.resume();
        const next = new URL(loc, url);
        if (next.protocol !== 'http:') {
          reject(serverError(ErrorCode.VodFetchFailed, `redirect to ${next.protocol} is not followed`));
          return;
        }
        download(next.toString(), file, redirects - 1).then(resolve, reject);
        return;
      }
      if (status >= 400 && status < 500) {
        res.resume();
        resolve(false);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(serverError(ErrorCode.VodFetchFailed, `HTTP ${status} from ${url}`));
        return;
      }
      res.setTimeout(HTTP_IDLE_TIMEOUT, () => res.destroy(serverError(ErrorCode.VodFetchFailed, `no data from ${url} for ${HTTP_IDLE_TIMEOUT} ms`)));
      pipeline(res, createWriteStream(file, { flags: 'wx', mode: 0o600 })).then(() => {
        if (!res.complete) reject(serverError(ErrorCode.VodFetchFailed, `${url}: the response was cut short`));
        else resolve(true);
      }, reject);
    });
    req.setTimeout(HTTP_IDLE_TIMEOUT, () => req.destroy(serverError(ErrorCode.VodFetchFailed, `${url}: no answer within ${HTTP_IDLE_TIMEOUT} ms`)));
    req.on('error', reject);
  });
}
