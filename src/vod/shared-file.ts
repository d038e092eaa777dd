import type { FileHandle } from 'node:fs/promises';
import { MediaFrame } from '../live/frame.js';

/**
 * What every play of one file shares (opened by src/vod/media-file.ts, read by
 * src/vod/flv-media.ts and src/vod/mp4-media.ts): one file descriptor, and
 * the frames read lately. A frame is one `MediaFrame` object
 * for every play that reaches it while it is cached, so its RTMP encoding
 * (the frame's shared encoding slots, src/rtmp/player.ts) is made once and the
 * same bytes are queued to every player: plays that run within the cache's
 * span of each other (the usual case when many players start one file around
 * the same time) cost one read, one FLV/MP4 → RTMP conversion and one copy
 * of each frame in memory, not one per player.
 */

/** What the frame cache of all open files together may hold (payload bytes; their RTMP encodings about as much again). */
export const VOD_FRAME_CACHE_BYTES = 16 * 1024 * 1024;
/** ... and one file at most. */
export const VOD_FRAME_CACHE_FILE_BYTES = 4 * 1024 * 1024;

/** A cached frame; for an FLV also where the next tag starts (a play goes on from there without reading). */
export interface CachedFrame {
  readonly frame: MediaFrame;
  readonly next: number;
}

/** The open files and their frame caches (one per VodIndexCache, i.e. per application). */
export class SharedFiles {
  private readonly files = new Map<string, SharedFile>();
  /** payload bytes held by every file's cache */
  cachedBytes = 0;

  constructor(
    readonly maxBytes = VOD_FRAME_CACHE_BYTES,
    readonly maxFileBytes = VOD_FRAME_CACHE_FILE_BYTES,
  ) {}

  get openFiles(): number {
    return this.files.size;
  }

  /** The file shared under `key`, if a play has it open. */
  acquire(key: string): SharedFile | undefined {
    const f = this.files.get(key);
    if (f !== undefined) f.refs++;
    return f;
  }

  /** Shares `fh` under `key` (the caller's reference: release it with `release`). */
  add(key: string, fh: FileHandle): SharedFile {
    const f = new SharedFile(this, key, fh);
    this.files.set(key, f);
    return f;
  }

  /** One play less: the last one closes the file and drops its cache. */
  async release(f: SharedFile): Promise<void> {
    if (--f.refs > 0) return;
    if (this.files.get(f.key) === f) this.files.delete(f.key);
    f.clear();
    await f.fh.close();
  }

  /** The cache's share of one file: the total budget split among the open files, at most maxFileBytes. */
  fileBudget(): number {
    return Math.min(this.maxFileBytes, Math.floor(this.maxBytes / Math.max(1, this.files.size)));
  }
}

export class SharedFile {
  refs = 1;
  /** frames by position (an FLV tag's file offset; an MP4 sample's track and index), oldest first */
  private readonly frames = new Map<number, CachedFrame>();
  private bytes = 0;
  /** reads under way, by position and length: plays asking for the same bytes at once share one read */
  private readonly reads = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly owner: SharedFiles,
    readonly key: string,
    readonly fh: FileHandle,
  ) {}

  get cachedBytes(): number {
    return this.bytes;
  }

  get(pos: number): CachedFrame | undefined {
    return this.frames.get(pos);
  }

  /** Keeps a frame (the first one kept for a position wins: every play gets the same object). */
  put(pos: number, frame: MediaFrame, next = 0): CachedFrame {
    const had = this.frames.get(pos);
    if (had !== undefined) return had;
    const c: CachedFrame = { frame, next };
    this.frames.set(pos, c);
    const n = frame.payload.length;
    this.bytes += n;
    this.owner.cachedBytes += n;
    const budget = this.owner.fileBudget();
    // oldest out first; the frame just kept stays even when it alone is over the budget
    for (const [k, old] of this.frames) {
      if (this.bytes <= budget || k === pos) break;
      this.frames.delete(k);
      this.bytes -= old.frame.payload.length;
      this.owner.cachedBytes -= old.frame.payload.length;
    }
    return c;
  }

  clear(): void {
    this.owner.cachedBytes -= this.bytes;
    this.bytes = 0;
    this.frames.clear();
  }

  /** Reads `length` bytes at `position` (shorter at the end of the file), one read for plays that ask at once. */
  read(position: number, length: number): Promise<Buffer> {
    const key = `${position}:${length}`;
    let p = this.reads.get(key);
    if (p === undefined) {
      p = readAt(this.fh, position, length);
      this.reads.set(key, p);
      const done = (): void => void this.reads.delete(key);
      p.then(done, done);
    }
    return p;
  }
}

/** Reads exactly `length` bytes at `position` (fewer only at the end of the file: the returned view is shorter). */
export async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}
