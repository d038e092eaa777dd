import { DashClockCompensation } from '../config/dash.js';

/**
 * The MPEG-DASH manifest (ISO/IEC 23009-1, the isoff-live profile) of one
 * live stream: one Period, one AdaptationSet per track, a SegmentTemplate
 * with a SegmentTimeline naming the segments by their start time ($Time$),
 * as nginx-rtmp writes it. Pure: text from a description.
 */

export interface MpdSegment {
  /** start (the fragment's tfdt), in the timescale */
  readonly t: number;
  /** duration, in the timescale */
  readonly d: number;
}

export interface MpdTrack {
  readonly kind: 'video' | 'audio';
  /** RFC 6381 codecs string */
  readonly codecs: string;
  /** bits per second (an estimate from the fragments written) */
  readonly bandwidth: number;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
  /** the init segment's URL, relative to the MPD */
  readonly initialization: string;
  /** the media URL template, relative to the MPD, with $Time$ */
  readonly media: string;
  /** the segments listed, oldest first */
  readonly segments: readonly MpdSegment[];
}

export interface MpdDescription {
  /** dynamic while the stream is live; static once it ended */
  readonly type: 'dynamic' | 'static';
  /** ticks per second of segment times (1000: milliseconds) */
  readonly timescale: number;
  /** the media time at the Period's start (in the timescale) */
  readonly presentationTimeOffset: number;
  /** wall clock at which media time presentationTimeOffset was live (ms since the epoch) */
  readonly availabilityStartTime: number;
  /** wall clock of this version (ms since the epoch) */
  readonly publishTime: number;
  /** ms: how often a player reloads the MPD (the fragment length) */
  readonly minimumUpdatePeriod: number;
  /** ms */
  readonly minBufferTime: number;
  /** ms: the window of segments kept */
  readonly timeShiftBufferDepth: number;
  readonly tracks: readonly MpdTrack[];
  readonly clock?: { readonly compensation: DashClockCompensation; readonly uri: string };
}

const UTC_TIMING_SCHEMES: Readonly<Record<Exclude<DashClockCompensation, 'off'>, string>> = {
  ntp: 'urn:mpeg:dash:utc:ntp:2014',
  http_head: 'urn:mpeg:dash:utc:http-head:2014',
  http_iso: 'urn:mpeg:dash:utc:http-iso:2014',
};

const PROFILE_LIVE = 'urn:mpeg:dash:profile:isoff-live:2011';
const AUDIO_CHANNEL_SCHEME = 'urn:mpeg:dash:23003:3:audio_channel_configuration:2011';

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

/** ms as an xs:duration: PT12.345S */
export function isoDuration(ms: number): string {
  const whole = Math.max(0, Math.round(ms));
  const frac = whole % 1000;
  return `PT${Math.floor(whole / 1000)}${frac === 0 ? '' : `.${String(frac).padStart(3, '0').replace(/0+$/, '')}`}S`;
}

/** ms since the epoch as xs:dateTime in UTC with milliseconds */
export function isoDateTime(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}

function segmentEnd(segments: readonly MpdSegment[]): number {
  const last = segments[segments.length - 1];
  return last === undefined ? 0 : last.t + last.d;
}

function timeline(segments: readonly MpdSegment[], indent: string): string {
  const lines: string[] = [];
  let i = 0;
  while (i < segments.length) {
    const s = segments[i]!;
    // S@r: following segments of the same duration that start where the previous ended
    let r = 0;
    while (i + r + 1 < segments.length) {
      const n = segments[i + r + 1]!;
      if (n.d !== s.d || n.t !== s.t + (r + 1) * s.d) break;
      r++;
    }
    lines.push(`${indent}<S t="${s.t}" d="${s.d}"${r > 0 ? ` r="${r}"` : ''}/>`);
    i += r + 1;
  }
  return lines.join('\n');
}

function adaptationSet(t: MpdTrack, id: number, d: MpdDescription): string {
  const video = t.kind === 'video';
  const mime = video ? 'video/mp4' : 'audio/mp4';
  const size = video && t.width !== undefined && t.height !== undefined && t.width > 0 && t.height > 0 ? ` width="${t.width}" height="${t.height}"` : '';
  const audioAttrs = !video && t.sampleRate !== undefined ? ` audioSamplingRate="${t.sampleRate}"` : '';
  const channels = !video && t.channels !== undefined ? `\n        <AudioChannelConfiguration schemeIdUri="${AUDIO_CHANNEL_SCHEME}" value="${t.channels}"/>` : '';
  return [
    `    <AdaptationSet id="${id}" contentType="${t.kind}" mimeType="${mime}" segmentAlignment="true" startWithSAP="1">`,
    `      <Representation id="${t.kind}" codecs="${xmlEscape(t.codecs)}" bandwidth="${Math.max(1, Math.round(t.bandwidth))}"${size}${audioAttrs}>${channels}`,
    `        <SegmentTemplate timescale="${d.timescale}" presentationTimeOffset="${d.presentationTimeOffset}" initialization="${xmlEscape(t.initialization)}" media="${xmlEscape(t.media)}">`,
    `          <SegmentTimeline>`,
    timeline(t.segments, '            '),
    `          </SegmentTimeline>`,
    `        </SegmentTemplate>`,
    `      </Representation>`,
    `    </AdaptationSet>`,
  ].join('\n');
}

/** The MPD text. Tracks without a segment are left out. */
export function buildMpd(d: MpdDescription): string {
  const tracks = d.tracks.filter((t) => t.segments.length > 0);
  const attrs = [`xmlns="urn:mpeg:dash:schema:mpd:2011"`, `profiles="${PROFILE_LIVE}"`, `type="${d.type}"`];
  let maxSegment = 0;
  for (const t of tracks) for (const s of t.segments) maxSegment = Math.max(maxSegment, s.d);
  const maxSegmentMs = (maxSegment * 1000) / d.timescale;
  if (d.type === 'dynamic') {
    attrs.push(
      `availabilityStartTime="${isoDateTime(d.availabilityStartTime)}"`,
      `publishTime="${isoDateTime(d.publishTime)}"`,
      `minimumUpdatePeriod="${isoDuration(d.minimumUpdatePeriod)}"`,
      `timeShiftBufferDepth="${isoDuration(d.timeShiftBufferDepth)}"`,
    );
  } else {
    let end = 0;
    for (const t of tracks) end = Math.max(end, segmentEnd(t.segments));
    const duration = ((end - d.presentationTimeOffset) * 1000) / d.timescale;
    attrs.push(`publishTime="${isoDateTime(d.publishTime)}"`, `mediaPresentationDuration="${isoDuration(duration)}"`);
  }
  attrs.push(`maxSegmentDuration="${isoDuration(maxSegmentMs)}"`, `minBufferTime="${isoDuration(d.minBufferTime)}"`);
  const utc = d.clock !== undefined && d.clock.compensation !== DashClockCompensation.Off ? `\n  <UTCTiming schemeIdUri="${UTC_TIMING_SCHEMES[d.clock.compensation]}" value="${xmlEscape(d.clock.uri)}"/>` : '';
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<MPD ${attrs.join('\n     ')}>`,
    `  <Period id="0" start="PT0S">`,
    ...tracks.map((t, i) => adaptationSet(t, i + 1, d)),
    `  </Period>${utc}`,
    `</MPD>`,
    '',
  ].join('\n');
}
