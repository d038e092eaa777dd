/**
 * VOD settings of an application (nginx-rtmp's play module): `play` locations
 * (local directories and http:// URLs, tried in order), `play_temp_path`
 * (where a remote file is downloaded while it plays) and `play_local_path`
 * (where a completely downloaded remote file is moved to, to be found there
 * next time when that directory is one of the `play` locations).
 */
export interface VodSettings {
  /** directories and http:// URL prefixes, in the order they are tried */
  readonly locations: readonly string[];
  readonly tempPath: string;
  /** undefined: remote files are deleted after their play */
  readonly localPath: string | undefined;
}

/** nginx-rtmp's default play_temp_path */
export const DEFAULT_PLAY_TEMP_PATH = '/tmp';

/** Reads the VOD settings from the application's effective directives; undefined when it has no `play`. */
export function vodSettings(directives: Readonly<Record<string, readonly (readonly string[])[]>>): VodSettings | undefined {
  const locations = (directives['play'] ?? []).flat().filter((l) => l !== '');
  if (locations.length === 0) return undefined;
  const temp = directives['play_temp_path']?.at(-1)?.[0];
  const local = directives['play_local_path']?.at(-1)?.[0];
  return { locations, tempPath: temp !== undefined && temp !== '' ? temp : DEFAULT_PLAY_TEMP_PATH, localPath: local !== undefined && local !== '' ? local : undefined };
}

/** The ApplicationConfig field: `{ vod }` when the application has `play`, else nothing. */
export function vodConfig(directives: Readonly<Record<string, readonly (readonly string[])[]>>): { vod?: VodSettings } {
  const vod = vodSettings(directives);
  return vod === undefined ? {} : { vod };
}
