/**
 * The DASH section of an application (nginx-rtmp's ngx_rtmp_dash_module
 * directives, with the clock compensation of its maintained fork): the typed
 * settings and their reading from one application block's resolved directives.
 */

export const DashClockCompensation = { Off: 'off', Ntp: 'ntp', HttpHead: 'http_head', HttpIso: 'http_iso' } as const;
export type DashClockCompensation = (typeof DashClockCompensation)[keyof typeof DashClockCompensation];
export const DASH_CLOCK_COMPENSATION_VALUES: readonly string[] = Object.values(DashClockCompensation);

export interface DashSettings {
  readonly enabled: boolean;
  /** undefined: `dash on` writes nothing (nginx-rtmp refuses to start without it; we log it once) */
  readonly path: string | undefined;
  /** ms */
  readonly fragment: number;
  /** ms */
  readonly playlistLength: number;
  readonly nested: boolean;
  readonly cleanup: boolean;
  readonly clockCompensation: DashClockCompensation;
  /** the time source a player asks when clock compensation is on */
  readonly clockHelperUri: string | undefined;
}

/** What the loader's resolver gives for one application (values after inheritance, defaults applied). */
export interface DashDirectiveSource {
  flag(name: string): boolean;
  int(name: string): number;
  text(name: string): string | undefined;
}

function clockCompensation(text: string | undefined): DashClockCompensation {
  switch (text) {
    case DashClockCompensation.Ntp:
      return DashClockCompensation.Ntp;
    case DashClockCompensation.HttpHead:
      return DashClockCompensation.HttpHead;
    case DashClockCompensation.HttpIso:
      return DashClockCompensation.HttpIso;
    default:
      return DashClockCompensation.Off;
  }
}

export function readDashSettings(r: DashDirectiveSource): DashSettings {
  return {
    enabled: r.flag('dash'),
    path: r.text('dash_path'),
    fragment: r.int('dash_fragment'),
    playlistLength: r.int('dash_playlist_length'),
    nested: r.flag('dash_nested'),
    cleanup: r.flag('dash_cleanup'),
    clockCompensation: clockCompensation(r.text('dash_clock_compensation')?.toLowerCase()),
    clockHelperUri: r.text('dash_clock_helper_uri'),
  };
}
