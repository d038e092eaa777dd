/**
 * HLS playlists (RFC 8216), as nginx-rtmp writes them: the media playlist of
 * one stream and the master playlist of `hls_variant`. Pure text functions.
 */

export interface PlaylistFragment {
  /** media sequence number */
  readonly seq: number;
  /** the URI as written in the playlist */
  readonly uri: string;
  /** ms */
  readonly durationMs: number;
  /** EXT-X-DISCONTINUITY before it */
  readonly discont: boolean;
  /** AES-128: the key's URI and IV (hex, 32 digits); undefined when not encrypted */
  readonly key?: { readonly uri: string; readonly iv: string };
}

export interface MediaPlaylist {
  readonly fragments: readonly PlaylistFragment[];
  /** the sequence number the first fragment would have when there is none */
  readonly nextSeq: number;
  /** discontinuities that slid out of the window (EXT-X-DISCONTINUITY-SEQUENCE) */
  readonly discontinuitySeq: number;
  /** ms: the configured fragment length (the target duration is never below it) */
  readonly fragmentMs: number;
  readonly event: boolean;
  readonly ended: boolean;
}

const MS_PER_S = 1000;

/** EXT-X-TARGETDURATION: every EXTINF, rounded up, is at most this (RFC 8216 4.3.3.1, honest for old and new rounding rules). */
export function targetDuration(fragments: readonly PlaylistFragment[], fragmentMs: number): number {
  let max = Math.floor(fragmentMs / MS_PER_S);
  for (const f of fragments) max = Math.max(max, Math.ceil(f.durationMs / MS_PER_S));
  return Math.max(1, max);
}

export function renderMediaPlaylist(p: MediaPlaylist): string {
  const first = p.fragments[0];
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-MEDIA-SEQUENCE:${first?.seq ?? p.nextSeq}`, `#EXT-X-TARGETDURATION:${targetDuration(p.fragments, p.fragmentMs)}`];
  if (p.discontinuitySeq > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${p.discontinuitySeq}`);
  if (p.event) lines.push('#EXT-X-PLAYLIST-TYPE:EVENT');
  let keyUri: string | undefined;
  for (const f of p.fragments) {
    if (f.discont) lines.push('#EXT-X-DISCONTINUITY');
    if (f.key !== undefined && f.key.uri !== keyUri) {
      lines.push(`#EXT-X-KEY:METHOD=AES-128,URI="${f.key.uri}",IV=0x${f.key.iv}`);
      keyUri = f.key.uri;
    }
    lines.push(`#EXTINF:${(f.durationMs / MS_PER_S).toFixed(3)},`, f.uri);
  }
  if (p.ended) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}

/** The master playlist of `hls_variant`: one EXT-X-STREAM-INF per variant. */
export function renderMasterPlaylist(variants: readonly { readonly uri: string; readonly params: readonly string[] }[]): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3'];
  for (const v of variants) lines.push(['#EXT-X-STREAM-INF:PROGRAM-ID=1', ...v.params].join(','), v.uri);
  return lines.join('\n') + '\n';
}

/** What `hls_continuous` takes back from a playlist we wrote before (a server restart). */
export interface RestoredPlaylist {
  readonly mediaSeq: number;
  readonly fragments: { readonly seq: number; readonly uri: string; readonly durationMs: number; readonly discont: boolean }[];
}

/** the most fragments read back from one playlist (a playlist is ours and small) */
const MAX_RESTORED = 10_000;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * Reads back a media playlist of ours (the sequence, each fragment's URI,
 * duration and discontinuity); undefined for anything else. Never throws:
 * the file is on disk and may be damaged or foreign.
 */
export function parseMediaPlaylist(text: string): RestoredPlaylist | undefined {
  const lines = text.split(/\r?\n/);
  if (lines[0] !== '#EXTM3U') return undefined;
  let mediaSeq: number | undefined;
  let duration: number | undefined;
  let discont = false;
  const fragments: RestoredPlaylist['fragments'] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) {
      const n = Number(line.slice('#EXT-X-MEDIA-SEQUENCE:'.length));
      if (!Number.isSafeInteger(n) || n < 0) return undefined;
      mediaSeq = n;
    } else if (line.startsWith('#EXTINF:')) {
      const d = Number.parseFloat(line.slice('#EXTINF:'.length));
      if (!Number.isFinite(d) || d < 0 || d > 1e6) return undefined;
      duration = Math.round(d * MS_PER_S);
    } else if (line === '#EXT-X-DISCONTINUITY') {
      discont = true;
    } else if (line !== '' && !line.startsWith('#')) {
      if (duration === undefined || mediaSeq === undefined) return undefined;
      if (fragments.length >= MAX_RESTORED || mediaSeq + fragments.length >= MAX_SEQ) return undefined;
      fragments.push({ seq: mediaSeq + fragments.length, uri: line, durationMs: duration, discont });
      duration = undefined;
      discont = false;
    }
  }
  return mediaSeq === undefined ? undefined : { mediaSeq, fragments };
}
