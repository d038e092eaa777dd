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
