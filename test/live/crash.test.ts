import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, serverError } from '../../src/core/errors.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { FrameKind, type MediaFrame } from '../../src/live/frame.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveReader, type FrameSink } from '../../src/live/reader.js';
import type { PublisherInfo } from '../../src/live/stream.js';

const avcHeader = Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f]);
const key = (n: number): Buffer => Buffer.from([0x17, 0x01, 0, 0, 0, n & 0xff, 0x65]);
const inter = (n: number): Buffer => Buffer.from([0x27, 0x01, 0, 0, 0, n & 0xff, 0x41]);
const aacHeader = Buffer.from([0xaf, 0x00, 0x12, 0x10]);
const aac = (n: number): Buffer => Buffer.from([0xaf, 0x01, n & 0xff, 0x21]);
const meta = (n: number): Buffer => Buffer.concat([Buffer.from('02000a6f6e4d65746144617461', 'hex'), Buffer.from([0x00]), Buffer.alloc(8, n & 0xff)]);

class FakeSink implements FrameSink {
  frames: MediaFrame[] = [];
  queued = 0;
  corks = 0;
  uncorks = 0;
  /** write() throws for these payloads, as an output that cannot encode them */
  poison = new Set<Buffer>();
  queuedBytes(): number {
    return this.queued;
  }
  write(f: MediaFrame): void {
    if (this.poison.has(f.payload)) throw serverError(ErrorCode.MessageTooLarge, 'cannot encode');
    this.frames.push(f);
  }
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    this.uncorks++;
  }
  onStreamStart(): void {}
  onStreamStop(): void {}
}

function publisher(id: string): PublisherInfo {
  return { id, remote: '127.0.0.1:1', stop: () => {} };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---------------------------------------------------------------- item 1: the fan-out never throws

test('a frame whose encoding throws is dropped by the fan-out (batched flush at the end of a read): every reader gets the rest, logged once', async () => {
  const logs: MemoryLogEntry[] = [];
  const hub = new LiveHub({ logger: memoryLogger(logs) });
  const s = hub.publish('live', 'x', publisher('p'));
  const other = hub.publish('live', 'y', publisher('q'));
  const bad = meta(1);
  const readers = [new FakeSink(), new FakeSink(), new FakeSink()];
  for (const sink of readers) {
    sink.poison.add(bad);
    hub.subscribe('live', 'x', new LiveReader(sink));
  }
  const beside = new FakeSink();
  hub.subscribe('live', 'y', new LiveReader(beside));
  // two publisher reads: the flushes run at each read's end, where a throw would end the publisher's connection
  for (let round = 0; round < 2; round++) {
    s.beginBatch();
    other.beginBatch();
    s.pushMedia(FrameKind.Video, 0, avcHeader);
    s.pushMedia(FrameKind.Data, 0, bad);
    s.pushMedia(FrameKind.Video, 0, key(1));
    other.pushMedia(FrameKind.Video, 0, key(2));
    s.endBatch();
    other.endBatch();
    await turn();
  }
  // and one frame alone (the single-frame flush path), and one outside a batch
  s.beginBatch();
  s.pushMedia(FrameKind.Data, 40, bad);
  s.endBatch();
  await turn();
  s.pushMedia(FrameKind.Data, 80, bad);
  s.pushMedia(FrameKind.Video, 80, inter(2));
  for (const sink of readers) {
    assert.deepEqual(
      sink.frames.map((f) => f.payload[1]),
      [0x00, 0x01, 0x00, 0x01, 0x01],
      'headers, keyframes and the last inter frame arrive; the bad frame never',
    );
    assert.equal(sink.corks, sink.uncorks, 'every cork is undone');
  }
  assert.equal(beside.frames.length, 2, 'the other stream flows');
  assert.equal(s.metadata, undefined, 'the undeliverable metadata is not kept for replay');
  assert.equal(s.stats.undeliverable, 4 * readers.length);
  const lines = logs.filter((l) => l.msg.startsWith('frame dropped'));
  assert.equal(lines.length, 1, 'logged once per stream');
  assert.equal(lines[0]!.fields['code'], ErrorCode.MessageTooLarge);
  // a new reader is not handed the bad frame from the cache
  const late = new FakeSink();
  late.poison.add(bad);
  hub.subscribe('live', 'x', new LiveReader(late));
  assert.ok(late.frames.length > 0);
});

// ---------------------------------------------------------------- item 4: superseded metadata and headers replace

test('over its bound, a reader holds the latest metadata and codec headers (one slot each) and sends them on resume, before the keyframe', () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', publisher('p'));
  const sink = new FakeSink();
  const reader = new LiveReader(sink, { maxQueuedBytes: 1000, resumeQueuedBytes: 100 });
  hub.subscribe('live', 'x', reader);
  s.pushMedia(FrameKind.Video, 0, avcHeader);
  s.pushMedia(FrameKind.Audio, 0, aacHeader);
  s.pushMedia(FrameKind.Video, 0, key(0));
  const before = sink.frames.length;
  sink.queued = 5000; // the peer stopped reading
  const metas: Buffer[] = [];
  for (let i = 0; i < 10_000; i++) {
    const m = meta(i);
    metas.push(m);
    s.pushMedia(FrameKind.Data, 40, m);
  }
  const vh = Buffer.from(avcHeader);
  const ah = Buffer.from(aacHeader);
  s.pushMedia(FrameKind.Video, 40, avcHeader);
  s.pushMedia(FrameKind.Video, 40, vh);
  s.pushMedia(FrameKind.Audio, 40, aacHeader);
  s.pushMedia(FrameKind.Audio, 40, ah);
  s.pushMedia(FrameKind.Video, 40, inter(1));
  s.pushMedia(FrameKind.Audio, 40, aac(1));
  assert.equal(sink.frames.length, before, 'nothing passes the bound, metadata and headers included');
  assert.ok(reader.isDropping);
  // the queue drains, but a reader resumes on a keyframe only
  sink.queued = 0;
  s.pushMedia(FrameKind.Video, 80, inter(2));
  assert.equal(sink.frames.length, before);
  s.pushMedia(FrameKind.Video, 120, key(3));
  const got = sink.frames.slice(before);
  assert.equal(got.length, 4, 'the latest metadata, video header, audio header, then the keyframe');
  assert.equal(got[0]!.payload, metas[metas.length - 1], 'exactly the latest metadata');
  assert.equal(got[1]!.payload, vh);
  assert.equal(got[2]!.payload, ah);
  assert.ok(got[3]!.isKeyframe);
  // and nothing is sent twice afterwards
  s.pushMedia(FrameKind.Audio, 120, aac(3));
  assert.equal(sink.frames.length, before + 5);
});

test('metadata alone (no media) over the bound enters the dropping state instead of queueing', () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', publisher('p'));
  const sink = new FakeSink();
  const episodes: number[] = [];
  hub.subscribe('live', 'x', new LiveReader(sink, { maxQueuedBytes: 1000, resumeQueuedBytes: 100 }, (r) => episodes.push(r.dropEpisodes)));
  s.pushMedia(FrameKind.Data, 0, meta(0));
  assert.equal(sink.frames.length, 1, 'within the bound metadata goes out at once');
  sink.queued = 2000;
  for (let i = 1; i <= 100; i++) s.pushMedia(FrameKind.Data, 0, meta(i));
  assert.equal(sink.frames.length, 1);
  assert.deepEqual(episodes, [1], 'one drop episode');
});
