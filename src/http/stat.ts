import type { StatSection } from '../config/types.js';
import { isServerError } from '../core/errors.js';
import { parseAudioSpecificConfig } from '../media/aac.js';
import { AudioFourCC, parseAudioTag } from '../media/audio.js';
import { parseAvcDecoderConfig } from '../media/avc.js';
import { parseHevcDecoderConfig } from '../media/hevc.js';
import { VideoFourCC, parseVideoTag } from '../media/video.js';

/**
 * `rtmp_stat`: the statistics page of nginx-rtmp's stat module, same element
 * names and nesting (so stat.xsl pages and existing scrapers keep working),
 * built from a point-in-time snapshot of the RTMP server. `?format=json`
 * (our extension) returns the same tree as JSON.
 *
 * The snapshot types below are structural: src/server.ts's ServerSnapshot is
 * assignable to StatSnapshot. Optional fields are ones the server may add
 * later; when absent they are derived or reported as 0.
 */

export interface StatConnectionSnapshot {
  readonly id: string;
  /** remote IP address (what nginx-rtmp shows as <address> and matches `addr=` against) */
  readonly remoteAddress: string;
  readonly app: string | undefined;
  readonly flashVer: string;
  readonly swfUrl: string;
  readonly pageUrl: string;
  readonly tcUrl: string;
  /** ms since epoch */
  readonly connectedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly streams: readonly { readonly streamId: number; readonly name: string; readonly role: 'publisher' | 'player' }[];
  /** frames dropped for this connection (player), when the server tracks it */
  readonly dropped?: number;
  /** the connection's current media timestamp (ms), when known */
  readonly timestamp?: number;
  /**
   * How the client is served, when not RTMP: `http-flv`, `ws-flv` (src/http/flv-live.ts),
   * `hls`, `dash` (viewers fetching the stream's files: src/core/viewers.ts). Any
   * entry of the snapshot's connections is listed under its stream and counted.
   */
  readonly protocol?: string;
}

export interface StatStreamSnapshot {
  readonly app: string;
  readonly name: string;
  readonly active: boolean;
  /** connection id of the publisher */
  readonly publisher: string | undefined;
  readonly readers: number;
  readonly hasVideo: boolean;
  readonly hasAudio: boolean;
  /** ms since epoch; 0 when never published */
  readonly publishedAt: number;
  readonly bytesIn: number;
  readonly framesIn: number;
  readonly videoFrames: number;
  readonly audioFrames: number;
  readonly dropped: number;
  /** codec configuration: FLV video / audio tag bodies */
  readonly videoHeader: Buffer | undefined;
  readonly audioHeader: Buffer | undefined;
  /** bytes sent to this stream's readers; default: the sum of its players' connection bytesOut */
  readonly bytesOut?: number;
  /** audio / video payload bytes received; bw_audio / bw_video are 0 without them */
  readonly audioBytesIn?: number;
  readonly videoBytesIn?: number;
  /** frame rate from the metadata; default: measured from videoFrames */
  readonly frameRate?: number;
}

export interface StatSnapshot {
  readonly startedAt: number;
  readonly now: number;
  readonly connections: readonly StatConnectionSnapshot[];
  readonly streams: readonly StatStreamSnapshot[];
  /** connections accepted since start (<naccepted>); default: the current connection count */
  readonly accepted?: number;
  /** total bytes in / out since start; default: the sum over current connections */
  readonly bytesIn?: number;
  readonly bytesOut?: number;
}

/** What the HTTP front end needs from the RTMP server (RtmpServer satisfies it). */
export interface RtmpStatusSource {
  snapshot(): StatSnapshot;
  dropConnection(id: string, reason: string): boolean;
  /** rtmp_control record/start|stop (absent: the server records nothing); answers a status and the file path */
  recordControl?(action: 'start' | 'stop', app: string, name: string, rec: string): { status: number; body: string };
  /** control API redirect: switches the connection's publish/play of `name` (any when undefined) to `newName`; how many NetStreams were switched */
  redirectConnection?(id: string, role: 'publisher' | 'subscriber' | 'client', name: string | undefined, newName: string): number;
}

// ---------------------------------------------------------------------------
// The statistics tree (element names as nginx-rtmp writes them)

export interface StatVideoMeta {
  width: number;
  height: number;
  frame_rate: number;
  codec?: string;
  profile?: string;
  compat?: number;
  level?: string;
}

export interface StatAudioMeta {
  codec?: string;
  profile?: string;
  channels?: number;
  sample_rate?: number;
}

export interface StatClient {
  id: string;
  address: string;
  /** ms connected */
  time: number;
  flashver?: string;
  pageurl?: string;
  swfurl?: string;
  dropped: number;
  /** empty in nginx-rtmp when interleaved; we do not measure it */
  avsync: string;
  timestamp: number;
  publishing: boolean;
  active: boolean;
  /** ours: the protocol of a player that is not RTMP (http-flv, ws-flv, ...); absent for RTMP (nginx-rtmp's elements only) */
  protocol?: string;
}

export interface StatStream {
  name: string;
  /** ms since publish */
  time: number;
  bw_in: number;
  bytes_in: number;
  bw_out: number;
  bytes_out: number;
  bw_audio: number;
  bw_video: number;
  client: StatClient[];
  meta?: { video: StatVideoMeta; audio: StatAudioMeta };
  nclients: number;
  publishing: boolean;
  active: boolean;
}

export interface StatApplication {
  name: string;
  live: { stream: StatStream[]; nclients: number };
}

export interface StatTree {
  nginx_rtmp_version: string;
  compiler: string;
  built: string;
  pid: number;
  /** seconds */
  uptime: number;
  naccepted: number;
  bw_in: number;
  bytes_in: number;
  bw_out: number;
  bytes_out: number;
  server: { application: StatApplication[] }[];
}

// ---------------------------------------------------------------------------
// Bandwidth from byte deltas between requests

interface Sample {
  t: number;
  v: number;
  rate: number;
}

/**
 * Keeps the previous value of every counter so rates can be computed from the
 * delta between two requests (first sight: 0). Counters not seen in a round
 * are forgotten, so gone streams do not accumulate.
 */
export class StatSampler {
  private samples = new Map<string, Sample>();
  private next = new Map<string, Sample>();

  /** Whether `key` was sampled by the previous round. */
  known(key: string): boolean {
    return this.samples.has(key);
  }

  begin(): void {
    this.next = new Map();
  }

  /** Per second rate of `value` (a monotonic counter; a reset counts as 0). */
  rate(key: string, value: number, now: number): number {
    const prev = this.samples.get(key);
    let s: Sample;
    if (prev === undefined) s = { t: now, v: value, rate: 0 };
    else if (now - prev.t <= 0) s = prev;
    else s = { t: now, v: value, rate: value >= prev.v ? ((value - prev.v) * 1000) / (now - prev.t) : 0 };
    this.next.set(key, s);
    return s.rate;
  }

  end(): void {
    this.samples = this.next;
  }
}

// ---------------------------------------------------------------------------
// Codec descriptions (what nginx-rtmp's codec module reports)

/** Legacy FLV video codec ids, named as nginx-rtmp names them. */
const LEGACY_VIDEO_NAMES: Readonly<Record<string, string>> = {
  'legacy:1': 'Jpeg',
  'legacy:2': 'Sorenson-H263',
  'legacy:3': 'ScreenVideo',
  'legacy:4': 'On2-VP6',
  'legacy:5': 'On2-VP6-Alpha',
  'legacy:6': 'ScreenVideo2',
};

const FOURCC_VIDEO_NAMES: Readonly<Record<string, string>> = {
  [VideoFourCC.Avc]: 'H264',
  [VideoFourCC.Hevc]: 'HEVC',
  [VideoFourCC.Av1]: 'AV1',
  [VideoFourCC.Vp8]: 'VP8',
  [VideoFourCC.Vp9]: 'VP9',
};

const LEGACY_AUDIO_NAMES: Readonly<Record<string, string>> = {
  'legacy:0': 'Uncompressed',
  'legacy:1': 'ADPCM',
  'legacy:3': 'LinearLE',
  'legacy:4': 'Nellymoser16',
  'legacy:5': 'Nellymoser8',
  'legacy:6': 'Nellymoser',
  'legacy:7': 'G711A',
  'legacy:8': 'G711U',
  'legacy:11': 'Speex',
  'legacy:15': 'DeviceSpecific',
};

const FOURCC_AUDIO_NAMES: Readonly<Record<string, string>> = {
  [AudioFourCC.Aac]: 'AAC',
  [AudioFourCC.Mp3]: 'MP3',
  [AudioFourCC.Opus]: 'Opus',
  [AudioFourCC.Flac]: 'FLAC',
  [AudioFourCC.Ac3]: 'AC3',
  [AudioFourCC.Eac3]: 'EAC3',
};

const AVC_PROFILES: Readonly<Record<number, string>> = {
  66: 'Baseline',
  77: 'Main',
  88: 'Extended',
  100: 'High',
  110: 'High 10',
  122: 'High 4:2:2',
  244: 'High 4:4:4',
};

const HEVC_PROFILES: Readonly<Record<number, string>> = { 1: 'Main', 2: 'Main 10', 3: 'Main Still Picture', 4: 'RExt' };

/** audioObjectType → the names nginx-rtmp uses (SBR = HE-AAC, PS = HE-AAC v2). */
const AAC_PROFILES: Readonly<Record<number, string>> = { 1: 'Main', 2: 'LC', 3: 'SSR', 4: 'LTP', 5: 'HE', 29: 'HEv2' };

/** H.264 level_idc is ten times the level; HEVC general_level_idc thirty times. */
const AVC_LEVEL_SCALE = 10;
const HEVC_LEVEL_SCALE = 30;

/** Parsers throw ServerErrors on bad input: a malformed header just leaves fields out. */
function tolerate<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (isServerError(e)) return undefined;
    throw e;
  }
}

export function describeVideo(header: Buffer | undefined): Omit<StatVideoMeta, 'frame_rate'> {
  const out: Omit<StatVideoMeta, 'frame_rate'> = { width: 0, height: 0 };
  if (header === undefined || header.length === 0) return out;
  const tag = tolerate(() => parseVideoTag(header));
  if (tag === undefined) return out;
  const name = FOURCC_VIDEO_NAMES[tag.codec] ?? LEGACY_VIDEO_NAMES[tag.codec];
  if (name !== undefined) out.codec = name;
  if (!tag.isSequenceHeader) return out;
  if (tag.codec === VideoFourCC.Avc) {
    const avc = tolerate(() => parseAvcDecoderConfig(tag.data));
    if (avc === undefined) return out;
    const profile = AVC_PROFILES[avc.profile];
    if (profile !== undefined) out.profile = profile;
    out.compat = avc.compatibility;
    if (avc.level !== 0) out.level = (avc.level / AVC_LEVEL_SCALE).toFixed(1);
    out.width = avc.width ?? 0;
    out.height = avc.height ?? 0;
  } else if (tag.codec === VideoFourCC.Hevc) {
    const hevc = tolerate(() => parseHevcDecoderConfig(tag.data));
    if (hevc === undefined) return out;
    const profile = HEVC_PROFILES[hevc.profileIdc];
    if (profile !== undefined) out.profile = profile;
    if (hevc.levelIdc !== 0) out.level = (hevc.levelIdc / HEVC_LEVEL_SCALE).toFixed(1);
  }
  return out;
}

export function describeAudio(header: Buffer | undefined): StatAudioMeta {
  const out: StatAudioMeta = {};
  if (header === undefined || header.length === 0) return out;
  const tag = tolerate(() => parseAudioTag(header));
  if (tag === undefined) return out;
  const name = FOURCC_AUDIO_NAMES[tag.codec] ?? LEGACY_AUDIO_NAMES[tag.codec];
  if (name !== undefined) out.codec = name;
  if (!tag.enhanced) {
    out.channels = tag.stereo ? 2 : 1;
    if (tag.soundRate > 0) out.sample_rate = tag.soundRate;
  }
  if (tag.codec === AudioFourCC.Aac && tag.isSequenceHeader) {
    const aac = tolerate(() => parseAudioSpecificConfig(tag.data));
    if (aac !== undefined) {
      const profile = AAC_PROFILES[aac.objectType];
      if (profile !== undefined) out.profile = profile;
      if (aac.channelConfig !== 0) out.channels = aac.channelConfig;
      out.sample_rate = aac.sampleRate;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Snapshot → tree

export interface StatInfo {
  version: string;
  compiler: string;
  built: string;
  pid: number;
}

const BITS_PER_BYTE = 8;

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function buildClient(c: StatConnectionSnapshot, publishing: boolean, active: boolean, now: number): StatClient {
  const client: StatClient = {
    id: c.id,
    address: c.remoteAddress,
    time: Math.max(0, now - c.connectedAt),
    dropped: c.dropped ?? 0,
    avsync: '',
    timestamp: c.timestamp ?? 0,
    publishing,
    active,
  };
  if (c.flashVer !== '') client.flashver = c.flashVer;
  if (c.pageUrl !== '') client.pageurl = c.pageUrl;
  if (c.swfUrl !== '') client.swfurl = c.swfUrl;
  if (c.protocol !== undefined && c.protocol !== 'rtmp') client.protocol = c.protocol;
  return client;
}

function buildStream(s: StatStreamSnapshot, conns: readonly StatConnectionSnapshot[], sampler: StatSampler, now: number): StatStream {
  const key = `${s.app}\0${s.name}`;
  // clients of the stream: the publisher first, then the players (nginx-rtmp lists every session of the stream)
  const members = conns.flatMap((c) =>
    c.app === s.app ? c.streams.filter((x) => x.name === s.name).map((x) => ({ c, publishing: x.role === 'publisher' })) : [],
  );
  members.sort((a, b) => Number(b.publishing) - Number(a.publishing));
  const seen = new Set<string>();
  const clients: StatClient[] = [];
  for (const m of members) {
    const k = `${m.c.id}\0${m.publishing}`;
    if (seen.has(k)) continue;
    seen.add(k);
    clients.push(buildClient(m.c, m.publishing, s.active, now));
  }
  const bytesOut = s.bytesOut ?? sum(members.filter((m) => !m.publishing).map((m) => m.c.bytesOut));
  // frame rate: measured between requests; on first sight, the average since the publish started
  const framesKey = `${key}\0frames`;
  const firstSight = !sampler.known(framesKey);
  const deltaFps = sampler.rate(framesKey, s.videoFrames, now);
  const age = now - s.publishedAt;
  const measuredFps = !firstSight ? deltaFps : s.publishedAt > 0 && age > 0 ? (s.videoFrames * 1000) / age : 0;
  const stream: StatStream = {
    name: s.name,
    time: s.publishedAt > 0 ? Math.max(0, now - s.publishedAt) : 0,
    bw_in: Math.round(sampler.rate(`${key}\0in`, s.bytesIn, now) * BITS_PER_BYTE),
    bytes_in: s.bytesIn,
    bw_out: Math.round(sampler.rate(`${key}\0out`, bytesOut, now) * BITS_PER_BYTE),
    bytes_out: bytesOut,
    bw_audio: s.audioBytesIn === undefined ? 0 : Math.round(sampler.rate(`${key}\0audio`, s.audioBytesIn, now) * BITS_PER_BYTE),
    bw_video: s.videoBytesIn === undefined ? 0 : Math.round(sampler.rate(`${key}\0video`, s.videoBytesIn, now) * BITS_PER_BYTE),
    client: clients,
    nclients: clients.length,
    publishing: s.publisher !== undefined,
    active: s.active,
  };
  if (s.publisher !== undefined || s.videoHeader !== undefined || s.audioHeader !== undefined) {
    stream.meta = {
      video: { ...describeVideo(s.videoHeader), frame_rate: Math.round(s.frameRate ?? measuredFps) },
      audio: describeAudio(s.audioHeader),
    };
  }
  return stream;
}

/** Builds the statistics tree; `sampler` keeps the previous counters for the bandwidths. */
export function buildStatTree(snap: StatSnapshot, sampler: StatSampler, info: StatInfo): StatTree {
  const now = snap.now;
  sampler.begin();
  const apps = new Map<string, StatApplication>();
  const appOf = (name: string): StatApplication => {
    let a = apps.get(name);
    if (a === undefined) {
      a = { name, live: { stream: [], nclients: 0 } };
      apps.set(name, a);
    }
    return a;
  };
  for (const s of snap.streams) {
    const app = appOf(s.app);
    const stream = buildStream(s, snap.connections, sampler, now);
    app.live.stream.push(stream);
    app.live.nclients += stream.nclients;
  }
  // applications with connected clients but no stream yet still appear (nginx lists every application)
  for (const c of snap.connections) if (c.app !== undefined) appOf(c.app);
  const bytesIn = snap.bytesIn ?? sum(snap.connections.map((c) => c.bytesIn));
  const bytesOut = snap.bytesOut ?? sum(snap.connections.map((c) => c.bytesOut));
  const tree: StatTree = {
    nginx_rtmp_version: info.version,
    compiler: info.compiler,
    built: info.built,
    pid: info.pid,
    uptime: Math.max(0, Math.floor((now - snap.startedAt) / 1000)),
    naccepted: snap.accepted ?? snap.connections.length,
    bw_in: Math.round(sampler.rate('\0in', bytesIn, now) * BITS_PER_BYTE),
    bytes_in: bytesIn,
    bw_out: Math.round(sampler.rate('\0out', bytesOut, now) * BITS_PER_BYTE),
    bytes_out: bytesOut,
    server: [{ application: [...apps.values()] }],
  };
  sampler.end();
  return tree;
}

/**
 * What a `rtmp_stat` location shows (nginx-rtmp's modes): the global counters
 * always; the streams only with `live`; the connections in them only with
 * `clients` as well. The tree is changed in place.
 */
export function limitStatTree(tree: StatTree, sections: readonly StatSection[]): StatTree {
  const live = sections.includes('live');
  const clients = live && sections.includes('clients');
  if (clients) return tree;
  for (const server of tree.server) {
    for (const app of server.application) {
      if (!live) app.live.stream = [];
      else for (const s of app.live.stream) s.client = [];
    }
  }
  return tree;
}

// ---------------------------------------------------------------------------
// Serialization

/**
 * Escapes text for XML element content and attribute values. Characters XML
 * 1.0 cannot carry at all (C0 controls but tab/LF/CR, lone surrogates,
 * U+FFFE/U+FFFF) become a space, as nginx-rtmp does with control bytes.
 */
export function xmlEscape(s: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, ' ');
  return cleaned.replace(/[&<>"']/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      default:
        return '&apos;';
    }
  });
}

class XmlWriter {
  private readonly parts: string[] = [];

  raw(s: string): this {
    this.parts.push(s);
    return this;
  }

  /** <name>escaped value</name> */
  el(name: string, value: string | number): this {
    this.parts.push(`<${name}>${typeof value === 'number' ? String(value) : xmlEscape(value)}</${name}>`);
    return this;
  }

  opt(name: string, value: string | number | undefined): this {
    return value === undefined ? this : this.el(name, value);
  }

  flag(name: string, on: boolean): this {
    if (on) this.parts.push(`<${name}/>`);
    return this;
  }

  toString(): string {
    return this.parts.join('');
  }
}

const NL = '\r\n';

function writeStream(w: XmlWriter, s: StatStream): void {
  w.raw(`<stream>${NL}`).el('name', s.name).raw(NL).el('time', s.time);
  w.el('bw_in', s.bw_in).el('bytes_in', s.bytes_in).el('bw_out', s.bw_out).el('bytes_out', s.bytes_out);
  w.el('bw_audio', s.bw_audio).el('bw_video', s.bw_video).raw(NL);
  for (const c of s.client) {
    w.raw('<client>').el('id', c.id).el('address', c.address).el('time', c.time);
    w.opt('flashver', c.flashver).opt('pageurl', c.pageurl).opt('swfurl', c.swfurl);
    w.el('dropped', c.dropped).el('avsync', c.avsync).el('timestamp', c.timestamp);
    w.flag('publishing', c.publishing).flag('active', c.active).opt('protocol', c.protocol).raw(`</client>${NL}`);
  }
  if (s.meta !== undefined) {
    const v = s.meta.video;
    const a = s.meta.audio;
    w.raw('<meta><video>').el('width', v.width).el('height', v.height).el('frame_rate', v.frame_rate);
    w.opt('codec', v.codec).opt('profile', v.profile).opt('compat', v.compat).opt('level', v.level).raw('</video>');
    w.raw('<audio>').opt('codec', a.codec).opt('profile', a.profile).opt('channels', a.channels).opt('sample_rate', a.sample_rate);
    w.raw(`</audio></meta>${NL}`);
  }
  w.el('nclients', s.nclients).raw(NL);
  if (s.publishing) w.raw(`<publishing/>${NL}`);
  if (s.active) w.raw(`<active/>${NL}`);
  w.raw(`</stream>${NL}`);
}

/** The XML document nginx-rtmp's stat module writes (text/xml). */
export function statXml(tree: StatTree, stylesheet?: string): string {
  const w = new XmlWriter();
  w.raw(`<?xml version="1.0" encoding="utf-8" ?>${NL}`);
  // rtmp_stat_stylesheet: nginx-rtmp writes the href as configured
  if (stylesheet !== undefined) w.raw(`<?xml-stylesheet type="text/xsl" href="${xmlAttr(stylesheet)}" ?>${NL}`);
  w.raw(`<rtmp>${NL}`);
  w.el('nginx_rtmp_version', tree.nginx_rtmp_version).raw(NL);
  w.el('compiler', tree.compiler).raw(NL);
  w.el('built', tree.built).raw(NL);
  w.el('pid', tree.pid).raw(NL);
  w.el('uptime', tree.uptime).raw(NL);
  w.el('naccepted', tree.naccepted).raw(NL);
  w.el('bw_in', tree.bw_in).raw(NL).el('bytes_in', tree.bytes_in).raw(NL);
  w.el('bw_out', tree.bw_out).raw(NL).el('bytes_out', tree.bytes_out).raw(NL);
  for (const server of tree.server) {
    w.raw(`<server>${NL}`);
    for (const app of server.application) {
      w.raw(`<application>${NL}`).el('name', app.name).raw(`${NL}<live>${NL}`);
      for (const s of app.live.stream) writeStream(w, s);
      w.el('nclients', app.live.nclients).raw(`${NL}</live>${NL}</application>${NL}`);
    }
    w.raw(`</server>${NL}`);
  }
  w.raw(`</rtmp>${NL}`);
  return w.toString();
}

/** Text for a double-quoted XML attribute (a processing instruction's pseudo-attribute). */
function xmlAttr(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Our extension (`?format=json`): the same tree, `{ "rtmp": { ... } }`; flags are booleans. */
export function statJson(tree: StatTree): string {
  return `${JSON.stringify({ rtmp: tree }, null, 2)}\n`;
}
