import { ByteReader } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';
import { SoundFormat, AacPacketType } from './audio.js';
import { AvcPacketType, VideoCodecId, VideoFrameType, VideoPacketType } from './video.js';

/**
 * Reading an MP4 file for VOD (pure: bytes in, tables out). The caller reads
 * the top-level box headers (`parseBoxHeader`) to find `moov` wherever it is
 * (start or end of the file), reads that one box, and `parseMoov` turns it
 * into per-track sample tables held in typed arrays (offset, size, time,
 * composition offset, sync flag: 21 bytes a sample, no object per sample).
 * `flvVideoHeader`/`flvAudioHeader` give the FLV tag header a sample's data
 * is sent behind; `flvSequenceHeaders` the codec headers (avcC / hvcC, the
 * AudioSpecificConfig from esds). Every read is bounds checked; errors are
 * Mp4Malformed.
 */

/** Box types used here (FourCC as text). */
export const Mp4BoxType = {
  Ftyp: 'ftyp',
  Moov: 'moov',
  Mdat: 'mdat',
  Mvhd: 'mvhd',
  Trak: 'trak',
  Tkhd: 'tkhd',
  Mdia: 'mdia',
  Mdhd: 'mdhd',
  Hdlr: 'hdlr',
  Minf: 'minf',
  Stbl: 'stbl',
  Stsd: 'stsd',
  Stts: 'stts',
  Ctts: 'ctts',
  Stss: 'stss',
  Stsc: 'stsc',
  Stsz: 'stsz',
  Stz2: 'stz2',
  Stco: 'stco',
  Co64: 'co64',
  Avc1: 'avc1',
  Avc3: 'avc3',
  Hvc1: 'hvc1',
  Hev1: 'hev1',
  Mp4a: 'mp4a',
  AvcC: 'avcC',
  HvcC: 'hvcC',
  Esds: 'esds',
} as const;

export const Mp4Handler = { Video: 'vide', Audio: 'soun' } as const;

/** A box header is 8 bytes, 16 with a 64-bit size; a caller reading top-level headers reads this many. */
export const MP4_BOX_HEADER_MAX = 16;
const BOX_HEADER = 8;
const LARGE_BOX_HEADER = 16;
/** size field 1: a 64-bit size follows; 0: the box runs to the end of the file */
const SIZE_LARGE = 1;
const SIZE_TO_END = 0;

/** Bounds on what a file may make us allocate. */
export const MP4_LIMITS = {
  /** samples over all tracks (21 bytes each in the tables) */
  maxSamples: 4_000_000,
  /** the moov box read into memory */
  maxMoovBytes: 96 * 1024 * 1024,
  maxTracks: 16,
  /** box nesting */
  maxDepth: 12,
} as const;

/** ES descriptor tags (ISO 14496-1). */
const EsTag = { EsDescriptor: 3, DecoderConfig: 4, DecoderSpecificInfo: 5 } as const;
/** objectTypeIndication of MPEG-4 audio (AAC) */
const OBJECT_TYPE_AAC = 0x40;

export interface BoxHeader {
  readonly type: string;
  /** the whole box, header included; for a box running to the end of the file: fileSize - offset */
  readonly size: number;
  readonly headerSize: number;
}

/**
 * Parses the box header at buf[pos] (at file offset `fileOffset`, in a file of
 * `fileSize` bytes): undefined when buf does not hold the whole header.
 */
export function parseBoxHeader(buf: Buffer, pos: number, fileOffset: number, fileSize: number): BoxHeader | undefined {
  if (buf.length - pos < BOX_HEADER) return undefined;
  let size = buf.readUInt32BE(pos);
  const type = buf.toString('latin1', pos + 4, pos + 8);
  let headerSize = BOX_HEADER;
  if (size === SIZE_LARGE) {
    if (buf.length - pos < LARGE_BOX_HEADER) return undefined;
    const big = buf.readBigUInt64BE(pos + 8);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw serverError(ErrorCode.Mp4Malformed, `box ${JSON.stringify(type)} at ${fileOffset}: size ${big} is too large`);
    size = Number(big);
    headerSize = LARGE_BOX_HEADER;
  } else if (size === SIZE_TO_END) {
    size = fileSize - fileOffset;
  }
  if (size < headerSize || fileOffset + size > fileSize) {
    throw serverError(ErrorCode.Mp4Malformed, `box ${JSON.stringify(type)} at ${fileOffset}: size ${size} does not fit the file (${fileSize} bytes)`);
  }
  return { type, size, headerSize };
}

export type Mp4Codec = 'avc1' | 'hvc1' | 'mp4a';

/** One track's sample table: sample i is sizes[i] bytes at offsets[i], decoded at times[i] ms, shown cts[i] ms later. */
export interface SampleTable {
  readonly count: number;
  readonly offsets: Float64Array;
  readonly sizes: Uint32Array;
  /** decode time in ms */
  readonly times: Float64Array;
  /** composition offset in ms (pts - dts) */
  readonly cts: Int32Array;
  /** 1: a sync sample (keyframe) */
  readonly sync: Uint8Array;
}

export interface Mp4Track {
  readonly id: number;
  readonly kind: 'video' | 'audio';
  readonly codec: Mp4Codec;
  /** avcC / hvcC body, or the AudioSpecificConfig */
  readonly config: Buffer;
  readonly timescale: number;
  readonly durationMs: number;
  readonly width: number;
  readonly height: number;
  readonly sampleRate: number;
  readonly channels: number;
  readonly samples: SampleTable;
}

export interface Mp4Movie {
  readonly durationMs: number;
  /** the first video track and the first audio track the server can play (others are ignored) */
  readonly video: Mp4Track | undefined;
  readonly audio: Mp4Track | undefined;
}

function malformed(msg: string): never {
  throw serverError(ErrorCode.Mp4Malformed, msg);
}

interface Box {
  readonly type: string;
  /** the body (after the header) */
  readonly body: Buffer;
}

/** The child boxes of a container body (bounds checked; a box that runs past its parent is Mp4Malformed). */
function children(body: Buffer): Box[] {
  const out: Box[] = [];
  let pos = 0;
  while (body.length - pos >= BOX_HEADER) {
    let size = body.readUInt32BE(pos);
    const type = body.toString('latin1', pos + 4, pos + 8);
    let header = BOX_HEADER;
    if (size === SIZE_LARGE) {
      if (body.length - pos < LARGE_BOX_HEADER) malformed(`box ${JSON.stringify(type)}: truncated 64-bit size`);
      const big = body.readBigUInt64BE(pos + 8);
      size = big > BigInt(body.length) ? body.length + 1 : Number(big);
      header = LARGE_BOX_HEADER;
    } else if (size === SIZE_TO_END) {
      size = body.length - pos;
    }
    if (size < header || pos + size > body.length) malformed(`box ${JSON.stringify(type)}: size ${size} runs past its parent (${body.length - pos} bytes left)`);
    out.push({ type, body: body.subarray(pos + header, pos + size) });
    pos += size;
  }
  return out;
}

function child(body: Buffer, type: string): Buffer | undefined {
  return children(body).find((b) => b.type === type)?.body;
}

function need(body: Buffer | undefined, what: string): Buffer {
  if (body === undefined) malformed(`no ${what} box`);
  return body;
}

function reader(b: Buffer): ByteReader {
  return new ByteReader(b, 0, b.length, ErrorCode.Mp4Malformed);
}

/** mvhd / mdhd: { timescale, duration } (version 0: 32-bit times, 1: 64-bit). */
function readTimes(body: Buffer, what: string): { timescale: number; duration: number } {
  const r = reader(body);
  const version = r.u8();
  r.skip(3);
  if (version === 1) {
    r.skip(16);
    const timescale = r.u32();
    const hi = r.u32();
    const lo = r.u32();
    return { timescale, duration: hi * 0x1_0000_0000 + lo };
  }
  r.skip(8);
  const timescale = r.u32();
  const duration = r.u32();
  if (timescale === 0) malformed(`${what}: timescale 0`);
  return { timescale, duration: duration === 0xffffffff ? 0 : duration };
}

/** Parses a `moov` box's body (without its header) into the tracks to play. */
export function parseMoov(moov: Buffer): Mp4Movie {
  const boxes = children(moov);
  const mvhd = boxes.find((b) => b.type === Mp4BoxType.Mvhd);
  const movie = readTimes(need(mvhd?.body, 'mvhd'), 'mvhd');
  if (movie.timescale === 0) malformed('mvhd: timescale 0');
  const traks = boxes.filter((b) => b.type === Mp4BoxType.Trak);
  if (traks.length > MP4_LIMITS.maxTracks) malformed(`${traks.length} tracks, limit ${MP4_LIMITS.maxTracks}`);
  let video: Mp4Track | undefined;
  let audio: Mp4Track | undefined;
  let samples = 0;
  for (const trak of traks) {
    const t = parseTrak(trak.body, MP4_LIMITS.maxSamples - samples);
    if (t === undefined) continue;
    samples += t.samples.count;
    if (t.kind === 'video' && video === undefined) video = t;
    else if (t.kind === 'audio' && audio === undefined) audio = t;
  }
  const durationMs = Math.round((movie.duration * 1000) / movie.timescale);
  return { durationMs: durationMs > 0 ? durationMs : Math.max(video?.durationMs ?? 0, audio?.durationMs ?? 0), video, audio };
}

function parseTrak(trak: Buffer, sampleBudget: number): Mp4Track | undefined {
  const tkhd = child(trak, Mp4BoxType.Tkhd);
  let id = 0;
  if (tkhd !== undefined) {
    const r = reader(tkhd);
    const version = r.u8();
    r.skip(3 + (version === 1 ? 16 : 8));
    id = r.u32();
  }
  const mdia = need(child(trak, Mp4BoxType.Mdia), 'mdia');
  const mdiaBoxes = children(mdia);
  const { timescale, duration } = readTimes(need(mdiaBoxes.find((b) => b.type === Mp4BoxType.Mdhd)?.body, 'mdhd'), 'mdhd');
  const hdlr = need(mdiaBoxes.find((b) => b.type === Mp4BoxType.Hdlr)?.body, 'hdlr');
  if (hdlr.length < 12) malformed('hdlr: truncated');
  const handler = hdlr.toString('latin1', 8, 12);
  if (handler !== Mp4Handler.Video && handler !== Mp4Handler.Audio) return undefined;
  const minf = need(mdiaBoxes.find((b) => b.type === Mp4BoxType.Minf)?.body, 'minf');
  const stbl = need(child(minf, Mp4BoxType.Stbl), 'stbl');
  const tables = new Map(children(stbl).map((b) => [b.type, b.body] as const));
  const entry = parseStsd(need(tables.get(Mp4BoxType.Stsd), 'stsd'), handler === Mp4Handler.Video);
  if (entry === undefined) return undefined; // a codec the server does not play
  const samples = buildSampleTable(tables, timescale, sampleBudget);
  return {
    id,
    kind: handler === Mp4Handler.Video ? 'video' : 'audio',
    codec: entry.codec,
    config: entry.config,
    timescale,
    durationMs: Math.round((duration * 1000) / timescale),
    width: entry.width,
    height: entry.height,
    sampleRate: entry.sampleRate,
    channels: entry.channels,
    samples,
  };
}

interface SampleEntry {
  codec: Mp4Codec;
  config: Buffer;
  width: number;
  height: number;
  sampleRate: number;
  channels: number;
}

/** Visual sample entry: 8 (SampleEntry) + 70 bytes of fields before its child boxes. */
const VISUAL_ENTRY_FIELDS = 78;
/** Audio sample entry: 8 + 20 bytes (version 0); QuickTime version 1 adds 16, version 2 adds 36. */
const AUDIO_ENTRY_FIELDS = 28;
const QT_AUDIO_V1_EXTRA = 16;
const QT_AUDIO_V2_EXTRA = 36;

function parseStsd(stsd: Buffer, video: boolean): SampleEntry | undefined {
  const r = reader(stsd);
  r.skip(4);
  const count = r.u32();
  if (count < 1) malformed('stsd: no sample entry');
  const entries = children(stsd.subarray(8));
  const first = entries[0];
  if (first === undefined) malformed('stsd: truncated sample entry');
  const body = first.body;
  if (video) {
    if (first.type !== Mp4BoxType.Avc1 && first.type !== Mp4BoxType.Avc3 && first.type !== Mp4BoxType.Hvc1 && first.type !== Mp4BoxType.Hev1) return undefined;
    if (body.length < VISUAL_ENTRY_FIELDS) malformed(`${first.type}: truncated`);
    const width = body.readUInt16BE(24);
    const height = body.readUInt16BE(26);
    const avc = first.type === Mp4BoxType.Avc1 || first.type === Mp4BoxType.Avc3;
    const config = child(body.subarray(VISUAL_ENTRY_FIELDS), avc ? Mp4BoxType.AvcC : Mp4BoxType.HvcC);
    if (config === undefined || config.length < 7) malformed(`${first.type}: no ${avc ? 'avcC' : 'hvcC'}`);
    return { codec: avc ? 'avc1' : 'hvc1', config, width, height, sampleRate: 0, channels: 0 };
  }
  if (first.type !== Mp4BoxType.Mp4a) return undefined;
  if (body.length < AUDIO_ENTRY_FIELDS) malformed('mp4a: truncated');
  const version = body.readUInt16BE(8);
  const channels = body.readUInt16BE(16);
  const sampleRate = body.readUInt32BE(24) >>> 16;
  const fields = AUDIO_ENTRY_FIELDS + (version === 1 ? QT_AUDIO_V1_EXTRA : version === 2 ? QT_AUDIO_V2_EXTRA : 0);
  if (body.length < fields) malformed('mp4a: truncated');
  const esds = child(body.subarray(fields), Mp4BoxType.Esds);
  if (esds === undefined) malformed('mp4a: no esds');
  const config = audioSpecificConfig(esds);
  if (config === undefined) return undefined; // not AAC
  return { codec: 'mp4a', config, width: 0, height: 0, sampleRate, channels };
}

/** Reads one descriptor header: tag and length (1-4 bytes of 7 bits). */
function descriptor(r: ByteReader): { tag: number; length: number } {
  const tag = r.u8();
  let length = 0;
  for (let i = 0; i < 4; i++) {
    const b = r.u8();
    length = (length << 7) | (b & 0x7f);
    if ((b & 0x80) === 0) break;
  }
  r.require(length);
  return { tag, length };
}

/** The AudioSpecificConfig inside an esds box (undefined: not MPEG-4 audio). */
export function audioSpecificConfig(esds: Buffer): Buffer | undefined {
  const r = reader(esds);
  r.skip(4); // version, flags
  const es = descriptor(r);
  if (es.tag !== EsTag.EsDescriptor) malformed(`esds: descriptor tag ${es.tag}, expected ES_Descriptor`);
  r.skip(2);
  const flags = r.u8();
  if ((flags & 0x80) !== 0) r.skip(2); // streamDependenceFlag
  if ((flags & 0x40) !== 0) r.skip(r.u8()); // URL_Flag
  if ((flags & 0x20) !== 0) r.skip(2); // OCRstreamFlag
  const dc = descriptor(r);
  if (dc.tag !== EsTag.DecoderConfig) malformed(`esds: descriptor tag ${dc.tag}, expected DecoderConfigDescriptor`);
  const end = r.pos + dc.length;
  const objectType = r.u8();
  if (objectType !== OBJECT_TYPE_AAC) return undefined;
  r.skip(12);
  if (r.pos >= end) malformed('esds: no DecoderSpecificInfo');
  const dsi = descriptor(r);
  if (dsi.tag !== EsTag.DecoderSpecificInfo || dsi.length < 2) malformed('esds: bad DecoderSpecificInfo');
  return r.bytes(dsi.length);
}

/** A full box's version byte, then its entry count, with the count checked against the box's size. */
function entries(body: Buffer, entrySize: number, what: string): { r: ByteReader; count: number; version: number } {
  const r = reader(body);
  const version = r.u8();
  r.skip(3);
  const count = r.u32();
  if (count * entrySize > r.remaining) malformed(`${what}: ${count} entries do not fit its ${body.length} bytes`);
  return { r, count, version };
}

function buildSampleTable(tables: ReadonlyMap<string, Buffer>, timescale: number, budget: number): SampleTable {
  // sizes: stsz (constant or one each) or stz2 (4, 8 or 16 bits each)
  let count: number;
  let sizes: Uint32Array;
  const stsz = tables.get(Mp4BoxType.Stsz);
  if (stsz !== undefined) {
    const r = reader(stsz);
    r.skip(4);
    const constant = r.u32();
    count = r.u32();
    if (count > budget) malformed(`stsz: ${count} samples, more than the limit allows`);
    if (constant === 0 && count * 4 > r.remaining) malformed(`stsz: ${count} sizes do not fit its ${stsz.length} bytes`);
    sizes = new Uint32Array(count);
    if (constant !== 0) sizes.fill(constant);
    else for (let i = 0; i < count; i++) sizes[i] = r.u32();
  } else {
    const stz2 = need(tables.get(Mp4BoxType.Stz2), 'stsz');
    const r = reader(stz2);
    r.skip(7);
    const field = r.u8();
    count = r.u32();
    if (field !== 4 && field !== 8 && field !== 16) malformed(`stz2: field size ${field}`);
    if (count > budget) malformed(`stz2: ${count} samples, more than the limit allows`);
    if (Math.ceil((count * field) / 8) > r.remaining) malformed(`stz2: ${count} sizes do not fit`);
    sizes = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      if (field === 16) sizes[i] = r.u16();
      else if (field === 8) sizes[i] = r.u8();
      else {
        const b = stz2[r.pos + (i >> 1)]!;
        sizes[i] = i % 2 === 0 ? b >> 4 : b & 0x0f;
      }
    }
  }
  // decode times: stts runs of (count, delta)
  const times = new Float64Array(count);
  {
    const { r, count: n } = entries(need(tables.get(Mp4BoxType.Stts), 'stts'), 8, 'stts');
    let i = 0;
    let dts = 0;
    for (let e = 0; e < n && i < count; e++) {
      const run = r.u32();
      const delta = r.u32();
      for (let k = 0; k < run && i < count; k++) {
        times[i++] = (dts * 1000) / timescale;
        dts += delta;
      }
    }
    if (i < count) malformed(`stts: times for ${i} of ${count} samples`);
  }
  // composition offsets: ctts runs (version 1: signed)
  const cts = new Int32Array(count);
  const ctts = tables.get(Mp4BoxType.Ctts);
  if (ctts !== undefined) {
    const { r, count: n, version } = entries(ctts, 8, 'ctts');
    let i = 0;
    for (let e = 0; e < n && i < count; e++) {
      const run = r.u32();
      const raw = r.u32();
      const offset = version === 1 ? raw | 0 : raw;
      const ms = Math.round((offset * 1000) / timescale);
      for (let k = 0; k < run && i < count; k++) cts[i++] = ms;
    }
  }
  // sync samples: stss lists them (1-based); without it every sample is one
  const sync = new Uint8Array(count);
  const stss = tables.get(Mp4BoxType.Stss);
  if (stss !== undefined) {
    const { r, count: n } = entries(stss, 4, 'stss');
    for (let e = 0; e < n; e++) {
      const s = r.u32();
      if (s >= 1 && s <= count) sync[s - 1] = 1;
    }
  } else {
    sync.fill(1);
  }
  // offsets: chunks (stco / co64) split into samples by stsc runs
  const offsets = new Float64Array(count);
  let chunkOffsets: Float64Array;
  const stco = tables.get(Mp4BoxType.Stco);
  if (stco !== undefined) {
    const { r, count: n } = entries(stco, 4, 'stco');
    chunkOffsets = new Float64Array(n);
    for (let i = 0; i < n; i++) chunkOffsets[i] = r.u32();
  } else {
    const { r, count: n } = entries(need(tables.get(Mp4BoxType.Co64), 'stco'), 8, 'co64');
    chunkOffsets = new Float64Array(n);
    for (let i = 0; i < n; i++) chunkOffsets[i] = r.u32() * 0x1_0000_0000 + r.u32();
  }
  {
    const { r, count: n } = entries(need(tables.get(Mp4BoxType.Stsc), 'stsc'), 12, 'stsc');
    const firsts: number[] = [];
    const perChunk: number[] = [];
    for (let e = 0; e < n; e++) {
      firsts.push(r.u32());
      perChunk.push(r.u32());
      r.skip(4);
    }
    let i = 0;
    for (let e = 0; e < n && i < count; e++) {
      const first = firsts[e]!;
      const last = e + 1 < n ? firsts[e + 1]! - 1 : chunkOffsets.length;
      const per = perChunk[e]!;
      if (first < 1 || last > chunkOffsets.length) malformed(`stsc: chunk ${first}..${last} of ${chunkOffsets.length}`);
      for (let c = first; c <= last && i < count; c++) {
        let pos = chunkOffsets[c - 1]!;
        for (let k = 0; k < per && i < count; k++) {
          offsets[i] = pos;
          pos += sizes[i]!;
          i++;
        }
      }
    }
    if (i < count) malformed(`stsc/stco: offsets for ${i} of ${count} samples`);
  }
  return { count, offsets, sizes, times, cts, sync };
}

/** The sample index of the last sync sample at or before `ms` (0 when none is). */
export function syncSampleBefore(t: SampleTable, ms: number): number {
  let lo = 0;
  let hi = t.count - 1;
  let best = 0;
  // binary search for the last sample with time <= ms, then walk back to a sync sample
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.times[mid]! <= ms) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  while (best > 0 && t.sync[best] !== 1) best--;
  return best;
}

/** The first sample whose time is at or after `ms` (count when none is). */
export function sampleAtOrAfter(t: SampleTable, ms: number): number {
  let lo = 0;
  let hi = t.count;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t.times[mid]! < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** FLV AAC tag header: SoundFormat 10, 44 kHz, 16-bit, stereo (the fixed byte AAC uses), then the AACPacketType. */
const AAC_SOUND_BYTE = (SoundFormat.Aac << 4) | 0x0f;
/** bytes of the FLV tag header put before a sample's data */
export const FLV_AAC_HEADER_SIZE = 2;
export const FLV_AVC_HEADER_SIZE = 5;
/** Enhanced RTMP: flags byte, FourCC, SI24 composition time */
export const FLV_HEVC_HEADER_SIZE = 8;
const EX_HEADER = 0x80;

/** The FLV tag header size for a track's samples. */
export function flvHeaderSize(track: Mp4Track): number {
  switch (track.codec) {
    case 'avc1':
      return FLV_AVC_HEADER_SIZE;
    case 'hvc1':
      return FLV_HEVC_HEADER_SIZE;
    case 'mp4a':
      return FLV_AAC_HEADER_SIZE;
    default: {
      const never: never = track.codec;
      throw new TypeError(`unknown codec ${String(never)}`);
    }
  }
}

/**
 * Writes the FLV tag header of sample `i` into `out` at 0 (flvHeaderSize(track) bytes):
 * the sample's data goes right after it.
 */
export function writeFlvSampleHeader(track: Mp4Track, i: number, out: Buffer): void {
  const t = track.samples;
  switch (track.codec) {
    case 'avc1': {
      const frameType = t.sync[i] === 1 ? VideoFrameType.Key : VideoFrameType.Inter;
      out[0] = (frameType << 4) | VideoCodecId.Avc;
      out[1] = AvcPacketType.Nalu;
      out.writeIntBE(clampCts(t.cts[i]!), 2, 3);
      return;
    }
    case 'hvc1': {
      const frameType = t.sync[i] === 1 ? VideoFrameType.Key : VideoFrameType.Inter;
      out[0] = EX_HEADER | (frameType << 4) | VideoPacketType.CodedFrames;
      out.write('hvc1', 1, 'latin1');
      out.writeIntBE(clampCts(t.cts[i]!), 5, 3);
      return;
    }
    case 'mp4a':
      out[0] = AAC_SOUND_BYTE;
      out[1] = AacPacketType.Raw;
      return;
    default: {
      const never: never = track.codec;
      throw new TypeError(`unknown codec ${String(never)}`);
    }
  }
}

const SI24_MAX = 0x7fffff;
function clampCts(v: number): number {
  return Math.max(-SI24_MAX - 1, Math.min(SI24_MAX, v));
}

/** The FLV codec header (sequence start) payload of a track: AVC/HEVC decoder configuration, or the AudioSpecificConfig. */
export function flvSequenceHeader(track: Mp4Track): Buffer {
  switch (track.codec) {
    case 'avc1': {
      const out = Buffer.alloc(FLV_AVC_HEADER_SIZE + track.config.length);
      out[0] = (VideoFrameType.Key << 4) | VideoCodecId.Avc;
      out[1] = AvcPacketType.SequenceHeader;
      track.config.copy(out, FLV_AVC_HEADER_SIZE);
      return out;
    }
    case 'hvc1': {
      const out = Buffer.alloc(5 + track.config.length);
      out[0] = EX_HEADER | (VideoFrameType.Key << 4) | VideoPacketType.SequenceStart;
      out.write('hvc1', 1, 'latin1');
      track.config.copy(out, 5);
      return out;
    }
    case 'mp4a': {
      const out = Buffer.alloc(FLV_AAC_HEADER_SIZE + track.config.length);
      out[0] = AAC_SOUND_BYTE;
      out[1] = AacPacketType.SequenceHeader;
      track.config.copy(out, FLV_AAC_HEADER_SIZE);
      return out;
    }
    default: {
      const never: never = track.codec;
      throw new TypeError(`unknown codec ${String(never)}`);
    }
  }
}

/**
 * Walks the samples of a movie's video and audio tracks in decode-time order
 * (two cursors, no merged table). `seek` puts video on the sync sample at or
 * before the time, audio on the first sample from the video's time on.
 */
export class Mp4Cursor {
  video = 0;
  audio = 0;

  constructor(readonly movie: Mp4Movie) {}

  /** Positions the cursors for a play from `ms`; returns the time the play really starts at. */
  seek(ms: number): number {
    const v = this.movie.video;
    const a = this.movie.audio;
    let start = Math.max(0, ms);
    if (v !== undefined && v.samples.count > 0) {
      this.video = syncSampleBefore(v.samples, start);
      start = v.samples.times[this.video]!;
    } else this.video = 0;
    this.audio = a === undefined ? 0 : sampleAtOrAfter(a.samples, start);
    return start;
  }

  /** The next sample in time order (undefined at the end); advances. */
  next(): { track: Mp4Track; index: number } | undefined {
    const v = this.movie.video;
    const a = this.movie.audio;
    const vt = v !== undefined && this.video < v.samples.count ? v.samples.times[this.video]! : Infinity;
    const at = a !== undefined && this.audio < a.samples.count ? a.samples.times[this.audio]! : Infinity;
    if (vt === Infinity && at === Infinity) return undefined;
    if (vt <= at) return { track: v!, index: this.video++ };
    return { track: a!, index: this.audio++ };
  }

  /** The time of the next sample (Infinity at the end), without advancing. */
  peekTime(): number {
    const v = this.movie.video;
    const a = this.movie.audio;
    const vt = v !== undefined && this.video < v.samples.count ? v.samples.times[this.video]! : Infinity;
    const at = a !== undefined && this.audio < a.samples.count ? a.samples.times[this.audio]! : Infinity;
    return Math.min(vt, at);
  }
}
