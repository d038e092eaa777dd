import type { AppModule, ModuleDeps, PublishContext } from '../app/chain.js';
import type { ApplicationConfig } from '../config/types.js';
import type { RecorderConfig } from '../config/record.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { CompleteReader, DEFAULT_COMPLETE_READER_LIMITS, type CompleteReaderLimits } from '../live/complete-reader.js';
import type { LiveStream } from '../live/stream.js';
import type { RecordFs } from './disk.js';
import { FlvRecorder } from './recorder.js';

/**
 * The record module of an application's chain (nginx-rtmp's record module).
 * When a publish goes live (`published`), every recorder of the application
 * that is not `manual` starts: a complete reader of the stream
 * (src/live/complete-reader.ts) feeding an FlvRecorder. The publish's end
 * finishes them (every accepted frame written, the metadata rewritten). A
 * recorder that fails (a disk error, a disk slower than the stream) ends
 * alone with one log line and its on_record_done / exec_record_done; the
 * live stream and its players never notice.
 *
 * `rtmp_control` reaches the running publishes through a RecordControl
 * shared by every application of the server (record/start, record/stop).
 */

export interface RecordModuleOptions {
  readonly limits?: CompleteReaderLimits;
  readonly fs?: RecordFs;
  readonly keyframeCapacity?: number;
}

interface Running {
  readonly recorder: FlvRecorder;
  readonly reader: CompleteReader;
}

/** One live publish with recorders. */
interface PublishRecords {
  readonly ctx: PublishContext;
  readonly stream: LiveStream;
  readonly running: Map<string, Running>;
  readonly start: (rec: RecorderConfig) => FlvRecorder;
}

/** What rtmp_control answers: a status and a body (the file path, as nginx-rtmp). */
export interface RecordControlResult {
  readonly status: number;
  readonly body: string;
}

/**
 * The server's index of publishes with recorders, for rtmp_control: one per
 * server, given to every application's record module.
 */
export class RecordControl {
  private readonly live = new Map<string, { app: AppRecorders; pub: PublishRecords }>();

  /** @internal */
  add(app: string, name: string, owner: AppRecorders, pub: PublishRecords): void {
    this.live.set(`${app}\0${name}`, { app: owner, pub });
  }

  /** @internal */
  remove(app: string, name: string, pub: PublishRecords): void {
    const key = `${app}\0${name}`;
    if (this.live.get(key)?.pub === pub) this.live.delete(key);
  }

  /**
   * record/start or record/stop of recorder `rec` ('' = the application's own)
   * of the stream `app`/`name`: 200 with the file path; 204 when no such
   * stream is published or it has no such recorder (nginx-rtmp answers
   * nothing then); stop of a recorder that is not running: 204.
   */
  control(action: 'start' | 'stop', app: string, name: string, rec: string): RecordControlResult {
    const hit = this.live.get(`${app}\0${name}`);
    if (hit === undefined) return { status: 204, body: '' };
    return hit.app.control(hit.pub, action, rec);
  }
}

/** The record module of one application. */
export class AppRecorders implements AppModule {
  readonly name = 'record';
  private readonly publishes = new Map<PublishContext, PublishRecords>();
  private readonly log: Logger;
  private readonly limits: CompleteReaderLimits;

  constructor(
    private readonly app: ApplicationConfig,
    private readonly recorders: readonly RecorderConfig[],
    private readonly deps: ModuleDeps,
    private readonly control_: RecordControl,
    private readonly options: RecordModuleOptions = {},
  ) {
    this.log = deps.logger.child({ module: 'record' });
    this.limits = options.limits ?? DEFAULT_COMPLETE_READER_LIMITS;
  }

  published(ctx: PublishContext, stream: LiveStream): void {
    const pub: PublishRecords = { ctx, stream, running: new Map(), start: (rec) => this.startRecorder(pub, rec) };
    this.publishes.set(ctx, pub);
    this.control_.add(this.app.name, ctx.name, this, pub);
    for (const rec of this.recorders) {
      if (rec.manual) continue;
      try {
        pub.start(rec);
      } catch (e) {
        ctx.session.log.warn({ module: 'record', recorder: rec.name, stream: ctx.name, ...describeError(e) }, 'record: cannot start the recorder');
      }
    }
  }

  publishDone(ctx: PublishContext): void {
    const pub = this.publishes.get(ctx);
    if (pub === undefined) return;
    this.publishes.delete(ctx);
    this.control_.remove(this.app.name, ctx.name, pub);
    for (const r of pub.running.values()) r.reader.finish();
  }

  private startRecorder(pub: PublishRecords, rec: RecorderConfig): FlvRecorder {
    const running = pub.running.get(rec.name);
    if (running !== undefined) return running.recorder;
    const ctx = pub.ctx;
    const log = ctx.session.log.child({ module: 'record', stream: ctx.name, ...(rec.name !== '' ? { recorder: rec.name } : {}) });
    let reader: CompleteReader | undefined = undefined;
    const recorder = new FlvRecorder({
      config: rec,
      session: ctx.session,
      app: this.app.name,
      name: ctx.name,
      query: ctx.query,
      log,
      events: this.deps.events?.(),
      ...(ctx.status !== undefined ? { status: ctx.status } : {}),
      ...(this.options.fs !== undefined ? { fs: this.options.fs } : {}),
      ...(this.options.keyframeCapacity !== undefined ? { keyframeCapacity: this.options.keyframeCapacity } : {}),
      onClosed: (r) => {
        if (pub.running.get(rec.name)?.recorder === r) pub.running.delete(rec.name);
        if (reader?.attached === true) this.deps.hub.unsubscribe(pub.stream, reader);
      },
    });
    reader = new CompleteReader(recorder, this.limits, log);
    pub.running.set(rec.name, { recorder, reader });
    this.deps.hub.subscribe(this.app.name, pub.stream.name, reader);
    return recorder;
  }

  /** @internal rtmp_control record/start|stop for one publish of this application */
  control(pub: PublishRecords, action: 'start' | 'stop', rec: string): RecordControlResult {
    const cfg = this.recorders.find((r) => r.name === rec);
    if (cfg === undefined) return { status: 204, body: '' };
    switch (action) {
      case 'start': {
        try {
          return { status: 200, body: pub.start(cfg).path };
        } catch (e) {
          return { status: 500, body: `${describeError(e).message}\n` };
        }
      }
      case 'stop': {
        const r = pub.running.get(rec);
        if (r === undefined) return { status: 204, body: '' };
        pub.running.delete(rec);
        r.reader.finish();
        return { status: 200, body: r.recorder.path };
      }
      default: {
        const never: never = action;
        throw new Error(`internal: record action ${String(never)}`);
      }
    }
  }

  async close(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const pub of this.publishes.values()) {
      for (const r of pub.running.values()) {
        r.reader.finish();
        waits.push(r.recorder.whenClosed());
      }
    }
    await Promise.all(waits);
  }
}

/** The record module of an application, or undefined when nothing is configured to record. */
export function recordModule(app: ApplicationConfig, deps: ModuleDeps, control: RecordControl, options: RecordModuleOptions = {}): AppModule | undefined {
  const recorders = app.record?.recorders ?? [];
  if (recorders.length === 0) return undefined;
  return new AppRecorders(app, recorders, deps, control, options);
}
