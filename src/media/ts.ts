import { ErrorCode, serverError } from '../core/errors.js';
import { emptyArray } from '../core/queue.js';
import type { AacConfig } from './aac.js';
import { adtsHeader } from './aac.js';
import type { AvcConfig } from './avc.js';
import { AvcNalType, splitNalUnits } from './avc.js';
import type { HevcConfig } from './hevc.js';
import { HevcNalType } from './hevc.js';

/**
 * MPEG-TS (ISO/IEC 13818-1) for HLS: PAT and PMT with their CRC32, PES packets
 * for H.264/H.265 (Annex-B with an access unit delimiter, parameter sets before
 * each keyframe) and AAC (ADTS) / MP3, a PCR on the PCR PID, continuity
 * counters and adaptation-field stuffing, in 188-byte packets. Pure functions
 * over bytes; packets are written into a TsBuffer (one fragment's memory).
 */

export const TS_PACKET_SIZE = 188;
const TS_HEADER_SIZE = 4;
const TS_PAYLOAD_SIZE = TS_PACKET_SIZE - TS_HEADER_SIZE;
export const TS_SYNC_BYTE = 0x47;

/** The PIDs we use (those of nginx-rtmp's muxer, which players know). */
export const TsPid = { Pat: 0x0000, Pmt: 0x1000, Video: 0x0100, Audio: 0x0101 } as const;

/** stream_type values of the PMT (13818-1 table 2-34, and H.222 amendments). */
export const TsStreamType = { Mpeg1Audio: 0x03, Aac: 0x0f, H264: 0x1b, H265: 0x24 } as const;
export type TsStreamType = (typeof TsStreamType)[keyof typeof TsStreamType];

/** PES stream_id: the first video and audio streams. */
const PesStreamId = { Video: 0xe0, Audio: 0xc0 } as const;

const TableId = { Pat: 0x00, Pmt: 0x02 } as const;
const PROGRAM_NUMBER = 1;
const TRANSPORT_STREAM_ID = 1;

/** TS header bits. */
const PAYLOAD_UNIT_START = 0x40;
const AdaptationControl = { PayloadOnly: 0x10, AdaptationAndPayload: 0x30 } as const;
/** adaptation field flags */
const AfFlag = { RandomAccess: 0x40, Pcr: 0x10 } as const;
/** adaptation_field_length byte + flags byte + 6 bytes of PCR */
const AF_PCR_SIZE = 8;
const STUFFING = 0xff;

/** PES header: start code (3) + stream id (1) + length (2) + flags (2) + header length (1). */
const PES_FIXED_HEADER = 9;
const PES_TIMESTAMP_SIZE = 5;
const PtsDtsFlags = { Pts: 0x80, PtsDts: 0xc0 } as const;
/** '0010' / '0011' / '0001' prefixes of the PTS and DTS fields */
const TimestampPrefix = { PtsOnly: 0x2, Pts: 0x3, Dts: 0x1 } as const;
/** PES flags byte 1: '10' marker bits, data_alignment_indicator */
const PES_FLAGS1 = 0x80 | 0x04;
const MAX_PES_PACKET_LENGTH = 0xffff;

/** 90 kHz clock ticks per millisecond. */
export const TS_CLOCK_PER_MS = 90;
const TIMESTAMP_MODULO = 2 ** 33;

const START_CODE = Buffer.from([0, 0, 0, 1]);
/** AUD NAL units: H.264 primary_pic_type 7 (any); H.265 type 35, layer 0, tid 1, pic_type 2 */
const AVC_AUD = Buffer.from([0, 0, 0, 1, AvcNalType.AccessUnitDelimiter, 0xf0]);
const HEVC_AUD = Buffer.from([0, 0, 0, 1, HevcNalType.AccessUnitDelimiter << 1, 0x01, 0x50]);
const AVC_NAL_TYPE_MASK = 0x1f;
const HEVC_NAL_TYPE_SHIFT = 1;
const HEVC_NAL_TYPE_MASK = 0x3f;

// ---------------------------------------------------------------- CRC32 (MPEG-2)

const CRC_POLY = 0x04c11db7;
const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ CRC_POLY : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32/MPEG-2 (no reflection, init 0xFFFFFFFF, no final xor) of buf[start, end). */
export function crc32Mpeg2(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ buf[i]!) & 0xff]!) >>> 0;
  return crc >>> 0;
}

// ---------------------------------------------------------------- the muxer

export interface TsTracks {
  readonly video?: TsStreamType;
  readonly audio?: TsStreamType;
}

/** One elementary stream unit to put in a PES. */
export interface PesInput {
  readonly pid: number;
  /** 90 kHz, already offset (non-negative) */
  readonly pts: number;
  /** 90 kHz; omit when equal to pts */
  readonly dts?: number;
  /** a PCR (27 MHz base in 90 kHz units) in the first packet */
  readonly pcr?: number;
  /** random_access_indicator (a keyframe) */
  readonly randomAccess: boolean;
  /** the elementary stream bytes, in order (written without concatenation) */
  readonly chunks: readonly Buffer[];
}

function tsTimestamp(buf: Buffer, at: number, prefix: number, ts: number): void {
  const t = ts % TIMESTAMP_MODULO;
  const high = Math.floor(t / 2 ** 30); // bits 32..30
  const mid = Math.floor(t / 2 ** 15) & 0x7fff; // bits 29..15
  const low = t & 0x7fff; // bits 14..0
  buf[at] = (prefix << 4) | (high << 1) | 1;
  buf[at + 1] = mid >> 7;
  buf[at + 2] = ((mid & 0x7f) << 1) | 1;
  buf[at + 3] = low >> 7;
  buf[at + 4] = ((low & 0x7f) << 1) | 1;
}

/**
 * One fragment's transport stream, written packet by packet into one buffer
 * that doubles when full. A muxer writes into it (`TsMuxer.writeTables`,
 * `writePes`); `bytes` is the stream so far (a view); `reset()` starts over in
 * the same memory, so an output that reuses its TsBuffers (HLS: one per
 * fragment being muxed or written) allocates nothing per frame.
 */
export class TsBuffer {
  private buf: Buffer;
  private used = 0;

  constructor(capacity: number = 64 * TS_PACKET_SIZE) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(TS_PACKET_SIZE, capacity));
  }

  /** bytes written */
  get length(): number {
    return this.used;
  }

  /** bytes it holds without growing */
  get capacity(): number {
    return this.buf.length;
  }

  /** the stream written so far (a view: valid until the next write or reset) */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }

  reset(): void {
    this.used = 0;
  }

  /** Makes room for `n` more bytes and counts them written: the buffer to write them in, from `length - n` on. */
  grow(n: number): Buffer {
    const need = this.used + n;
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < need) size *= 2;
      const next = Buffer.allocUnsafeSlow(size);
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
    this.used = need;
    return this.buf;
  }
}

/**
 * A transport stream writer with its own continuity counters. `tables()` gives
 * the PAT and PMT (at the head of every fragment), `pes()` one PES packet;
 * `writeTables()` and `writePes()` write the same into a TsBuffer.
 */
export class TsMuxer {
  private ccPat = 0;
  private ccPmt = 0;
  private ccVideo = 0;
  private ccAudio = 0;
  /** the PAT and PMT sections (with their CRC): the same for every fragment of this muxer */
  private pat: Buffer | undefined = undefined;
  private pmt: Buffer | undefined = undefined;
  readonly pcrPid: number;

  constructor(readonly tracks: TsTracks) {
    if (tracks.video === undefined && tracks.audio === undefined) throw new Error('assert: a transport stream needs a track');
    this.pcrPid = tracks.video !== undefined ? TsPid.Video : TsPid.Audio;
  }

  /** the continuity counter of the next packet of `pid` (one of TsPid) */
  private nextCc(pid: number): number {
    let c: number;
    switch (pid) {
      case TsPid.Video:
        c = this.ccVideo;
        this.ccVideo = (c + 1) & 0x0f;
        return c;
      case TsPid.Audio:
        c = this.ccAudio;
        this.ccAudio = (c + 1) & 0x0f;
        return c;
      case TsPid.Pat:
        c = this.ccPat;
        this.ccPat = (c + 1) & 0x0f;
        return c;
      case TsPid.Pmt:
        c = this.ccPmt;
        this.ccPmt = (c + 1) & 0x0f;
        return c;
      default:
        throw new Error(`assert: PID ${pid} is not one of the muxer's`);
    }
  }

  /** The PAT and the PMT, two packets. */
  tables(): Buffer {
    const out = new TsBuffer(2 * TS_PACKET_SIZE);
    this.writeTables(out);
    return out.bytes;
  }

  /** The PAT and the PMT, two packets, into `out`. */
  writeTables(out: TsBuffer): void {
    const buf = out.grow(2 * TS_PACKET_SIZE);
    const at = out.length - 2 * TS_PACKET_SIZE;
    buf.fill(STUFFING, at, out.length);
    this.pat ??= this.patSection();
    this.pmt ??= this.pmtSection();
    this.section(buf, at, TsPid.Pat, this.pat);
    this.section(buf, at + TS_PACKET_SIZE, TsPid.Pmt, this.pmt);
  }

  private section(out: Buffer, at: number, pid: number, section: Buffer): void {
    out[at] = TS_SYNC_BYTE;
    out[at + 1] = PAYLOAD_UNIT_START | (pid >> 8);
    out[at + 2] = pid & 0xff;
    out[at + 3] = AdaptationControl.PayloadOnly | this.nextCc(pid);
    out[at + 4] = 0; // pointer_field
    section.copy(out, at + 5);
  }

  /** table_id, section length, the body, CRC32 */
  private static psi(tableId: number, idExt: number, body: Buffer): Buffer {
    // header after section_length: id ext (2) + version/current (1) + section numbers (2) = 5, then body, then CRC (4)
    const sectionLength = 5 + body.length + 4;
    const s = Buffer.alloc(3 + sectionLength);
    s[0] = tableId;
    s.writeUInt16BE(0xb000 | sectionLength, 1); // section_syntax_indicator, '0', reserved '11'
    s.writeUInt16BE(idExt, 3);
    s[5] = 0xc1; // reserved '11', version 0, current_next 1
    s[6] = 0; // section_number
    s[7] = 0; // last_section_number
    body.copy(s, 8);
    s.writeUInt32BE(crc32Mpeg2(s, 0, s.length - 4), s.length - 4);
    return s;
  }

  private patSection(): Buffer {
    const body = Buffer.alloc(4);
    body.writeUInt16BE(PROGRAM_NUMBER, 0);
    body.writeUInt16BE(0xe000 | TsPid.Pmt, 2);
    return TsMuxer.psi(TableId.Pat, TRANSPORT_STREAM_ID, body);
  }

  private pmtSection(): Buffer {
    const streams: [number, number][] = [];
    if (this.tracks.video !== undefined) streams.push([this.tracks.video, TsPid.Video]);
    if (this.tracks.audio !== undefined) streams.push([this.tracks.audio, TsPid.Audio]);
    const body = Buffer.alloc(4 + 5 * streams.length);
    body.writeUInt16BE(0xe000 | this.pcrPid, 0);
    body.writeUInt16BE(0xf000, 2); // program_info_length 0
    streams.forEach(([type, pid], i) => {
      const at = 4 + 5 * i;
      body[at] = type;
      body.writeUInt16BE(0xe000 | pid, at + 1);
      body.writeUInt16BE(0xf000, at + 3); // ES_info_length 0
    });
    return TsMuxer.psi(TableId.Pmt, PROGRAM_NUMBER, body);
  }

  /** One PES packet cut into TS packets, in one buffer of its final size. */
  pes(p: PesInput): Buffer {
    const out = new TsBuffer(TS_PACKET_SIZE);
    this.writePes(out, p.pid, p.pts, p.dts ?? p.pts, p.pcr ?? -1, p.randomAccess, p.chunks);
    return out.bytes;
  }

  /**
   * One PES packet cut into TS packets, appended to `out`. `pts` and `dts` in
   * 90 kHz, offset (non-negative); dts === pts writes no DTS. `pcr` < 0: no
   * PCR. `chunks`: the elementary stream bytes, in order.
   */
  writePes(out: TsBuffer, pid: number, pts: number, dts: number, pcr: number, randomAccess: boolean, chunks: readonly Buffer[]): void {
    const video = pid === TsPid.Video;
    const hasDts = dts !== pts;
    const hasPcr = pcr >= 0;
    const pesHeaderData = hasDts ? 2 * PES_TIMESTAMP_SIZE : PES_TIMESTAMP_SIZE;
    const pesHeader = PES_FIXED_HEADER + pesHeaderData;
    let dataLength = 0;
    for (let i = 0; i < chunks.length; i++) dataLength += chunks[i]!.length;
    const pesLength = pesHeader + dataLength;
    const firstAf = hasPcr ? AF_PCR_SIZE : randomAccess ? 2 : 0;
    const firstCapacity = TS_PAYLOAD_SIZE - firstAf;
    const packets = pesLength <= firstCapacity ? 1 : 1 + Math.ceil((pesLength - firstCapacity) / TS_PAYLOAD_SIZE);
    const buf = out.grow(packets * TS_PACKET_SIZE);
    const base = out.length - packets * TS_PACKET_SIZE;
    const pidHigh = pid >> 8;
    const pidLow = pid & 0xff;

    // The elementary stream goes first, whole, to the end of the packets' space;
    // each packet then moves its share forward into place (copyWithin), after
    // the headers written in front of it. A packet's share never starts before
    // its destination (the headers so far are at most all of them), so nothing
    // unread is overwritten. Node's Buffer#copy would make a Uint8Array view per
    // copy (~two per packet, a third of the HLS output's allocations); set() of a
    // whole chunk and copyWithin() make none.
    let src = base + packets * TS_PACKET_SIZE - dataLength;
    for (let i = 0, at = src; i < chunks.length; i++) {
      const c = chunks[i]!;
      buf.set(c, at);
      at += c.length;
    }
    let remaining = pesLength;
    for (let k = 0; k < packets; k++) {
      const at = base + k * TS_PACKET_SIZE;
      buf[at] = TS_SYNC_BYTE;
      buf[at + 1] = (k === 0 ? PAYLOAD_UNIT_START : 0) | pidHigh;
      buf[at + 2] = pidLow;
      const afBase = k === 0 ? firstAf : 0;
      const capacity = TS_PAYLOAD_SIZE - afBase;
      const take = Math.min(capacity, remaining);
      const stuffing = capacity - take;
      const afTotal = afBase + stuffing; // bytes of adaptation field incl. its length byte
      buf[at + 3] = (afTotal > 0 ? AdaptationControl.AdaptationAndPayload : AdaptationControl.PayloadOnly) | this.nextCc(pid);
      let w = at + TS_HEADER_SIZE;
      if (afTotal > 0) {
        buf[w] = afTotal - 1; // adaptation_field_length
        if (afTotal > 1) {
          let flags = 0;
          if (k === 0 && randomAccess) flags |= AfFlag.RandomAccess;
          if (k === 0 && hasPcr) flags |= AfFlag.Pcr;
          buf[w + 1] = flags;
          let f = w + 2;
          if (k === 0 && hasPcr) {
            const b = pcr % TIMESTAMP_MODULO;
            // 33-bit base, 6 reserved bits, 9-bit extension (0)
            buf.writeUInt32BE(Math.floor(b / 2), f);
            buf[f + 4] = ((b & 1) << 7) | 0x7e;
            buf[f + 5] = 0;
            f += 6;
          }
          buf.fill(STUFFING, f, w + afTotal);
        }
        w += afTotal;
      }
      let need = take;
      if (k === 0) {
        // the PES header (it always fits the first packet's payload)
        buf[w] = 0;
        buf[w + 1] = 0;
        buf[w + 2] = 1;
        buf[w + 3] = video ? PesStreamId.Video : PesStreamId.Audio;
        const declared = pesLength - 6;
        buf.writeUInt16BE(video || declared > MAX_PES_PACKET_LENGTH ? 0 : declared, w + 4);
        buf[w + 6] = PES_FLAGS1;
        buf[w + 7] = hasDts ? PtsDtsFlags.PtsDts : PtsDtsFlags.Pts;
        buf[w + 8] = pesHeaderData;
        tsTimestamp(buf, w + 9, hasDts ? TimestampPrefix.Pts : TimestampPrefix.PtsOnly, pts);
        if (hasDts) tsTimestamp(buf, w + 14, TimestampPrefix.Dts, dts);
        w += pesHeader;
        need -= pesHeader;
      }
      // payload: the next `need` bytes of the elementary stream
      if (w > src) throw new Error('assert: PES payload moved backwards');
      if (need > 0) buf.copyWithin(w, src, src + need);
      src += need;
      remaining -= take;
    }
    if (src !== base + packets * TS_PACKET_SIZE) throw new Error('assert: PES length accounting');
  }
}

// ---------------------------------------------------------------- elementary streams

/** The NAL units of the access unit being converted (reused: the conversions are synchronous; emptied after each). */
const nalScratch: Buffer[] = [];

/**
 * An H.264 access unit from AVCC (length-prefixed) to Annex-B chunks: an AUD
 * first (a publisher's own AUD is dropped), the avcC's SPS/PPS before a
 * keyframe that does not carry its own. Chunks are views of `data`. `out`
 * (emptied first) lets a muxer reuse one array for every frame.
 */
export function avcAnnexB(data: Buffer, cfg: AvcConfig | undefined, keyframe: boolean, out: Buffer[] = []): Buffer[] {
  emptyArray(out);
  const nals = splitNalUnits(data, cfg?.nalLengthSize ?? 4, nalScratch);
  out.push(AVC_AUD);
  let hasSps = false;
  for (const n of nals) if ((n[0]! & AVC_NAL_TYPE_MASK) === AvcNalType.Sps) hasSps = true;
  if (keyframe && !hasSps && cfg !== undefined) {
    for (const s of cfg.sps) out.push(START_CODE, s);
    for (const s of cfg.pps) out.push(START_CODE, s);
  }
  for (const n of nals) {
    if ((n[0]! & AVC_NAL_TYPE_MASK) === AvcNalType.AccessUnitDelimiter) continue;
    out.push(START_CODE, n);
  }
  emptyArray(nals);
  return out;
}

/** The same for H.265: AUD, VPS/SPS/PPS of the hvcC before a keyframe that lacks them. */
export function hevcAnnexB(data: Buffer, cfg: HevcConfig | undefined, keyframe: boolean, out: Buffer[] = []): Buffer[] {
  emptyArray(out);
  const nals = splitNalUnits(data, cfg?.nalLengthSize ?? 4, nalScratch);
  const type = (n: Buffer): number => (n[0]! >> HEVC_NAL_TYPE_SHIFT) & HEVC_NAL_TYPE_MASK;
  out.push(HEVC_AUD);
  const hasParams = nals.some((n) => type(n) === HevcNalType.Sps);
  if (keyframe && !hasParams && cfg !== undefined) {
    for (const a of cfg.arrays) {
      if (a.type !== HevcNalType.Vps && a.type !== HevcNalType.Sps && a.type !== HevcNalType.Pps) continue;
      for (const n of a.nalus) out.push(START_CODE, n);
    }
  }
  for (const n of nals) {
    if (type(n) === HevcNalType.AccessUnitDelimiter) continue;
    out.push(START_CODE, n);
  }
  emptyArray(nals);
  return out;
}

/** A raw AAC frame with its ADTS header (two chunks). Throws CodecConfigMalformed / FlvMalformed. */
export function aacAdts(data: Buffer, cfg: AacConfig): Buffer[] {
  if (data.length === 0) throw serverError(ErrorCode.FlvMalformed, 'empty AAC frame');
  return [adtsHeader(cfg, data.length), data];
}
