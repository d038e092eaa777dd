import { decodeAmf0, encodeAmf0 } from '../rtmp/amf0.js';
import { amfObjectOf, type AmfObject } from '../rtmp/amf-types.js';
import type { MetaMode } from '../config/types.js';

/** The fields nginx-rtmp keeps when it rebuilds metadata (`meta on`). */
const KEPT_FIELDS = [
  'width', 'height', 'displayWidth', 'displayHeight', 'duration', 'framerate', 'fps',
  'videodatarate', 'videocodecid', 'audiodatarate', 'audiocodecid', 'audiosamplerate',
  'audiosamplesize', 'audiochannels', 'stereo', 'profile', 'level',
] as const;

/**
 * Applies the `meta` directive to a script-data payload (AMF0 name + values):
 * `copy` passes it unchanged, `off` drops onMetaData, `on` rebuilds onMetaData
 * with the standard fields only. Other script data (cue points...) passes.
 * Returns undefined when the payload must not be forwarded.
 */
export function applyMetaMode(mode: MetaMode, payload: Buffer): Buffer | undefined {
  if (mode === 'copy') return payload;
  let values;
  try {
    // references may not expand it by more than its own size: what `on` keeps (a subset) stays near the input's
    values = decodeAmf0(payload, { maxExpandedBytes: payload.length });
  } catch {
    return mode === 'off' ? undefined : payload;
  }
  if (values[0] !== 'onMetaData') return payload;
  if (mode === 'off') return undefined;
  const src = amfObjectOf(values[1] ?? null);
  if (src === undefined) return payload;
  const out: AmfObject = { Server: 'rtmp-server (TypeScript)' };
  for (const k of KEPT_FIELDS) {
    const v = src[k];
    if (v !== undefined) out[k] = v;
  }
  return encodeAmf0(['onMetaData', out]);
}
