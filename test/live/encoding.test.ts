import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EncodingKey, encodeShared, type OutputFormat } from '../../src/core/encoding.js';
import { FrameKind, MediaFrame, frameFlags } from '../../src/live/frame.js';
import { FlvTagFormat, flvTag } from '../../src/live/formats.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveReader, type FrameSink } from '../../src/live/reader.js';
import { encodeFlvHeader, readFlvFile } from '../../src/media/flv.js';
import type { SocketOutput } from '../../src/rtmp/output.js';
import { MediaWriter, RtmpFormat, wireFor } from '../../src/rtmp/player.js';
import { AAC_HEADER, AVC_HEADER, audioFrame, videoFrame } from '../helpers/synthetic.js';

const frame = (kind: FrameKind, ts: number, payload: Buffer): MediaFrame => new MediaFrame(kind, ts, payload, frameFlags(kind, payload));

/** A format that counts its encodes. */
function counting(key: number): OutputFormat<MediaFrame> & { encodes: number } {
  const f = {
    key,
    encodes: 0,
    encode(m: MediaFrame): Buffer {
      f.encodes++;
      return Buffer.concat([Buffer.from([key & 0xff]), m.payload]);
    },
  };
  return f;
}

class FakeOutput {
  written: Buffer[] = [];
  constructor(public chunkSize: number) {}
  queuedBytes(): number {
    return 0;
  }
  write(b: Buffer): void {
    this.written.push(b);
  }
  cork(): void {}
  uncork(): void {}
}

/** An RTMP player's sink (MediaWriter) on a fake output. */
class RtmpSink extends MediaWriter implements FrameSink {
  constructor(readonly fake: FakeOutput) {
    super(fake as unknown as SocketOutput, 1);
  }
  onStreamStart(): void {}
  onStreamStop(): void {}
}

/** An HTTP-FLV-like sink: the shared FLV tag. */
class FlvSink implements FrameSink {
  written: Buffer[] = [];
  queuedBytes(): number {
    return 0;
  }
  write(f: MediaFrame): void {
    this.written.push(flvTag(f));
  }
  onStreamStart(): void {}
  onStreamStop(): void {}
}

test('N readers of one format cause exactly one encode per frame', () => {
  const fmt = counting(7);
  const frames = [frame(FrameKind.Video, 0, videoFrame(true, 500, 1)), frame(FrameKind.Audio, 0, audioFrame(1)), frame(FrameKind.Video, 40, videoFrame(false, 300, 2))];
  for (const f of frames) {
    const first = encodeShared(f, fmt);
    for (let reader = 1; reader < 50; reader++) assert.equal(encodeShared(f, fmt), first, 'the same Buffer');
  }
  assert.equal(fmt.encodes, frames.length);
});

test('RTMP and FLV readers of one stream: one encode per frame per format, the same Buffer to every reader, formats do not evict each other', () => {
  const hub = new LiveHub();
  const s = hub.publish('live', 'x', { id: 'p', remote: 'r', stop: () => {} });
  const rtmp = Array.from({ length: 20 }, () => new RtmpSink(new FakeOutput(4096)));
  const flv = Array.from({ length: 20 }, () => new FlvSink());
  // subscribe them interleaved, so the two formats alternate on every frame
  for (let i = 0; i < 20; i++) {
    hub.subscribe('live', 'x', new LiveReader(rtmp[i]!, { maxQueuedBytes: 1 << 30, resumeQueuedBytes: 1 << 29, waitKey: false }));
    hub.subscribe('live', 'x', new LiveReader(flv[i]!, { maxQueuedBytes: 1 << 30, resumeQueuedBytes: 1 << 29, waitKey: false }));
  }
  const pushed = [
    s.pushMedia(FrameKind.Video, 0, AVC_HEADER),
    s.pushMedia(FrameKind.Audio, 0, AAC_HEADER),
    s.pushMedia(FrameKind.Video, 0, videoFrame(true, 10_000, 1)),
    s.pushMedia(FrameKind.Audio, 10, audioFrame(1)),
    s.pushMedia(FrameKind.Video, 40, videoFrame(false, 3000, 2)),
  ];
  for (let i = 0; i < pushed.length; i++) {
    const r0 = rtmp[0]!.fake.written[i]!;
    const f0 = flv[0]!.written[i]!;
    for (const r of rtmp) assert.equal(r.fake.written[i], r0, `RTMP frame ${i}: one Buffer for every player`);
    for (const f of flv) assert.equal(f.written[i], f0, `FLV frame ${i}: one Buffer for every reader`);
    assert.notEqual(r0, f0);
    // both stayed cached on the frame: asking again encodes nothing new
    assert.equal(encodeShared(pushed[i]!, new RtmpFormat(4096, 1, false)), r0);
    assert.equal(flvTag(pushed[i]!), f0);
  }
});

test('the FLV tag format: 11-byte header, the payload, PreviousTagSize; a valid FLV file after the header', () => {
  const frames = [frame(FrameKind.Video, 0, AVC_HEADER), frame(FrameKind.Video, 0x01234567, videoFrame(true, 1000, 3)), frame(FrameKind.Audio, 5, audioFrame(4))];
  const file = Buffer.concat([encodeFlvHeader({ audio: true, video: true }), ...frames.map((f) => encodeShared(f, FlvTagFormat))]);
  const { tags, truncatedAt } = readFlvFile(file);
  assert.equal(truncatedAt, undefined);
  assert.deepEqual(
    tags.map((t) => [t.type, t.timestamp, t.data.equals(frames[tags.indexOf(t)]!.payload)]),
    frames.map((f) => [f.kind, f.timestamp, true]),
  );
  assert.equal(FlvTagFormat.key, EncodingKey.FlvTag);
});

test('more formats than slots: the first ones stay cached, the others are encoded each time, all correct', () => {
  const f = frame(FrameKind.Video, 0, videoFrame(true, 100, 1));
  const fmts = [counting(11), counting(12), counting(13), counting(14)];
  const first = fmts.map((fmt) => encodeShared(f, fmt));
  const again = fmts.map((fmt) => encodeShared(f, fmt));
  assert.deepEqual(
    fmts.map((x) => x.encodes),
    [1, 1, 1, 2],
  );
  for (let i = 0; i < 3; i++) assert.equal(again[i], first[i]);
  assert.deepEqual(again[3], first[3]);
});

test('RTMP keys: chunk size, interleave and stream id each make another encoding; a stream id beyond 16 bits is never shared', () => {
  const f = frame(FrameKind.Audio, 0, audioFrame(1));
  const a = wireFor(f, 4096, 1);
  assert.equal(wireFor(f, 4096, 1), a);
  assert.notEqual(wireFor(f, 4096, 1, true), a, 'interleave changes the chunk stream id');
  assert.notEqual(wireFor(f, 4096, 2), a);
  const big = wireFor(f, 4096, 0x10001);
  assert.notEqual(wireFor(f, 4096, 0x10001), big, 'not cached');
  assert.ok(new RtmpFormat(1, 0, false).key > EncodingKey.FlvTag, 'RTMP keys stay above the fixed keys');
  assert.ok(new RtmpFormat(128, 0xffff, true).key !== new RtmpFormat(129, 0, false).key);
});

test('a player whose chunk size changes gets the new chunking', () => {
  const out = new FakeOutput(4096);
  const w = new RtmpSink(out);
  const f = frame(FrameKind.Video, 0, videoFrame(true, 1000, 1));
  w.write(f);
  out.chunkSize = 128;
  w.write(f);
  assert.equal(out.written[0], wireFor(f, 4096, 1));
  assert.deepEqual(out.written[1], wireFor(f, 128, 1));
  assert.ok(out.written[1]!.length > out.written[0]!.length);
});
