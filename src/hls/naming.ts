import { outputPath } from '../core/files.js';
import type { HlsSettings } from '../config/hls.js';
import { renderMasterPlaylist } from './playlist.js';

/**
 * The naming policy of one stream's HLS files: where its playlist, fragments,
 * keys and master playlist go on disk and which URIs the playlists give them
 * (hls_nested, hls_base_url, hls_key_path, hls_key_url, hls_variant,
 * hls_fragment_naming). Pure functions of the settings and the stream name;
 * no state, no file access (the window writes and removes, src/hls/window.ts).
 */

export interface Paths {
  readonly dir: string;
  readonly playlist: string;
  readonly keyDir: string | undefined;
  readonly master: { readonly file: string; readonly text: string } | undefined;
}

/** The stream's directories and playlists; throws (ServerError) when the name cannot name a file. */
export function streamPaths(s: HlsSettings, name: string): Paths {
  const root = s.path ?? '';
  const dir = s.nested ? outputPath(root, name) : outputPath(root);
  const playlist = s.nested ? outputPath(root, name, 'index.m3u8') : outputPath(root, `${name}.m3u8`);
  const keyRoot = s.keyPath ?? root;
  const keyDir = s.keys ? (s.nested ? outputPath(keyRoot, name) : outputPath(keyRoot)) : undefined;
  let master: Paths['master'];
  for (const v of s.variants) {
    if (name.length <= v.suffix.length || !name.endsWith(v.suffix)) continue;
    const base = name.slice(0, name.length - v.suffix.length);
    const text = renderMasterPlaylist(s.variants.map((x) => ({ uri: `${s.baseUrl}${base}${x.suffix}${s.nested ? '/index' : ''}.m3u8`, params: x.params })));
    master = { file: outputPath(root, `${base}.m3u8`), text };
    break;
  }
  return { dir, playlist, keyDir, master };
}

/** hls_fragment_naming (and its granularity): the id in a fragment's (and key's) name. */
export function fragmentId(s: HlsSettings, seq: number, ts: number, now: () => number): number {
  let id: number;
  switch (s.naming) {
    case 'sequential':
      return seq;
    case 'timestamp':
      id = ts;
      break;
    case 'system':
      id = now();
      break;
    default: {
      const never: never = s.naming;
      throw new Error(`assert: naming ${String(never)}`);
    }
  }
  const g = s.granularity;
  return g > 0 ? Math.floor(id / g) * g : id;
}

/** The file name of fragment `id` (in `Paths.dir`). */
export function fragmentName(s: HlsSettings, name: string, id: number): string {
  return s.nested ? `${id}.ts` : `${name}-${id}.ts`;
}

/** The playlist's URI of a fragment file named `file`. */
export function fragmentUri(s: HlsSettings, name: string, file: string): string {
  return s.nested ? (s.baseUrl !== '' ? `${s.baseUrl}${name}/${file}` : file) : `${s.baseUrl}${file}`;
}

/** The file name of key `id` (in `Paths.keyDir`). */
export function keyName(s: HlsSettings, name: string, id: number): string {
  return s.nested ? `${id}.key` : `${name}-${id}.key`;
}

/** The playlist's URI of key `id` (hls_key_url). */
export function keyUri(s: HlsSettings, name: string, id: number): string {
  return s.nested ? `${s.keyUrl}${s.keyUrl !== '' ? `${name}/` : ''}${id}.key` : `${s.keyUrl}${name}-${id}.key`;
}
