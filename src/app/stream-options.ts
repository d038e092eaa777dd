import type { ApplicationConfig } from '../config/types.js';
import { DEFAULT_STREAM_OPTIONS, type StreamOptions } from '../live/stream.js';

/** The live-stream options of an application, for whoever creates its streams (a publish, a pull relay). */
export function streamOptionsFor(app: ApplicationConfig): StreamOptions {
  return { ...DEFAULT_STREAM_OPTIONS, gopCache: app.live.gopCache, flushWindow: app.live.flushWindow };
}
