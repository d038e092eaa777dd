import type { StatStreamSnapshot } from '../http/stat.js';
import type { LiveStream } from '../live/stream.js';

/** A live stream as the stat snapshot shows it (the stat page, control, metrics). */
export function streamSnapshot(s: LiveStream): StatStreamSnapshot {
  return {
    app: s.app,
    name: s.name,
    active: s.active,
    publisher: s.publisher?.id,
    readers: s.readers.size,
    hasVideo: s.hasVideo,
    hasAudio: s.hasAudio,
    publishedAt: s.stats.publishedAt,
    bytesIn: s.stats.bytesIn,
    framesIn: s.stats.framesIn,
    videoFrames: s.stats.videoFrames,
    audioFrames: s.stats.audioFrames,
    dropped: s.stats.droppedByGoneReaders + [...s.readers].reduce((n, r) => n + r.dropped, 0),
    videoHeader: s.videoHeader?.payload,
    audioHeader: s.audioHeader?.payload,
  };
}
