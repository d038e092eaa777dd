import { open, type FileHandle } from 'node:fs/promises';
import { FlvMedia, indexFlv, type FlvIndex } from './flv-media.js';
import { Mp4Media, indexMp4, type Mp4Index } from './mp4-media.js';
import { SharedFiles, type SharedFile } from './shared-file.js';
import { asReadFailed, type VodMedia } from './vod-media.js';

export type { VodFrame, VodMedia } from './vod-media.js';

/**
 * A VOD file opened for one play: FLV or MP4, read in pieces (a window of
 * the file at a time, never the whole file). What a file costs to index
 * (an FLV's keyframe scan, an MP4's sample tables) is kept in a `VodIndexCache`
 * shared by every play of that file (same path, size and mtime); so are, while
 * the file has plays, its file descriptor and the frames read lately
 * (src/vod/shared-file.ts): plays near each other in the file share one
 * read and one copy of each frame, and its RTMP encoding.
 *
 * This file opens a file, picks its format and keeps the indexes; the
 * formats are src/vod/flv-media.ts and src/vod/mp4-media.ts, what a play
 * reads src/vod/vod-media.ts. It is not the play (src/vod/play.ts).
 */

/** What a file's index is cached under: the same path with another size or mtime is another file. */
export interface FileIdentity {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

type FileIndex = FlvIndex | Mp4Index;

/** The indexes of recently played files (a few: each play of a popular file shares one). */
export class VodIndexCache {
  private readonly entries = new Map<string, Promise<FileIndex>>();
  /** the open files (a descriptor and the frames read lately, shared by the plays of each) */
  readonly files: SharedFiles;

  constructor(
    private readonly max = 32,
    files = new SharedFiles(),
  ) {
    this.files = files;
  }

  get(id: FileIdentity, build: () => Promise<FileIndex>): Promise<FileIndex> {
    const key = identityKey(id);
    let p = this.entries.get(key);
    if (p !== undefined) {
      // most recently used last
      this.entries.delete(key);
      this.entries.set(key, p);
      return p;
    }
    p = build();
    this.entries.set(key, p);
    p.catch(() => this.entries.delete(key));
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return p;
  }
}

function identityKey(id: FileIdentity): string {
  return `${id.path}\0${id.size}\0${id.mtimeMs}`;
}

/** The file's format by its name: `.mp4`, `.m4v`, `.mov`, `.f4v`, `.m4a` are MP4, everything else FLV (nginx-rtmp's default format). */
export function formatOf(file: string): 'flv' | 'mp4' {
  return /\.(mp4|m4v|m4a|mov|f4v|3gp)$/i.test(file) ? 'mp4' : 'flv';
}

/** Opens a VOD file (FLV or MP4 by its name). Throws VodReadFailed (or FlvMalformed/Mp4Malformed inside it) for a file it cannot play. */
export async function openVodFile(file: string, cache: VodIndexCache): Promise<VodMedia> {
  let fh: FileHandle | undefined = await open(file, 'r');
  let shared: SharedFile | undefined;
  try {
    const st = await fh.stat();
    const id: FileIdentity = { path: file, size: st.size, mtimeMs: st.mtimeMs };
    const format = formatOf(file);
    const index = await cache.get(id, () => (format === 'mp4' ? indexMp4(fh!, st.size) : indexFlv(fh!, st.size)));
    // the same file (path, size, mtime) open for another play: its descriptor and frames serve this one too
    const key = identityKey(id);
    shared = cache.files.acquire(key);
    if (shared === undefined) shared = cache.files.add(key, fh);
    else await fh.close();
    fh = undefined;
    return index.kind === 'mp4' ? new Mp4Media(cache.files, shared, index, st.size) : new FlvMedia(cache.files, shared, index);
  } catch (e) {
    if (shared !== undefined) await cache.files.release(shared).catch(() => undefined);
    else await fh?.close().catch(() => undefined);
    throw asReadFailed(e, file);
  }
}
