import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryLogger } from '../../src/core/log.js';
import { CompleteReader, type BatchSink } from '../../src/live/complete-reader.js';
import { FrameKind, type MediaFrame } from '../../src/live/frame.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveReader, ReaderPolicy, type FrameSink, type StreamInfo } from '../../src/live/reader.js';
import type { LiveStream, PublisherInfo } from '../../src/live/stream.js';

const avcHeader = Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f]);
const key = (n: number): Buffer => Buffer.from([0x17, 0x01, 0, 0, 0, n & 0xff, 0x65]);
const inter = (n: number): Buffer => Buffer.from([0x27, 0x01, 0, 0, 0, n & 0xff, 0x41]);
const aacHeader = Buffer.from([0xaf, 0x00, 0x12, 0x10]);
const aac = (n: number): Buffer => Buffer.from([0xaf, 0x01, n & 0xff, 0x21]);
const meta = Buffer.from('02000a6f6e4d657461446174610500', 'hex'); // "onMetaData", null

const pub: PublisherInfo = { id: 'p', remote: '127.0.0.1:1', stop: () => {} };
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A live sink whose queue the test sets. */
class QueueSink implements FrameSink {
  frames: MediaFrame[] = [];
  queued = 0;
  queuedBytes(): number {
    return this.queued;
  }
  write(f: MediaFrame): void {
    this.frames.push(f);
  }
  onStreamStart(): void {}
  onStreamStop(): void {}
}

/**
 * A complete sink writing slowly: each batch takes `delayMs` (an async write to
 * disk), or waits until the test calls release() when `manual` is set.
 */
class SlowSink implements BatchSink {
  written: MediaFrame[] = [];
  batches: number[] = [];
  log: string[] = [];
  closed: (string | undefined)[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private releases: (() => void)[] = [];
  failWith: Error | undefined = undefined;

  constructor(
    readonly delayMs: number,
    readonly manual = false,
  ) {}

  writeBatch(frames: readonly MediaFrame[]): Promise<void> {
    if (this.failWith !== undefined) return Promise.reject(this.failWith);
    const copy = [...frames];
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.inFlight--;
        this.written.push(...copy);
        this.batches.push(copy.length);
        this.log.push(`batch ${copy.length}`);
        resolve();
      };
      if (this.manual) this.releases.push(done);
      else setTimeout(done, this.delayMs);
    });
  }

  release(): void {
    const r = this.releases.splice(0);
    for (const f of r) f();
  }

  close(reason: string | undefined): void {
    this.closed.push(reason);
    this.log.push('close');
  }

  onStreamStart(info: StreamInfo): void {
    this.log.push(`start ${info.name} after ${this.written.length}`);
  }

  onStreamStop(info: StreamInfo): void {
    this.log.push(`stop ${info.name} after ${this.written.length}`);
  }
}

/** Pushes `gops` GOPs of `len` video frames, each followed by an audio frame, 40 ms apart; returns the frames. */
function feed(s: LiveStream, gops: number, len: number, t0 = 0): MediaFrame[] {
  const out: MediaFrame[] = [];
  let t = t0;
  for (let g = 0; g < gops; g++) {
    for (let i = 0; i < len; i++) {
      out.push(s.pushMedia(FrameKind.Video, t, i === 0 ? key(g) : inter(i)));
      out.push(s.pushMedia(FrameKind.Audio, t, aac(i)));
      t += 40;
    }
  }
  return out;
}

function headers(s: LiveStream): MediaFrame[] {
  return [s.pushMedia(FrameKind.Data, 0, meta), s.pushMedia(FrameKind.Video, 0, avcHeader), s.pushMedia(FrameKind.Audio, 0, aacHeader)];
}

test('live policy: a slow reader drops to the next keyframe, counted; the policy is named', () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', pub);
  headers(s);
  const sink = new QueueSink();
  const reader = new LiveReader(sink, { maxQueuedBytes: 1000, resumeQueuedBytes: 100 });
  assert.equal(reader.policy, ReaderPolicy.Live);
  hub.subscribe('live', 'x', reader);
  feed(s, 1, 5);
  const before = sink.frames.length;
  sink.queued = 5000; // the peer stopped reading
  feed(s, 1, 5, 1000);
  assert.equal(sink.frames.length, before, 'nothing passes the bound');
  assert.equal(reader.dropped, 10);
  assert.equal(reader.dropEpisodes, 1);
  sink.queued = 0;
  const next = feed(s, 1, 3, 2000);
  assert.equal(sink.frames[before], next[0], 'resumes on the keyframe');
  assert.ok(sink.frames[before]!.isKeyframe);
});

test('complete policy: every frame in order through a slow async sink, in batches, one write at a time', async () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', pub);
  const hdr = headers(s);
  const gop = feed(s, 1, 4);
  const sink = new SlowSink(5);
  const reader = new CompleteReader(sink, { maxBufferedBytes: 1 << 20, maxBufferedFrames: 10_000 });
  assert.equal(reader.policy, ReaderPolicy.Complete);
  hub.subscribe('live', 'x', reader);
  const live: MediaFrame[] = [];
  for (let i = 0; i < 20; i++) {
    live.push(...feed(s, 1, 10, 1000 + i * 400));
    await tick(1); // the sink is slower than the stream
  }
  await tick(50);
  const expected = [...hdr, ...gop, ...live];
  assert.equal(sink.written.length, expected.length, 'every frame, none dropped');
  sink.written.forEach((f, i) => assert.equal(f, expected[i], `frame ${i} in order`));
  assert.equal(reader.dropped, 0);
  assert.equal(sink.maxInFlight, 1, 'the next batch waits for the previous write');
  assert.ok(sink.batches.length < expected.length / 4, `frames are batched (${sink.batches.length} batches for ${expected.length} frames)`);
  assert.deepEqual(sink.closed, []);
  reader.finish();
  await tick(20);
  assert.deepEqual(sink.closed, [undefined], 'finish() closes once, without a reason');
});

test('complete policy: without a cached GOP it starts at the next keyframe; audio before it is skipped', async () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', pub, { gopCache: false, maxGopBytes: 1 << 20 });
  const hdr = headers(s);
  feed(s, 1, 4);
  const sink = new SlowSink(0);
  const reader = new CompleteReader(sink);
  hub.subscribe('live', 'x', reader);
  const early = [s.pushMedia(FrameKind.Video, 200, inter(9)), s.pushMedia(FrameKind.Audio, 200, aac(9))];
  const rest = feed(s, 1, 3, 240);
  await tick(20);
  assert.deepEqual(sink.written, [...hdr, ...rest]);
  assert.equal(reader.skipped, early.length);
  assert.ok(sink.written[3]!.isKeyframe);
});

test('complete policy: the stream start/stop reach the sink in order with the frames', async () => {
  const hub = new LiveHub();
  const sink = new SlowSink(2);
  const reader = new CompleteReader(sink);
  hub.subscribe('live', 'x', reader); // before the publisher
  const s = hub.publish('live', 'x', pub);
  headers(s);
  feed(s, 2, 5);
  hub.unpublish(s, pub);
  await tick(50);
  assert.equal(sink.log[0], 'start x after 0');
  assert.equal(sink.log.at(-1), 'stop x after 23', `stop after every frame: ${sink.log.join(', ')}`);
});

test('complete policy: overrunning its bound cuts the reader off (one log line, reason, sink closed after the accepted frames); the publisher and a live reader go on', async () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', pub);
  headers(s);
  const sink = new SlowSink(0, true); // the disk hangs until release()
  const log = memoryLogger();
  const reader = new CompleteReader(sink, { maxBufferedBytes: 1 << 20, maxBufferedFrames: 50 }, log);
  hub.subscribe('live', 'x', reader);
  const liveSink = new QueueSink();
  hub.subscribe('live', 'x', new LiveReader(liveSink));
  const liveBefore = liveSink.frames.length;
  let pushed: MediaFrame[] = [];
  assert.doesNotThrow(() => {
    pushed = feed(s, 4, 10); // 80 frames: past the bound of 50
  });
  assert.ok(reader.isCutOff);
  assert.match(reader.cutOffReason ?? '', /buffer full: 51 frames would pass the bound of 50/);
  assert.equal(liveSink.frames.length - liveBefore, pushed.length, 'the live reader beside got every frame');
  assert.equal(s.stats.framesIn, 3 + pushed.length, 'the publisher was not slowed nor refused');
  await tick(5);
  assert.deepEqual(sink.closed, [], 'not closed while accepted frames are being written');
  for (let i = 0; i < 5 && sink.closed.length === 0; i++) {
    sink.release();
    await tick(5);
  }
  assert.equal(sink.closed.length, 1);
  assert.match(sink.closed[0] ?? '', /buffer full/);
  assert.equal(sink.log.at(-1), 'close', 'closed after the last batch');
  assert.equal(sink.written.length, 50, 'the 50 accepted frames were written (a valid file up to the cut)');
  assert.equal(reader.dropped, 80 + 3 - 50);
  const lines = log.entries.filter((e) => e.msg.includes('cut off'));
  assert.equal(lines.length, 1, 'one log line');
  // later frames cost the cut-off reader a counter, the others get them
  feed(s, 1, 5, 5000);
  await tick(5);
  assert.equal(sink.written.length, 50);
  assert.equal(sink.closed.length, 1, 'closed once');
  hub.unsubscribe(s, reader);
  assert.equal(s.readers.size, 1);
});

test('complete policy: a failing sink (rejected or thrown write) cuts the reader off; nothing throws into the fan-out', async () => {
  for (const mode of ['reject', 'throw'] as const) {
    const hub = new LiveHub();
    const s = hub.publish('live', 'x', pub);
    headers(s);
    const sink = new SlowSink(0);
    if (mode === 'reject') sink.failWith = new Error('ENOSPC: no space left on device');
    else
      sink.writeBatch = (): Promise<void> => {
        throw new Error('EBADF: bad file descriptor');
      };
    const reader = new CompleteReader(sink);
    hub.subscribe('live', 'x', reader);
    const other = new QueueSink();
    hub.subscribe('live', 'x', new LiveReader(other));
    assert.doesNotThrow(() => feed(s, 1, 5));
    await tick(10);
    assert.equal(sink.closed.length, 1, mode);
    assert.match(sink.closed[0] ?? '', mode === 'reject' ? /the output failed: ENOSPC/ : /the output failed: EBADF/);
    assert.doesNotThrow(() => feed(s, 1, 5, 1000));
    assert.equal(other.frames.length, 3 + 20, 'the live reader beside got everything');
  }
});

test('complete policy: a sink that returns nothing is written synchronously, batch by batch', async () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', pub);
  const got: number[] = [];
  const sink: BatchSink = {
    writeBatch: (frames) => {
      got.push(frames.length);
    },
    close: () => {},
  };
  hub.subscribe('live', 'x', new CompleteReader(sink));
  headers(s);
  feed(s, 1, 5);
  assert.deepEqual(got, [], 'nothing is written inside the fan-out');
  await tick(0);
  assert.deepEqual(got, [13], 'one batch for what one turn pushed');
});
