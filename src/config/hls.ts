/**
 * The HLS section of an application (nginx-rtmp's ngx_rtmp_hls_module
 * directives): its typed settings and their reading from the resolved
 * directives of one application block.
 */

export type HlsNaming = 'sequential' | 'timestamp' | 'system';
export type HlsSlicing = 'plain' | 'aligned';
export type HlsPlaylistType = 'live' | 'event';

export interface HlsVariant {
  /** the stream name suffix of this variant (`_low`) */
  readonly suffix: string;
  /** EXT-X-STREAM-INF attributes as written (`BANDWIDTH=160000`) */
  readonly params: readonly string[];
}

export interface HlsSettings {
  readonly enabled: boolean;
  /** undefined: `hls on` writes nothing (as nginx-rtmp) */
  readonly path: string | undefined;
  /** ms */
  readonly fragment: number;
  /** ms: a fragment longer than this is cut without a keyframe */
  readonly maxFragment: number;
  /** ms */
  readonly playlistLength: number;
  /** ms */
  readonly sync: number;
  readonly continuous: boolean;
  readonly nested: boolean;
  readonly baseUrl: string;
  readonly cleanup: boolean;
  readonly naming: HlsNaming;
  readonly granularity: number;
  readonly slicing: HlsSlicing;
  readonly type: HlsPlaylistType;
  readonly keys: boolean;
  /** defaults to `path` */
  readonly keyPath: string | undefined;
  readonly keyUrl: string;
  /** 0: one key for the whole publish */
  readonly fragmentsPerKey: number;
  /** ms */
  readonly maxAudioDelay: number;
  /** bytes */
  readonly audioBufferSize: number;
  readonly variants: readonly HlsVariant[];
}

/** What the loader's resolver gives for one application (values after inheritance, defaults applied). */
export interface HlsDirectiveSource {
  flag(name: string): boolean;
  int(name: string): number;
  text(name: string): string | undefined;
  entries(name: string): readonly { readonly node: { readonly args: readonly string[] } }[];
}

/** nginx-rtmp: hls_max_fragment defaults to ten fragments */
const MAX_FRAGMENT_FACTOR = 10;

export function readHlsSettings(r: HlsDirectiveSource): HlsSettings {
  const fragment = r.int('hls_fragment');
  const maxFragment = r.entries('hls_max_fragment').length > 0 ? r.int('hls_max_fragment') : fragment * MAX_FRAGMENT_FACTOR;
  const naming = r.text('hls_fragment_naming');
  const path = r.text('hls_path');
  return {
    enabled: r.flag('hls'),
    path,
    fragment,
    maxFragment: Math.max(maxFragment, fragment),
    playlistLength: r.int('hls_playlist_length'),
    sync: r.int('hls_sync'),
    continuous: r.flag('hls_continuous'),
    nested: r.flag('hls_nested'),
    baseUrl: r.text('hls_base_url') ?? '',
    cleanup: r.flag('hls_cleanup'),
    naming: naming === 'timestamp' ? 'timestamp' : naming === 'system' ? 'system' : 'sequential',
    granularity: r.int('hls_fragment_naming_granularity'),
    slicing: r.text('hls_fragment_slicing') === 'aligned' ? 'aligned' : 'plain',
    type: r.text('hls_type') === 'event' ? 'event' : 'live',
    keys: r.flag('hls_keys'),
    keyPath: r.text('hls_key_path') ?? path,
    keyUrl: r.text('hls_key_url') ?? '',
    fragmentsPerKey: r.int('hls_fragments_per_key'),
    maxAudioDelay: r.int('hls_max_audio_delay'),
    audioBufferSize: r.int('hls_audio_buffer_size'),
    variants: r.entries('hls_variant').flatMap((e) => {
      const [suffix, ...params] = e.node.args;
      return suffix === undefined ? [] : [{ suffix, params }];
    }),
  };
}
