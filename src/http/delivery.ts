import path from 'node:path';
import type http from 'node:http';
import { EXPIRES_MAX_SECONDS, expandVariables, type ExpiresRule, type HeaderRule, type HttpReturn, type HttpRules } from '../config/http-rules.js';
import type { HttpLocation } from '../config/types.js';

/**
 * Response headers of the http{} locations that serve HLS/DASH files (and any
 * other): nginx's `add_header` (2xx/3xx only unless `always`), `expires`, the
 * default cache headers of playlists and fragments, and `If-Range`.
 */

export type Headers = Record<string, string | string[]>;

/** nginx adds `add_header` headers (without `always`) and `expires` to these statuses only. */
const SUCCESS_STATUSES: ReadonlySet<number> = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308]);

export function addsHeaders(status: number): boolean {
  return SUCCESS_STATUSES.has(status);
}

/** nginx's `expires epoch` and `expires max` dates */
const EPOCH_DATE = 'Thu, 01 Jan 1970 00:00:01 GMT';
const MAX_DATE = 'Thu, 31 Dec 2037 23:55:55 GMT';

/**
 * Default `Cache-Control` of files served from root/alias when the location
 * has no `expires` and no `add_header Cache-Control`: a live playlist or MPD
 * changes every fragment (`no-cache`: a cache must revalidate, Last-Modified
 * makes that cheap); a media fragment never changes once written, but its
 * name can come back when a stream restarts its numbering, so it is cacheable
 * for a while only. An init segment changes when the publisher's codec
 * settings do: `no-cache` too.
 */
export const PLAYLIST_CACHE_CONTROL = 'no-cache';
export const FRAGMENT_MAX_AGE_SECONDS = 30;

const PLAYLIST_EXTENSIONS: ReadonlySet<string> = new Set(['m3u8', 'mpd']);
const FRAGMENT_EXTENSIONS: ReadonlySet<string> = new Set(['ts', 'm4s', 'm4v', 'm4a', 'mp4', 'aac', 'key']);

/** The default Cache-Control for a served file, or undefined (not an HLS/DASH file). */
export function defaultCacheControl(file: string): string | undefined {
  const ext = path.extname(file).slice(1).toLowerCase();
  if (PLAYLIST_EXTENSIONS.has(ext)) return PLAYLIST_CACHE_CONTROL;
  if (!FRAGMENT_EXTENSIONS.has(ext)) return undefined;
  if (/init/i.test(path.basename(file))) return PLAYLIST_CACHE_CONTROL;
  return `max-age=${FRAGMENT_MAX_AGE_SECONDS}`;
}

/** `Expires` / `Cache-Control` of an `expires` rule at `now` (ms), for a file modified at `mtime` (ms). */
export function expiresHeaders(rule: ExpiresRule, now: number, mtime: number | undefined): Headers {
  switch (rule.kind) {
    case 'off':
      return {};
    case 'epoch':
      return { Expires: EPOCH_DATE, 'Cache-Control': 'no-cache' };
    case 'max':
      return { Expires: MAX_DATE, 'Cache-Control': `max-age=${EXPIRES_MAX_SECONDS}` };
    case 'offset': {
      const from = rule.modified && mtime !== undefined ? mtime : now;
      const at = from + rule.seconds * 1000;
      const left = Math.floor((at - now) / 1000);
      const cc = rule.seconds < 0 || left < 0 ? 'no-cache' : `max-age=${left}`;
      return { Expires: new Date(at).toUTCString(), 'Cache-Control': cc };
    }
    default: {
      const never: never = rule;
      throw new Error(`internal: expires ${String(never)}`);
    }
  }
}

/** The add_header lines of a location: its rules' (with `always`), else the plain list. */
export function headerRules(loc: HttpLocation): readonly HeaderRule[] {
  return loc.rules?.headers ?? loc.addHeaders.map(([name, value]) => ({ name, value, always: false }));
}

function hasHeader(headers: Headers, name: string): string | undefined {
  const lower = name.toLowerCase();
  return Object.keys(headers).find((k) => k.toLowerCase() === lower);
}

/** `headers` plus the location's add_header lines that apply to `status` (same-named ones are sent as several lines, as nginx does). */
export function withAddedHeaders(loc: HttpLocation | undefined, status: number, headers: Headers): Headers {
  if (loc === undefined) return headers;
  const all: Headers = { ...headers };
  const success = addsHeaders(status);
  for (const h of headerRules(loc)) {
    if (!success && !h.always) continue;
    const existing = hasHeader(all, h.name);
    if (existing === undefined) all[h.name] = h.value;
    else all[existing] = [...[all[existing] ?? []].flat(), h.value];
  }
  return all;
}

/** The cache headers of a file response: `expires` when configured, else the HLS/DASH defaults unless add_header sets Cache-Control. */
export function fileCacheHeaders(loc: HttpLocation, file: string, mtime: number, now: number): Headers {
  const rule = loc.rules?.expires;
  if (rule !== undefined) return expiresHeaders(rule, now, mtime);
  if (headerRules(loc).some((h) => h.name.toLowerCase() === 'cache-control')) return {};
  const cc = defaultCacheControl(file);
  return cc === undefined ? {} : { 'Cache-Control': cc };
}

/**
 * `If-Range`: the range is honoured only when the validator names the file's
 * current version. We send no ETag, so only the Last-Modified date matches
 * (an entity tag never does: the whole file is sent, which is always correct).
 */
export function ifRangeMatches(ifRange: string | undefined, lastModified: string): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return false;
  return v === lastModified;
}

/** nginx's value of a variable for this request (the names http-rules.ts accepts). */
export function requestVariable(req: http.IncomingMessage, name: string): string | undefined {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  switch (name) {
    case 'host':
      return (req.headers.host ?? '').replace(/:\d+$/, '');
    case 'uri':
      return q < 0 ? url : url.slice(0, q);
    case 'request_uri':
      return url;
    case 'args':
    case 'query_string':
      return q < 0 ? '' : url.slice(q + 1);
    case 'scheme':
      return 'http';
    case 'request_method':
      return req.method ?? 'GET';
    case 'remote_addr':
      return req.socket.remoteAddress ?? '';
    case 'server_port':
      return String(req.socket.localPort ?? '');
    default: {
      if (!name.startsWith('http_')) return undefined;
      const v = req.headers[name.slice(5).toLowerCase().replace(/_/g, '-')];
      return Array.isArray(v) ? v.join(', ') : v;
    }
  }
}

/** The location's header values and a return text with their variables expanded for this request (the same objects when there are none). */
export function expandForRequest(loc: HttpLocation, ret: HttpReturn | undefined, req: http.IncomingMessage): { loc: HttpLocation; ret: HttpReturn | undefined } {
  const lookup = (name: string): string | undefined => requestVariable(req, name);
  const rules = loc.rules;
  let out = loc;
  if (rules !== undefined && rules.headers.some((h) => h.value.includes('$'))) {
    out = { ...loc, rules: { ...rules, headers: rules.headers.map((h) => ({ ...h, value: expandVariables(h.value, lookup) })) } };
  }
  const text = ret?.text;
  const expanded = ret !== undefined && text !== undefined && text.includes('$') ? { status: ret.status, text: expandVariables(text, lookup) } : ret;
  return { loc: out, ret: expanded };
}

/** The location as a request sees it once a matching `if` block without `return` gave its own add_header lines. */
export function withRuleHeaders(loc: HttpLocation, rules: HttpRules, headers: readonly HeaderRule[] | undefined): HttpLocation {
  if (headers === undefined) return loc;
  return { ...loc, rules: { ...rules, headers } };
}
