import path from 'node:path';

/**
 * HLS and DASH viewers: HTTP clients that fetch a live stream's playlists and
 * fragments, one request at a time, with no connection that lasts. A viewer
 * is a (client address, application, stream, protocol) seen fetching one of
 * the stream's files; it is gone when not seen for twice the fragment length
 * (at least MIN_VIEWER_TTL_MS: a player polls its playlist once a fragment).
 *
 * Knows no socket and no muxer: the HTTP front end reports each file it
 * served (`served`), the muxers' settings say which directories hold which
 * application's files (`ViewerRoot`), and the stream core says which streams
 * are live. The stat page and /metrics list the viewers as player
 * connections of protocol `hls` / `dash`.
 */

export const ViewerProtocol = {
  Hls: 'hls',
  Dash: 'dash',
} as const;
export type ViewerProtocol = (typeof ViewerProtocol)[keyof typeof ViewerProtocol];

/** a viewer not seen for this long is gone, whatever the fragment length */
export const MIN_VIEWER_TTL_MS = 2_000;
/** when the fragment length is unknown */
export const DEFAULT_VIEWER_TTL_MS = 30_000;
/** a viewer is gone after this many fragment lengths without a request */
export const VIEWER_TTL_FRAGMENTS = 2;

/** how often `served` forgets the viewers gone */
const PRUNE_INTERVAL_MS = 1_000;

/** The files of each protocol, by extension (playlists, media fragments, init segments, keys). */
const EXTENSIONS: Readonly<Record<ViewerProtocol, ReadonlySet<string>>> = {
  [ViewerProtocol.Hls]: new Set(['m3u8', 'ts', 'key']),
  [ViewerProtocol.Dash]: new Set(['mpd', 'm4v', 'm4a', 'm4s']),
};

/** A directory a muxer writes one application's files into (hls_path / dash_path). */
export interface ViewerRoot {
  /** absolute directory */
  readonly dir: string;
  readonly app: string;
  readonly protocol: ViewerProtocol;
  /** NAME/index.m3u8 (hls_nested, dash_nested) rather than NAME.m3u8 */
  readonly nested: boolean;
  /** ms */
  readonly fragmentMs: number;
}

export interface ViewerSources {
  /** the directories of the applications configured now */
  roots(): readonly ViewerRoot[];
  /** whether a stream is published now */
  isLive(app: string, name: string): boolean;
}

export interface Viewer {
  readonly id: string;
  readonly app: string;
  readonly name: string;
  readonly protocol: ViewerProtocol;
  readonly remoteAddress: string;
  /** ms since epoch */
  readonly firstSeen: number;
  lastSeen: number;
  /** bytes of the files served to it */
  bytesOut: number;
  /** the Referer of its last request, if any */
  pageUrl: string;
  /** ms without a request after which it is gone */
  readonly ttlMs: number;
}

function within(dir: string, file: string): boolean {
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  return file.startsWith(prefix);
}

/**
 * The stream names a served file may belong to, for a root whose directory
 * holds it: nested layouts name the stream by the directory (NAME/index.m3u8,
 * NAME/12.ts); flat ones by the file name (NAME.m3u8, NAME.mpd) or the file
 * name before its last `-` (NAME-12.ts, NAME-init.m4v, NAME-1700000000.m4a).
 * Empty when the file is not one of the root's protocol.
 */
export function candidateNames(root: ViewerRoot, file: string): string[] {
  const ext = path.extname(file).slice(1).toLowerCase();
  if (!EXTENSIONS[root.protocol].has(ext)) return [];
  const dir = path.resolve(root.dir);
  const abs = path.resolve(file);
  if (!within(dir, abs)) return [];
  const parts = path.relative(dir, abs).split(path.sep);
  if (parts.length === 2 && root.nested && parts[0] !== undefined && parts[0] !== '') return [parts[0]];
  if (parts.length !== 1 || parts[0] === undefined) return [];
  const base = parts[0].slice(0, parts[0].length - ext.length - 1);
  const out = base === '' ? [] : [base];
  const dash = base.lastIndexOf('-');
  if (dash > 0) out.push(base.slice(0, dash));
  return out;
}

export function viewerTtl(fragmentMs: number): number {
  if (!(fragmentMs > 0)) return DEFAULT_VIEWER_TTL_MS;
  return Math.max(MIN_VIEWER_TTL_MS, VIEWER_TTL_FRAGMENTS * fragmentMs);
}

export class ViewerRegistry {
  private readonly viewers = new Map<string, Viewer>();
  private count = 0;
  private lastPrune = 0;

  constructor(
    private readonly sources: ViewerSources,
    /** told of each viewer that is gone (its bytes, for monotonic counters) */
    private readonly onGone?: (v: Viewer) => void,
  ) {}

  /**
   * The HTTP front end served `file` (absolute) to `address`: records a
   * viewer of the live stream the file belongs to, if any. Returns it.
   */
  served(file: string, address: string, bytes: number, pageUrl: string, now = Date.now()): Viewer | undefined {
    // nobody may ask for the list: the gone ones are forgotten here too (at most once a second)
    if (now - this.lastPrune >= PRUNE_INTERVAL_MS) {
      this.lastPrune = now;
      this.list(now);
    }
    for (const root of this.sources.roots()) {
      for (const name of candidateNames(root, file)) {
        if (!this.sources.isLive(root.app, name)) continue;
        return this.seen(root, name, address, bytes, pageUrl, now);
      }
    }
    return undefined;
  }

  private seen(root: ViewerRoot, name: string, address: string, bytes: number, pageUrl: string, now: number): Viewer {
    const key = `${root.protocol}\0${root.app}\0${name}\0${address}`;
    let v = this.viewers.get(key);
    if (v !== undefined && now - v.lastSeen > v.ttlMs) {
      this.gone(key, v);
      v = undefined;
    }
    if (v === undefined) {
      v = {
        id: `${root.protocol}-${(++this.count).toString(36)}`,
        app: root.app,
        name,
        protocol: root.protocol,
        remoteAddress: address,
        firstSeen: now,
        lastSeen: now,
        bytesOut: 0,
        pageUrl,
        ttlMs: viewerTtl(root.fragmentMs),
      };
      this.viewers.set(key, v);
    }
    v.lastSeen = now;
    v.bytesOut += bytes;
    if (pageUrl !== '') v.pageUrl = pageUrl;
    return v;
  }

  private gone(key: string, v: Viewer): void {
    this.viewers.delete(key);
    this.onGone?.(v);
  }

  /** The viewers now; the ones not seen within their time, or whose stream ended, are forgotten. */
  list(now = Date.now()): Viewer[] {
    const out: Viewer[] = [];
    for (const [key, v] of this.viewers) {
      if (now - v.lastSeen > v.ttlMs || !this.sources.isLive(v.app, v.name)) this.gone(key, v);
      else out.push(v);
    }
    return out;
  }

  /** Forgets a viewer (the control API's drop: it comes back with its next request). */
  drop(id: string): boolean {
    for (const [key, v] of this.viewers) {
      if (v.id === id) {
        this.gone(key, v);
        return true;
      }
    }
    return false;
  }
}
