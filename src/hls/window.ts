import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { ErrorCode, serverError } from '../core/errors.js';
import { outputPath, writeFileAtomic } from '../core/files.js';
import type { HlsSettings } from '../config/hls.js';
import { fragmentId, fragmentName, fragmentUri, keyName, keyUri, streamPaths, type Paths } from './naming.js';
import { parseMediaPlaylist, renderMediaPlaylist, type PlaylistFragment } from './playlist.js';
import type { OpenFragment } from './segmenter.js';

/**
 * The fragment window of one stream's HLS output, across its publishes: the
 * media sequence and discontinuity numbers, the keys (hls_keys), the window
 * the playlist holds, the writes of fragments, keys and playlists (as jobs
 * the stream runs in order), the cleanup of fragments that left the window
 * (hls_cleanup) and reading the playlist back (hls_continuous). It is not the
 * muxing of frames (src/hls/segmenter.ts) nor the publish lifecycle and the
 * order of writes (src/hls/stream.ts); names come from src/hls/naming.ts.
 */

const AES_KEY_BYTES = 16;

/** A write, run after every earlier one of the stream. */
export type Job = () => Promise<void>;

export interface KeyState {
  readonly id: number;
  readonly key: Buffer;
  readonly iv: Buffer;
  readonly file: string;
  readonly uri: string;
}

/** What the window gives a fragment that starts. */
export interface FragmentStart {
  readonly id: number;
  readonly seq: number;
  readonly discont: boolean;
  readonly key: KeyState | undefined;
}

interface DoneFragment extends PlaylistFragment {
  readonly file: string;
  /** the key file it is encrypted with (hls_keys) */
  readonly keyFile?: string;
}

export class FragmentWindow {
  private readonly winfrags: number;
  private window: DoneFragment[] = [];
  /** files of fragments that left the window (and when, in `mediaMs`), removed a playlist length of media later */
  private retired: { readonly file: string; readonly at: number }[] = [];
  /**
   * ms of media in every fragment closed so far, over every publish: the clock
   * of the cleanup (a fragment is deleted once this much more media followed
   * it out of the window as the playlist holds), which a new publish's stream
   * clock restarting at 0 does not disturb.
   */
  private mediaMs = 0;
  private nextSeq = 0;
  private discontSeq = 0;
  /** the next fragment follows a restart or a timestamp jump */
  private pendingDiscont = false;
  private key: KeyState | undefined;
  private keyFrags = 0;
  private paths: Paths | undefined;
  private dirsMade = false;
  private masterWritten = false;

  constructor(
    private readonly s: HlsSettings,
    private readonly name: string,
    /** wall clock (ms) */
    private readonly now: () => number,
    /** the id of the fragment being muxed (its file is never removed) */
    private readonly openId: () => number | undefined,
  ) {
    this.winfrags = Math.max(1, Math.floor(s.playlistLength / s.fragment));
  }

  /** Works out the stream's paths once; throws (ServerError) when the name cannot name a file. */
  preparePaths(): void {
    this.paths ??= streamPaths(this.s, this.name);
  }

  /** no fragment in the window */
  get empty(): boolean {
    return this.window.length === 0;
  }

  /** A publish starts (after the previous one's fragment was closed). */
  restart(): void {
    this.key = undefined;
    if (!this.s.continuous) {
      // the sequence starts again: the old fragments (and keys) go like any that left the window
      const old = this.window;
      this.window = [];
      for (const f of old) this.retire(f);
      this.nextSeq = 0;
      this.discontSeq = 0;
    }
    this.pendingDiscont = this.window.length > 0;
    this.keyFrags = 0;
    this.masterWritten = false;
  }

  /** the next fragment follows a discontinuity */
  discontinuity(): void {
    this.pendingDiscont = true;
  }

  /** A fragment starts at `ts`: its number, id, key (a new one every hls_fragments_per_key), discontinuity. */
  start(ts: number): FragmentStart {
    const seq = this.nextSeq++;
    const id = fragmentId(this.s, seq, ts, this.now);
    let key: KeyState | undefined;
    if (this.s.keys) {
      if (this.key === undefined || this.keyFrags === 0) {
        this.keyFrags = this.s.fragmentsPerKey - 1;
        key = this.newKey(id);
      } else {
        if (this.s.fragmentsPerKey > 0) this.keyFrags--;
        key = this.key;
      }
    }
    const discont = this.pendingDiscont;
    this.pendingDiscont = false;
    return { id, seq, discont, key };
  }

  private newKey(id: number): KeyState {
    const paths = this.paths!;
    const iv = Buffer.alloc(AES_KEY_BYTES);
    iv.writeBigUInt64BE(BigInt(id), AES_KEY_BYTES - 8);
    this.key = { id, key: randomBytes(AES_KEY_BYTES), iv, file: outputPath(paths.keyDir!, keyName(this.s, this.name, id)), uri: keyUri(this.s, this.name, id) };
    return this.key;
  }

  /** Ends the open fragment at `endTs`: its file, the window, the playlist (as jobs). */
  close(open: OpenFragment | undefined, endTs: number, jobs: Job[], ended: boolean): void {
    const paths = this.paths!;
    if (open !== undefined) {
      const durationMs = Math.max(1, endTs - open.startTs);
      const name = fragmentName(this.s, this.name, open.id);
      const uri = fragmentUri(this.s, this.name, name);
      const file = outputPath(paths.dir, name);
      const done: DoneFragment = {
        seq: open.seq,
        uri,
        durationMs,
        discont: open.discont,
        file,
        ...(open.key !== undefined ? { key: { uri: open.key.uri, iv: open.key.iv.toString('hex') }, keyFile: open.key.file } : {}),
      };
      const key = open.key;
      const newKey = key !== undefined && key.id === open.id;
      jobs.push(async () => {
        try {
          await this.ensureDirs();
          if (newKey) await writeFileAtomic(key.file, key.key);
          const ts = open.out.bytes;
          await writeFileAtomic(file, key !== undefined ? encrypt([ts], key) : ts);
        } finally {
          open.release();
        }
      });
      this.mediaMs += durationMs;
      this.window.push(done);
      if (this.s.type === 'live') {
        while (this.window.length > this.winfrags) {
          const old = this.window.shift()!;
          if (old.discont) this.discontSeq++;
          this.retire(old);
        }
      }
    } else if (!ended) {
      return;
    }
    const text = renderMediaPlaylist({ fragments: this.window, nextSeq: this.nextSeq, discontinuitySeq: this.discontSeq, fragmentMs: this.s.fragment, event: this.s.type === 'event', ended });
    const master = this.masterWritten ? undefined : paths.master;
    this.masterWritten = true;
    // what left the window a playlist length of media before now (written by earlier jobs)
    const before = this.mediaMs - this.s.playlistLength;
    jobs.push(async () => {
      await this.ensureDirs();
      await writeFileAtomic(paths.playlist, text);
      if (master !== undefined) await writeFileAtomic(master.file, master.text);
      if (this.s.cleanup) await this.removeRetired(before);
    });
  }

  /** A fragment left the window: its file (and its key, when no fragment of the window nor the current key uses it) goes a playlist length later. */
  private retire(f: DoneFragment): void {
    const at = this.mediaMs;
    this.retired.push({ file: f.file, at });
    if (f.keyFile !== undefined && f.keyFile !== this.key?.file && !this.window.some((w) => w !== f && w.keyFile === f.keyFile)) this.retired.push({ file: f.keyFile, at });
  }

  private async ensureDirs(): Promise<void> {
    if (this.dirsMade) return;
    const p = this.paths!;
    try {
      await mkdir(p.dir, { recursive: true });
      if (p.keyDir !== undefined) await mkdir(p.keyDir, { recursive: true });
    } catch (e) {
      throw serverError(ErrorCode.OutputWriteFailed, `cannot create ${p.dir}: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    this.dirsMade = true;
  }

  /** Deletes retired fragments (retired before `before`) that no fragment of the window reuses the name of. */
  private async removeRetired(before: number): Promise<void> {
    const keep = new Set(this.window.flatMap((f) => (f.keyFile !== undefined ? [f.file, f.keyFile] : [f.file])));
    if (this.key !== undefined) keep.add(this.key.file);
    const openId = this.openId();
    if (openId !== undefined) keep.add(outputPath(this.paths!.dir, fragmentName(this.s, this.name, openId)));
    while (this.retired.length > 0 && this.retired[0]!.at <= before) {
      const r = this.retired.shift()!;
      if (!keep.has(r.file)) await unlink(r.file).catch(() => undefined);
    }
  }

  /** The publisher did not come back: every file of the stream goes (hls_cleanup). */
  async removeAll(): Promise<void> {
    const keys = new Set(this.window.flatMap((f) => (f.keyFile !== undefined ? [f.keyFile] : [])));
    const files = [...this.window.map((f) => f.file), ...keys, ...this.retired.map((r) => r.file), this.paths!.playlist];
    this.window = [];
    this.retired = [];
    for (const f of files) await unlink(f).catch(() => undefined);
  }

  /** hls_continuous after a server restart: the media sequence and window from our playlist on disk. */
  async restore(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.paths!.playlist, 'utf8');
    } catch {
      return;
    }
    const p = parseMediaPlaylist(text);
    if (p === undefined || this.window.length > 0 || this.openId() !== undefined) return;
    const dir = this.paths!.dir;
    const restored: DoneFragment[] = [];
    for (const f of p.fragments) {
      const base = f.uri.slice(f.uri.lastIndexOf('/') + 1);
      try {
        restored.push({ seq: f.seq, uri: f.uri, durationMs: f.durationMs, discont: f.discont, file: outputPath(dir, base) });
      } catch {
        return; // not ours
      }
    }
    const keep = this.s.type === 'event' ? restored.length : this.winfrags;
    for (const f of restored.slice(0, Math.max(0, restored.length - keep))) this.retire(f);
    this.window = restored.slice(-keep);
    this.nextSeq = Math.max(this.nextSeq, p.mediaSeq + p.fragments.length);
    this.pendingDiscont = this.window.length > 0;
  }
}

/** AES-128-CBC with PKCS#7 padding over the whole fragment (RFC 8216 4.3.2.4). */
function encrypt(buffers: readonly Buffer[], key: KeyState): Buffer[] {
  const c = createCipheriv('aes-128-cbc', key.key, key.iv);
  const out = buffers.map((b) => c.update(b));
  out.push(c.final());
  return out;
}
