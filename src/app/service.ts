import assert from 'node:assert/strict';
import type { ApplicationConfig } from '../config/types.js';
import { FrameKind } from '../live/frame.js';
import type { ReaderLimits, StreamReader } from '../live/reader.js';
import type { LiveStream, StreamOptions } from '../live/stream.js';
import type { AppChain, PlaybackControl, PlaybackEvents, PlayContext, PublishContext, PublishingStream, SessionInfo } from './chain.js';
import { ScriptDataNormaliser } from './ingest.js';
import { checkPlayName, checkStreamName } from './names.js';

/** One configured application as the stream service runs it: its chain (the live step last) and its stream settings. */
export interface Application {
  readonly config: ApplicationConfig;
  readonly chain: AppChain;
  readonly streamOptions: StreamOptions;
  /** the live players' queue bound */
  readonly readerLimits: ReaderLimits;
  /** the largest script data message once re-encoded (the server block's max_message) */
  readonly maxScriptData: number;
}

export interface PublishRequest {
  readonly name: string;
  readonly query: string;
  readonly type: PublishContext['type'];
  /** an onStatus to the publisher (record_notify); absent when the protocol has none */
  readonly status?: PublishContext['status'];
}

export interface PlayRequest {
  readonly name: string;
  readonly query: string;
  readonly start: number;
  readonly duration: number;
}

/** A play accepted by the whole chain. */
export interface PlayingStream {
  readonly stream: LiveStream;
  readonly name: string;
  /** after a pause: the reader restarts on a keyframe */
  resume(): void;
  /** the player stopped: every module's playDone (the live step unsubscribes) */
  close(): void;
  /** seek and pause, when a publisher-less source (VOD) serves the play */
  readonly playback: PlaybackControl | undefined;
}

/**
 * The one way any protocol (an RTMP connection, a pull relay, an HTTP player)
 * becomes a publisher or a player of an application's stream: mediamtx's
 * path manager and nginx-rtmp's publish/play chain in one. It knows no
 * protocol: a caller describes its client (SessionInfo) and, to play, brings
 * a reader of the stream core (src/live); a publisher gets the normalised
 * ingest of its stream back.
 *
 * Every request runs the application's chain (access, notify, exec, relay...,
 * the live step last: src/app/live.ts); a refusal anywhere undoes what the
 * modules before it started, and is thrown to the caller as a coded
 * ServerError (the caller turns it into its protocol's status).
 */
export class StreamService {
  /** Runs the connect chain (on_connect...). */
  async connect(app: Application, session: SessionInfo): Promise<void> {
    await app.chain.connect({ session });
  }

  async publish(app: Application, session: SessionInfo, req: PublishRequest): Promise<Publishing> {
    checkStreamName(req.name);
    const ctx: PublishContext = { session, name: req.name, query: req.query, type: req.type, ...(req.status !== undefined ? { status: req.status } : {}) };
    await app.chain.publish(ctx);
    const stream = ctx.stream;
    assert(stream !== undefined, 'the live step attached the publish to a stream');
    app.chain.published(ctx, stream);
    return new Publishing(app, ctx, stream);
  }

  /**
   * `onAccept` runs when the live step accepts, just before the reader gets
   * the stream's cached frames: the protocol's status messages go first. It
   * gets the stream's name as the chain left it (a webhook may rename it).
   */
  async play(app: Application, session: SessionInfo, req: PlayRequest, reader: StreamReader, onAccept?: (name: string) => void, events?: PlaybackEvents): Promise<PlayingStream> {
    // a VOD file's name (mp4:dir/file.mp4) too: the live step checks live names itself
    checkPlayName(req.name);
    const ctx: PlayContext = { session, name: req.name, query: req.query, start: req.start, duration: req.duration, reader, ...(onAccept !== undefined ? { onAccept } : {}), ...(events !== undefined ? { events } : {}) };
    await app.chain.play(ctx);
    const stream = ctx.stream;
    assert(stream !== undefined, 'the live step subscribed the play to a stream');
    // a module may end this player later (an on_update refusal)
    if (session.stop !== undefined) ctx.stop = session.stop;
    let open = true;
    return {
      stream,
      name: ctx.name,
      playback: ctx.playback,
      resume: () => reader.restart(stream.hasVideo),
      close: () => {
        if (!open) return;
        open = false;
        app.chain.playDone(ctx);
      },
    };
  }

  /** The length in ms of a recorded stream (getStreamLength): the first module that serves it answers; undefined for none. */
  async streamLength(app: Application, name: string): Promise<number | undefined> {
    checkPlayName(name);
    for (const m of app.chain.modules) {
      const ms = await m.streamLength?.(name);
      if (ms !== undefined) return ms;
    }
    return undefined;
  }

  disconnect(app: Application, session: SessionInfo): void {
    app.chain.disconnect(session);
  }
}

/**
 * One accepted publish: the ingest normaliser every publisher's media goes
 * through, whatever brought it (RTMP, a pull relay). Audio and video go to
 * the stream core as they are (it classifies keyframes and codec headers once
 * per frame for every reader); script data is unwrapped (@setDataFrame),
 * bounded after re-encoding, and given the application's `meta` treatment.
 */
export class Publishing implements PublishingStream {
  private open = true;
  private readonly script: ScriptDataNormaliser;

  constructor(
    private readonly app: Application,
    private readonly ctx: PublishContext,
    readonly stream: LiveStream,
  ) {
    this.script = new ScriptDataNormaliser(app.config.live.meta, app.maxScriptData);
  }

  media(kind: number, timestamp: number, payload: Buffer): void {
    if (kind === FrameKind.Audio || kind === FrameKind.Video) this.stream.pushMedia(kind, timestamp, payload);
  }

  data(type: number, timestamp: number, payload: Buffer): void {
    const normalised = this.script.normalise(type, payload);
    if (normalised !== undefined) this.stream.pushMedia(FrameKind.Data, timestamp, normalised);
  }

  beginBatch(): void {
    this.stream.beginBatch();
  }

  endBatch(): void {
    this.stream.endBatch();
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.app.chain.publishDone(this.ctx);
  }
}
