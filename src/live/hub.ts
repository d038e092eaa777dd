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

/**
 * Flushes a stream when its publisher's read ends (or its flush_window
 * expires), between the output batch's begin() and end(): the read's frames
 * leave within the read's own processing, before the event loop polls again,
 * and each reader's share of them leaves in one system call.
 */
class BatchFlusher implements FlushScheduler {
  constructor(
    private readonly batch: OutputBatch | undefined,
    private readonly log: Logger | undefined,
  ) {}

  flushNow(stream: LiveStream): void {
    this.batch?.begin();
    try {
      // a stream's flush does not throw (its readers' errors are caught there); a throw
      // here would end the publisher's connection, so it is logged and contained
      stream.flush();
    } catch (e) {
      this.log?.error({ stream: stream.key, ...describeError(e) }, 'stream flush failed');
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
  private readonly flusher: BatchFlusher;
  private readonly log: Logger | undefined;

  constructor(options: LiveHubOptions = {}) {
    this.flusher = new BatchFlusher(options.outputBatch, options.logger);
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
