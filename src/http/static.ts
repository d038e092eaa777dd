import { open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import type { HttpLocation } from '../config/types.js';

/**
 * Static files for `root` / `alias` locations, and the request-target parsing
 * every location relies on. The URI is untrusted: it is percent-decoded once,
 * NUL and backslashes are refused, dot segments are resolved (escaping above
 * `/` is a 400), and the file finally opened must lie, after resolving every
 * symlink, inside the location's root / alias directory.
 */

export interface RequestTarget {
  /** decoded, normalized path: starts with '/', no '.', '..' or empty segments; keeps a trailing '/' */
  path: string;
  query: URLSearchParams;
}

/** Parses `req.url`; undefined means 400 Bad Request. */
export function parseRequestTarget(raw: string): RequestTarget | undefined {
  let target = raw;
  // absolute-form (proxies): keep the path and query only
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  if (abs !== null) target = target.slice(abs[0].length) || '/';
  if (!target.startsWith('/')) return undefined;
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? '' : target.slice(q + 1);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments: string[] = [];
  for (const seg of decoded.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (segments.length === 0) return undefined;
      segments.pop();
      continue;
    }
    segments.push(seg);
  }
  const trailing = decoded.endsWith('/') || decoded.endsWith('/.') || decoded.endsWith('/..');
  const normalized = `/${segments.join('/')}${trailing && segments.length > 0 ? '/' : ''}`;
  let query: URLSearchParams;
  try {
    query = new URLSearchParams(rawQuery);
  } catch {
    return undefined;
  }
  return { path: normalized, query };
}

/** nginx location selection: an exact (`=`) match wins, else the longest matching prefix. */
export function matchLocation(locations: readonly HttpLocation[], uri: string): HttpLocation | undefined {
  let best: HttpLocation | undefined;
  for (const loc of locations) {
    if (loc.exact === true) {
      if (loc.path === uri) return loc;
      continue;
    }
    if (uri.startsWith(loc.path) && (best === undefined || loc.path.length > best.path.length)) best = loc;
  }
  return best;
}

/** Built-in MIME types, used after the location's `types` and before `default_type`. */
const BUILTIN_TYPES: Readonly<Record<string, string>> = {
  m3u8: 'application/vnd.apple.mpegurl',
  ts: 'video/mp2t',
  mpd: 'application/dash+xml',
  m4s: 'video/mp4',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  m4a: 'audio/mp4',
  flv: 'video/x-flv',
  html: 'text/html',
  htm: 'text/html',
  js: 'application/javascript',
  css: 'text/css',
  json: 'application/json',
  xml: 'text/xml',
  xsl: 'text/xml',
  txt: 'text/plain',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  ico: 'image/x-icon',
};

export function contentTypeFor(loc: HttpLocation, file: string): string {
  const ext = path.extname(file).slice(1).toLowerCase();
  if (ext !== '') {
    const t = loc.types[ext] ?? BUILTIN_TYPES[ext];
    if (t !== undefined) return t;
  }
  return loc.defaultType ?? 'application/octet-stream';
}

export type StaticLookup =
  | { kind: 'file'; handle: FileHandle; stats: Stats; file: string }
  | { kind: 'error'; status: 400 | 403 | 404 };

function within(base: string, p: string): boolean {
  if (p === base) return true;
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;
  return p.startsWith(prefix);
}

function errnoStatus(e: unknown): 403 | 404 | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENAMETOOLONG':
      return 404;
    case 'EACCES':
    case 'EPERM':
    case 'ELOOP':
      return 403;
    default:
      return undefined;
  }
}

const INDEX_FILE = 'index.html';

/**
 * Maps a normalized URI to a file of a `root` / `alias` location and opens it.
 * The caller closes `handle`. Directories: `index.html` when the URI ends with
 * '/', else 403 (no autoindex).
 */
export async function lookupStatic(loc: HttpLocation, uri: string): Promise<StaticLookup> {
  let base: string;
  let file: string;
  if (loc.alias !== undefined) {
    // nginx: the location prefix is replaced by the alias
    base = path.resolve(loc.alias);
    file = path.resolve(loc.alias + uri.slice(loc.path.length));
  } else if (loc.root !== undefined) {
    base = path.resolve(loc.root);
    file = path.resolve(path.join(base, uri));
  } else {
    return { kind: 'error', status: 404 };
  }
  // lexical containment (e.g. `location /files { alias /d/files/; }` asked for `/files../x`)
  if (!within(base, file)) return { kind: 'error', status: 403 };
  let realBase: string;
  let realFile: string;
  try {
    realBase = await realpath(base);
    realFile = await realpath(file);
  } catch (e) {
    const status = errnoStatus(e);
    if (status === undefined) throw e;
    return { kind: 'error', status };
  }
  // symlinks must not lead out of the tree
  if (!within(realBase, realFile)) return { kind: 'error', status: 403 };
  let handle: FileHandle;
  try {
    handle = await open(realFile, 'r');
  } catch (e) {
    const status = errnoStatus(e);
    if (status === undefined) throw e;
    return { kind: 'error', status };
  }
  let stats: Stats;
  try {
    stats = await handle.stat();
  } catch (e) {
    await handle.close();
    throw e;
  }
  if (stats.isDirectory()) {
    await handle.close();
    if (uri.endsWith('/')) {
      const index = await lookupStatic(loc, uri + INDEX_FILE);
      if (index.kind === 'file') return index;
      if (index.status !== 404) return index;
    }
    return { kind: 'error', status: 403 };
  }
  if (!stats.isFile()) {
    await handle.close();
    return { kind: 'error', status: 403 };
  }
  return { kind: 'file', handle, stats, file };
}

/** A single `bytes=` range, resolved against the size; 'invalid' = 416; undefined = serve the whole file. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'invalid' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (m === null) return undefined; // multiple ranges or another unit: ignored (a 200 is allowed)
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return 'invalid';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  if (!Number.isSafeInteger(start) || start >= size) return 'invalid';
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return 'invalid';
  return { start, end };
}
