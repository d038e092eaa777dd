import type { MetaMode } from '../config/types.js';
import { MessageType } from '../rtmp/messages.js';
import { decodeScriptData, encodeScriptData } from '../rtmp/script-data.js';
import { applyMetaMode } from './meta.js';

/** Script data handlers that describe a player's session, never a stream: not stored, not forwarded. */
const SESSION_HANDLERS: ReadonlySet<string> = new Set(['@clearDataFrame', '|RtmpSampleAccess', 'onStatus']);

/**
 * Script data of a published stream, as every publisher's (RTMP or pulled)
 * goes into the stream core: `@setDataFrame("onMetaData", {...})` is unwrapped
 * to `onMetaData({...})`, AMF3 data is re-encoded as AMF0, both bounded by
 * `maxBytes` after re-encoding (src/rtmp/script-data.ts: an oversized or
 * reference-expanding message throws ERR_RTMP_MESSAGE_TOO_LARGE /
 * ERR_AMF_TOO_LARGE), and the application's `meta` mode is applied.
 */
export class ScriptDataNormaliser {
  constructor(
    private readonly meta: MetaMode,
    private readonly maxBytes: number,
  ) {}

  /** The AMF0 payload to store and forward, or undefined when nothing is. `type` is 18 (AMF0) or 15 (AMF3). */
  normalise(type: number, payload: Buffer): Buffer | undefined {
    const d = decodeScriptData({ csid: 0, type, streamId: 0, timestamp: 0, payload }, this.maxBytes);
    if (SESSION_HANDLERS.has(d.name)) return undefined;
    let out: Buffer;
    if (d.name === '@setDataFrame') {
      if (d.values.length === 0) return undefined;
      out = encodeScriptData(d.values, this.maxBytes);
    } else {
      out = type === MessageType.DataAmf0 ? payload : encodeScriptData([d.name, ...d.values], this.maxBytes);
    }
    return applyMetaMode(this.meta, out);
  }
}
