import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isServerError, ErrorCode } from '../../src/core/errors.js';
import { encodeShared } from '../../src/core/encoding.js';
import { FrameKind, type MediaFrame } from '../../src/live/frame.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveReader, type FrameSink } from '../../src/live/reader.js';
import type { PublisherInfo } from '../../src/live/stream.js';

const avcHeader = Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f]);
const key = (n: number): Buffer => Buffer.from([0x17, 0x01, 0, 0, 0, n & 0xff, 0x65]);
const inter = (n: number): Buffer => Buffer.from([0x27, 0x01, 0, 0, 0, n & 0xff, 0x41]);
const aacHeader = Buffer.from([0xaf, 0x00, 0x12, 0x10]);
const aac = (n: number): Buffer => Buffer.from([0xaf, 0x01, n & 0xff, 0x21]);
const meta = Buffer.from('02000a6f6e4d657461446174610500', 'hex'); // "onMetaData", null

class FakeSink implements FrameSink {
  frames: MediaFrame[] = [];
  events: string[] = [];
  queued = 0;
  corks = 0;
  uncorks = 0;
  queuedBytes(): number {
    return this.queued;
  }
  write(f: MediaFrame): void {
    this.frames.push(f);
  }
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    this.uncorks++;
  }
  onStreamStart(): void {
    this.events.push('start');
  }
  onStreamStop(): void {
    this.events.push('stop');
  }
  videoTimestamps(): number[] {
    return this.frames.filter((f) => f.kind === FrameKind.Video).map((f) => f.timestamp);
  }
}

function publisher(id: string): PublisherInfo & { stopped: string[] } {
  const stopped: string[] = [];
  return { id, remote: '127.0.0.1:1', stop: (r) => stopped.push(r), stopped };
}

/** Publishes a header set then `gops` GOPs of `len` frames, 40 ms apart, from t0. */
function feed(hub: LiveHub, pub: PublisherInfo, gops: number, len: number, t0 = 0): void {
  const s = hub.get('live', 'x')!;
  s.pushMedia(FrameKind.Data, t0, meta);
  s.pushMedia(FrameKind.Video, t0, avcHeader);
  s.pushMedia(FrameKind.Audio, t0, aacHeader);
  let t = t0;
  for (let g = 0; g < gops; g++) {
    for (let i = 0; i < len; i++) {
      s.pushMedia(FrameKind.Video, t, i === 0 ? key(g) : inter(i));
      s.pushMedia(FrameKind.Audio, t, aac(i));
      t += 40;
    }
  }
  void pub;
}

test('a late reader gets metadata, codec headers, then the GOP from its keyframe', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  hub.publish('live', 'x', pub);
  feed(hub, pub, 3, 10);
  const sink = new FakeSink();
  hub.subscribe('live', 'x', new LiveReader(sink));
  const f = sink.frames;
  assert.equal(f[0]!.kind, FrameKind.Data);
  assert.ok(f[1]!.isSequenceHeader && f[1]!.kind === FrameKind.Video);
  assert.ok(f[2]!.isSequenceHeader && f[2]!.kind === FrameKind.Audio);
  assert.ok(f[3]!.isKeyframe, 'GOP replay starts on a keyframe');
  assert.equal(f[3]!.timestamp, 2 * 10 * 40);
  // 10 video + 10 audio frames of the last GOP
  assert.equal(f.length, 3 + 20);
  assert.deepEqual(sink.events, ['start']);
});

test('every reader gets the same frame objects (encode once, send to all)', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'x', pub);
  const a = new FakeSink();
  const b = new FakeSink();
  hub.subscribe('live', 'x', new LiveReader(a));
  hub.subscribe('live', 'x', new LiveReader(b));
  feed(hub, pub, 1, 5);
  assert.equal(a.frames.length, b.frames.length);
  a.frames.forEach((f, i) => assert.equal(f, b.frames[i]));
  assert.equal(s.readers.size, 2);
});

test('a reader that arrives before the publisher starts with it, on a keyframe', () => {
  const hub = new LiveHub();
  const sink = new FakeSink();
  hub.subscribe('live', 'x', new LiveReader(sink));
  assert.equal(sink.frames.length, 0);
  const pub = publisher('p');
  const s = hub.publish('live', 'x', pub);
  assert.deepEqual(sink.events, ['start']);
  // inter frames before the first keyframe must not reach the reader
  s.pushMedia(FrameKind.Video, 0, avcHeader);
  s.pushMedia(FrameKind.Video, 0, inter(1));
  s.pushMedia(FrameKind.Video, 40, key(1));
  s.pushMedia(FrameKind.Video, 80, inter(2));
  const video = sink.frames.filter((f) => f.kind === FrameKind.Video && !f.isSequenceHeader);
  assert.ok(video[0]!.isKeyframe);
  assert.equal(video.length, 2);
});

test('a second publisher is refused and the first keeps publishing', () => {
  const hub = new LiveHub();
  const first = publisher('a');
  hub.publish('live', 'x', first);
  assert.throws(
    () => hub.publish('live', 'x', publisher('b')),
    (e: unknown) => isServerError(e, ErrorCode.StreamBusy),
  );
  const sink = new FakeSink();
  hub.subscribe('live', 'x', new LiveReader(sink));
  feed(hub, first, 1, 3);
  assert.equal(hub.get('live', 'x')!.publisher, first);
  assert.ok(sink.frames.length > 3);
});

test('publisher reconnect: readers stay, get stop/start, and timestamps stay monotonic', () => {
  const hub = new LiveHub();
  const sink = new FakeSink();
  const reader = new LiveReader(sink);
  hub.subscribe('live', 'x', reader);
  const p1 = publisher('1');
  const s = hub.publish('live', 'x', p1);
  feed(hub, p1, 2, 25, 1000); // ends at 1000 + 50*40 - 40 = 2960
  hub.unpublish(s, p1);
  assert.equal(hub.get('live', 'x'), s, 'the stream stays while it has a reader');
  const p2 = publisher('2');
  hub.publish('live', 'x', p2);
  feed(hub, p2, 1, 10, 0); // the new encoder starts again at 0
  assert.deepEqual(sink.events, ['start', 'stop', 'start']);
  const ts = sink.frames.map((f) => f.timestamp);
  for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! >= ts[i - 1]!, `timestamp ${ts[i]} after ${ts[i - 1]} at ${i}`);
  const v = sink.videoTimestamps();
  assert.ok(v[v.length - 1]! >= 2960 + 9 * 40, 'second session continues after the first');
});

test('a slow reader drops to the next keyframe, counts it, keeps headers, and the others are unaffected', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'x', pub);
  const slow = new FakeSink();
  const fast = new FakeSink();
  const episodes: number[] = [];
  const slowReader = new LiveReader(slow, { maxQueuedBytes: 1000, resumeQueuedBytes: 100 }, (r) => episodes.push(r.dropped));
  hub.subscribe('live', 'x', slowReader);
  hub.subscribe('live', 'x', new LiveReader(fast));
  s.pushMedia(FrameKind.Video, 0, avcHeader);
  s.pushMedia(FrameKind.Video, 0, key(0));
  s.pushMedia(FrameKind.Video, 40, inter(1));
  slow.queued = 5000; // the peer stopped reading
  s.pushMedia(FrameKind.Video, 80, inter(2));
  s.pushMedia(FrameKind.Video, 120, inter(3));
  s.pushMedia(FrameKind.Video, 120, avcHeader); // a new codec header is never dropped
  s.pushMedia(FrameKind.Video, 160, key(1)); // still too full: dropped
  slow.queued = 50; // drained
  s.pushMedia(FrameKind.Video, 200, inter(4)); // not a keyframe: still dropping
  s.pushMedia(FrameKind.Video, 240, key(2)); // resumes here
  s.pushMedia(FrameKind.Video, 280, inter(5));
  assert.equal(slowReader.dropped, 4);
  assert.equal(slowReader.dropEpisodes, 1);
  assert.deepEqual(episodes, [1]);
  const got = slow.frames.map((f) => f.timestamp);
  assert.deepEqual(got, [0, 0, 40, 120, 240, 280]);
  assert.equal(fast.frames.length, 10, "the fast reader got every frame");
});

test('frames of one publisher read are held to the end of the read and reach each reader in one corked write, before the event loop moves on', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'x', pub);
  const a = new FakeSink();
  const b = new FakeSink();
  hub.subscribe('live', 'x', new LiveReader(a));
  s.beginBatch();
  feed(hub, pub, 1, 5); // 3 headers + 10 frames
  // a reader joining while frames are held: the others get the held frames first, the newcomer the cache
  hub.subscribe('live', 'x', new LiveReader(b));
  assert.equal(a.frames.length, 13);
  assert.deepEqual([a.corks, a.uncorks], [1, 1], 'one corked write for the whole batch');
  assert.equal(b.frames.length, 13, 'metadata, headers and the cached GOP, once each');
  assert.deepEqual([b.corks, b.uncorks], [1, 1], 'the replay is one corked write');
  s.endBatch();
  // a read of two frames: held while the read is processed, delivered when it ends, in this same call
  s.beginBatch();
  s.pushMedia(FrameKind.Video, 1000, inter(9));
  s.pushMedia(FrameKind.Audio, 1000, aac(9));
  assert.equal(a.frames.length, 13, 'held while the read is processed');
  s.endBatch();
  for (const sink of [a, b]) {
    assert.deepEqual(sink.frames.slice(-2).map((f) => [f.kind, f.timestamp]), [[FrameKind.Video, 1000], [FrameKind.Audio, 1000]], 'delivered when the read ended, not in a later phase of the event loop');
    assert.equal(sink.corks, sink.uncorks, 'every cork is undone');
  }
  assert.equal(a.corks, 2, "the read's two frames left together");
  assert.equal(b.corks, 2);
  // nested batches (a read that brings several publishers' messages): delivered at the outermost end
  s.beginBatch();
  s.beginBatch();
  s.pushMedia(FrameKind.Video, 1020, inter(9));
  s.endBatch();
  assert.equal(a.frames[a.frames.length - 1]!.timestamp, 1000, 'an inner end delivers nothing');
  s.endBatch();
  assert.equal(a.frames[a.frames.length - 1]!.timestamp, 1020);
  // a push outside any batch (a relay, a test) goes out at once
  s.pushMedia(FrameKind.Video, 1040, inter(10));
  assert.equal(a.frames[a.frames.length - 1]!.timestamp, 1040);
  // the publisher leaving flushes what it sent first
  s.beginBatch();
  s.pushMedia(FrameKind.Video, 1080, inter(11));
  s.endBatch();
  hub.unpublish(s, pub);
  assert.equal(a.frames[a.frames.length - 1]!.timestamp, 1080);
  assert.equal(a.events[a.events.length - 1], 'stop');
});

test('the hub forgets a stream when nobody publishes or reads it', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'x', pub);
  const r = new LiveReader(new FakeSink());
  hub.subscribe('live', 'x', r);
  hub.unpublish(s, pub);
  assert.ok(hub.get('live', 'x'));
  hub.unsubscribe(s, r);
  assert.equal(hub.get('live', 'x'), undefined);
  assert.equal(hub.list().length, 0);
});

test('audio-only streams start readers at once and keep a bounded cache', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'a', pub);
  s.pushMedia(FrameKind.Audio, 0, aacHeader);
  for (let i = 0; i < 500; i++) s.pushMedia(FrameKind.Audio, i * 23, aac(i));
  assert.ok(s.cachedGop.length <= 64 && s.cachedGop.length > 0);
  const sink = new FakeSink();
  hub.subscribe('live', 'a', new LiveReader(sink));
  assert.ok(sink.frames.length > 1);
  s.pushMedia(FrameKind.Audio, 500 * 23, aac(1));
  assert.equal(sink.frames[sink.frames.length - 1]!.timestamp, 500 * 23);
});

test('flush_window holds a batch for that long, then flushes every reader once', async () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'w', pub, { gopCache: true, maxGopBytes: 1 << 20, flushWindow: 30 });
  const a = new FakeSink();
  hub.subscribe('live', 'w', new LiveReader(a));
  const t0 = Date.now();
  for (let i = 0; i < 3; i++) {
    s.beginBatch();
    s.pushMedia(FrameKind.Audio, i * 10, aac(i));
    s.endBatch();
  }
  await new Promise((r) => setImmediate(r));
  assert.equal(a.frames.length, 0, 'still held after the turn');
  while (a.uncorks === 0 && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 5));
  assert.equal(a.corks, 1);
  assert.equal(a.uncorks, 1);
  assert.ok(Date.now() - t0 >= 25, 'held for the window');
  assert.equal(a.frames.length, 3);
});

test('one frame with a huge timestamp does not freeze the stream: a jump re-bases, output stays monotonic and advances with the publisher', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'x', pub);
  const sink = new FakeSink();
  hub.subscribe('live', 'x', new LiveReader(sink));
  s.pushMedia(FrameKind.Video, 0, avcHeader);
  s.pushMedia(FrameKind.Audio, 0, aacHeader);
  let t = 1000;
  const gop = (n: number): void => {
    for (let i = 0; i < n; i++, t += 40) {
      s.pushMedia(FrameKind.Video, t, i === 0 ? key(i) : inter(i));
      s.pushMedia(FrameKind.Audio, t, aac(i));
    }
  };
  gop(25); // 1000 .. 1960
  s.pushMedia(FrameKind.Video, 0xffffff00, inter(99)); // one hostile (or broken) frame far ahead
  gop(25); // the publisher's clock goes on: 2000 .. 2960
  const ts = sink.frames.map((f) => f.timestamp);
  for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! >= ts[i - 1]!, `timestamp ${ts[i]} after ${ts[i - 1]} at ${i}`);
  const v = sink.videoTimestamps();
  const last = v.slice(-25);
  // after the jump the output advances 40 ms a frame, like the publisher's clock (not pinned to 0xffffff00)
  for (let i = 1; i < last.length; i++) assert.equal(last[i]! - last[i - 1]!, 40, `step at ${i}: ${last.join(',')}`);
  assert.ok(last[last.length - 1]! < 10_000, `output stays near the publisher's clock: ${last[last.length - 1]}`);
  // a backward jump (an encoder restarting at 0 without reconnecting) also continues forward
  const before = v[v.length - 1]!;
  t = 0;
  gop(10);
  const after = sink.videoTimestamps().slice(-10);
  assert.ok(after[0]! >= before, 'monotonic over the reset');
  assert.equal(after[9]! - after[0]!, 9 * 40, `advances after the reset: ${after.join(',')}`);
  // small interleaving steps back (audio behind video) are clamped, not re-based
  s.pushMedia(FrameKind.Video, t + 100, inter(1));
  s.pushMedia(FrameKind.Audio, t + 60, aac(1));
  s.pushMedia(FrameKind.Video, t + 140, inter(2));
  const tail = sink.videoTimestamps().slice(-2);
  assert.equal(tail[1]! - tail[0]!, 40);
});

test('players still see monotonic timestamps when the publisher clock jumps back and forth', () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', publisher('p'));
  const sink = new FakeSink();
  hub.subscribe('live', 'x', new LiveReader(sink, { maxQueuedBytes: 1 << 30, resumeQueuedBytes: 1 << 29, waitKey: false }));
  const raws = [0, 40, 80, 0xffffff00, 120, 160, 0, 40, 0x7fffffff, 0x80000000, 200, 240, 5, 10];
  for (const [i, r] of raws.entries()) {
    s.pushMedia(FrameKind.Video, r, i === 0 ? key(i) : inter(i));
    s.pushMedia(FrameKind.Audio, r, aac(i));
    s.pushMedia(FrameKind.Data, r, meta);
  }
  let lastAv = -1;
  for (const f of sink.frames) {
    if (f.kind === FrameKind.Data) {
      assert.ok(f.timestamp <= lastAv || lastAv < 0, `script data not ahead of the media: ${f.timestamp} > ${lastAv}`);
      continue;
    }
    assert.ok(f.timestamp >= lastAv, `${f.timestamp} after ${lastAv}`);
    lastAv = f.timestamp;
  }
  assert.ok(lastAv < 1000, `the jumps do not carry the clock away: ${lastAv}`);
});

test('the GOP cache keeps payloads only: a frame\'s encodings are let go at the next flush, once every reader had them, and made again for a reader joining later', () => {
  const hub = new LiveHub();
  const pub = publisher('p');
  const s = hub.publish('live', 'g', pub);
  let encodings = 0;
  const format = {
    key: 7,
    encode: (f: MediaFrame): Buffer => {
      encodings++;
      return Buffer.alloc(f.payload.length + 12);
    },
  };
  class EncodingSink extends FakeSink {
    override write(f: MediaFrame): void {
      // what an output does (src/rtmp/player.ts): one encoding per format, shared through the frame's slots
      encodeShared(f, format);
      super.write(f);
    }
  }
  const a = new EncodingSink();
  const b = new EncodingSink();
  hub.subscribe('live', 'g', new LiveReader(a));
  hub.subscribe('live', 'g', new LiveReader(b));
  s.beginBatch();
  s.pushMedia(FrameKind.Video, 0, avcHeader);
  s.pushMedia(FrameKind.Video, 0, key(1));
  s.pushMedia(FrameKind.Video, 40, inter(2));
  s.endBatch();
  s.pushMedia(FrameKind.Video, 80, inter(3)); // outside a batch
  assert.equal(encodings, 4, 'one encoding per frame, shared by both readers');
  assert.equal(a.frames.length, 4);
  assert.equal(b.frames.length, 4);
  s.beginBatch();
  s.pushMedia(FrameKind.Video, 120, inter(4));
  s.endBatch();
  assert.equal(encodings, 5);
  assert.equal(s.cachedGop.length, 4);
  const released = [...s.cachedGop.slice(0, 3), s.videoHeader!];
  for (const f of released) assert.equal(f.enc0, undefined, 'no encoding kept in the cache once the next flush went out');
  assert.notEqual(s.cachedGop[3]!.enc0, undefined, 'the last flush\'s frame keeps its encoding until the next one');
  const c = new EncodingSink();
  hub.subscribe('live', 'g', new LiveReader(c));
  assert.equal(c.frames.length, 5, 'the joiner gets the header and the GOP');
  assert.equal(encodings, 9, 'encoded again once for the joiner (the last frame still shared)');
});

test('a new stream does not throw the flush path out of optimized code: no array of another hidden class, no closure per stream on the hot path', async () => {
  const { execFile } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const probe = fileURLToPath(new URL('../helpers/stream-start-deopt-probe.ts', import.meta.url));
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--trace-deopt', probe], { maxBuffer: 64 * 1024 * 1024, timeout: 90_000 }, (err, stdout) =>
      err === null ? resolve(stdout) : reject(err),
    );
  });
  const second = out.indexOf('PROBE-SECOND-STREAM');
  const done = out.indexOf('PROBE-DONE');
  assert.ok(second > 0 && done > second, 'the probe ran to the end');
  const after = out.slice(second, done);
  // (deopts for want of feedback on a stream's first frames are V8's: the branches ran before feedback existed)
  const ours = [...after.matchAll(/reason: (wrong map|wrong call target)\): begin\. deoptimizing \S+ <JSFunction (flush|endBatch) /g)].map((m) => `${m[2]}: ${m[1]}`);
  assert.deepEqual(ours, [], 'the second stream kept flush and endBatch optimized');
});
