import { ByteWriter } from '../core/bytes.js';
import { parseAudioSpecificConfig } from './aac.js';
import { parseAvcDecoderConfig } from './avc.js';

/**
 * Fragmented MP4 (ISO/IEC 14496-12 with the 14496-14/-15 sample entries), as
 * DASH (ISO/IEC 23009-1) and CMAF players read it: an init segment (ftyp,
 * moov with one trak per track and mvex/trex) and media segments (styp,
 * moof/mfhd/traf/tfhd/tfdt/trun, mdat).
 *
 * Pure functions over bytes. Every writer computes the size first, allocates
 * once and writes; a media segment is returned as a list of buffers (the
 * headers in one buffer, then the samples' data as the caller's views, not
 * copies), ready for writev(2).
 *
 * Samples carry their data exactly as MP4 stores it: for AVC/HEVC the
 * length-prefixed NAL units of an FLV video tag (the same format), for AAC the
 * raw frame of an FLV audio tag. Empty frames (an AVC end of sequence) are
 * not samples: leave them out.
 */

/** Box and brand FourCCs, and the fixed numbers of the boxes we write. */
const BOX_HEADER = 8;
const FULL_BOX_HEADER = 12;

export const Brand = {
  Iso5: 'iso5',
  Iso6: 'iso6',
  Mp41: 'mp41',
  Dash: 'dash',
  Msdh: 'msdh',
  Msix: 'msix',
} as const;

/** ftyp minor_version */
const MINOR_VERSION = 512;

/** mvhd/tkhd/sample entries: 16.16 and 8.8 fixed-point ones, the unity matrix */
const FIXED_16_16_ONE = 0x00010000;
const FIXED_8_8_ONE = 0x0100;
const UNITY_MATRIX: readonly number[] = [FIXED_16_16_ONE, 0, 0, 0, FIXED_16_16_ONE, 0, 0, 0, 0x40000000];
/** tkhd flags: track_enabled | track_in_movie */
const TKHD_ENABLED_IN_MOVIE = 0x000003;
/** the timescale of the movie header (durations there are 0: a fragmented movie) */
const MOVIE_TIMESCALE = 1000;
/** ISO 639-2 'und' packed as three 5-bit letters minus 0x60 */
const LANGUAGE_UND = 0x55c4;
/** vmhd flags = 1 (14496-12 says so) */
const VMHD_FLAGS = 1;
/** url  flags: media in the same file */
const URL_SELF_CONTAINED = 1;
const DATA_REFERENCE_INDEX = 1;
/** VisualSampleEntry: 72 dpi, one frame per sample, depth 24, pre_defined -1 */
const RESOLUTION_72_DPI = 0x00480000;
const FRAMES_PER_SAMPLE = 1;
const COMPRESSOR_NAME_SIZE = 32;
const VIDEO_DEPTH = 0x0018;
const PRE_DEFINED_MINUS_ONE = 0xffff;
/** AudioSampleEntry: 16-bit samples */
const AUDIO_SAMPLE_SIZE = 16;
/** samplerate is 16.16: rates above this are written as 0 (the esds config has the rate) */
const MAX_16_16_RATE = 0xffff;

/** MPEG-4 descriptors (14496-1): tags and the values esds needs */
const DescriptorTag = { EsDescriptor: 3, DecoderConfig: 4, DecoderSpecificInfo: 5, SlConfig: 6 } as const;
/** objectTypeIndication: MPEG-4 Audio (14496-3) */
const OBJECT_TYPE_MPEG4_AUDIO = 0x40;
/** streamType 5 (audio) << 2 | upStream 0 << 1 | reserved 1 */
const STREAM_TYPE_AUDIO = (0x05 << 2) | 1;
/** SLConfigDescriptor predefined = 2 (reserved for MP4) */
const SL_PREDEFINED_MP4 = 2;
/** descriptor sizes are written in the 4-byte form (0x80 0x80 0x80 n), as most muxers do */
const DESCRIPTOR_SIZE_BYTES = 4;
const DESCRIPTOR_HEADER = 1 + DESCRIPTOR_SIZE_BYTES;
const MAX_DESCRIPTOR_SIZE = 0x0fffffff;

/** tfhd flags: default-base-is-moof (data offsets count from the moof) */
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
/** trun flags */
export const TrunFlag = {
  DataOffset: 0x000001,
  FirstSampleFlags: 0x000004,
  SampleDuration: 0x000100,
  SampleSize: 0x000200,
  SampleFlags: 0x000400,
  SampleCompositionTimeOffset: 0x000800,
} as const;

/**
 * Sample flags (14496-12 8.8.3.1): a sync sample depends on no other
 * (sample_depends_on = 2); a non-sync one depends on others (1) and has
 * sample_is_non_sync_sample set.
 */
export const SampleFlags = {
  Sync: 0x02000000,
  NonSync: 0x01010000,
} as const;

const TWO_POW_32 = 0x100000000;

export const TrackKind = { Video: 'video', Audio: 'audio' } as const;
export type TrackKind = (typeof TrackKind)[keyof typeof TrackKind];

export interface Fmp4VideoTrack {
  readonly kind: typeof TrackKind.Video;
  /** 1-based */
  readonly id: number;
  /** ticks per second of this track's times */
  readonly timescale: number;
  readonly codec: 'avc1' | 'hvc1';
  /** the AVCDecoderConfigurationRecord / HEVCDecoderConfigurationRecord, written as avcC / hvcC */
  readonly config: Buffer;
  readonly width: number;
  readonly height: number;
}

export interface Fmp4AudioTrack {
  readonly kind: typeof TrackKind.Audio;
  readonly id: number;
  readonly timescale: number;
  readonly codec: 'mp4a';
  /** the AudioSpecificConfig, written in the esds */
  readonly config: Buffer;
  readonly sampleRate: number;
  readonly channels: number;
}

export type Fmp4Track = Fmp4VideoTrack | Fmp4AudioTrack;

/** An H.264 track from its AVCDecoderConfigurationRecord (the picture size from its SPS). Throws CodecConfigMalformed. */
export function avcTrack(id: number, config: Buffer, timescale: number): Fmp4VideoTrack {
  const c = parseAvcDecoderConfig(config);
  return { kind: TrackKind.Video, id, timescale, codec: 'avc1', config, width: c.width ?? 0, height: c.height ?? 0 };
}

/** An H.265 track; the picture size is not in the record's header, give it when known (0 is accepted by players). */
export function hevcTrack(id: number, config: Buffer, timescale: number, width = 0, height = 0): Fmp4VideoTrack {
  return { kind: TrackKind.Video, id, timescale, codec: 'hvc1', config, width, height };
}

/** An AAC track from its AudioSpecificConfig. Throws CodecConfigMalformed. */
export function aacTrack(id: number, config: Buffer, timescale?: number): Fmp4AudioTrack {
  const c = parseAudioSpecificConfig(config);
  // channelConfiguration 0 (a program config element) and 7 (7.1) are rare; 2 is what players assume
  const channels = c.channelConfig === 0 ? 2 : c.channelConfig === 7 ? 8 : c.channelConfig;
  return { kind: TrackKind.Audio, id, timescale: timescale ?? c.sampleRate, codec: 'mp4a', config, sampleRate: c.sampleRate, channels };
}

// ---------------------------------------------------------------------------
// A small box tree for the init segment: each node knows its size, then the
// whole tree is written into one buffer.

interface Part {
  readonly size: number;
  write(w: ByteWriter): void;
}

function u8(v: number): Part {
  return { size: 1, write: (w) => void w.u8(v) };
}
function u16(v: number): Part {
  return { size: 2, write: (w) => void w.u16(v) };
}
function u24(v: number): Part {
  return { size: 3, write: (w) => void w.u24(v) };
}
function u32(v: number): Part {
  return { size: 4, write: (w) => void w.u32(v) };
}
function zeros(n: number): Part {
  return { size: n, write: (w) => void w.bytes(Buffer.alloc(n)) };
}
function raw(b: Buffer): Part {
  return { size: b.length, write: (w) => void w.bytes(b) };
}
function fourcc(s: string): Part {
  return raw(fourccBytes(s));
}
function fourccBytes(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length !== 4) throw new RangeError(`not a FourCC: ${JSON.stringify(s)}`);
  return b;
}
function seq(parts: readonly Part[]): Part {
  let size = 0;
  for (const p of parts) size += p.size;
  return {
    size,
    write: (w) => {
      for (const p of parts) p.write(w);
    },
  };
}
function box(type: string, ...parts: Part[]): Part {
  const body = seq(parts);
  const t = fourccBytes(type);
  return {
    size: BOX_HEADER + body.size,
    write: (w) => {
      w.u32(BOX_HEADER + body.size).bytes(t);
      body.write(w);
    },
  };
}
function fullBox(type: string, version: number, flags: number, ...parts: Part[]): Part {
  return box(type, u8(version), u24(flags), ...parts);
}
function descriptor(tag: number, ...parts: Part[]): Part {
  const body = seq(parts);
  if (body.size > MAX_DESCRIPTOR_SIZE) throw new RangeError('descriptor too large');
  return {
    size: DESCRIPTOR_HEADER + body.size,
    write: (w) => {
      const n = body.size;
      w.u8(tag)
        .u8(0x80 | ((n >>> 21) & 0x7f))
        .u8(0x80 | ((n >>> 14) & 0x7f))
        .u8(0x80 | ((n >>> 7) & 0x7f))
        .u8(n & 0x7f);
      body.write(w);
    },
  };
}
function render(p: Part): Buffer {
  const w = new ByteWriter(p.size);
  p.write(w);
  return w.done();
}

function ftypLike(type: 'ftyp' | 'styp', major: string, compatible: readonly string[]): Part {
  return box(type, fourcc(major), u32(MINOR_VERSION), ...compatible.map(fourcc));
}

function mvhd(nextTrackId: number): Part {
  return fullBox(
    'mvhd', 0, 0,
    u32(0), u32(0), // creation, modification time
    u32(MOVIE_TIMESCALE), u32(0), // timescale, duration
    u32(FIXED_16_16_ONE), u16(FIXED_8_8_ONE), zeros(2 + 8), // rate, volume, reserved
    ...UNITY_MATRIX.map(u32),
    zeros(6 * 4), // pre_defined
    u32(nextTrackId),
  );
}

function tkhd(t: Fmp4Track): Part {
  const video = t.kind === TrackKind.Video;
  return fullBox(
    'tkhd', 0, TKHD_ENABLED_IN_MOVIE,
    u32(0), u32(0), u32(t.id), u32(0), u32(0), // creation, modification, track_ID, reserved, duration
    zeros(8), u16(0), u16(0), // reserved, layer, alternate_group
    u16(video ? 0 : FIXED_8_8_ONE), u16(0), // volume, reserved
    ...UNITY_MATRIX.map(u32),
    u32(video ? t.width * FIXED_16_16_ONE : 0), u32(video ? t.height * FIXED_16_16_ONE : 0),
  );
}

function mdhd(t: Fmp4Track): Part {
  return fullBox('mdhd', 0, 0, u32(0), u32(0), u32(t.timescale), u32(0), u16(LANGUAGE_UND), u16(0));
}

function hdlr(t: Fmp4Track): Part {
  const video = t.kind === TrackKind.Video;
  const name = Buffer.from(video ? 'VideoHandler\0' : 'SoundHandler\0', 'latin1');
  return fullBox('hdlr', 0, 0, u32(0), fourcc(video ? 'vide' : 'soun'), zeros(12), raw(name));
}

function sampleEntry(t: Fmp4Track): Part {
  switch (t.kind) {
    case TrackKind.Video:
      return box(
        t.codec,
        zeros(6), u16(DATA_REFERENCE_INDEX),
        u16(0), u16(0), zeros(12), // pre_defined, reserved, pre_defined
        u16(t.width), u16(t.height),
        u32(RESOLUTION_72_DPI), u32(RESOLUTION_72_DPI), u32(0),
        u16(FRAMES_PER_SAMPLE), zeros(COMPRESSOR_NAME_SIZE),
        u16(VIDEO_DEPTH), u16(PRE_DEFINED_MINUS_ONE),
        box(t.codec === 'avc1' ? 'avcC' : 'hvcC', raw(t.config)),
      );
    case TrackKind.Audio: {
      const esds = fullBox(
        'esds', 0, 0,
        descriptor(
          DescriptorTag.EsDescriptor,
          u16(0), u8(0), // ES_ID, flags
          descriptor(
            DescriptorTag.DecoderConfig,
            u8(OBJECT_TYPE_MPEG4_AUDIO), u8(STREAM_TYPE_AUDIO), u24(0), u32(0), u32(0), // bufferSizeDB, max/avg bitrate unknown
            descriptor(DescriptorTag.DecoderSpecificInfo, raw(t.config)),
          ),
          descriptor(DescriptorTag.SlConfig, u8(SL_PREDEFINED_MP4)),
        ),
      );
      return box(
        t.codec,
        zeros(6), u16(DATA_REFERENCE_INDEX),
        zeros(8), // reserved
        u16(t.channels), u16(AUDIO_SAMPLE_SIZE), u16(0), u16(0),
        u32(t.sampleRate <= MAX_16_16_RATE ? t.sampleRate * FIXED_16_16_ONE : 0),
        esds,
      );
    }
  }
}

function trak(t: Fmp4Track): Part {
  const video = t.kind === TrackKind.Video;
  const emptyTable = (type: string): Part => fullBox(type, 0, 0, u32(0));
  return box(
    'trak',
    tkhd(t),
    box(
      'mdia',
      mdhd(t),
      hdlr(t),
      box(
        'minf',
        video ? fullBox('vmhd', 0, VMHD_FLAGS, u16(0), zeros(6)) : fullBox('smhd', 0, 0, u16(0), u16(0)),
        box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, URL_SELF_CONTAINED))),
        box(
          'stbl',
          fullBox('stsd', 0, 0, u32(1), sampleEntry(t)),
          emptyTable('stts'),
          emptyTable('stsc'),
          fullBox('stsz', 0, 0, u32(0), u32(0)),
          emptyTable('stco'),
        ),
      ),
    ),
  );
}

function trex(t: Fmp4Track): Part {
  // default sample description 1; duration, size and flags come in each trun
  return fullBox('trex', 0, 0, u32(t.id), u32(1), u32(0), u32(0), u32(0));
}

export interface InitOptions {
  /** ftyp major brand (default iso5) */
  readonly majorBrand?: string;
  readonly compatibleBrands?: readonly string[];
}

/** The init segment: ftyp and moov for these tracks (one init per track for DASH, several for a file). */
export function initSegment(tracks: readonly Fmp4Track[], opts: InitOptions = {}): Buffer {
  if (tracks.length === 0) throw new RangeError('initSegment: no track');
  let nextId = 1;
  for (const t of tracks) nextId = Math.max(nextId, t.id + 1);
  const major = opts.majorBrand ?? Brand.Iso5;
  const compatible = opts.compatibleBrands ?? [Brand.Iso5, Brand.Iso6, Brand.Mp41, Brand.Dash];
  return render(seq([ftypLike('ftyp', major, compatible), box('moov', mvhd(nextId), ...tracks.map(trak), box('mvex', ...tracks.map(trex)))]));
}

// ---------------------------------------------------------------------------
// Media segments: written directly (one pass for the size, one for the bytes).

export interface Fmp4Sample {
  /** the sample's bytes (a view, not copied) */
  readonly data: Buffer;
  /** decode duration in the track's timescale */
  readonly duration: number;
  /** composition offset (pts - dts) in the track's timescale, signed */
  readonly cts: number;
  /** a sync sample (a keyframe; every audio sample) */
  readonly sync: boolean;
}

export interface Fmp4Run {
  readonly track: Fmp4Track;
  /** decode time of the first sample, in the track's timescale (tfdt) */
  readonly baseDecodeTime: number;
  readonly samples: readonly Fmp4Sample[];
}

export interface FragmentOptions {
  /** put a styp box in front (DASH media segments); default true */
  readonly styp?: boolean;
}

const STYP_BRANDS: readonly string[] = [Brand.Msdh, Brand.Msix];
const MFHD_SIZE = FULL_BOX_HEADER + 4;
const TFHD_SIZE = FULL_BOX_HEADER + 4;
/** tfdt version 1: a 64-bit baseMediaDecodeTime */
const TFDT_SIZE = FULL_BOX_HEADER + 8;
const TRUN_FIXED = FULL_BOX_HEADER + 4 + 4; // sample_count, data_offset

function trunFlags(track: Fmp4Track): number {
  const base = TrunFlag.DataOffset | TrunFlag.SampleDuration | TrunFlag.SampleSize | TrunFlag.SampleFlags;
  return track.kind === TrackKind.Video ? base | TrunFlag.SampleCompositionTimeOffset : base;
}

function perSampleBytes(track: Fmp4Track): number {
  return track.kind === TrackKind.Video ? 16 : 12;
}

function trafSize(run: Fmp4Run): number {
  return BOX_HEADER + TFHD_SIZE + TFDT_SIZE + TRUN_FIXED + run.samples.length * perSampleBytes(run.track);
}

function u64(w: ByteWriter, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a 64-bit unsigned: ${v}`);
  w.u32(Math.floor(v / TWO_POW_32)).u32(v % TWO_POW_32);
}

function header(w: ByteWriter, size: number, type: string): void {
  w.u32(size).bytes(fourccBytes(type));
}

function fullHeader(w: ByteWriter, size: number, type: string, version: number, flags: number): void {
  header(w, size, type);
  w.u8(version).u24(flags);
}

/** mdat's 8-byte header is used up to this payload size; beyond it a 64-bit largesize (16 bytes) */
const MAX_MDAT_32 = 0xffffffff - BOX_HEADER;

/**
 * One media segment (fragment): [styp] moof (mfhd, one traf per run) mdat.
 * The samples of each run are laid out in the mdat one run after the other.
 * Returns the header bytes in one buffer followed by the samples' data
 * buffers (views of the caller's data), for writev(2) or Buffer.concat.
 */
export function mediaSegment(sequenceNumber: number, runs: readonly Fmp4Run[], opts: FragmentOptions = {}): Buffer[] {
  if (runs.length === 0) throw new RangeError('mediaSegment: no run');
  const styp = opts.styp !== false ? ftypLike('styp', Brand.Msdh, STYP_BRANDS) : undefined;
  let moofSize = BOX_HEADER + MFHD_SIZE;
  let dataSize = 0;
  for (const r of runs) {
    moofSize += trafSize(r);
    for (const s of r.samples) dataSize += s.data.length;
  }
  const mdatHeader = dataSize > MAX_MDAT_32 ? BOX_HEADER + 8 : BOX_HEADER;
  const stypSize = styp?.size ?? 0;
  const w = new ByteWriter(stypSize + moofSize + mdatHeader);
  styp?.write(w);
  header(w, moofSize, 'moof');
  fullHeader(w, MFHD_SIZE, 'mfhd', 0, 0);
  w.u32(sequenceNumber);
  // data_offset counts from the moof's first byte (default-base-is-moof)
  let dataOffset = moofSize + mdatHeader;
  for (const r of runs) {
    const t = r.track;
    header(w, trafSize(r), 'traf');
    fullHeader(w, TFHD_SIZE, 'tfhd', 0, TFHD_DEFAULT_BASE_IS_MOOF);
    w.u32(t.id);
    fullHeader(w, TFDT_SIZE, 'tfdt', 1, 0);
    u64(w, r.baseDecodeTime);
    const flags = trunFlags(t);
    // version 1: signed composition offsets
    fullHeader(w, TRUN_FIXED + r.samples.length * perSampleBytes(t), 'trun', 1, flags);
    w.u32(r.samples.length).u32(dataOffset);
    const video = t.kind === TrackKind.Video;
    for (const s of r.samples) {
      w.u32(s.duration).u32(s.data.length).u32(s.sync ? SampleFlags.Sync : SampleFlags.NonSync);
      if (video) w.u32(s.cts >>> 0);
      dataOffset += s.data.length;
    }
  }
  if (mdatHeader === BOX_HEADER) header(w, BOX_HEADER + dataSize, 'mdat');
  else {
    header(w, 1, 'mdat');
    u64(w, BOX_HEADER + 8 + dataSize);
  }
  const out: Buffer[] = [w.done()];
  for (const r of runs) for (const s of r.samples) out.push(s.data);
  return out;
}

// ---------------------------------------------------------------------------
// Frames to samples.

/** What fragmenting needs of a stream's frame (src/live's MediaFrame and its codecData have it). */
export interface TimedSampleSource {
  /** decode time, milliseconds */
  readonly timestamp: number;
  /** composition offset, milliseconds (0 for audio) */
  readonly cts: number;
  readonly keyframe: boolean;
  /** the sample's bytes (FLV tag body after the codec header: a view) */
  readonly data: Buffer;
}

/** ms to a track's timescale, rounded (exact when the timescale is 1000) */
export function msToTimescale(ms: number, timescale: number): number {
  return timescale === MOVIE_TIMESCALE ? ms : Math.round((ms * timescale) / MOVIE_TIMESCALE);
}

/**
 * One track's run from a run of its frames in decode order: decode times are
 * taken in the track's timescale (rounded from ms), each duration is the
 * distance to the next frame, the last one's to `endMs` (the next frame's
 * time, when known) or else `lastDurationMs`. A non-increasing time gives a
 * zero duration (a decoder sees two samples at one time, never a negative
 * one). For audio every sample is a sync sample.
 */
export function runFromFrames(track: Fmp4Track, frames: readonly TimedSampleSource[], endMs: number | undefined, lastDurationMs: number): Fmp4Run {
  const first = frames[0];
  if (first === undefined) throw new RangeError('runFromFrames: no frame');
  const ts = track.timescale;
  const video = track.kind === TrackKind.Video;
  const samples: Fmp4Sample[] = new Array<Fmp4Sample>(frames.length);
  let dts = msToTimescale(first.timestamp, ts);
  const base = dts;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    const next = frames[i + 1];
    const nextDts = next !== undefined ? msToTimescale(next.timestamp, ts) : endMs !== undefined ? msToTimescale(endMs, ts) : dts + msToTimescale(lastDurationMs, ts);
    const duration = Math.max(0, nextDts - dts);
    samples[i] = { data: f.data, duration, cts: video ? msToTimescale(f.cts, ts) : 0, sync: video ? f.keyframe : true };
    dts += duration;
  }
  return { track, baseDecodeTime: base, samples };
}
