import { ErrorCode, serverError } from '../core/errors.js';

/**
 * Stream and application names come from the network: they must be safe as
 * map keys, in logs and, later, as file names under a configured directory.
 * Allowed: 1..200 characters of letters, digits and `_ - . ~ @ + = ,`; not
 * starting with a dot (so never `.` or `..`); no slashes, no control bytes.
 */
const SAFE_NAME = /^[A-Za-z0-9_\-~@+=,][A-Za-z0-9_.\-~@+=,]{0,199}$/;

export function checkStreamName(name: string): string {
  if (!SAFE_NAME.test(name)) {
    throw serverError(ErrorCode.StreamNameInvalid, `invalid stream name ${JSON.stringify(name.slice(0, 64))}`);
  }
  return name;
}

/** nginx-rtmp's VOD format prefix of a play name (`mp4:`, `flv:`) */
const PLAY_PREFIX = /^(mp4|flv):/;
const MAX_PLAY_SEGMENTS = 8;

/**
 * A play name may also name a recorded file (VOD): an optional `mp4:`/`flv:`
 * prefix and a few `/`-separated segments, each a safe name as above (so
 * never `.`, `..` or empty). The live step still takes only checkStreamName's
 * names: a live stream is never called this.
 */
export function checkPlayName(name: string): string {
  const segments = name.replace(PLAY_PREFIX, '').split('/');
  if (segments.length > MAX_PLAY_SEGMENTS || name.length > 400 || !segments.every((s) => SAFE_NAME.test(s))) {
    throw serverError(ErrorCode.StreamNameInvalid, `invalid stream name ${JSON.stringify(name.slice(0, 64))}`);
  }
  return name;
}
