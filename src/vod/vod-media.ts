import { ErrorCode, ServerError, serverError } from '../core/errors.js';
import type { FrameKind, MediaFrame } from '../live/frame.js';

/**
 * What a play reads from a VOD file, whatever its format: the `VodMedia`
 * contract (src/vod/flv-media.ts and src/vod/mp4-media.ts implement it) and
 * the one error a file that cannot be played raises (VodReadFailed). It opens
 * nothing and reads no bytes: src/vod/media-file.ts opens a file.
 */

/** One frame as the play sends it: an FLV tag body and its time in ms. */
export interface VodFrame {
  readonly kind: FrameKind;
  readonly timestamp: number;
  readonly payload: Buffer;
}

export interface VodMedia {
  readonly format: 'flv' | 'mp4';
  readonly durationMs: number;
  readonly hasVideo: boolean;
  readonly hasAudio: boolean;
  /** the onMetaData script data (AMF0 "onMetaData", object) */
  readonly metadata: Buffer | undefined;
  /** codec headers (AVC/HEVC configuration, AudioSpecificConfig), sent at the start and after every seek */
  readonly headers: readonly VodFrame[];
  /** Positions the play on the keyframe at or before `ms`; returns the time it starts at. */
  seek(ms: number): number;
  /**
   * The next frames up to `untilMs` (at most about `maxBytes`; at least one
   * frame while any is left); [] at the end of the file. Throws VodReadFailed
   * for a truncated or corrupt file.
   */
  read(untilMs: number, maxBytes: number): Promise<MediaFrame[]>;
  close(): Promise<void>;
}

/** The error of a file that cannot be played: VodReadFailed as it is, anything else wrapped in one. */
export function asReadFailed(e: unknown, file: string): ServerError {
  if (e instanceof ServerError && e.code === ErrorCode.VodReadFailed) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return serverError(ErrorCode.VodReadFailed, `${file}: ${msg}`, e);
}
