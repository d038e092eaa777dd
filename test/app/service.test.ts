/**
 * The stream service without sockets (issue 14): publish and play through an
 * application's chain with the live step last, refusals undone, `live off`,
 * `idle_streams off`, drop_idle_publisher, the ingest normaliser.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppChain, type AppModule, type PlayContext, type PublishContext, type SessionInfo } from '../../src/app/chain.js';
import { LiveModule } from '../../src/app/live.js';
import { StreamService, type Application } from '../../src/app/service.js';
import { streamOptionsFor } from '../../src/app/stream-options.js';
import { parseConfigText } from '../../src/config/load.js';
import type { ApplicationConfig } from '../../src/config/types.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/log.js';
import { FrameKind, type MediaFrame } from '../../src/live/frame.js';
import { LiveHub } from '../../src/live/hub.js';
import { DEFAULT_READER_LIMITS, LiveReader, type FrameSink } from '../../src/live/reader.js';
import { decodeAmf0, encodeAmf0 } from '../../src/rtmp/amf0.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { AAC_HEADER, AVC_HEADER, videoFrame } from '../helpers/synthetic.js';

function appConfig(body: string): ApplicationConfig {
  const c = parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { ${body} } } }`, 'service.conf');
  const a = c.rtmp[0]?.applications[0];
  assert.ok(a !== undefined);
  return a;
}

/** An application as the server builds one: the given modules, then the live step. */
function application(body: string, modules: AppModule[] = [], hub = new LiveHub()): { app: Application; hub: LiveHub; service: StreamService } {
  const config = appConfig(body);
  const streamOptions = streamOptionsFor(config);
  const chain = new AppChain([...modules, new LiveModule(config, hub, streamOptions, silentLogger())]);
  const app: Application = { config, chain, streamOptions, readerLimits: DEFAULT_READER_LIMITS, maxScriptData: 1024 * 1024 };
  return { app, hub, service: new StreamService() };
}

function session(id: string, protocol = 'test', stops: string[] = []): SessionInfo {
  return { id, protocol, remoteAddress: '127.0.0.1', app: 'live', query: '', tcUrl: '', flashVer: '', swfUrl: '', pageUrl: '', log: silentLogger(), stop: (r) => stops.push(r) };
}

class Sink implements FrameSink {
  frames: MediaFrame[] = [];
  starts = 0;
  queuedBytes(): number {
    return 0;
  }
  write(f: MediaFrame): void {
    this.frames.push(f);
  }
  onStreamStart(): void {
    this.starts++;
  }
  onStreamStop(): void {}
}

/** A module that records what the chain tells it. */
function recorder(events: string[], refuse?: 'publish' | 'play'): AppModule {
  return {
    name: 'rec',
    async publish(ctx: PublishContext, next) {
      if (refuse === 'publish') throw new Error('refused by rec');
      events.push(`publish ${ctx.name}`);
      await next();
    },
    async play(ctx: PlayContext, next) {
      if (refuse === 'play') throw new Error('refused by rec');
      events.push(`play ${ctx.name}`);
      await next();
    },
    published: (ctx) => events.push(`published ${ctx.name}`),
    publishDone: (ctx, refused) => events.push(`publishDone ${ctx.name}${refused === true ? ' refused' : ''}`),
    playDone: (ctx, refused) => events.push(`playDone ${ctx.name}${refused === true ? ' refused' : ''}`),
  };
}

test('publish: the chain runs, the live step attaches the publisher last; close ends it through every module', async () => {
  const events: string[] = [];
  const { app, hub, service } = application('live on;', [recorder(events)]);
  const p = await service.publish(app, session('a'), { name: 'cam', query: '', type: 'live' });
  assert.equal(hub.get('live', 'cam')?.active, true);
  assert.equal(hub.get('live', 'cam')?.publisher?.id, 'a');
  assert.deepEqual(events, ['publish cam', 'published cam']);
  p.close();
  p.close(); // once
  assert.equal(hub.get('live', 'cam'), undefined, 'the stream is gone with its publisher');
  assert.deepEqual(events, ['publish cam', 'published cam', 'publishDone cam']);
});

test('play: the reader gets the cached metadata, codec headers and GOP after onAccept; close unsubscribes', async () => {
  const { app, hub, service } = application('live on;');
  const p = await service.publish(app, session('a'), { name: 'cam', query: '', type: 'live' });
  p.data(MessageType.DataAmf0, 0, encodeAmf0(['@setDataFrame', 'onMetaData', { width: 320 }]));
  p.media(FrameKind.Video, 0, AVC_HEADER);
  p.media(FrameKind.Audio, 0, AAC_HEADER);
  p.media(FrameKind.Video, 0, videoFrame(true, 100, 0));
  p.media(FrameKind.Video, 40, videoFrame(false, 100, 1));
  const sink = new Sink();
  const order: string[] = [];
  const playing = await service.play(app, session('b'), { name: 'cam', query: '', start: -2, duration: -1 }, new LiveReader(sink), () => order.push(`accept with ${sink.frames.length} frames`));
  assert.deepEqual(order, ['accept with 0 frames'], 'the protocol answers before the first frame');
  assert.deepEqual(
    sink.frames.map((f) => f.kind),
    [FrameKind.Data, FrameKind.Video, FrameKind.Audio, FrameKind.Video, FrameKind.Video],
  );
  // @setDataFrame was unwrapped by the ingest: players get onMetaData
  assert.equal(decodeAmf0(sink.frames[0]!.payload)[0], 'onMetaData');
  assert.equal(hub.get('live', 'cam')?.readers.size, 1);
  playing.close();
  assert.equal(hub.get('live', 'cam')?.readers.size, 0);
  p.close();
});

test('refused by a module: nothing reaches the stream core', async () => {
  const events: string[] = [];
  const { app, hub, service } = application('live on;', [recorder(events, 'publish')]);
  await assert.rejects(service.publish(app, session('a'), { name: 'cam', query: '', type: 'live' }), /refused by rec/);
  assert.equal(hub.get('live', 'cam'), undefined);
});

test('refused by the live step (a busy name): the modules before it are undone, the first publisher keeps the name', async () => {
  const events: string[] = [];
  const { app, hub, service } = application('live on;', [recorder(events)]);
  const first = await service.publish(app, session('a'), { name: 'cam', query: '', type: 'live' });
  await assert.rejects(service.publish(app, session('b'), { name: 'cam', query: '', type: 'live' }), (e: unknown) => isServerError(e, ErrorCode.StreamBusy));
  assert.deepEqual(events, ['publish cam', 'published cam', 'publish cam', 'publishDone cam refused']);
  assert.equal(hub.get('live', 'cam')?.publisher?.id, 'a');
  first.close();
});

test('live off: publishing still feeds the stream core, a live play is refused and the modules before it undone', async () => {
  const events: string[] = [];
  const { app, hub, service } = application('live off;', [recorder(events)]);
  const p = await service.publish(app, session('a'), { name: 'cam', query: '', type: 'live' });
  assert.equal(hub.get('live', 'cam')?.active, true, 'outputs (push, exec, recorders) still read it');
  const sink = new Sink();
  let accepted = false;
  await assert.rejects(
    service.play(app, session('b'), { name: 'cam', query: '', start: -2, duration: -1 }, new LiveReader(sink), () => (accepted = true)),
    (e: unknown) => isServerError(e, ErrorCode.StreamNameInvalid) && /live off/.test((e as Error).message),
  );
  assert.equal(accepted, false);
  assert.deepEqual(events.slice(-2), ['play cam', 'playDone cam refused']);
  assert.equal(hub.get('live', 'cam')?.readers.size, 0);
  p.close();
});

test('idle_streams off: a play of a stream nobody publishes is refused; with on it waits for the publisher', async () => {
  const off = application('live on; idle_streams off;');
  await assert.rejects(
    off.service.play(off.app, session('b'), { name: 'none', query: '', start: -2, duration: -1 }, new LiveReader(new Sink())),
    (e: unknown) => isServerError(e, ErrorCode.StreamNameInvalid),
  );
  assert.equal(off.hub.get('live', 'none'), undefined);
  const on = application('live on;');
  const sink = new Sink();
  const playing = await on.service.play(on.app, session('b'), { name: 'later', query: '', start: -2, duration: -1 }, new LiveReader(sink));
  assert.equal(sink.starts, 0);
  const p = await on.service.publish(on.app, session('a'), { name: 'later', query: '', type: 'live' });
  assert.equal(sink.starts, 1, 'the waiting reader hears the stream start');
  p.media(FrameKind.Video, 0, AVC_HEADER);
  assert.equal(sink.frames.length, 1);
  playing.close();
  p.close();
});

test('an invalid stream name is refused before any module runs', async () => {
  const events: string[] = [];
  const { app, service } = application('live on;', [recorder(events)]);
  await assert.rejects(service.publish(app, session('a'), { name: '../etc', query: '', type: 'live' }), (e: unknown) => isServerError(e, ErrorCode.StreamNameInvalid));
  assert.deepEqual(events, []);
});

test('meta off: onMetaData is dropped by the ingest, other script data passes; meta on keeps the standard fields', async () => {
  const off = application('live on; meta off;');
  const p = await off.service.publish(off.app, session('a'), { name: 'cam', query: '', type: 'live' });
  p.data(MessageType.DataAmf0, 0, encodeAmf0(['@setDataFrame', 'onMetaData', { width: 320 }]));
  assert.equal(off.hub.get('live', 'cam')?.metadata, undefined);
  const sink = new Sink();
  const playing = await off.service.play(off.app, session('b'), { name: 'cam', query: '', start: -2, duration: -1 }, new LiveReader(sink));
  p.data(MessageType.DataAmf0, 10, encodeAmf0(['onCuePoint', { name: 'x' }]));
  assert.deepEqual(sink.frames.map((f) => decodeAmf0(f.payload)[0]), ['onCuePoint']);
  playing.close();
  p.close();
  const on = application('live on;');
  const q = await on.service.publish(on.app, session('a'), { name: 'cam', query: '', type: 'live' });
  q.data(MessageType.DataAmf0, 0, encodeAmf0(['@setDataFrame', 'onMetaData', { width: 320, secret: 'x' }]));
  const meta = decodeAmf0(on.hub.get('live', 'cam')!.metadata!.payload);
  assert.equal(meta[0], 'onMetaData');
  assert.deepEqual(Object.keys(meta[1] as object).sort(), ['Server', 'width']);
  q.close();
});

test('oversized script data is refused by the ingest with a coded error (the caller decides: an RTMP publisher is cut off, a pull drops it)', async () => {
  const { app, service } = application('live on;');
  const small: Application = { ...app, maxScriptData: 1000 };
  const p = await service.publish(small, session('a'), { name: 'cam', query: '', type: 'live' });
  assert.throws(() => p.data(MessageType.DataAmf0, 0, encodeAmf0(['@setDataFrame', 'onMetaData', { blob: 'x'.repeat(5000) }])), (e: unknown) => isServerError(e, ErrorCode.MessageTooLarge));
  p.close();
});

test('drop_idle_publisher: one timer for the application stops a publisher that sent no audio/video for that long, through its session', async (t) => {
  const { app, service } = application('live on; drop_idle_publisher 100ms;');
  const stops: string[] = [];
  const active: string[] = [];
  const idle = await service.publish(app, session('idle', 'test', stops), { name: 'idle', query: '', type: 'live' });
  const busy = await service.publish(app, session('busy', 'test', active), { name: 'busy', query: '', type: 'live' });
  t.after(() => {
    idle.close();
    busy.close();
  });
  const feed = setInterval(() => busy.media(FrameKind.Audio, 0, AAC_HEADER), 20);
  t.after(() => clearInterval(feed));
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(stops.length > 0 && /drop_idle_publisher/.test(stops[0]!), `the idle publisher was asked to stop: ${JSON.stringify(stops)}`);
  assert.deepEqual(active, [], 'the publisher sending media is left alone');
});

test('a module that renames the stream (a webhook redirect): the play is accepted under the new name, and onAccept is told it', async () => {
  const rename: AppModule = {
    name: 'rename',
    async play(ctx: PlayContext, next) {
      ctx.name = 'renamed';
      await next();
    },
  };
  const { app, hub, service } = application('live on;', [rename]);
  const accepted: string[] = [];
  const playing = await service.play(app, session('b'), { name: 'asked', query: '', start: -2, duration: -1 }, new LiveReader(new Sink()), (name) => accepted.push(name));
  assert.deepEqual(accepted, ['renamed']);
  assert.equal(playing.name, 'renamed');
  assert.equal(hub.get('live', 'renamed')?.readers.size, 1);
  assert.equal(hub.get('live', 'asked'), undefined);
  playing.close();
});
