import { open, stat, type FileHandle } from 'node:fs/promises';
import type { RecordEvents } from '../app/chain.js';
import { RecordFormat, type RecorderConfig } from '../config/record.js';
import { ErrorCode, describeError, serverError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { outputErrors } from '../core/metrics.js';
import type { BatchSink } from '../live/complete-reader.js';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import {
  DEFAULT_KEYFRAME_CAPACITY,
  FLV_FILE_HEADER_SIZE,
  FLV_TAG_OVERHEAD,
  emptyMetadata,
  encodeFlvFileStart,
  encodeMetadataTag,
  readFlvTail,
  writeFlvTagHeader,
  type FlvFileMetadata,
} from '../media/flv-file.js';
import { FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE } from '../media/flv.js';
import { decodeAmf0 } from '../rtmp/amf0.js';
import { amfObjectOf } from '../rtmp/amf-types.js';
import type { SessionInfo } from '../app/chain.js';
import { Mp4Piece } from './mp4.js';
import { recordFilePath } from './names.js';

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

/** record_notify's onStatus codes (Flash's NetStream.Record.*) */
export const RecordStatus = {
  Start: 'NetStream.Record.Start',
  Stop: 'NetStream.Record.Stop',
  /** the file could not be opened */
  NoAccess: 'NetStream.Record.NoAccess',
  /** a write failed, or the disk was slower than the stream */
  Failed: 'NetStream.Record.Failed',
} as const;

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
class WriteClock {
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
function writeClock(period: number): WriteClock {
  let c = clocks.get(period);
  if (c === undefined) clocks.set(period, (c = new WriteClock(period)));
  return c;
}

/** The most buffers given to one writev(2) (Linux IOV_MAX is 1024). */
const WRITEV_MAX = 1023;
/** How much of a file's end is read to find its last tag (record_append). */
const APPEND_TAIL_BYTES = 1 << 20;

/** The metadata numbers taken from the publisher's onMetaData when present. */
const COPIED_NUMBERS = ['width', 'height', 'framerate', 'videodatarate', 'audiodatarate', 'audiosamplerate', 'audiosamplesize', 'videocodecid', 'audiocodecid'] as const;

/** The FLV legacy header bits: video codec id (low nibble), audio format (high nibble), the Enhanced RTMP flag. */
const VIDEO_CODEC_MASK = 0x0f;
const VIDEO_EX_HEADER = 0x80;
const AUDIO_FORMAT_SHIFT = 4;
const AUDIO_STEREO = 0x01;

/** One open piece of a recording. */
interface Piece {
  readonly fh: FileHandle;
  readonly path: string;
  /** bytes in the file (the next write's position) */
  pos: number;
  /** the stream timestamp that is 0 in this file */
  readonly epoch: number;
  /** added to every timestamp (record_append: the file's last timestamp) */
  readonly shift: number;
  /** false when appending to a file this recording did not start (its metadata is not rewritten) */
  readonly ownsMetadata: boolean;
  /** the piece holds video (set at open, or by its first video frame: then it rolls on keyframes) */
  video: boolean;
  readonly meta: FlvFileMetadata;
  lastTs: number;
  lastKeyTs: number;
  /** frames that count for record_max_frames: video frames, or audio frames in an audio-only file */
  frames: number;
  readonly times: number[];
  readonly positions: number[];
  /** record_format mp4: the piece's fragmenter (src/record/mp4.ts); undefined for FLV */
  readonly mp4: Mp4Piece | undefined;
}

export interface RecorderOptions {
  readonly config: RecorderConfig;
  readonly session: SessionInfo;
  readonly app: string;
  readonly name: string;
  readonly query: string;
  readonly log: Logger;
  readonly events: RecordEvents | undefined;
  readonly fs?: RecordFs;
  readonly now?: () => Date;
  /** keyframe index entries reserved in each file's metadata */
  readonly keyframeCapacity?: number;
  /** at most one write per this many ms (DEFAULT_WRITE_WINDOW_MS) */
  readonly writeWindow?: number;
  /** onStatus to the publisher (record_notify on) */
  readonly status?: (level: 'status' | 'error', code: string, description: string) => void;
  /** the recorder ended (finished, cut off or failed) and its file(s) are closed: the owner unsubscribes its reader */
  readonly onClosed: (recorder: FlvRecorder) => void;
}

/**
 * One recorder of one publish (nginx-rtmp's record node): the sink of a
 * complete reader (src/live/complete-reader.ts), writing FLV files.
 *
 * Each batch of frames becomes one writev(2) (split at IOV_MAX) at an
 * explicit file position: the frames' payloads themselves (no copy) between
 * tag headers made for this file in one buffer per batch. The file's
 * timestamps start at 0 (the stream's timestamp of the piece's first frame
 * is its epoch, as nginx-rtmp rebases), which is why the stream's shared FLV
 * tag encoding (stream timestamps) is not used.
 *
 * A piece opens at the first frame to record (a keyframe in a stream with
 * video: the complete reader starts there), and starts with the file header,
 * the reserved onMetaData (src/media/flv-file.ts) and the stream's codec
 * headers. Rolling (record_interval, record_max_size, record_max_frames):
 * once a bound is reached, the next keyframe (any audio frame in an
 * audio-only recording) closes the piece and starts the next with it, so no
 * frame is lost and every piece starts with metadata, headers and a keyframe.
 * Closing rewrites the metadata in place (duration, size, keyframe index).
 *
 * `record_format mp4` uses the same files, rolling, notifications and error
 * handling; only the bytes differ: the piece's Mp4Piece (src/record/mp4.ts)
 * gives the init at open and whole fragments as frames arrive, and a
 * codec configuration change rolls the piece at the next start point.
 */
export class FlvRecorder implements BatchSink {
  /** the current (or, before the first frame, the first) file */
  path: string;
  /** files closed so far */
  readonly files: string[] = [];
  /** frames written, over every piece */
  framesWritten = 0;
  closed = false;
  private piece: Piece | undefined = undefined;
  private readonly taken = new Set<string>();
  private readonly fs: RecordFs;
  private readonly now: () => Date;
  private readonly capacity: number;
  private videoConfig: MediaFrame | undefined = undefined;
  private audioConfig: MediaFrame | undefined = undefined;
  private readonly info: FlvFileMetadata = emptyMetadata();
  private sawVideo = false;
  private pieces = 0;
  private readonly writeWindow: number;
  private lastWriteAt = 0;
  private readonly clock: WriteClock | undefined;
  private resolveClosed: () => void = () => undefined;
  private readonly closedPromise = new Promise<void>((r) => (this.resolveClosed = r));

  constructor(private readonly o: RecorderOptions) {
    this.fs = o.fs ?? NODE_RECORD_FS;
    this.now = o.now ?? (() => new Date());
    this.capacity = o.keyframeCapacity ?? DEFAULT_KEYFRAME_CAPACITY;
    this.writeWindow = o.writeWindow ?? DEFAULT_WRITE_WINDOW_MS;
    this.clock = this.writeWindow > 0 ? writeClock(this.writeWindow) : undefined;
    // the name is computed at once: rtmp_control record/start answers it; a hostile name throws here
    this.path = this.nextPath();
  }

  get recorderName(): string {
    return this.o.config.name;
  }

  private nextPath(): string {
    const c = this.o.config;
    const path = recordFilePath({ path: c.path ?? '.', suffix: c.suffix, unique: c.unique }, this.o.name, this.now(), this.pieces > 0 && !c.append, this.taken);
    return path;
  }

  /**
   * Writes at most once per `writeWindow` ms: a batch that comes sooner waits
   * for the next tick of the window's shared clock (WriteClock: every
   * recorder writes in the same turn; the frames that arrive meanwhile wait in the
   * complete reader's bounded buffer and make the next batch), so a stream is
   * written in a few large writev(2) calls per second instead of one per
   * publisher read. The first frames of a recording are written at once.
   */
  async writeBatch(frames: readonly MediaFrame[]): Promise<void> {
    const wait = this.lastWriteAt + this.writeWindow - Date.now();
    if (wait > 0 && this.piece !== undefined && this.clock !== undefined) await this.clock.next();
    this.lastWriteAt = Date.now();
    await this.write(frames);
  }

  private wanted(f: MediaFrame): boolean {
    const c = this.o.config;
    if (f.kind === FrameKind.Audio) return c.audio;
    if (f.kind === FrameKind.Video) return c.video || (c.keyframes && (f.isKeyframe || f.isSequenceHeader));
    return false;
  }

  /** A frame a new piece may start with. */
  private isStartPoint(f: MediaFrame, video: boolean): boolean {
    if (f.isSequenceHeader) return false;
    return video ? f.kind === FrameKind.Video && f.isKeyframe : f.kind === FrameKind.Audio;
  }

  private rollDue(p: Piece, f: MediaFrame): boolean {
    const c = this.o.config;
    return (c.interval > 0 && f.timestamp - p.epoch >= c.interval) || (c.maxSize > 0 && p.pos >= c.maxSize) || (c.maxFrames > 0 && p.frames >= c.maxFrames);
  }

  private async write(frames: readonly MediaFrame[]): Promise<void> {
    // one buffer of tag headers and trailers for the whole batch: a tag's trailer
    // (PreviousTagSize) and the next tag's header are adjacent in the file, so they
    // go as one iovec: 2n+1 buffers per batch of n tags, one view made per tag
    const heads = Buffer.allocUnsafe(frames.length * FLV_TAG_OVERHEAD);
    let iov: Buffer[] = [];
    /** bytes of `heads` used; from `from` on they are not in `iov` yet (the last trailer) */
    let used = 0;
    let from = 0;
    for (const f of frames) {
      if (f.kind === FrameKind.Data) {
        this.takeMetadata(f);
        continue;
      }
      if (f.kind === FrameKind.Video) this.sawVideo = true;
      if (f.isSequenceHeader) {
        if (f.kind === FrameKind.Video) this.videoConfig = f;
        else this.audioConfig = f;
      }
      if (!this.wanted(f)) continue;
      let p = this.piece;
      if (p === undefined) {
        if (f.isSequenceHeader) continue; // written at the piece's start
        p = await this.openPiece(f);
      } else if (this.isStartPoint(f, p.video) && (this.rollDue(p, f) || p.mp4?.mustRoll === true)) {
        if (used > from) iov.push(heads.subarray(from, used));
        from = used;
        await this.flush(p, iov);
        iov = [];
        await this.closePiece();
        this.path = this.nextPath();
        p = await this.openPiece(f);
      }
      const end = this.tag(p, f, heads, used, from, iov);
      if (end !== used) {
        // an FLV tag: its trailer waits in `heads` to go out with the next tag's header
        used = end;
        from = used - FLV_PREVIOUS_TAG_SIZE;
      }
    }
    const p = this.piece;
    if (used > from) iov.push(heads.subarray(from, used));
    if (p !== undefined && iov.length > 0) await this.flush(p, iov);
  }

  /**
   * Writes one tag's header at `at` in `heads` and its trailer after it, adds
   * the header (with what `heads` holds before it from `from` on: the previous
   * tag's trailer) and the payload as it is to `iov`, and counts the tag.
   * Returns the end of the tag's bytes in `heads`; its trailer is not in `iov` yet.
   */
  private tag(p: Piece, f: MediaFrame, heads: Buffer, at: number, from: number, iov: Buffer[]): number {
    const ts = Math.max(0, f.timestamp - p.epoch) + p.shift;
    // the tag's file position (FLV's keyframe index)
    const pos = p.pos;
    let end = at;
    if (p.mp4 !== undefined) {
      // MP4: the frame joins the pending fragment; a fragment it completes is appended (nothing goes in `heads`)
      for (const b of p.mp4.add(f, ts)) {
        iov.push(b);
        p.pos += b.length;
      }
    } else {
      const size = f.payload.length;
      writeFlvTagHeader(heads, at, f.kind, size, ts);
      heads.writeUInt32BE(FLV_TAG_HEADER_SIZE + size, at + FLV_TAG_HEADER_SIZE);
      iov.push(heads.subarray(from, at + FLV_TAG_HEADER_SIZE), f.payload);
      p.pos += FLV_TAG_OVERHEAD + size;
      end = at + FLV_TAG_OVERHEAD;
    }
    if (f.kind === FrameKind.Video && f.isKeyframe && !f.isSequenceHeader) {
      p.times.push(ts / 1000);
      p.positions.push(pos);
      p.lastKeyTs = ts;
    }
    if (f.kind === FrameKind.Video && !p.video && p.mp4 === undefined) p.video = true;
    if (!f.isSequenceHeader && (f.kind === FrameKind.Video || !p.video)) p.frames++;
    if (ts > p.lastTs) p.lastTs = ts;
    this.framesWritten++;
    return end;
  }

  private async flush(p: Piece, iov: Buffer[]): Promise<void> {
    let pos = p.pos;
    for (const b of iov) pos -= b.length;
    for (let i = 0; i < iov.length; i += WRITEV_MAX) {
      const part = iov.slice(i, i + WRITEV_MAX);
      let want = 0;
      for (const b of part) want += b.length;
      let written: number;
      try {
        written = (await p.fh.writev(part, pos)).bytesWritten;
      } catch (e) {
        throw serverError(ErrorCode.OutputWriteFailed, `record: cannot write ${p.path}: ${describeError(e).message}`, e);
      }
      // a regular file takes a whole writev or fails; a short write means the disk is full
      if (written !== want) throw serverError(ErrorCode.OutputWriteFailed, `record: cannot write ${p.path}: short write (${written} of ${want} bytes): disk full?`);
      pos += want;
    }
  }

  private takeMetadata(f: MediaFrame): void {
    try {
      const values = decodeAmf0(f.payload);
      const obj = values[1] === undefined ? undefined : amfObjectOf(values[1]);
      if (obj === undefined) return;
      for (const k of COPIED_NUMBERS) {
        const v = obj[k];
        if (typeof v === 'number' && Number.isFinite(v)) this.info[k] = v;
      }
      if (typeof obj['stereo'] === 'boolean') this.info.stereo = obj['stereo'];
    } catch {
      // a publisher's metadata we cannot read: the file's own metadata goes without it
    }
  }

  private fileMetadata(video: boolean, audio: boolean): FlvFileMetadata {
    const m: FlvFileMetadata = { ...this.info, hasVideo: video, hasAudio: audio };
    const v = this.videoConfig?.payload[0];
    if (m.videocodecid === 0 && v !== undefined && (v & VIDEO_EX_HEADER) === 0) m.videocodecid = v & VIDEO_CODEC_MASK;
    const a = this.audioConfig?.payload[0];
    if (m.audiocodecid === 0 && a !== undefined) m.audiocodecid = a >> AUDIO_FORMAT_SHIFT;
    if (a !== undefined && !m.stereo) m.stereo = (a & AUDIO_STEREO) !== 0;
    if (!video) {
      m.width = m.height = m.framerate = m.videodatarate = m.videocodecid = 0;
    }
    if (!audio) {
      m.audiodatarate = m.audiosamplerate = m.audiosamplesize = m.audiocodecid = 0;
      m.stereo = false;
    }
    return m;
  }

  /** Opens the next piece with `first` as its first frame; writes the file start and the codec headers. */
  private async openPiece(first: MediaFrame): Promise<Piece> {
    const c = this.o.config;
    let video = (c.video || c.keyframes) && (this.sawVideo || this.videoConfig !== undefined);
    const audio = c.audio;
    // MP4: the tracks of the file's init (throws when there is none to write: the recorder ends)
    const mp4 = c.format === RecordFormat.Mp4 ? new Mp4Piece({ video: video ? this.videoConfig : undefined, audio: audio ? this.audioConfig : undefined }, this.o.log) : undefined;
    if (mp4 !== undefined) video = mp4.hasVideo;
    const path = this.path;
    this.taken.add(path);
    this.pieces++;
    let fh: FileHandle;
    let pos = 0;
    let shift = 0;
    let ownsMetadata = true;
    try {
      const existing = c.append ? await this.fs.size(path) : undefined;
      if (existing !== undefined && existing > FLV_FILE_HEADER_SIZE) {
        fh = await this.fs.open(path, 'r+');
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
        pos = existing;
        shift = last === undefined ? 0 : last.timestamp + 1;
        ownsMetadata = false;
      } else {
        fh = await this.fs.open(path, 'w');
      }
    } catch (e) {
      throw serverError(ErrorCode.OutputWriteFailed, `record: cannot open ${path}: ${describeError(e).message}`, e);
    }
    // the header's flags and the metadata say what the recorder records: a stream's video header may come after its first audio frame
    const meta = this.fileMetadata(c.video || c.keyframes, c.audio);
    const p: Piece = { fh, path, pos, epoch: first.timestamp, shift, ownsMetadata, video, meta, lastTs: shift, lastKeyTs: shift, frames: 0, times: [], positions: [], mp4 };
    this.piece = p;
    const iov: Buffer[] = [];
    if (mp4 !== undefined) {
      const init = mp4.init();
      iov.push(init);
      p.pos += init.length;
    } else if (ownsMetadata) {
      const start = encodeFlvFileStart(meta, this.capacity);
      iov.push(start);
      p.pos += start.length;
    }
    const heads = Buffer.allocUnsafe(2 * FLV_TAG_OVERHEAD);
    let used = 0;
    for (const cfg of [video ? this.videoConfig : undefined, audio ? this.audioConfig : undefined]) {
      if (cfg === undefined || mp4 !== undefined) continue;
      // the header's timestamp is the piece's 0 (it may be older than the piece)
      const h = heads.subarray(used, used + FLV_TAG_OVERHEAD);
      used += FLV_TAG_OVERHEAD;
      writeFlvTagHeader(h, 0, cfg.kind, cfg.payload.length, shift);
      h.writeUInt32BE(FLV_TAG_HEADER_SIZE + cfg.payload.length, FLV_TAG_HEADER_SIZE);
      iov.push(h.subarray(0, FLV_TAG_HEADER_SIZE), cfg.payload, h.subarray(FLV_TAG_HEADER_SIZE));
      p.pos += FLV_TAG_OVERHEAD + cfg.payload.length;
      this.framesWritten++;
    }
    if (iov.length > 0) await this.flush(p, iov);
    this.o.log.info({ path, recorder: c.name, append: !ownsMetadata }, 'record: file opened');
    this.notify('status', RecordStatus.Start, path);
    this.o.events?.recordStarted({ session: this.o.session, name: this.o.name, query: this.o.query, recorder: c.name, path });
    return p;
  }

  /** Rewrites the metadata (duration, size, keyframe index) and closes the piece; on_record_done / exec_record_done. */
  private async closePiece(): Promise<void> {
    const p = this.piece;
    if (p === undefined) return;
    this.piece = undefined;
    try {
      if (p.mp4 !== undefined) {
        // MP4: the last fragment (nothing is rewritten: the file was whole after every fragment)
        const out = p.mp4.end();
        for (const b of out) p.pos += b.length;
        await this.flush(p, out);
      } else if (p.ownsMetadata) {
        const meta: FlvFileMetadata = {
          ...p.meta,
          duration: p.lastTs / 1000,
          filesize: p.pos,
          lasttimestamp: p.lastTs / 1000,
          lastkeyframetimestamp: p.lastKeyTs / 1000,
          hasKeyframes: p.times.length > 0,
        };
        const tag = encodeMetadataTag(meta, { times: p.times, filepositions: p.positions }, this.capacity);
        await p.fh.write(tag, 0, tag.length, FLV_FILE_HEADER_SIZE);
      }
    } catch (e) {
      if (p.mp4 !== undefined) this.o.log.warn({ path: p.path, code: ErrorCode.OutputWriteFailed, err: describeError(e).message }, 'record: the last MP4 fragment could not be written at close (the file stays readable up to the one before)');
      else this.o.log.warn({ path: p.path, code: ErrorCode.OutputWriteFailed, err: describeError(e).message }, 'record: the metadata could not be rewritten at close (the file stays readable, without its index)');
    } finally {
      await p.fh.close().catch(() => undefined);
      this.files.push(p.path);
      this.o.log.info({ path: p.path, recorder: this.o.config.name, bytes: p.pos, duration: p.lastTs / 1000 }, 'record: file closed');
      this.o.events?.recordDone({ session: this.o.session, name: this.o.name, query: this.o.query, recorder: this.o.config.name, path: p.path });
    }
  }

  /** record_notify: an onStatus to the publisher (never throws: the publisher may be gone) */
  private notify(level: 'status' | 'error', code: string, description: string): void {
    if (!this.o.config.notify || this.o.status === undefined) return;
    try {
      this.o.status(level, code, description);
    } catch (e) {
      this.o.log.debug({ err: describeError(e).message }, 'record: the publisher could not be told');
    }
  }

  close(reason: string | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (reason !== undefined) outputErrors.inc({ output: 'record', app: this.o.app });
    void (async () => {
      const hadPiece = this.piece !== undefined;
      const path = this.piece?.path ?? this.path;
      await this.closePiece();
      if (reason === undefined) this.notify('status', RecordStatus.Stop, path);
      else this.notify('error', hadPiece ? RecordStatus.Failed : RecordStatus.NoAccess, `${path}: ${reason}`);
      // a recording that never got a file (it failed to open, or stopped before its first frame): on_record_done still says it ended
      if (!hadPiece && reason !== undefined && this.files.length === 0) {
        this.o.events?.recordDone({ session: this.o.session, name: this.o.name, query: this.o.query, recorder: this.o.config.name, path: this.path });
      }
    })().finally(() => {
      this.o.onClosed(this);
      this.resolveClosed();
    });
  }

  /** Resolves once close() finished its file (tests, shutdown). */
  whenClosed(): Promise<void> {
    return this.closedPromise;
  }
}
