import { describeError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { StreamReader } from './reader.js';
import { DEFAULT_STREAM_OPTIONS, LiveStream, streamKey, type FlushScheduler, type PublisherInfo, type StreamOptions } from './stream.js';

/**
 * Brackets each flush of held frames: the server passes its sockets' write
 * group, so the writes of one flush leave together after the fan-out.
 */
export interface OutputBatch {
  begin(): void;
  end(): void;
}

export interface LiveHubOptions {
  readonly outputBatch?: OutputBatch;
  /** frames the readers could not take, and flushes that failed, are reported here */
  readonly logger?: Logger;
}

/** Flushes every stream that ended a batch, once per event-loop turn. */
class TurnFlusher implements FlushScheduler {
  private readonly pending = new Set<LiveStream>();
  private scheduled = false;
  private readonly run = (): void => {
    this.scheduled = false;
    this.bracketed(() => {
      try {
        for (const s of this.pending) {
          // a stream's flush does not throw (its readers' errors are caught there): this is the
          // last guard of the process, since nothing would catch a throw out of setImmediate
          try {
            s.flush();
          } catch (e) {
            this.log?.error({ stream: s.key, ...describeError(e) }, 'stream flush failed');
          }
        }
      } finally {
        this.pending.clear();
      }
    });
  };

  constructor(
    private readonly batch: OutputBatch | undefined,
    private readonly log: Logger | undefined,
  ) {}

  schedule(stream: LiveStream): void {
    this.pending.add(stream);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  flushNow(stream: LiveStream): void {
    this.bracketed(() => stream.flush());
  }

  /** Runs flushes between the output batch's begin() and end(). */
  private bracketed(flush: () => void): void {
    this.batch?.begin();
    try {
      flush();
    } finally {
      this.batch?.end();
    }
  }
}

/**
 * All live streams of one server, by application and name. A stream exists
 * while it has a publisher or a reader (a reader may wait for a publisher).
 */
export class LiveHub {
  private readonly streams = new Map<string, LiveStream>();
  private readonly flusher: TurnFlusher;
  private readonly log: Logger | undefined;

  constructor(options: LiveHubOptions = {}) {
    this.flusher = new TurnFlusher(options.outputBatch, options.logger);
    this.log = options.logger;
  }

  get(app: string, name: string): LiveStream | undefined {
    return this.streams.get(streamKey(app, name));
  }

  list(): LiveStream[] {
    return [...this.streams.values()];
  }

  private obtain(app: string, name: string, options: StreamOptions): LiveStream {
    const key = streamKey(app, name);
    let s = this.streams.get(key);
    if (s === undefined) {
      s = new LiveStream(app, name, options, this.flusher, this.log);
      this.streams.set(key, s);
    }
    return s;
  }

  /** Throws ERR_LIVE_STREAM_BUSY when the name already has a publisher. */
  publish(app: string, name: string, pub: PublisherInfo, options: StreamOptions = DEFAULT_STREAM_OPTIONS): LiveStream {
    const s = this.obtain(app, name, options);
    try {
      s.attachPublisher(pub);
    } catch (e) {
      this.forgetIfIdle(s);
      throw e;
    }
    return s;
  }

  unpublish(stream: LiveStream, pub: PublisherInfo): void {
    stream.detachPublisher(pub);
    this.forgetIfIdle(stream);
  }

  subscribe(app: string, name: string, reader: StreamReader, options: StreamOptions = DEFAULT_STREAM_OPTIONS): LiveStream {
    const s = this.obtain(app, name, options);
    s.addReader(reader);
    return s;
  }

  unsubscribe(stream: LiveStream, reader: StreamReader): void {
    stream.removeReader(reader);
    this.forgetIfIdle(stream);
  }

  private forgetIfIdle(s: LiveStream): void {
    if (s.idle && this.streams.get(s.key) === s) this.streams.delete(s.key);
  }
}
