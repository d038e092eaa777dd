/**
 * The HTTP delivery directives of a `location` (issue 16): `flv_live`
 * (HTTP-FLV and WebSocket-FLV players, our extension), `metrics` (Prometheus
 * text, our extension) and nginx-rtmp's `rtmp_stat_stylesheet`. The loader
 * calls readHttpDelivery() with the location's own directives.
 */

export interface HttpDelivery {
  /** `flv_live on`: GET /APP/NAME.flv (and its WebSocket upgrade) plays the live stream as FLV */
  readonly flvLive: boolean;
  /** `metrics`: this location serves Prometheus text */
  readonly metrics: boolean;
  /** `rtmp_stat_stylesheet URL`: an xml-stylesheet line in the stat XML */
  readonly statStylesheet: string | undefined;
}

/** One directive's read value, as the loader keeps it (structural: the loader's own type is private). */
type ReadValue = { readonly kind: string; readonly value?: unknown };

/** Reads the delivery directives of one location (`get(name)`: the entries written in it, in order); undefined when it has none. */
export function readHttpDelivery(get: (name: string) => readonly { readonly parsed: ReadValue }[]): HttpDelivery | undefined {
  if (get('flv_live').length === 0 && get('metrics').length === 0 && get('rtmp_stat_stylesheet').length === 0) return undefined;
  const last = (name: string): ReadValue | undefined => {
    const all = get(name);
    return all[all.length - 1]?.parsed;
  };
  const flv = last('flv_live');
  const sheet = last('rtmp_stat_stylesheet');
  return {
    flvLive: flv?.kind === 'flag' && flv.value === true,
    metrics: get('metrics').length > 0,
    statStylesheet: sheet?.kind === 'text' && typeof sheet.value === 'string' ? sheet.value : undefined,
  };
}
