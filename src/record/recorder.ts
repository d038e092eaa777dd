/**
 * One recorder of one publish: its life cycle (the files it opens, rolls and
 * closes, the write pacing, record_notify, on_record_* events, the end of
 * the recording on an error).
 *
 * It is not the bytes of a piece (piece.ts: FLV tags and metadata; mp4.ts:
 * fragmented MP4), nor the file operations (disk.ts), nor the file names
 * (names.ts), nor the chain module that starts recorders (module.ts).
 */
import type { RecordEvents } from '../app/chain.js';
import { RecordFormat, type RecorderConfig } from '../config/record.js';
import { ErrorCode, describeError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { outputErrors } from '../core/metrics.js';
import type { BatchSink } from '../live/complete-reader.js';
import { FrameKind, type MediaFrame } from '../live/frame.js';
import { DEFAULT_KEYFRAME_CAPACITY, FLV_TAG_OVERHEAD } from '../media/flv-file.js';
import { FLV_PREVIOUS_TAG_SIZE } from '../media/flv.js';
import type { SessionInfo } from '../app/chain.js';
import { DEFAULT_WRITE_WINDOW_MS, NODE_RECORD_FS, closeFile, openPieceFile, writeClock, type RecordFs, type WriteClock } from './disk.js';
import { Mp4Piece } from './mp4.js';
import { recordFilePath } from './names.js';
import { Piece, StreamInfo } from './piece.js';

/** record_notify's onStatus codes (Flash's NetStream.Record.*) */
export const RecordStatus = {
  Start: 'NetStream.Record.Start',
  Stop: 'NetStream.Record.Stop',
  /** the file could not be opened */
  NoAccess: 'NetStream.Record.NoAccess',
  /** a write failed, or the disk was slower than the stream */
  Failed: 'NetStream.Record.Failed',
} as const;

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
 * tag headers made for this file in one buffer per batch (piece.ts; the
 * writev in disk.ts). The file's timestamps start at 0 (the stream's
 * timestamp of the piece's first frame is its epoch, as nginx-rtmp rebases),
 * which is why the stream's shared FLV tag encoding (stream timestamps) is
 * not used.
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
  /** what the stream said about itself (onMetaData, codec headers) */
  private readonly stream = new StreamInfo();
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
        this.stream.takeMetadata(f);
        continue;
      }
      this.stream.see(f);
      if (!this.wanted(f)) continue;
      let p = this.piece;
      if (p === undefined) {
        if (f.isSequenceHeader) continue; // written at the piece's start
        p = await this.openPiece(f);
      } else if (this.isStartPoint(f, p.video) && (this.rollDue(p, f) || p.mp4?.mustRoll === true)) {
        if (used > from) iov.push(heads.subarray(from, used));
        from = used;
        await p.flush(iov);
        iov = [];
        await this.closePiece();
        this.path = this.nextPath();
        p = await this.openPiece(f);
      }
      const end = p.add(f, heads, used, from, iov);
      this.framesWritten++;
      if (end !== used) {
        // an FLV tag: its trailer waits in `heads` to go out with the next tag's header
        used = end;
        from = used - FLV_PREVIOUS_TAG_SIZE;
      }
    }
    const p = this.piece;
    if (used > from) iov.push(heads.subarray(from, used));
    if (p !== undefined && iov.length > 0) await p.flush(iov);
  }

  /** Opens the next piece with `first` as its first frame; writes the file start and the codec headers. */
  private async openPiece(first: MediaFrame): Promise<Piece> {
    const c = this.o.config;
    let video = (c.video || c.keyframes) && (this.stream.sawVideo || this.stream.videoConfig !== undefined);
    const audio = c.audio;
    // MP4: the tracks of the file's init (throws when there is none to write: the recorder ends)
    const mp4 = c.format === RecordFormat.Mp4 ? new Mp4Piece({ video: video ? this.stream.videoConfig : undefined, audio: audio ? this.stream.audioConfig : undefined }, this.o.log) : undefined;
    if (mp4 !== undefined) video = mp4.hasVideo;
    const path = this.path;
    this.taken.add(path);
    this.pieces++;
    const file = await openPieceFile(this.fs, path, c.append);
    // the header's flags and the metadata say what the recorder records: a stream's video header may come after its first audio frame
    const meta = this.stream.fileMetadata(c.video || c.keyframes, c.audio);
    const p = new Piece(file, path, first.timestamp, video, meta, mp4);
    this.piece = p;
    const start = p.start(video ? this.stream.videoConfig : undefined, audio ? this.stream.audioConfig : undefined, this.capacity);
    this.framesWritten += start.tags;
    if (start.iov.length > 0) await p.flush(start.iov);
    this.o.log.info({ path, recorder: c.name, append: !file.ownsMetadata }, 'record: file opened');
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
      await p.finish(this.capacity);
    } catch (e) {
      if (p.mp4 !== undefined) this.o.log.warn({ path: p.path, code: ErrorCode.OutputWriteFailed, err: describeError(e).message }, 'record: the last MP4 fragment could not be written at close (the file stays readable up to the one before)');
      else this.o.log.warn({ path: p.path, code: ErrorCode.OutputWriteFailed, err: describeError(e).message }, 'record: the metadata could not be rewritten at close (the file stays readable, without its index)');
    } finally {
      await closeFile(p.fh).catch(() => undefined);
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
