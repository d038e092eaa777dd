/**
 * Run by test/live/stream.test.ts in a child node with --trace-deopt: one
 * stream runs long enough for its flush path to be optimized, then a second
 * stream starts. The test reads V8's trace after the marker: a stream's start
 * must not throw the hot path's optimized code away for reasons of our making
 * (a new stream's arrays of another hidden class, a closure per stream called
 * from the hot path).
 */
import { LiveHub } from '../../src/live/hub.js';
import { LiveReader, type FrameSink } from '../../src/live/reader.js';

class Sink implements FrameSink {
  queuedBytes(): number {
    return 0;
  }
  write(): void {}
  cork(): void {}
  uncork(): void {}
  onStreamStart(): void {}
  onStreamStop(): void {}
}

const hub = new LiveHub({ outputBatch: { begin() {}, end() {} } });
function run(name: string, n: number): void {
  const s = hub.publish('live', name, { id: name, remote: '127.0.0.1:1', stop: () => {} });
  hub.subscribe('live', name, new LiveReader(new Sink()));
  s.beginBatch();
  s.pushMedia(9, 0, Buffer.from([0x17, 0, 0, 0, 0, 1]));
  s.pushMedia(8, 0, Buffer.from([0xaf, 0, 0x12]));
  s.endBatch();
  for (let i = 0; i < n; i++) {
    s.beginBatch();
    s.pushMedia(9, 40 * i, Buffer.from([i % 60 === 0 ? 0x17 : 0x27, 1, 0, 0, 0, 5]));
    if (i % 3 !== 0) s.pushMedia(8, 40 * i, Buffer.from([0xaf, 1, 5]));
    s.endBatch();
  }
}
run('first', 200_000);
process.stdout.write('\nPROBE-SECOND-STREAM\n');
run('second', 10);
process.stdout.write('\nPROBE-DONE\n');
